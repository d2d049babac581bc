//! The crate's error type for fallible operations outside loading (which reports `Diagnostics`).

use std::path::PathBuf;

/// What can go wrong when building a validated value or looking something up in a loaded config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A name (slot, vault, secret, setting, hook, environment) broke its naming rules.
    #[error("invalid {kind} `{value}`: {reason}")]
    InvalidName {
        /// Which kind of name, e.g. "slot name".
        kind: &'static str,
        /// The rejected text.
        value: String,
        /// The rule it broke.
        reason: String,
    },
    /// A duration string such as `30s` could not be parsed.
    #[error("invalid duration `{value}`: {reason}")]
    InvalidDuration {
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A `$(...)` reference is malformed.
    #[error("invalid variable reference in `{text}`: {reason}")]
    InvalidReference {
        /// The text that holds the reference.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `$(...)` reference names a variable the variable source does not know.
    #[error("unknown variable `{name}`")]
    UnknownVariable {
        /// The variable name as written inside `$(...)`.
        name: String,
    },
    /// A stage or lookup names an environment that the config does not define.
    #[error("unknown environment `{name}`")]
    UnknownEnvironment {
        /// The environment name that was asked for.
        name: String,
    },
    /// The config file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
}
