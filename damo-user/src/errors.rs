//! How an error reaches the user: one line, each cause once, nothing a terminal obeys.

use std::io;

/// The error and its causes joined with ": ", skipping a cause whose text the message
/// already ends with (an error that prints its source, then that source again, as
/// `#[error("... {0}")] Io(#[from] io::Error)` does), with control characters escaped
/// (paths and names in messages may come from records).
pub fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if cause.is_empty() || text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text.lines().map(damo_record::text::printable).collect::<Vec<_>>().join("\n")
}

/// Whether the error comes from writing into a pipe whose reader is gone.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe))
}

#[cfg(test)]
mod tests {
    use anyhow::Context as _;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum ReadError {
        #[error("{0}")]
        Io(#[from] io::Error),
    }

    #[test]
    fn each_cause_is_said_once() {
        let inner = ReadError::from(io::Error::from_raw_os_error(libc::EISDIR));
        let e = Err::<(), _>(inner).context("failed to read /tmp").unwrap_err();
        assert_eq!(message(&e), "failed to read /tmp: Is a directory (os error 21)");
        let e = Err::<(), _>(io::Error::from_raw_os_error(libc::EACCES)).context("cannot open r").context("--observe").unwrap_err();
        assert_eq!(message(&e), "--observe: cannot open r: Permission denied (os error 13)");
    }

    #[test]
    fn escapes_reach_the_terminal_escaped() {
        let e = anyhow::anyhow!("{} is not a regular file", "/tmp/\x1b[2Jx");
        assert_eq!(message(&e), "/tmp/\\x1b[2Jx is not a regular file");
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_context() {
        let e = Err::<(), _>(io::Error::from(io::ErrorKind::BrokenPipe)).context("failed to write the report").unwrap_err();
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    }
}
