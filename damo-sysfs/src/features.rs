//! What this kernel's DAMON offers, read without writing anything.

use std::path::Path;

use crate::tree::Tree;

/// The operation sets (vaddr, fvaddr, paddr) and where that was read. `avail_operations`
/// exists only inside a context; without any context, the kernel's symbols (`kallsyms`, a
/// /proc/kallsyms) tell which operation sets were built in.
pub fn operations(tree: &dyn Tree, kallsyms: &Path) -> (Vec<String>, String) {
    for kdamond in 0..tree.read_dir_count("kdamonds") {
        let file = format!("kdamonds/{kdamond}/contexts/0/avail_operations");
        if let Ok(text) = tree.read(&file) {
            return (text.split_whitespace().map(str::to_owned).collect(), tree.location(&file));
        }
    }
    match std::fs::read_to_string(kallsyms) {
        Ok(symbols) => {
            let mut ops = Vec::new();
            if symbols.contains(" damon_va_") {
                ops.extend(["vaddr".to_owned(), "fvaddr".to_owned()]);
            }
            if symbols.contains(" damon_pa_") {
                ops.push("paddr".to_owned());
            }
            (ops, format!("{} (damon_va_*/damon_pa_* symbols)", kallsyms.display()))
        }
        Err(_) => (Vec::new(), "unknown".to_owned()),
    }
}
