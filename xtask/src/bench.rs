//! (being written)

#[derive(clap::Args)]
pub struct Options {}

pub fn run(_opts: Options) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
