//! What to package and how: the package spec, the build's identity, and the validated build options.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;
use zip::DateTime;

use super::PackageError;

/// What to package: a root folder, with ignore files and exclude globs applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    /// The package root; entry names are relative to it.
    pub root: PathBuf,
    /// Gitignore-style globs (relative to the root) of paths left out, e.g. `tests/**` or `*.map`.
    pub exclude: Vec<String>,
    /// Names of ignore files honoured in every folder of the tree (gitignore syntax), also outside a git
    /// repository. The user's global git excludes are never read, so the result does not depend on the machine.
    pub ignore_files: Vec<String>,
    /// Whether dot-files and dot-folders are packaged (`.git` never is).
    pub include_hidden: bool,
}

impl PackageSpec {
    /// A spec for `root` with the default ignore files (`.gitignore`, `.deployignore`), no exclude globs and
    /// hidden files included (apps often need `.env.example`, `.well-known/`, ...).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            exclude: Vec::new(),
            ignore_files: vec![".gitignore".to_owned(), ".deployignore".to_owned()],
            include_hidden: true,
        }
    }
}

/// Identity of the build, recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// The release version (e.g. `1.4.2` or `20261122.3`).
    pub version: String,
    /// Source commit, when known.
    pub commit: Option<String>,
    /// The pipeline run that built it (e.g. `Build.BuildId`), or a local id.
    pub build_id: String,
    /// Where the package came from, in words the user recognises (repository and branch, or a description);
    /// never an absolute local path, which would make packages differ between machines.
    pub created_from: String,
}

/// The timestamp stored on every entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EntryTimestamp {
    /// 1980-01-01 00:00:00, the earliest time a zip can hold.
    #[default]
    DosEpoch,
    /// A fixed Unix time (the `SOURCE_DATE_EPOCH` convention), clamped to the zip range 1980..=2107.
    Unix(i64),
}

impl EntryTimestamp {
    /// `SOURCE_DATE_EPOCH` from the environment when it is set and valid, the DOS epoch otherwise.
    pub fn from_env() -> Self {
        std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map_or(Self::DosEpoch, Self::Unix)
    }

    pub(super) fn to_zip(self) -> DateTime {
        match self {
            Self::DosEpoch => DateTime::default(),
            Self::Unix(secs) => {
                // 1980-01-01 and 2107-12-31 23:59:58 bound what the DOS date format can hold.
                let clamped = secs.clamp(315_532_800, 4_354_819_198);
                time::OffsetDateTime::from_unix_timestamp(clamped)
                    .ok()
                    .map(|t| time::PrimitiveDateTime::new(t.date(), t.time()))
                    .and_then(|t| DateTime::try_from(t).ok())
                    .unwrap_or_default()
            }
        }
    }
}

/// Deflate level, 0 (store-speed) to 9 (smallest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionLevel(u8);

impl CompressionLevel {
    /// Validates a level in `0..=9`.
    pub fn new(level: u8) -> Result<Self, PackageError> {
        if level <= 9 {
            Ok(Self(level))
        } else {
            Err(PackageError::InvalidOption {
                reason: format!("compression level {level} is outside 0..=9"),
            })
        }
    }

    /// The level as a number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for CompressionLevel {
    fn default() -> Self {
        Self(6)
    }
}

/// The archive's file name: a plain name ending in `.zip`, no folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName(String);

impl ArchiveName {
    /// Validates a file name such as `webapp-1.4.2.zip`.
    pub fn new(name: &str) -> Result<Self, PackageError> {
        let ok_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
        if name.len() > 4 && name.ends_with(".zip") && ok_chars && !name.starts_with('.') {
            Ok(Self(name.to_owned()))
        } else {
            Err(PackageError::InvalidOption {
                reason: format!(
                    "archive name {name:?} must end in .zip and use only letters, digits, '.', '_', '-', '+'"
                ),
            })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ArchiveName {
    fn default() -> Self {
        Self("package.zip".to_owned())
    }
}

impl fmt::Display for ArchiveName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How to build: output name, compression, parallelism and memory bounds.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// File name of the archive in the output directory; `<name>.sha256` is written beside it.
    pub archive_name: ArchiveName,
    /// Deflate level.
    pub compression_level: CompressionLevel,
    /// Timestamp stored on every entry.
    pub timestamp: EntryTimestamp,
    /// Compression threads; `None` uses the available parallelism.
    pub threads: Option<std::num::NonZeroUsize>,
    /// Files larger than this are cut into chunks of this size, compressed in parallel and joined into one
    /// deflate stream; smaller files are compressed whole, in batches. Like the level, it changes the
    /// archive's bytes (never its contents), and the thread count does not. 64 KiB to 16 MiB.
    pub chunk_bytes: usize,
    /// Upper bound on the buffer bytes in flight between the compressing threads and the writer, shared by
    /// all threads; raised to what lets every thread work on a chunk while the writer holds one per thread.
    pub window_bytes: u64,
    /// Where progress goes (`task.setprogress` in a pipeline, a bar on a terminal), in 5 % steps.
    pub progress: Option<Log>,
    /// Stops the build between files (and between the chunks of a streamed file) with
    /// [`PackageError::Cancelled`]; the partial archive is removed.
    pub cancel: CancellationToken,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            archive_name: ArchiveName::default(),
            compression_level: CompressionLevel::default(),
            timestamp: EntryTimestamp::default(),
            threads: None,
            chunk_bytes: 512 * 1024,
            window_bytes: 8 * 1024 * 1024,
            progress: None,
            cancel: CancellationToken::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_timestamp_is_clamped_to_the_zip_range() {
        assert_eq!(EntryTimestamp::Unix(0).to_zip(), DateTime::default());
        let t = EntryTimestamp::Unix(1_700_000_000).to_zip();
        assert_eq!((t.year(), t.month(), t.day()), (2023, 11, 14));
    }
}
