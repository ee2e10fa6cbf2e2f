//! What `record` and `start` are pointed at, in damo's syntax.

use std::path::PathBuf;

/// `<pid | "command args" | paddr | kdamonds.json>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    Pid(u32),
    /// Physical address space: the whole machine's memory, no process.
    Paddr,
    /// A damo-style kdamonds parameter document.
    KdamondsJson(PathBuf),
    /// A command line to start, held until recording is ready.
    Command(String),
}

impl TargetSpec {
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        if let Ok(pid) = text.parse::<u32>() {
            return Self::Pid(pid);
        }
        if text == "paddr" {
            return Self::Paddr;
        }
        let path = PathBuf::from(text);
        if text.ends_with(".json") && path.is_file() {
            return Self::KdamondsJson(path);
        }
        Self::Command(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_damo_target_syntax() {
        assert_eq!(TargetSpec::parse("1234"), TargetSpec::Pid(1234));
        assert_eq!(TargetSpec::parse("paddr"), TargetSpec::Paddr);
        assert_eq!(TargetSpec::parse("sleep 5"), TargetSpec::Command("sleep 5".into()));
        // A .json name that is not a file is a command (e.g. a script taking a json argument).
        assert_eq!(TargetSpec::parse("no-such.json"), TargetSpec::Command("no-such.json".into()));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("k.json");
        std::fs::write(&file, "{}").unwrap();
        assert_eq!(TargetSpec::parse(file.to_str().unwrap()), TargetSpec::KdamondsJson(file));
    }
}
