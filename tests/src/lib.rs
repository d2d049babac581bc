//! Test harness shared by the end-to-end tests: runs the task the way the Azure Pipelines agent does
//! (`node index.js` with the agent's environment, output parsed by the agent's rules, the agent's
//! exit-code and cancellation rules) and searches everything the task left behind for leaked secrets.

pub mod agent;
pub mod leak;
pub mod paths;
pub mod world;

pub use agent::{AgentOutcome, AgentResult, AgentRun, RunningTask};
pub use leak::{Leak, LeakDetector};
pub use world::World;
