//! `--sort_regions_by` / `--sort_regions_dsc`: stable sorts applied key after key, as damo
//! applies them (so the last key is the primary order).

use super::Reg;

crate::names::named_enum! {
    /// A region sort key.
    pub enum SortKey {
        Address = "address",
        AccessRate = "access_rate",
        Age = "age",
        Size = "size",
        Temperature = "temperature",
    }
}

/// Sorts `regs` by each key in turn; `dsc(key)` says which keys descend. Python's
/// `sorted(reverse=True)` keeps equal elements in their order, so descending is a stable
/// sort on the reversed comparison, not a reversal.
pub fn sort_regions(regs: &mut [Reg], keys: &[SortKey], dsc: impl Fn(SortKey) -> bool, weights: [i64; 3]) {
    for &key in keys {
        let d = dsc(key);
        macro_rules! by {
            ($f:expr) => {
                if d {
                    regs.sort_by(|a, b| $f(b).cmp(&$f(a)))
                } else {
                    regs.sort_by(|a, b| $f(a).cmp(&$f(b)))
                }
            };
        }
        match key {
            SortKey::Address => by!(|r: &Reg| r.start),
            SortKey::AccessRate => by!(|r: &Reg| r.percent),
            SortKey::Age => by!(|r: &Reg| r.age_us),
            SortKey::Size => by!(|r: &Reg| r.end - r.start),
            SortKey::Temperature => {
                if d {
                    regs.sort_by_cached_key(|r| std::cmp::Reverse(r.temperature(weights)))
                } else {
                    regs.sort_by_cached_key(|r| r.temperature(weights))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(start: u64, percent: i64) -> Reg {
        Reg { start, end: start + 10, samples: 0, percent, age_us: 0, aggr: None, passed: None }
    }

    #[test]
    fn descending_is_stable() {
        let mut v = vec![reg(0, 1), reg(10, 5), reg(20, 1), reg(30, 5)];
        sort_regions(&mut v, &[SortKey::AccessRate], |_| true, [0, 100, 100]);
        assert_eq!(v.iter().map(|r| r.start).collect::<Vec<_>>(), vec![10, 30, 0, 20]);
    }
}
