//! The rehearsal's error type: its own failures (the embedded emulator, the previous release it prepares)
//! and the engine's, kept as the source so the binary reports the whole chain.

use std::path::PathBuf;

use slot_release_emulator::EmulatorError;

/// Why a rehearsal could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Unknown `--fail-at` value.
    #[error("unknown failure `{value}` (expected none, health, migration, watch or canary)")]
    UnknownFailAt {
        /// The value given.
        value: String,
    },
    /// The embedded emulator did not start.
    #[error("the emulator did not start")]
    Emulator {
        /// Why.
        #[from]
        source: EmulatorError,
    },
    /// The previous release could not be prepared for a rehearsal.
    #[error("cannot prepare the previous release in {}", path.display())]
    PreparePrevious {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Connecting to the embedded emulator failed.
    #[error("cannot connect to the emulator")]
    EmulatorConnection {
        /// Why (a port error).
        source: Box<slot_release_engine::error::Error>,
    },
    /// The engine failed (building the package, a stage); boxed, as the engine's error is large.
    #[error(transparent)]
    Engine(Box<slot_release_engine::error::Error>),
}

impl From<slot_release_engine::error::Error> for Error {
    fn from(source: slot_release_engine::error::Error) -> Self {
        Error::Engine(Box::new(source))
    }
}
