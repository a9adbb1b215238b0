//! Every relative link of the manual resolves: the file (or folder) exists, and an `#anchor`
//! is a heading or an HTML id of the page it points at. Links to other sites are not followed
//! (tests are offline).

use std::path::{Component, Path, PathBuf};

use super::markdown::{anchors, links, pages, read, root};

/// `a/../b` → `b`, without touching the disk.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

/// What is wrong with the link `dest` of the page `page`, if anything.
fn problem(page: &str, dest: &str) -> Option<String> {
    if dest.contains("://") || dest.starts_with("mailto:") {
        return None;
    }
    let (path, anchor) = match dest.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (dest, None),
    };
    let target = if path.is_empty() {
        PathBuf::from(page)
    } else {
        normalize(&Path::new(page).parent().unwrap_or(Path::new("")).join(path))
    };
    if target.starts_with("..") || !root().join(&target).exists() {
        return Some(format!("`{dest}`: no file {}", target.display()));
    }
    let anchor = anchor?;
    if target.extension().is_none_or(|x| x != "md") {
        return Some(format!(
            "`{dest}`: an anchor into a file that is not Markdown"
        ));
    }
    let text = read(target.to_str().unwrap());
    if anchors(&text).contains(anchor) {
        None
    } else {
        let mut have: Vec<String> = anchors(&text).into_iter().collect();
        have.sort();
        Some(format!(
            "`{dest}`: {} has no anchor `{anchor}` (it has: {})",
            target.display(),
            have.join(", ")
        ))
    }
}

#[test]
fn every_relative_link_and_anchor_of_the_manual_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        for dest in links(&read(&page)) {
            checked += 1;
            if let Some(p) = problem(&page, &dest) {
                problems.push(format!("{page}: {p}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    assert!(
        checked > 100,
        "only {checked} links found: is the parser reading the pages?"
    );
}

#[test]
fn a_broken_link_or_anchor_is_caught() {
    assert!(problem("docs/README.md", "getting-started.md").is_none());
    assert!(problem("docs/README.md", "../README.md#install").is_none());
    assert!(problem("docs/README.md", "no-such-page.md").is_some());
    assert!(problem("docs/README.md", "getting-started.md#no-such-heading").is_some());
    assert!(problem("docs/README.md", "../../outside.md").is_some());
    assert!(problem("docs/README.md", "https://example.com/#x").is_none());
}

/// Every page of docs/ is in the book's table of contents (`docs/SUMMARY.md`, which mdBook
/// reads), and the README links the manual's first page.
#[test]
fn every_page_of_the_manual_is_in_its_table_of_contents() {
    let summary = links(&read("docs/SUMMARY.md"));
    let missing: Vec<String> = pages()
        .into_iter()
        .filter_map(|p| p.strip_prefix("docs/").map(str::to_owned))
        .filter(|p| p != "SUMMARY.md" && !summary.contains(p))
        .collect();
    assert!(missing.is_empty(), "not in docs/SUMMARY.md: {missing:?}");
    assert!(
        links(&read("README.md"))
            .iter()
            .any(|l| l == "docs/README.md")
    );
}
