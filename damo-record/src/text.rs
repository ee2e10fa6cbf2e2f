//! Text from records and /proc made safe to print: a process name, path or symbol is chosen
//! by whoever ran the process or wrote the record, and a raw ESC in it would reach the
//! terminal of whoever reads the report (root, often). Control characters (C0, DEL, C1) and
//! the bidirectional overrides that reorder what is shown are written as escapes instead.

use std::{borrow::Cow, fmt::Write as _};

/// `text` with control characters and bidi overrides escaped (`\x1b`, `\u{202e}`); a
/// backslash stays a backslash, as `ls -b` and `ps` leave them.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        assert!(matches!(printable("workload ünïcode"), Cow::Borrowed(_)));
        assert_eq!(printable("evil\x1b]0;pwned\x07\x1b[2J"), "evil\\x1b]0;pwned\\x07\\x1b[2J");
        assert_eq!(printable("a\nb\tc\x7f\u{9b}"), "a\\x0ab\\x09c\\x7f\\x9b");
        assert_eq!(printable("txt.\u{202e}exe"), "txt.\\u{202e}exe");
    }
}
