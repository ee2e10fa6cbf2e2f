//! Colour maps every report shares: gnuplot's palette for heat in images (`report heatmap`,
//! `report holistic`) and damo's terminal colorsets (`report heatmap`, `report access`).

/// gnuplot's default palette (rgbformulae 7,5,15): black, blue, red, yellow for `x` in 0..=1,
/// as `#rrggbb`.
pub fn heat(x: f64) -> String {
    let c = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    format!("#{:02x}{:02x}{:02x}", c(x.sqrt()), c(x.powi(3)), c((2.0 * std::f64::consts::PI * x).sin()))
}

/// The highest level of a terminal colorset: levels are 0 (cold) to 9 (hot).
pub const MAX_LEVEL: usize = 9;

/// Ends a colored piece of terminal text.
pub const END: &str = "\x1b[0m";

crate::names::named_enum! {
    /// damo's colorsets: background and foreground xterm-256 colors for levels 0..=9.
    #[derive(Default)]
    pub enum Colorset {
        #[default]
        Gray = "gray",
        Flame = "flame",
        Emotion = "emotion",
    }
}

impl Colorset {
    fn colors(self, level: usize) -> (u8, u8) {
        const FG_WARM: [u8; 10] = [239, 235, 237, 239, 243, 245, 247, 249, 251, 255];
        let (bg, fg): ([u8; 10], [u8; 10]) = match self {
            Colorset::Gray => ([232; 10], [237, 239, 241, 243, 245, 247, 249, 251, 253, 255]),
            Colorset::Flame => ([232, 1, 1, 2, 3, 3, 20, 21, 26, 27], FG_WARM),
            Colorset::Emotion => ([232, 234, 20, 21, 26, 2, 3, 1, 1, 1], FG_WARM),
        };
        (bg[level], fg[level])
    }

    /// The escape codes that start text of `level` (at most [`MAX_LEVEL`]).
    pub fn start(self, level: usize) -> String {
        let (bg, fg) = self.colors(level.min(MAX_LEVEL));
        format!("\x1b[48;5;{bg}m\x1b[38;5;{fg}m")
    }

    /// Every level's digit in its color (damo's `color_samples`).
    pub fn samples(self) -> String {
        let mut s: String = (0..=MAX_LEVEL).map(|l| format!("{}{l}", self.start(l))).collect();
        s += END;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_runs_from_black_to_yellow() {
        assert_eq!(heat(0.0), "#000000");
        assert_eq!(heat(1.0), "#ffff00");
        assert_eq!(heat(0.5), "#b42000");
    }

    #[test]
    fn colorsets_match_damo() {
        assert_eq!(Colorset::Gray.start(0), "\x1b[48;5;232m\x1b[38;5;237m");
        assert_eq!(Colorset::Flame.start(9), "\x1b[48;5;27m\x1b[38;5;255m");
        assert_eq!("emotion".parse::<Colorset>(), Ok(Colorset::Emotion));
        assert!("red".parse::<Colorset>().is_err());
    }
}
