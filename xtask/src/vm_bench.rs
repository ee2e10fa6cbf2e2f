//! `cargo xtask vm-bench`: what recording costs, measured in the VM in one boot: the
//! workload's work rate alone and while recorded (its slowdown), and the collector's CPU per
//! 1 k region events and per 1 k stack samples, at default rates and at stress rates.
//! Everything runs under QEMU's software emulation, which inflates CPU times alike for the
//! workload and the collector; the ratios are what carry over.

use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::vm;

/// One recording's summary line, parsed.
#[derive(Debug, Default)]
struct Summary {
    seconds: f64,
    regions: f64,
    samples: f64,
    lost: f64,
    cpu: f64,
}

pub fn run() -> Result<()> {
    let prepared = vm::prepare()?;
    let boot = vm::boot(&prepared.kernel, &prepared.initramfs, "bench", Duration::from_secs(900))?;
    if boot.results.iter().any(|(_, ok)| !ok) {
        bail!("a benchmark run failed in the VM; see its console above");
    }
    // Each run's output is between the previous check line and its own.
    let mut runs: Vec<(String, Vec<&str>)> = Vec::new();
    let mut lines = Vec::new();
    for line in &boot.console {
        if let Some(name) = line.trim().strip_prefix("DAMO-TEST PASS ") {
            runs.push((name.to_owned(), std::mem::take(&mut lines)));
        } else {
            lines.push(line.as_str());
        }
    }
    let iterations = |name: &str| -> Result<f64> {
        let (_, out) = runs.iter().find(|(n, _)| n == name).with_context(|| format!("no {name} run"))?;
        out.iter().find_map(|l| l.split("known iterations ").nth(1)?.trim().parse().ok()).with_context(|| format!("{name}: no iteration count"))
    };
    let summary = |name: &str| -> Result<Summary> {
        let (_, out) = runs.iter().find(|(n, _)| n == name).with_context(|| format!("no {name} run"))?;
        let line = out.iter().find(|l| l.contains("recorded ")).with_context(|| format!("{name}: no summary"))?;
        parse_summary(line).with_context(|| format!("{name}: cannot read {line:?}"))
    };
    let alone = iterations("bench-alone")?;
    println!("\nvm-bench (QEMU TCG, 2 vCPUs; 10 s of the `known` workload each):");
    for (name, what) in [
        ("bench-default", "default rates: 5 ms / 100 ms DAMON, 99 Hz stacks"),
        ("bench-regions", "region stress: 1 ms / 10 ms DAMON, 500-1000 regions, no stacks"),
        ("bench-samples", "sample stress: 999 Hz stacks on every CPU, no DAMON"),
        ("bench-default-noproc", "default rates without the /proc samples (--do_record access cpu_profile)"),
        ("bench-regions-noproc", "region stress without the /proc samples (--do_record access)"),
    ] {
        let s = summary(name)?;
        let slowdown = (1.0 - iterations(name)? / alone) * 100.0;
        println!("  {what}");
        println!(
            "    {:.0} region events/s, {:.0} samples/s, {} lost; collector CPU {:.2}% of a core; workload slowdown {slowdown:.1}%",
            s.regions / s.seconds,
            s.samples / s.seconds,
            s.lost,
            s.cpu * 100.0 / s.seconds
        );
        if s.regions > 0.0 && name.starts_with("bench-regions") {
            println!("    {:.3} ms of collector CPU per 1 k region events", s.cpu * 1e6 / s.regions);
        }
        if s.samples > 0.0 && name == "bench-samples" {
            println!("    {:.3} ms of collector CPU per 1 k stack samples", s.cpu * 1e6 / s.samples);
        }
    }
    let kdamond = (1.0 - iterations("bench-kdamond")? / alone) * 100.0;
    println!("  DAMON alone at the stress rates (damo-trace start, nothing recorded): workload slowdown {kdamond:.1}%");
    Ok(())
}

/// "recorded 10.0s: 95 snapshots, 1236 regions, 991 stack samples, 0 lost; collector CPU 0.123s (1.23% of a core)"
fn parse_summary(line: &str) -> Option<Summary> {
    let rest = line.split("recorded ").nth(1)?;
    let number_before = |word: &str| -> Option<f64> {
        let i = rest.find(word)?;
        rest[..i].split([' ', ':', ',', ';']).rfind(|t| !t.is_empty())?.trim_end_matches('s').parse().ok()
    };
    Some(Summary {
        seconds: rest.split('s').next()?.parse().ok()?,
        regions: number_before(" regions")?,
        samples: number_before(" stack samples")?,
        lost: number_before(" lost")?,
        cpu: number_before(" (")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_summary_line() {
        let s = parse_summary("  | recorded 10.0s: 95 snapshots, 1236 regions, 991 stack samples, 2 lost; collector CPU 0.123s (1.23% of a core) while recording, damo-trace CPU 0.456s in all (setup and finishing included) -> /tmp/b0.dtr").unwrap();
        assert_eq!((s.seconds, s.regions, s.samples, s.lost, s.cpu), (10.0, 1236.0, 991.0, 2.0, 0.123));
    }
}
