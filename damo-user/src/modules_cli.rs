//! `module`, `reclaim` and `lru_sort`: the DAMON kernel modules, with damo 3.4.3's commands
//! and option names. damo takes plain integers in each parameter's unit; damo-trace also
//! takes damo's unit texts (`--min_age 2m`, `--quota 10ms 128M 1s`), a bare number keeping
//! damo's meaning. The work is [`damo_sysfs::modules`]'s.

use std::io::Write;

use anyhow::{bail, Context as _, Result};
use damo_record::units::{self, TimeUnit};
use damo_sysfs::modules::{status_params, Modules};

use crate::privilege::Privileges;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Print the module's parameters (read-only).
    Status,
    /// Write the given parameters and (re)start the module's kdamond.
    Enable,
    /// Write the given parameters and stop the module's kdamond.
    Disable,
    /// Write the given parameters and apply them to the running module (commit_inputs).
    Commit,
}

/// Options DAMON_RECLAIM and DAMON_LRU_SORT share.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Watermarks: check interval (µs), then high, middle and low free-memory rates (permil).
    #[arg(long, num_args = 4, value_names = ["US", "HIGH", "MID", "LOW"])]
    pub wmarks: Vec<String>,
    /// DAMON's sampling and aggregation intervals (µs).
    #[arg(long = "monitor_intervals", num_args = 2, value_names = ["SAMPLE_US", "AGGR_US"])]
    pub monitor_intervals: Vec<String>,
    /// Minimum and maximum number of DAMON regions.
    #[arg(long = "nr_regions", num_args = 2, value_names = ["MIN", "MAX"])]
    pub nr_regions: Vec<String>,
    /// Start and end physical addresses of the monitored region (default: the biggest System
    /// RAM block).
    #[arg(long = "monitor_region", num_args = 2, value_names = ["START", "END"])]
    pub monitor_region: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ReclaimArgs {
    #[arg(value_enum, default_value = "status")]
    pub action: Action,
    /// How long a region stays unaccessed before it is reclaimed (µs).
    #[arg(long = "min_age", value_name = "US")]
    pub min_age: Option<String>,
    /// Time quota (ms), size quota (bytes) and quota reset interval (ms).
    #[arg(long, num_args = 3, value_names = ["MS", "BYTES", "RESET_MS"])]
    pub quota: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Reclaim no anonymous pages. As in damo, leaving it out writes N.
    #[arg(long = "skip_anon")]
    pub skip_anon: bool,
}

#[derive(Debug, clap::Args)]
pub struct LruSortArgs {
    #[arg(value_enum, default_value = "status")]
    pub action: Action,
    /// Access frequency from which a region is hot (permil).
    #[arg(long = "hot_thres_access_freq", value_name = "PERMIL")]
    pub hot_thres_access_freq: Option<String>,
    /// How long a region stays unaccessed before it is cold (µs).
    #[arg(long = "cold_min_age", value_name = "US")]
    pub cold_min_age: Option<String>,
    /// Time quota and quota reset interval (ms).
    #[arg(long, num_args = 2, value_names = ["MS", "RESET_MS"])]
    pub quota: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Debug, clap::Args)]
pub struct ModuleArgs {
    /// The module: reclaim, lru_sort, stat, or any damon_<name> module the kernel has.
    #[arg(value_name = "MODULE")]
    pub module_name: String,
    #[command(subcommand)]
    pub action: ModuleAction,
}

#[derive(Debug, clap::Subcommand)]
pub enum ModuleAction {
    /// Print parameters ("name: value"; only the value when one is named).
    Read {
        /// The parameters to read (default: all).
        parameters: Vec<String>,
    },
    /// Write parameters: pairs of a name and its value (root).
    Write {
        #[arg(required = true, num_args = 2.., value_names = ["PARAMETER", "VALUE"])]
        parameter_value: Vec<String>,
    },
}

/// A parameter's value as the kernel takes it, from damo's texts.
#[derive(Clone, Copy)]
enum Unit {
    Us,
    Ms,
    Bytes,
    Count,
}

fn convert(text: &str, unit: Unit, option: &str) -> Result<String> {
    let time = |bare: TimeUnit, per_ns: u64| units::parse_time(text, bare).map(|ns| if ns == u64::MAX { ns } else { ns / per_ns });
    let value = match unit {
        Unit::Us => time(TimeUnit::Us, 1_000),
        Unit::Ms => time(TimeUnit::Ms, 1_000_000),
        Unit::Bytes => units::parse_bytes(text),
        Unit::Count => units::parse_count(text),
    };
    Ok(value.with_context(|| format!("bad {option}"))?.to_string())
}

/// The writes of the given options, in damo's order.
fn writes(fields: &[(&'static str, Option<&String>, Unit, &str)]) -> Result<Vec<(&'static str, String)>> {
    fields.iter().filter_map(|&(param, text, unit, option)| text.map(|t| convert(t, unit, option).map(|v| (param, v)))).collect()
}

impl CommonArgs {
    fn fields(&self) -> Vec<(&'static str, Option<&String>, Unit, &'static str)> {
        let w = |i| self.wmarks.get(i);
        let i = |i| self.monitor_intervals.get(i);
        vec![
            ("wmarks_interval", w(0), Unit::Us, "--wmarks interval"),
            ("wmarks_high", w(1), Unit::Count, "--wmarks high"),
            ("wmarks_mid", w(2), Unit::Count, "--wmarks mid"),
            ("wmarks_low", w(3), Unit::Count, "--wmarks low"),
            ("sample_interval", i(0), Unit::Us, "--monitor_intervals sample"),
            ("aggr_interval", i(1), Unit::Us, "--monitor_intervals aggr"),
            ("min_nr_regions", self.nr_regions.first(), Unit::Count, "--nr_regions min"),
            ("max_nr_regions", self.nr_regions.get(1), Unit::Count, "--nr_regions max"),
            ("monitor_region_start", self.monitor_region.first(), Unit::Bytes, "--monitor_region start"),
            ("monitor_region_end", self.monitor_region.get(1), Unit::Bytes, "--monitor_region end"),
        ]
    }
}

pub fn reclaim(args: ReclaimArgs, out: &mut dyn Write) -> Result<()> {
    control(&Modules::system(), "reclaim", args.action, &reclaim_writes(&args)?, out)
}

fn reclaim_writes(args: &ReclaimArgs) -> Result<Vec<(&'static str, String)>> {
    let mut fields = vec![
        ("min_age", args.min_age.as_ref(), Unit::Us, "--min_age"),
        ("quota_ms", args.quota.first(), Unit::Ms, "--quota time"),
        ("quota_sz", args.quota.get(1), Unit::Bytes, "--quota size"),
        ("quota_reset_interval_ms", args.quota.get(2), Unit::Ms, "--quota reset interval"),
    ];
    fields.extend(args.common.fields());
    let mut params = writes(&fields)?;
    params.push(("skip_anon", if args.skip_anon { "Y" } else { "N" }.to_owned()));
    Ok(params)
}

pub fn lru_sort(args: LruSortArgs, out: &mut dyn Write) -> Result<()> {
    let mut fields = vec![
        ("hot_thres_access_freq", args.hot_thres_access_freq.as_ref(), Unit::Count, "--hot_thres_access_freq"),
        ("cold_min_age", args.cold_min_age.as_ref(), Unit::Us, "--cold_min_age"),
        ("quota_ms", args.quota.first(), Unit::Ms, "--quota time"),
        ("quota_reset_interval_ms", args.quota.get(1), Unit::Ms, "--quota reset interval"),
    ];
    fields.extend(args.common.fields());
    control(&Modules::system(), "lru_sort", args.action, &writes(&fields)?, out)
}

/// damo's flow: `status` reads; anything else writes the given parameters, then enables,
/// disables or commits. A parameter this kernel's module lacks is skipped with a warning
/// when it is one of the later additions damo also skips (`skip_anon` before 6.3).
fn control(modules: &Modules, name: &str, action: Action, params: &[(&str, String)], out: &mut dyn Write) -> Result<()> {
    if action == Action::Status {
        for (param, value) in modules.read_listed(name, &status_params(name))? {
            writeln!(out, "{param}: {value}")?;
        }
        return Ok(());
    }
    need_root(name)?;
    let dir = modules.existing_dir(name)?;
    for (param, value) in params {
        if *param == "skip_anon" && !dir.join(param).is_file() {
            eprintln!("warning: this kernel's damon_{name} has no {param}; skipped");
            continue;
        }
        modules.write(name, param, value)?;
    }
    let title = format!("DAMON_{}", name.to_uppercase());
    match action {
        Action::Commit => {
            modules.commit(name)?;
            writeln!(out, "{title}: committed the new parameters")?;
        }
        Action::Enable => match modules.enable(name, true)? {
            Some(pid) => writeln!(out, "{title} enabled, kdamond pid {pid}")?,
            None => writeln!(out, "{title} enabled")?,
        },
        Action::Disable => {
            modules.enable(name, false)?;
            writeln!(out, "{title} disabled")?;
        }
        Action::Status => unreachable!("handled above"),
    }
    Ok(())
}

pub fn module(args: ModuleArgs, out: &mut dyn Write) -> Result<()> {
    let modules = Modules::system();
    let name = args.module_name.strip_prefix("damon_").unwrap_or(&args.module_name);
    match args.action {
        ModuleAction::Read { parameters } if parameters.is_empty() => {
            for (param, value) in modules.read_all(name)? {
                writeln!(out, "{param}: {value}")?;
            }
        }
        ModuleAction::Read { parameters } => {
            for param in parameters {
                writeln!(out, "{}", modules.read(name, &param)?)?;
            }
        }
        ModuleAction::Write { parameter_value } => {
            if parameter_value.len() % 2 != 0 {
                bail!("write takes pairs of a parameter name and its value; {:?} has no value", parameter_value.last().unwrap_or(&String::new()));
            }
            need_root(name)?;
            for pair in parameter_value.chunks(2) {
                modules.write(name, &pair[0], &pair[1])?;
            }
        }
    }
    Ok(())
}

fn need_root(name: &str) -> Result<()> {
    if !Privileges::current().root {
        bail!("changing damon_{name} writes its kernel parameters and needs root (run it with sudo)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damo_texts_become_each_parameters_unit() {
        assert_eq!(convert("120000000", Unit::Us, "x").unwrap(), "120000000", "a bare number keeps damo's meaning");
        assert_eq!(convert("2m", Unit::Us, "x").unwrap(), "120000000");
        assert_eq!(convert("10", Unit::Ms, "x").unwrap(), "10");
        assert_eq!(convert("1s", Unit::Ms, "x").unwrap(), "1000");
        assert_eq!(convert("128M", Unit::Bytes, "x").unwrap(), "134217728");
        assert_eq!(convert("0x100000", Unit::Bytes, "x").unwrap(), "1048576");
        assert_eq!(convert("1,000", Unit::Count, "x").unwrap(), "1000");
        let e = format!("{:#}", convert("5 parsecs", Unit::Us, "--min_age").unwrap_err());
        assert!(e.starts_with("bad --min_age"), "{e}");
    }

    #[test]
    fn reclaim_options_are_written_in_damos_order() {
        let args = ReclaimArgs {
            action: Action::Enable,
            min_age: Some("5s".into()),
            quota: ["10ms", "128M", "1s"].map(String::from).to_vec(),
            common: CommonArgs { nr_regions: vec!["10".into(), "1000".into()], ..Default::default() },
            skip_anon: false,
        };
        let w = reclaim_writes(&args).unwrap();
        let expected =
            [("min_age", "5000000"), ("quota_ms", "10"), ("quota_sz", "134217728"), ("quota_reset_interval_ms", "1000"), ("min_nr_regions", "10"), ("max_nr_regions", "1000"), ("skip_anon", "N")];
        assert_eq!(w, expected.map(|(p, v)| (p, v.to_owned())));
    }

    #[test]
    fn status_of_a_fake_module_prints_damos_lines_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let params = dir.path().join("damon_reclaim/parameters");
        std::fs::create_dir_all(&params).unwrap();
        for (p, v) in [("enabled", "N"), ("kdamond_pid", "-1"), ("min_age", "120000000"), ("commit_inputs", "N")] {
            std::fs::write(params.join(p), format!("{v}\n")).unwrap();
        }
        let mut out = Vec::new();
        control(&Modules::new(dir.path()), "reclaim", Action::Status, &[("min_age", "1".into())], &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "kdamond_pid: -1\nenabled: N\nmin_age: 120000000\n");
        assert_eq!(std::fs::read_to_string(params.join("min_age")).unwrap(), "120000000\n", "status writes nothing");
    }
}
