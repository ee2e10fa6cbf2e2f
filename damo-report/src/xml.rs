//! Text in SVG and HTML output: the one escaper for element text and double-quoted
//! attribute values alike (function names carry `<`, `>` and `&`; titles may carry `"`).

/// `text` with `&`, `<`, `>` and `"` replaced by their entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_quotes_are_escaped_once() {
        assert_eq!(escape(r#"Vec<u8>::push & "x""#), "Vec&lt;u8&gt;::push &amp; &quot;x&quot;");
        assert_eq!(escape("&amp;"), "&amp;amp;");
        assert_eq!(escape("plain 1.5 MiB"), "plain 1.5 MiB");
    }
}
