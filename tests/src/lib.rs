//! Test harness shared by the end-to-end tests: runs the task the way the Azure Pipelines agent does
//! (`node index.js` from a staged task folder, with the agent's environment, output parsed by the
//! agent's rules, the agent's exit-code and cancellation rules) and searches everything the task left
//! behind for leaked secrets.
//!
//! Run with `cargo test -p slot-release-tests`. The binary is `target/debug/slot-release`, brought up to
//! date with `cargo build -p slot-release` once per test process, or `SLOT_RELEASE_BIN`; `node` is taken
//! from `PATH` or `NODE`.

pub mod agent;
pub mod leak;
pub mod matrix;
pub mod paths;
pub mod pipeline;
pub mod world;

pub use agent::{AgentOutcome, AgentResult, AgentRun, RunningTask};
pub use leak::{Leak, LeakDetector};
pub use world::World;
