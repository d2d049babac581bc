//! Build once, deploy many: the build record written beside a package, and the package a deploying stage uses.
//!
//! `build` writes the package and a build record ([`BUILD_RECORD_FILE`]: release, package SHA-256, the config's
//! SHA-256, source commit, pipeline run) into a folder the pipeline publishes as an artifact. A deploying stage
//! is given that package (`--package`, with the wildcards AzureWebApp@1 accepts), or a zip or folder made by
//! another tool, and [`prepare`] resolves, validates and verifies it against its build record before the stage
//! changes anything: a package that is not what the build made, or a config that changed since, is refused
//! while nothing has been written to Azure. Only when no package is given is one built, and the log says so.
//! Building, zipping, hashing and copying are blocking work: [`prepare_in_background`] runs them on tokio's
//! blocking pool, and a cancel stops them between files or chunks, removing what they had written.
//! See `docs/packaging.md` and `docs/story-multi-stage.md`.

mod checks;
mod prepare;
mod record;
mod resolve;

pub use checks::{check_package_root, sources_dir};
pub use prepare::{PackageSource, PrepareRequest, PreparedPackage, prepare, prepare_in_background};
pub use record::{
    BuildContext, BuildRecord, config_digest, read_build_record, sha256_file, verify,
    write_build_record,
};
pub use resolve::resolve_pattern;

use std::io;
use std::path::PathBuf;

use crate::package::{PackageError, Sha256Hex};

/// The build record's file name, in the output folder beside the package.
pub const BUILD_RECORD_FILE: &str = "slot-release-build.json";

/// The build record format written by this version; a reader refuses a newer one.
pub const BUILD_RECORD_VERSION: u32 = 1;

/// The name of a folder package zipped to be deployed (not recorded), beside the work folder's `package.zip`.
pub const FOLDER_ARCHIVE: &str = "folder-package.zip";

/// Errors from resolving, validating, building or verifying a package. Each names the path or pattern it is
/// about and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    #[error(
        "package {pattern:?}: nothing matches (searched {searched}); check the path, and that the build's artifact was downloaded (DownloadPipelineArtifact@2) before this step"
    )]
    NoMatch { pattern: String, searched: PathBuf },
    #[error(
        "package {pattern:?} matches {count} files or folders, but exactly one is needed: {matches}; narrow the pattern (for example drop/*.zip)"
    )]
    AmbiguousMatch {
        pattern: String,
        count: usize,
        matches: String,
    },
    #[error("package {pattern:?} is not a valid wildcard pattern: {source}")]
    InvalidPattern {
        pattern: String,
        #[source]
        source: globset::Error,
    },
    #[error("cannot search {dir} for the package: {source}")]
    Search {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("package {path} cannot be read: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "package {path} is not a readable zip ({source}); pass the .zip the build produced, or a folder to deploy"
    )]
    NotAZip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("package {path} is a zip with no files in it; pass the package the build produced")]
    EmptyZip { path: PathBuf },
    #[error(
        "package {path}: the entry {entry:?} would be extracted outside the site folder; rebuild the zip with relative paths"
    )]
    UnsafeZipEntry { path: PathBuf, entry: String },
    #[error("package folder {path} is empty; check that the build wrote its output there")]
    EmptyFolder { path: PathBuf },
    #[error("package {path} is neither a zip file nor a folder")]
    NotFileOrFolder { path: PathBuf },
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error("build record {path} cannot be read: {source}")]
    RecordUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "build record {path} is not a Slot Release build record ({reason}); pass the {BUILD_RECORD_FILE} that `build` wrote"
    )]
    RecordInvalid { path: PathBuf, reason: String },
    #[error(
        "build record {path} has format version {version}, newer than this task reads ({BUILD_RECORD_VERSION}); use the same or a newer version of the task in every stage"
    )]
    RecordTooNew { path: PathBuf, version: u32 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "package {} has SHA-256 {}, but its build record {} says {} (for {}): the package changed after the build, or the record belongs to another package. Deploy the artifact the build published, unchanged, or run `build` again",
        .0.subject.display(), .0.actual, .0.record.display(), .0.expected, .0.detail
    )]
    PackageDigestMismatch(Box<DigestMismatch>),
    #[error(
        "the config {} changed since the package was built: the build record {} was made with a config of SHA-256 {} (commit {}), this run's has SHA-256 {}. Check out the commit the build used in this stage, or build the package again from this config",
        .0.subject.display(), .0.record.display(), .0.expected, .0.detail, .0.actual
    )]
    ConfigDigestMismatch(Box<DigestMismatch>),
    #[error("the config {path} cannot be read to compute its SHA-256: {source}")]
    ConfigUnreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("package root {root} does not exist ({source}); check `package.root` in the config")]
    RootMissing {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("package root {root} is not a folder; `package.root` names the folder to package")]
    RootNotAFolder { root: PathBuf },
    #[error(
        "package root {root} resolves to {resolved}, outside the sources {sources}; `package.root` must name a folder of the checked-out sources"
    )]
    RootOutsideSources {
        root: PathBuf,
        resolved: PathBuf,
        sources: PathBuf,
    },
    #[error(
        "package root {root} is empty; check `package.root`, or that the step producing it ran before this one"
    )]
    RootEmpty { root: PathBuf },
    #[error("preparing the package was cancelled; what it had written was removed")]
    Cancelled,
}

/// A digest that differs from the build record's (boxed: errors stay small on the happy path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestMismatch {
    /// The package or the config.
    pub subject: PathBuf,
    /// The build record.
    pub record: PathBuf,
    /// The record's package name (package mismatch) or source commit (config mismatch).
    pub detail: String,
    /// What the record says.
    pub expected: Sha256Hex,
    /// What was found.
    pub actual: Sha256Hex,
}
