//! JSON output for machines: a report's serializable struct, pretty-printed with its object
//! keys sorted (the order the reports have always printed, so scripts and diffs see the same
//! bytes), and a final newline.

use std::io::Write;

use serde::Serialize;

/// Writes `doc` as pretty JSON with sorted keys and a newline.
pub fn write_sorted(doc: &impl Serialize, out: &mut dyn Write) -> serde_json::Result<()> {
    // A `Value`'s maps are ordered by key.
    let value = serde_json::to_value(doc)?;
    serde_json::to_writer_pretty(&mut *out, &value)?;
    writeln!(out).map_err(serde_json::Error::io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Doc {
        zeta: u8,
        alpha: Vec<u8>,
    }

    #[test]
    fn keys_come_out_sorted() {
        let mut out = Vec::new();
        write_sorted(&Doc { zeta: 1, alpha: vec![2] }, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "{\n  \"alpha\": [\n    2\n  ],\n  \"zeta\": 1\n}\n");
    }
}
