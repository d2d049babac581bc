//! Generated files: the release.yml JSON Schema and the config reference page.
//!
//! The content comes from `slot-release-config`, so the crate's own test and this task agree on
//! what "up to date" means.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Report stale files and fail instead of writing them.
    #[arg(long)]
    check: bool,
}

/// The workspace root: xtask lives in `crates/xtask`.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let root = workspace_root();
    let files = [
        (
            root.join("docs/release.schema.json"),
            slot_release_config::json_schema_string(),
        ),
        (
            root.join("docs/config-reference.md"),
            slot_release_config::reference_markdown(),
        ),
    ];
    let mut stale = Vec::new();
    for (path, wanted) in &files {
        let current = std::fs::read_to_string(path).unwrap_or_default();
        if &current == wanted {
            println!("up to date: {}", path.display());
            continue;
        }
        if args.check {
            stale.push(path.display().to_string());
        } else {
            std::fs::write(path, wanted).with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    if !stale.is_empty() {
        anyhow::bail!(
            "stale generated files (run `cargo xtask codegen`): {}",
            stale.join(", ")
        );
    }
    Ok(())
}
