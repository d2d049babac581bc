//! The end-to-end harness, the one place a test world is built: the emulator seeded with an example's
//! app ([`World::builder`]: the sample subscription, or the app as its previous release left it), a copy of
//! the example as the sources, the real binary run the way the Azure Pipelines agent runs the task
//! (`node index.js` from a staged task folder, with the agent's environment, output parsed by the agent's
//! rules, the agent's exit-code and cancellation rules) or directly as a script step would
//! ([`World::cli`]), the emulator's state read back, production probed throughout ([`prober`]), and
//! everything the task left behind searched for leaked secrets ([`leak`]). Python apps get their packages
//! offline from a local wheelhouse ([`wheelhouse`]).
//!
//! Run with `cargo test -p slot-release-tests`. The binary is `target/debug/slot-release`, brought up to
//! date with `cargo build -p slot-release` once per test process, or `SLOT_RELEASE_BIN`; `node` is taken
//! from `PATH` or `NODE`.

pub mod agent;
pub mod cli;
pub mod example;
pub mod leak;
pub mod matrix;
pub mod paths;
pub mod pipeline;
pub mod prober;
pub mod wheelhouse;
pub mod world;

pub use agent::{AgentOutcome, AgentResult, AgentRun, RunningTask};
pub use cli::{printed, stdout};
pub use example::Example;
pub use leak::{Leak, LeakDetector};
pub use prober::Prober;
pub use world::{Baseline, World};
