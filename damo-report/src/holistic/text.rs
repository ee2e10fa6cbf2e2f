//! Labels cut to the room they have, without measuring glyphs: DejaVu Sans's advance is
//! about 0.66 of the font size (0.72 in bold) for the letters, `<>:` and digits of names.

/// Pixels per character of `font`, a little generous so cut labels never touch.
pub fn char_px(font: f64, bold: bool) -> f64 {
    font * if bold { 0.72 } else { 0.66 }
}

/// `text` in at most `px` pixels: the middle gives way to an ellipsis, since names carry the
/// most in their first path segment and their last.
pub fn fit(text: &str, px: f64, char_px: f64) -> String {
    let max = (px / char_px).floor().max(0.0) as usize;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= max {
        return text.to_owned();
    }
    if max < 2 {
        return String::new();
    }
    let head = (max - 1) / 3;
    let tail = max - 1 - head;
    chars[..head].iter().chain(['…'].iter()).chain(&chars[chars.len() - tail..]).collect()
}

/// A function name in at most `px` pixels: C++ parameter lists, then template arguments
/// (Rust's too) give way before the middle of the name does, so the function's own name stays.
pub fn fit_function(name: &str, px: f64, char_px: f64) -> String {
    let mut shown = name.to_owned();
    for (open, close) in [('(', ')'), ('<', '>')] {
        if shown.chars().count() as f64 * char_px <= px {
            return shown;
        }
        shown = collapse(&shown, open, close);
    }
    fit(&shown, px, char_px)
}

/// Every outermost `open … close` group emptied to `open…close`; the name as it is when its
/// brackets do not pair up (C++'s `operator<`, `operator->`).
fn collapse(name: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        if c == open {
            depth += 1;
            if depth == 1 {
                out.push(open);
                out.push('…');
            }
        } else if c == close {
            let Some(d) = depth.checked_sub(1) else { return name.to_owned() };
            depth = d;
            if depth == 0 {
                out.push(close);
            }
        } else if depth == 0 {
            out.push(c);
        }
    }
    if depth == 0 {
        out
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PX: f64 = 10.0;

    #[test]
    fn long_names_lose_their_middle() {
        let name = "std::collections::hash::map::HashMap<K,V,S>::insert";
        let short = fit(name, 20.0 * PX, PX);
        assert_eq!(short.chars().count(), 20);
        assert!(short.starts_with("std::") && short.ends_with("::insert") && short.contains('…'), "{short}");
        assert_eq!(fit("main", 100.0, PX), "main");
        assert_eq!(fit("main", 10.0, PX), "");
    }

    #[test]
    fn functions_lose_parameters_then_template_arguments() {
        let cpp = "fft::radix2::butterfly<std::complex<double>>(std::complex<double>*, unsigned long)";
        assert_eq!(fit_function(cpp, 1000.0 * PX, PX), cpp);
        assert_eq!(fit_function(cpp, 60.0 * PX, PX), "fft::radix2::butterfly<std::complex<double>>(…)");
        assert_eq!(fit_function(cpp, 30.0 * PX, PX), "fft::radix2::butterfly<…>(…)");
        let rust = "std::collections::hash::map::HashMap<K,V,S>::insert";
        assert_eq!(fit_function(rust, 30.0 * PX, PX), "std::coll…::HashMap<…>::insert");
        assert_eq!(fit_function("operator<(a, b)", 10.0 * PX, PX), "ope…or<(…)", "unpaired < stays");
    }
}
