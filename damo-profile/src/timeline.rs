//! The function a stack sample stands for on a timeline of the record (`report holistic`):
//! the workload's own code rather than the library or kernel leaf it was in.

use damo_record::model::StackSample;

use crate::stacks::NamedStack;

/// The function a sample stands for: its innermost named user frame (the workload's own
/// code, even while in a system call), else `report profile`'s symbol.
pub fn function_of(s: &StackSample, named: &NamedStack) -> String {
    let user = if s.user.is_empty() { 0 } else { named.frames.iter().position(|f| &**f == "-").unwrap_or(named.frames.len()) };
    // Unnamed frames ("[unknown] 0x…", "[libc.so.6+0x…]") are bracketed.
    match named.frames[..user].iter().rev().find(|f| !f.starts_with('[')) {
        Some(f) => f.to_string(),
        None => named.symbol.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use damo_record::model::FileAddr;

    fn sample(user: usize, kernel: usize) -> StackSample {
        StackSample { ts_ns: 0, pid: 1, tid: 1, cpu: 0, comm: "w".into(), user: vec![FileAddr { module: 0, offset: 0 }; user], kernel: vec![0; kernel] }
    }

    fn named(frames: &[&str], symbol: &str) -> NamedStack {
        NamedStack { frames: frames.iter().map(|&f| f.into()).collect(), symbol: symbol.into(), object: "".into(), source: None }
    }

    #[test]
    fn a_sample_is_its_innermost_named_user_function() {
        let in_syscall = named(&["main", "compute", "[libc.so.6+0x9a0]", "-", "do_syscall_64_[k]", "clear_page_[k]"], "clear_page");
        assert_eq!(function_of(&sample(3, 2), &in_syscall), "compute");
        let kernel_only = named(&["ret_from_fork_[k]", "kswapd_[k]"], "kswapd");
        assert_eq!(function_of(&sample(0, 2), &kernel_only), "kswapd");
        let unnamed = named(&["[unknown] 0x1000"], "[unknown] 0x1000");
        assert_eq!(function_of(&sample(1, 0), &unnamed), "[unknown] 0x1000");
    }
}
