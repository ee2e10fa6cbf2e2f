//! Names for kernel addresses, resolved once at the end of a recording from kallsyms (the
//! kernel of the machine that ran, which a later report machine may not have).

use blazesym::symbolize::{
    source::{Kernel, Source},
    Input, Symbolizer,
};

/// `(address, name)` for each address kallsyms knows; unknown ones are left out.
pub fn resolve(addrs: &[u64]) -> Vec<(u64, String)> {
    if addrs.is_empty() {
        return Vec::new();
    }
    let kernel = Kernel { vmlinux: blazesym::MaybeDefault::None, ..Kernel::default() };
    let source = Source::Kernel(kernel);
    let symbolizer = Symbolizer::new();
    let Ok(symbols) = symbolizer.symbolize(&source, Input::AbsAddr(addrs)) else {
        return Vec::new();
    };
    addrs.iter().zip(symbols).filter_map(|(&addr, sym)| Some((addr, sym.as_sym()?.name.to_string()))).collect()
}
