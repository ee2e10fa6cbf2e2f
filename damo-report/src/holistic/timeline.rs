//! The function timeline: named samples counted per equal time bucket, with one row per
//! function worth a row. damo-report does not symbolize; callers pass `(time, function)`.

use std::collections::HashMap;

/// A sample's time (ns, the record's clock) and the function it names.
pub type NamedSample = (u64, String);

/// One function's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    /// Samples of this function inside the timeline's span.
    pub total: usize,
    /// Per bucket, this function's samples.
    pub counts: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub start_ns: f64,
    pub end_ns: f64,
    /// Rows in the order they first lead a bucket, so phases read as a staircase.
    pub rows: Vec<Row>,
    /// Per bucket, all its samples (rows plus functions without a row).
    pub bucket_totals: Vec<usize>,
    /// Samples before or after the span (stacks can be sampled before DAMON's first snapshot).
    pub outside: usize,
}

impl Timeline {
    /// Counts `samples` into `buckets` equal slices of `[start_ns, end_ns)` and keeps at most
    /// `top` rows: first the functions that lead some bucket, then the busiest of the rest.
    pub fn build(samples: &[NamedSample], (start_ns, end_ns): (f64, f64), buckets: usize, top: usize) -> Timeline {
        let buckets = buckets.max(1);
        let span = (end_ns - start_ns).max(1.0);
        let mut ids: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<&str> = Vec::new();
        let mut counts: Vec<Vec<usize>> = Vec::new();
        let mut bucket_totals = vec![0; buckets];
        let mut outside = 0;
        for (ts, name) in samples {
            let t = *ts as f64;
            if t < start_ns || t >= end_ns {
                outside += 1;
                continue;
            }
            let b = (((t - start_ns) / span * buckets as f64) as usize).min(buckets - 1);
            let id = *ids.entry(name.as_str()).or_insert_with(|| {
                names.push(name);
                counts.push(vec![0; buckets]);
                names.len() - 1
            });
            counts[id][b] += 1;
            bucket_totals[b] += 1;
        }
        let totals: Vec<usize> = counts.iter().map(|c| c.iter().sum()).collect();
        // The first bucket each function leads (most samples, ties to the busier function).
        let mut first_lead: Vec<Option<usize>> = vec![None; names.len()];
        for (b, _) in bucket_totals.iter().enumerate().filter(|&(_, &n)| n > 0) {
            let leader = (0..names.len()).filter(|&f| counts[f][b] > 0).max_by_key(|&f| (counts[f][b], totals[f], std::cmp::Reverse(f)));
            if let Some(f) = leader {
                first_lead[f].get_or_insert(b);
            }
        }
        let mut chosen: Vec<usize> = (0..names.len()).filter(|&f| first_lead[f].is_some()).collect();
        chosen.sort_by_key(|&f| (std::cmp::Reverse(totals[f]), f));
        chosen.truncate(top);
        let mut rest: Vec<usize> = (0..names.len()).filter(|f| !chosen.contains(f)).collect();
        rest.sort_by_key(|&f| (std::cmp::Reverse(totals[f]), f));
        chosen.extend(rest.into_iter().take(top.saturating_sub(chosen.len())));
        let first_seen = |f: usize| counts[f].iter().position(|&c| c > 0).unwrap_or(buckets);
        chosen.sort_by_key(|&f| (first_lead[f].unwrap_or_else(|| first_seen(f)), std::cmp::Reverse(totals[f]), f));
        let rows = chosen.into_iter().map(|f| Row { name: names[f].to_owned(), total: totals[f], counts: std::mem::take(&mut counts[f]) }).collect();
        Timeline { start_ns, end_ns, rows, bucket_totals, outside }
    }

    pub fn buckets(&self) -> usize {
        self.bucket_totals.len()
    }

    /// Samples inside the span.
    pub fn total(&self) -> usize {
        self.bucket_totals.iter().sum()
    }

    /// Per bucket, the samples of functions without a row.
    pub fn other(&self) -> Vec<usize> {
        (0..self.buckets()).map(|b| self.bucket_totals[b] - self.rows.iter().map(|r| r.counts[b]).sum::<usize>()).collect()
    }
}

/// The `k` functions with the most samples in `[start_ns, end_ns)`, busiest first, and the
/// number of samples there.
pub fn top_between(samples: &[NamedSample], start_ns: u64, end_ns: u64, k: usize) -> (Vec<(String, usize)>, usize) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    let mut n = 0;
    for (_, name) in samples.iter().filter(|(ts, _)| (start_ns..end_ns).contains(ts)) {
        *counts.entry(name).or_default() += 1;
        n += 1;
    }
    let mut top: Vec<(String, usize)> = counts.into_iter().map(|(f, c)| (f.to_owned(), c)).collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    top.truncate(k);
    (top, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(spec: &[(u64, &str)]) -> Vec<NamedSample> {
        spec.iter().map(|&(t, f)| (t, f.to_owned())).collect()
    }

    #[test]
    fn buckets_sum_to_the_samples_inside_the_span() {
        let s = samples(&[(0, "a"), (5, "a"), (12, "b"), (19, "c"), (25, "b"), (39, "a"), (40, "end"), (100, "late")]);
        let t = Timeline::build(&s, (0.0, 40.0), 4, 2);
        assert_eq!(t.bucket_totals, [2, 2, 1, 1]);
        assert_eq!(t.total(), 6);
        assert_eq!(t.outside, 2, "the span ends before 40 ns");
        // a leads buckets 0 and 3, b buckets 1 and 2 (its tie with c goes to the busier b).
        let names: Vec<&str> = t.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(t.rows[0].counts, [2, 0, 0, 1]);
        assert_eq!(t.rows[1].counts, [0, 1, 1, 0]);
        assert_eq!(t.other(), [0, 1, 0, 0]);
        for b in 0..4 {
            assert_eq!(t.rows.iter().map(|r| r.counts[b]).sum::<usize>() + t.other()[b], t.bucket_totals[b]);
        }
    }

    #[test]
    fn rows_follow_the_order_functions_lead() {
        let s = samples(&[(1, "late"), (2, "early"), (3, "early"), (30, "late"), (31, "late")]);
        let t = Timeline::build(&s, (0.0, 40.0), 2, 5);
        let names: Vec<&str> = t.rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["early", "late"]);
    }

    #[test]
    fn top_between_counts_only_the_span() {
        let s = samples(&[(0, "a"), (10, "b"), (11, "b"), (12, "a"), (20, "b")]);
        assert_eq!(top_between(&s, 10, 20, 5), (vec![("b".to_owned(), 2), ("a".to_owned(), 1)], 3));
        assert_eq!(top_between(&s, 50, 60, 5), (vec![], 0));
    }
}
