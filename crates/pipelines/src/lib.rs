//! The Azure Pipelines agent contract for Slot Release: task inputs and agent variables, the `##vso[`
//! logging commands with the agent's escaping, secret masking, neutralising of untrusted text, and the
//! markdown run summary.
//!
//! This is the only crate in the project that writes `##vso[`: everything else logs through [`Log`], so
//! escaping and masking happen in one place.

pub mod agent;
mod env;
mod error;
mod escape;
mod log;
mod mask;
mod outputs;
mod summary;

pub use env::{AgentEnv, BuildReason, BuildRun, Endpoint, PullRequest, Secret, TaskInputs};
pub use error::Error;
pub use escape::{escape_data, escape_property, neutralise, unescape};
pub use log::{GroupGuard, Held, Issue, IssueKind, Log, OutputMode, TaskResult, VariableOptions};
pub use mask::MIN_ENCODED_LEN;
pub use outputs::{PlanOutputs, StageOutputs};
pub use summary::Summary;
