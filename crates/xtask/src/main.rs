//! Developer tasks for Slot Release: `cargo xtask <task>`.

mod bench;
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
    /// Run the benchmark suite and write docs/performance.md and docs/performance.json.
    Bench(bench::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().task {
        Task::Codegen(args) => schema::run(args),
        Task::Dist(args) => dist::run(args),
        Task::Bench(args) => bench::run(args),
    }
}
