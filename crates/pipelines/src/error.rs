//! The error type of the agent-contract crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading the agent's inputs or writing logging commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A required task input (`INPUT_<NAME>`) is missing or empty.
    #[error("the task input `{name}` is required but was not set (environment variable {env_var})")]
    MissingInput { name: String, env_var: String },
    /// A boolean task input is neither `true` nor `false`.
    #[error("the task input `{name}` must be `true` or `false`, not `{value}`")]
    InvalidBoolean { name: String, value: String },
    /// A numeric task input does not parse.
    #[error("the task input `{name}` must be a whole number, not `{value}`")]
    InvalidNumber { name: String, value: String },
    /// The service connection named by an input has no `ENDPOINT_*` variables.
    #[error("the service connection `{id}` (input `{input}`) is not available to this step")]
    MissingEndpoint { input: String, id: String },
    /// A variable name the agent would reject.
    #[error("`{name}` is not a valid pipeline variable name: {reason}")]
    InvalidVariableName { name: String, reason: &'static str },
    /// The agent rejects secret variables that span several lines (`MultilineSecret`).
    #[error("the secret variable `{name}` has several lines, which the agent rejects")]
    MultilineSecret { name: String },
    /// The run summary could not be written.
    #[error("cannot write the run summary to {path}")]
    WriteSummary {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file the task writes (a plan, the release record) could not be written.
    #[error("cannot write {what} to {path}")]
    WriteFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
