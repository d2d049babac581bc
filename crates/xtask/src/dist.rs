//! Packaging: stage the task folder and build the .vsix with tfx-cli.

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("dist is not written yet")
}
