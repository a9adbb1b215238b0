//! Reading DAP's condensed TSV: gzip files with a header line of labels (`key.id`,
//! `value.name`, `meta.action`, …) and PostgreSQL COPY text rows (`\N` for NULL, backslash
//! escapes). Files are read line by line from disk: memory does not grow with the file.
//!
//! PostgreSQL gets the rows as they are, with the fields reordered to the table's columns (and
//! `meta.action` last for an incremental); SQLite gets each field unescaped.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::error::TsvError;
use super::layout::Layout;

/// An open TSV file: its header mapped onto a table's columns.
pub struct TsvFile {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    /// For each table column (in layout order), the field index in a row, if the file has it.
    pub fields: Vec<Option<usize>>,
    /// Field index of `meta.action`, if present.
    pub action: Option<usize>,
    /// Fields per row.
    pub width: usize,
    line: Vec<u8>,
    /// Line number of the last line read (1 = header).
    pub line_no: u64,
}

impl TsvFile {
    /// Opens a `.tsv.gz` (or plain `.tsv`) file and reads its header.
    pub fn open(path: &Path, layout: &Layout) -> Result<TsvFile, TsvError> {
        let file = File::open(path).map_err(|source| TsvError::Open {
            path: path.to_owned(),
            source,
        })?;
        let reader: Box<dyn BufRead + Send> = if path.extension().is_some_and(|e| e == "gz") {
            Box::new(BufReader::with_capacity(
                256 * 1024,
                MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file)),
            ))
        } else {
            Box::new(BufReader::with_capacity(256 * 1024, file))
        };
        let mut t = TsvFile {
            path: path.to_owned(),
            reader,
            fields: vec![],
            action: None,
            width: 0,
            line: Vec::with_capacity(4096),
            line_no: 0,
        };
        if !t.next_line()? {
            // An empty object: no header, no rows.
            t.fields = vec![None; layout.columns.len()];
            return Ok(t);
        }
        let header: Vec<String> = t
            .line
            .split(|b| *b == b'\t')
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
        t.width = header.len();
        t.fields = layout
            .columns
            .iter()
            .map(|c| header.iter().position(|h| *h == c.label || *h == c.name))
            .collect();
        t.action = header.iter().position(|h| h == "meta.action");
        for (c, f) in layout.columns.iter().zip(&t.fields) {
            if c.key && f.is_none() {
                return Err(TsvError::NoKeyColumn {
                    path: path.to_owned(),
                    column: c.label.clone(),
                    header,
                });
            }
        }
        Ok(t)
    }

    /// Reads the next line into the buffer (without its line end). False at the end.
    fn next_line(&mut self) -> Result<bool, TsvError> {
        self.line.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.line)
            .map_err(|source| TsvError::Read {
                path: self.path.clone(),
                line: self.line_no + 1,
                source,
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
        }
        Ok(true)
    }

    /// The next row's fields (raw, still escaped), or None at the end. Blank lines are skipped.
    pub fn next_row(&mut self, out: &mut Vec<std::ops::Range<usize>>) -> Result<bool, TsvError> {
        loop {
            if !self.next_line()? {
                return Ok(false);
            }
            if !self.line.is_empty() {
                break;
            }
        }
        out.clear();
        let mut start = 0;
        for (i, b) in self.line.iter().enumerate() {
            if *b == b'\t' {
                out.push(start..i);
                start = i + 1;
            }
        }
        out.push(start..self.line.len());
        if out.len() != self.width {
            return Err(TsvError::Width {
                path: self.path.clone(),
                line: self.line_no,
                found: out.len(),
                expected: self.width,
            });
        }
        Ok(true)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current line.
    pub fn line(&self) -> &[u8] {
        &self.line
    }

    /// Field `i` of the current row.
    pub fn field(&self, row: &[std::ops::Range<usize>], i: usize) -> &[u8] {
        &self.line[row[i].clone()]
    }

    /// Whether the current row is a deletion (`meta.action` is `D`).
    pub fn is_delete(&self, row: &[std::ops::Range<usize>]) -> bool {
        self.action.is_some_and(|i| self.field(row, i) == b"D")
    }
}

/// Unescapes a COPY text field (every escape PostgreSQL reads: `\n`, octal, hex, a character
/// standing for itself); `None` for `\N`.
pub fn unescape(field: &[u8]) -> Option<Vec<u8>> {
    if field == b"\\N" {
        return None;
    }
    if !field.contains(&b'\\') {
        return Some(field.to_vec());
    }
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] != b'\\' {
            out.push(field[i]);
            i += 1;
            continue;
        }
        let (byte, used) = copy_escape(&field[i + 1..]);
        out.push(byte);
        i += 1 + used;
    }
    Some(out)
}

/// The byte a COPY escape stands for (`rest` follows the backslash) and how many bytes of
/// `rest` it takes. A backslash that ends the field stands for itself.
pub fn copy_escape(rest: &[u8]) -> (u8, usize) {
    let Some(&n) = rest.first() else {
        return (b'\\', 0);
    };
    match n {
        b'b' => (8, 1),
        b'f' => (12, 1),
        b'n' => (b'\n', 1),
        b'r' => (b'\r', 1),
        b't' => (b'\t', 1),
        b'v' => (11, 1),
        b'0'..=b'7' => {
            let digits = rest
                .iter()
                .take(3)
                .take_while(|c| (b'0'..=b'7').contains(c))
                .count();
            // As PostgreSQL: the low 8 bits of up to three octal digits.
            let v = rest[..digits]
                .iter()
                .fold(0u32, |v, d| (v << 3) + u32::from(d - b'0'));
            ((v & 0xff) as u8, digits)
        }
        b'x' => {
            let digits = rest[1..]
                .iter()
                .take(2)
                .take_while(|c| c.is_ascii_hexdigit())
                .count();
            if digits == 0 {
                return (b'x', 1);
            }
            let v = rest[1..=digits].iter().fold(0u8, |v, d| {
                // `d` is an ASCII hex digit (checked above).
                (v << 4) | (*d as char).to_digit(16).unwrap_or(0) as u8
            });
            (v, 1 + digits)
        }
        other => (other, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_copy_text() {
        assert_eq!(unescape(b"\\N"), None);
        assert_eq!(unescape(b"a\\tb\\nc\\\\d").unwrap(), b"a\tb\nc\\d");
        assert_eq!(unescape(b"plain").unwrap(), b"plain");
        // Octal and hex escapes, as PostgreSQL reads them; `\.` is a dot.
        assert_eq!(unescape(b"\\101\\x42\\.\\0").unwrap(), b"AB.\0");
    }
}
