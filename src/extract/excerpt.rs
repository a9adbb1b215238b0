//! A JSON value or an answer's body cut short for a message: what an error shows of a
//! response can be a few hundred characters of a 50 MB answer, so neither is written whole.

/// A JSON value for a message, cut at 300 characters (written only that far: a message about
/// a 50 MB answer does not serialize it).
pub fn short_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    const CHARS: usize = 300;
    let mut w = Bounded {
        out: Vec::new(),
        limit: CHARS * 4 + 4,
    };
    let whole = serde_json::to_writer(&mut w, v).is_ok();
    let s = String::from_utf8_lossy(&w.out);
    if whole && s.chars().count() <= CHARS {
        return s.into_owned();
    }
    let cut: String = s.chars().take(CHARS).collect();
    format!("{cut}…")
}

/// A writer that takes `limit` bytes, then refuses the rest.
struct Bounded {
    out: Vec<u8>,
    limit: usize,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.limit.saturating_sub(self.out.len());
        if room == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        let n = buf.len().min(room);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The start of a body for a message: its first 300 characters outside whitespace between
/// JSON tokens (so a pretty-printed answer reads as a compact one), control characters
/// dropped. Read from the bytes, so it shows the answer as sent, whatever was parsed of it.
pub fn excerpt(body: &[u8]) -> String {
    const CHARS: usize = 300;
    let head = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    let mut out = String::new();
    let (mut in_string, mut escaped, mut n) = (false, false, 0);
    for c in head.chars() {
        if n == CHARS {
            out.push('…');
            return out;
        }
        if in_string {
            in_string = escaped || c != '"';
            escaped = !escaped && c == '\\';
        } else if c == '"' {
            in_string = true;
        } else if c.is_whitespace() {
            continue;
        }
        if !c.is_control() {
            out.push(c);
            n += 1;
        }
    }
    if head.len() < body.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_json_and_excerpt_stop_at_300_characters() {
        let big = serde_json::Value::Array((0..100_000).map(|i| json!({"id": i})).collect());
        let short = short_json(&big);
        assert_eq!(short.chars().count(), 301);
        assert!(short.starts_with(r#"[{"id":0},{"id":1}"#) && short.ends_with('…'));
        assert_eq!(short_json(&json!({"a": "é"})), r#"{"a":"é"}"#);
        let pretty = serde_json::to_vec_pretty(&json!({"a": "x  y", "b": [1, 2]})).unwrap();
        assert_eq!(excerpt(&pretty), r#"{"a":"x  y","b":[1,2]}"#);
        assert_eq!(excerpt(br#"{"a": "q\" \n"}"#), r#"{"a":"q\" \n"}"#);
        let long = serde_json::to_vec(&big).unwrap();
        assert_eq!(excerpt(&long), short);
    }
}
