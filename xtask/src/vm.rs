//! (being written)

#[derive(clap::Args, Default)]
pub struct Options {}

pub fn run(_opts: Options) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
