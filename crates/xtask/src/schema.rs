//! Generated files: the release.yml JSON Schema and the config reference page.

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("codegen is not written yet")
}
