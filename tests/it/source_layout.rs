//! The shape of `src/`, checked on its text: no Rust file over 600 lines, and no import cycle
//! between the files of one folder.
//!
//! The nodes of a folder are its files and its subfolders (a subfolder with everything in it);
//! its `mod.rs` is the folder itself, which its children may use freely, as they may use the
//! crate's other folders. An edge `a → b` is any path of `a` that names `b`: a `use` tree
//! (`use super::b::X`, `use crate::f::b::{self, Y}`) or a path in the code (`super::b::f()`),
//! written with `crate`, `self` or `super`. Comments, string literals and the `#[cfg(test)]`
//! module at the end of a file are not read: a test may import what it likes. A cycle means
//! two files that cannot be read, changed or moved apart; the fix is to move the shared piece
//! down into a file of its own, or to turn one of the imports around.
//!
//! Each rule is a function of a folder (`oversized`, `import_cycles`), tested on a broken tree
//! in a temp dir first, so a checker that finds nothing is known to be able to find something.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::common::rust_files;

/// The longest a Rust file in `src/` may be.
const MAX_LINES: usize = 600;

/// A module's path from the crate root (`["load", "pg", "copy"]`; `[]` for `lib.rs`).
type ModPath = Vec<String>;

/// The Rust files under `src` longer than [`MAX_LINES`], with their lengths.
fn oversized(src: &Path) -> Vec<String> {
    rust_files(src)
        .into_iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(&f).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", f.display()))
        })
        .collect()
}

/// The module a file of the library under `src` is, or `None` for the binary's `main.rs`.
fn module_of(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut path: ModPath = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match path.last().map(String::as_str) {
        Some("main") if path.len() == 1 => return None,
        Some("lib") if path.len() == 1 => path.clear(),
        Some("mod") => {
            path.pop();
        }
        _ => {}
    }
    Some(path)
}

/// `text` with comments and string and character literals blanked out (newlines kept), so
/// that a path in a doc comment or a message is not read as an import.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r' && !ident_before && matches!(next, Some('"') | Some('#')) {
            // A raw string: r"...", r#"..."#.
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            let mut k = j + 1;
            while k < chars.len() {
                if chars[k] == '"' && (1..=hashes).all(|h| chars.get(k + h) == Some(&'#')) {
                    k += 1 + hashes;
                    break;
                }
                k += 1;
            }
            out.extend(chars[i..k.min(chars.len())].iter().map(|&c| blank(c)));
            i = k;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal ('x', '\n', '\u{7f}'), not a lifetime.
            let from = if next == Some('\\') { i + 3 } else { i + 2 };
            let end = chars
                .get(from..)
                .and_then(|rest| rest.iter().position(|&c| c == '\''))
                .map_or(chars.len(), |p| from + p + 1);
            out.extend(chars[i..end].iter().map(|&c| blank(c)));
            i = end;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `text` up to its test module (`#[cfg(test)]` on a line before `mod ...`).
fn before_tests(text: &str) -> &str {
    let mut at = 0;
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|l| l.trim_start().starts_with("mod "))
        {
            return &text[..at];
        }
        at += line.len();
    }
    text
}

/// The paths a `use` tree names, braces expanded: `super::a::{self, b::{C, D as E}}` →
/// `super::a`, `super::a::b::C`, `super::a::b::D`.
fn expand_use(tree: &str) -> Vec<String> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or("").trim();
        let path = path.strip_suffix("::self").unwrap_or(path);
        return vec![path.replace(' ', "")];
    };
    let head = tree[..open].trim();
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand_use(&format!("{head}{}", p.trim())))
        .collect()
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Every path starting with `crate`, `self` or `super` that `code` names, in `use` trees and
/// in the code.
fn paths_in(code: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (at, _) in code.match_indices("use ") {
        if at > 0 && code[..at].ends_with(is_ident) {
            continue;
        }
        let rest = &code[at + 4..];
        if let Some(end) = rest.find(';') {
            paths.extend(expand_use(&rest[..end]));
        }
    }
    for root in ["crate::", "self::", "super::"] {
        for (at, _) in code.match_indices(root) {
            if at > 0 && code[..at].ends_with(|c: char| is_ident(c) || c == ':') {
                continue;
            }
            let len = code[at..]
                .find(|c: char| !(is_ident(c) || c == ':'))
                .unwrap_or(code.len() - at);
            paths.insert(code[at..at + len].trim_end_matches(':').to_owned());
        }
    }
    paths
}

/// The module `path` names, written in module `from`; `None` for a path into another crate.
fn resolve(from: &[String], path: &str) -> Option<ModPath> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let (mut base, rest) = match *segs.first()? {
        "crate" => (Vec::new(), &segs[1..]),
        "self" => (from.to_vec(), &segs[1..]),
        "super" => {
            let ups = segs.iter().take_while(|s| **s == "super").count();
            (
                from[..from.len().saturating_sub(ups)].to_vec(),
                &segs[ups..],
            )
        }
        _ => return None,
    };
    base.extend(rest.iter().map(|s| (*s).to_owned()));
    Some(base)
}

/// The edges between the nodes of each folder: folder → (node → the nodes it names, with a
/// path that names each).
type Graphs = BTreeMap<ModPath, BTreeMap<String, BTreeMap<String, String>>>;

fn graphs(src: &Path) -> Graphs {
    let files: Vec<(ModPath, String)> = rust_files(src)
        .into_iter()
        .filter_map(|f| {
            let module = module_of(src, &f)?;
            Some((module, std::fs::read_to_string(&f).unwrap()))
        })
        .collect();
    let modules: BTreeSet<&ModPath> = files.iter().map(|(m, _)| m).collect();
    let is_module = |prefix: &[String]| modules.iter().any(|m| m.starts_with(prefix));
    let mut graphs = Graphs::new();
    for (module, text) in &files {
        for path in paths_in(&code_only(before_tests(text))) {
            let Some(target) = resolve(module, &path) else {
                continue;
            };
            // In each folder above the file, the file belongs to the node `module[k]`.
            for k in 0..module.len() {
                let (folder, from) = (&module[..k], &module[k]);
                if target.len() > k && target.starts_with(folder) && target[k] != *from {
                    let to = &target[k];
                    if is_module(&target[..=k]) {
                        graphs
                            .entry(folder.to_vec())
                            .or_default()
                            .entry(from.clone())
                            .or_default()
                            .entry(to.clone())
                            .or_insert_with(|| path.clone());
                    }
                }
            }
        }
    }
    graphs
}

/// The import cycles between the files of a folder under `src`, one line each:
/// `load/sqlite: conn → meta (super::meta::migrate), meta → conn (...)`.
fn import_cycles(src: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for (folder, graph) in graphs(src) {
        for component in strongly_connected(&graph) {
            let edges: Vec<String> = component
                .iter()
                .flat_map(|a| {
                    graph[a]
                        .iter()
                        .filter(|(b, _)| component.contains(*b))
                        .map(move |(b, path)| format!("{a} → {b} ({path})"))
                })
                .collect();
            let name = if folder.is_empty() {
                "src".to_owned()
            } else {
                format!("src/{}", folder.join("/"))
            };
            found.push(format!("{name}: {}", edges.join(", ")));
        }
    }
    found
}

/// The strongly connected components of more than one node (Tarjan's algorithm).
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<BTreeSet<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = BTreeSet::new();
            while let Some(w) = s.stack.pop() {
                component.insert(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Writes `files` (path under the root, text) into a temp dir.
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn the_layout_checker_finds_a_cycle_between_files_and_between_folders() {
    let dir = tree(&[
        ("lib.rs", "mod job;\nmod net;\nmod report;\n"),
        ("job/mod.rs", "mod load;\nmod project;\n"),
        // load → project through a `use` tree, project → load through a path in the code.
        (
            "job/load.rs",
            "use super::{project::{self, Raw}, model as m};\npub fn parse() {}\n",
        ),
        (
            "job/project.rs",
            "pub struct Raw;\nfn read() { super::load::parse(); }\n",
        ),
        // Across the top level: a file deep in `net` names `report`, `report` names `net`.
        ("net/mod.rs", "mod retry;\n"),
        ("net/retry.rs", "use crate::report::summary;\n"),
        ("report.rs", "pub fn summary() { crate::net::send(); }\n"),
    ]);
    let found = import_cycles(dir.path());
    assert_eq!(
        found,
        [
            "src: net → report (crate::report::summary), report → net (crate::net::send)",
            "src/job: load → project (super::project), project → load (super::load::parse)",
        ]
    );
}

#[test]
fn the_layout_checker_reads_no_comment_string_or_test_module_as_an_import() {
    let dir = tree(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        (
            "a.rs",
            "//! See [`b`](crate::b).\n\
             /* crate::b::x */\n\
             const S: &str = \"crate::b::y\";\n\
             const R: &str = r#\"use crate::b;\"#;\n\
             const C: char = '\"';\n\
             fn f<'a>(x: &'a str) -> &'a str { x }\n\
             #[cfg(test)]\n\
             mod tests {\n    use crate::b::z;\n}\n",
        ),
        ("b.rs", "use crate::a::f;\n"),
    ]);
    assert_eq!(import_cycles(dir.path()), Vec::<String>::new());
}

#[test]
fn the_layout_checker_finds_a_file_over_the_limit() {
    let long = "// a line\n".repeat(MAX_LINES + 1);
    let short = "// a line\n".repeat(MAX_LINES);
    let dir = tree(&[("lib.rs", &short), ("big/mod.rs", &long)]);
    let found = oversized(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].ends_with(&format!("big/mod.rs: {} lines", MAX_LINES + 1)));
}

#[test]
fn no_rust_file_in_src_is_over_600_lines() {
    let found = oversized(&src());
    assert!(
        found.is_empty(),
        "split these by concept (no file in src/ over {MAX_LINES} lines):\n{}",
        found.join("\n")
    );
}

#[test]
fn no_two_files_of_a_folder_in_src_import_each_other() {
    // That the checker reads the real tree: it sees the edges every folder has.
    let graphs = graphs(&src());
    let sandbox = &graphs[&vec!["sandbox".to_owned()]];
    assert!(sandbox["server"].contains_key("dap"), "{sandbox:?}");
    let found = import_cycles(&src());
    assert!(
        found.is_empty(),
        "import cycles between the files of a folder (move the shared piece into a file of \
         its own, or turn one import around):\n{}",
        found.join("\n")
    );
}
