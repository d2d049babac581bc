//! Developer tasks for Slot Release: `cargo xtask <task>`.

mod dist;
mod schema;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "xtask", about = "Slot Release developer tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Regenerate generated files (JSON Schema, config reference) from the code.
    Codegen(schema::Args),
    /// Build the release binary, stage the task folder and build the .vsix.
    Dist(dist::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Codegen(args) => schema::run(args),
        Task::Dist(args) => dist::run(args),
    }
}
