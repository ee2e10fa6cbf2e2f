//! `start`, `tune`, `stop` and `status`: damo's options and the printing; the sysfs work is
//! [`damo_sysfs`]'s.

pub mod args;
