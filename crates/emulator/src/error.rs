//! The one error type of the emulator library, with enough context to say what failed and where.

use std::path::PathBuf;

/// Everything that can go wrong while starting, seeding or serving the emulator.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A seed file could not be read.
    #[error("cannot read seed file {path}")]
    SeedRead {
        /// The seed file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A seed file is not valid YAML/JSON for the seed model.
    #[error("seed file {path} is invalid: {message}")]
    SeedParse {
        /// The seed file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The seed is well-formed but inconsistent (duplicate app, unknown client, ...).
    #[error("seed is inconsistent: {0}")]
    SeedInvalid(String),
    /// A file or directory in the work directory could not be written.
    #[error("cannot write {path}")]
    WorkDir {
        /// The path being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The CA or server certificate could not be generated.
    #[error("cannot generate the emulator certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS server configuration was rejected.
    #[error("invalid TLS configuration")]
    Tls(#[from] rustls::Error),
    /// The loopback listener could not be bound.
    #[error("cannot listen on 127.0.0.1")]
    Bind(#[source] std::io::Error),
    /// The internal HTTP client (proxy, warm-up) could not be built.
    #[error("cannot build the internal HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// Waiting for a shutdown signal failed.
    #[error("cannot wait for a shutdown signal")]
    Signal(#[source] std::io::Error),
}
