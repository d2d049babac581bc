//! The build stage for code apps: a deterministic, parallel-compressed zip of the package root with a manifest.
//!
//! The same input tree gives a byte-identical archive: entries are sorted by path, timestamps and modes are
//! fixed, no extra fields are written, and the manifest (`.slot-release/manifest.json`, always the last entry)
//! holds no clock or machine data beyond what the caller puts in [`BuildInfo`]. Small files are compressed on
//! several threads and each is written, in order, as soon as its turn comes; one budget shared by all threads
//! bounds the bytes in flight, and files above a threshold are streamed by the writer, so memory stays
//! bounded whatever the tree holds. Entries that deflate cannot shrink (judged from small samples, then from
//! the result) are stored, as Info-ZIP does. Anything that could make the archive unsafe or not what the
//! user meant (escaping symlinks, loops, special files, non-UTF-8 names, files changing while read) is refused
//! with an error naming the path. A cancel ([`BuildOptions::cancel`]) is checked between files and between
//! the chunks of a streamed one, and leaves nothing behind. See `docs/packaging.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;
use zip::write::{PreparedZipFile, SimpleFileOptions, ZipFileBuilder};
use zip::{CompressionMethod, DateTime, System, ZipWriter};

/// Where the manifest lives inside every package.
pub const MANIFEST_PATH: &str = ".slot-release/manifest.json";

/// The manifest format written by this version.
pub const MANIFEST_FORMAT: u32 = 1;

/// Errors from building a package. Every variant names the path it is about (relative to the package root
/// where the path is inside it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    #[error("package root {root} cannot be read: {source}")]
    Root {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("package root {root} is not a directory")]
    RootNotADirectory { root: PathBuf },
    #[error(
        "package root {root} contains no files to package (after ignore files and exclude globs); check `package.root` and the exclusions"
    )]
    Empty { root: PathBuf },
    #[error(
        "output directory {out_dir} is the package root {root}; choose a directory outside it or below it"
    )]
    OutputIsRoot { out_dir: PathBuf, root: PathBuf },
    #[error("output directory {out_dir} cannot be used: {source}")]
    OutputDir {
        out_dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("exclude glob {glob:?} is not valid: {source}")]
    InvalidGlob {
        glob: String,
        #[source]
        source: ignore::Error,
    },
    #[error("invalid build option: {reason}")]
    InvalidOption { reason: String },
    #[error("{path}: the name is not valid UTF-8 ({lossy}); rename the file or exclude it")]
    NonUtf8Name { path: PathBuf, lossy: String },
    #[error("{path}: unsafe entry name ({reason}); rename the file or exclude it")]
    UnsafeName { path: String, reason: &'static str },
    #[error("{path}: this path is reserved for the package manifest; remove it or exclude it")]
    ReservedPath { path: String },
    #[error(
        "{path}: symbolic link to {target}, which is outside the package root; replace it with a copy or exclude it"
    )]
    SymlinkOutsideRoot { path: String, target: PathBuf },
    #[error("{path}: symbolic link loop; fix or exclude the link")]
    SymlinkLoop { path: String },
    #[error(
        "{path}: symbolic link to a directory ({target}); symlinked directories are not packaged, replace it with a copy or exclude it"
    )]
    SymlinkToDirectory { path: String, target: PathBuf },
    #[error("{path}: dangling symbolic link to {target}; fix or exclude it")]
    DanglingSymlink { path: String, target: PathBuf },
    #[error("{path}: {kind} cannot be packaged; exclude it")]
    SpecialFile { path: String, kind: &'static str },
    #[error("{path}: cannot be read: {source}")]
    Unreadable {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path}: the file disappeared while packaging; retry when nothing writes to the package root"
    )]
    Vanished { path: String },
    #[error(
        "{path}: the file changed size while being read ({expected} bytes expected, {actual} found); retry when nothing writes to the package root"
    )]
    ChangedWhileReading {
        path: String,
        expected: u64,
        actual: u64,
    },
    #[error("walking the package root failed at {path}: {message}")]
    Walk { path: PathBuf, message: String },
    #[error("writing the package {archive} failed: {source}")]
    Write {
        archive: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("zip error while writing {entry} into {archive}: {source}")]
    Zip {
        archive: PathBuf,
        entry: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("packaging was cancelled; the partial archive was removed")]
    Cancelled,
}

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

    fn to_zip(self) -> DateTime {
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
    /// Files larger than this are streamed sequentially instead of being compressed in memory.
    pub stream_threshold: u64,
    /// Upper bound on the input bytes in flight between the compressing threads and the writer, shared by
    /// all threads (their compressed copies are held in memory until written).
    pub window_bytes: u64,
    /// Upper bound on the number of files in flight between the compressing threads and the writer.
    pub window_files: usize,
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
            stream_threshold: 4 * 1024 * 1024,
            window_bytes: 16 * 1024 * 1024,
            window_files: 512,
            progress: None,
            cancel: CancellationToken::new(),
        }
    }
}

/// The manifest stored at [`MANIFEST_PATH`] inside the package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub format: u32,
    pub version: String,
    pub commit: Option<String>,
    pub build_id: String,
    pub created_from: String,
    pub files: Vec<ManifestFile>,
    pub total: ManifestTotal,
}

/// One packaged file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: Sha256Hex,
    /// `0644` or `0755`.
    pub mode: String,
}

/// Totals over the packaged files (the manifest itself not included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestTotal {
    pub files: u64,
    pub bytes: u64,
}

/// A SHA-256 digest as 64 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    fn from_digest(digest: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in digest {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Self(s)
    }

    /// The digest of everything fed to `hasher` (for data read in chunks).
    pub fn finish(hasher: Sha256) -> Self {
        Self::from_digest(&hasher.finalize())
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_digest(&Sha256::digest(data))
    }

    /// The hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(Self(s))
        } else {
            Err(format!("{s:?} is not a lower-case hex SHA-256"))
        }
    }
}

impl From<Sha256Hex> for String {
    fn from(h: Sha256Hex) -> String {
        h.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of [`build_package`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPackage {
    /// The archive.
    pub path: PathBuf,
    /// `<archive>.sha256`, in `sha256sum` format.
    pub sha256_path: PathBuf,
    /// SHA-256 of the archive.
    pub sha256: Sha256Hex,
    /// Size of the archive in bytes.
    pub size: u64,
    /// The manifest stored inside.
    pub manifest: Manifest,
    /// How long the build took.
    pub duration: Duration,
}

/// A validated entry name: relative, `/`-separated, no `.`/`..`, no backslashes or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EntryName(String);

impl EntryName {
    fn new(name: &str) -> Result<Self, PackageError> {
        let unsafe_name = |reason| PackageError::UnsafeName {
            path: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(unsafe_name("empty name"));
        }
        if name.starts_with('/') {
            return Err(unsafe_name("absolute path"));
        }
        // A backslash or drive colon is a separator to Windows extractors (Kudu on Windows): zip-slip there.
        if name.contains('\\') {
            return Err(unsafe_name("contains a backslash"));
        }
        if name.chars().any(char::is_control) {
            return Err(unsafe_name("contains a control character"));
        }
        for part in name.split('/') {
            match part {
                "" => return Err(unsafe_name("empty path component")),
                "." | ".." => return Err(unsafe_name("path traversal ('.' or '..' component)")),
                _ if part.len() >= 2 && part.as_bytes()[1] == b':' => {
                    return Err(unsafe_name("drive-letter component"));
                }
                _ => {}
            }
        }
        Ok(Self(name.to_owned()))
    }
}

/// How an entry's bytes are reached.
#[derive(Debug)]
struct Entry {
    name: EntryName,
    /// What to open: the file itself, or the canonical target of an in-root symlink.
    source: PathBuf,
    /// Size seen when walking; a different size at read time is an error.
    size: u64,
}

/// [`build_package`] on tokio's blocking pool, so the runtime (signals, timers, the log) runs on while a
/// big tree is packaged; [`BuildOptions::cancel`] stops it within a fraction of a second.
pub async fn build_in_background(
    spec: &PackageSpec,
    info: &BuildInfo,
    out_dir: &Path,
    opts: &BuildOptions,
) -> Result<BuiltPackage, PackageError> {
    let (spec, info, out_dir, opts) =
        (spec.clone(), info.clone(), out_dir.to_owned(), opts.clone());
    match tokio::task::spawn_blocking(move || build_package(&spec, &info, &out_dir, &opts)).await {
        Ok(built) => built,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down drops a blocking task: the run is over.
        Err(_) => Err(PackageError::Cancelled),
    }
}

/// Builds the package for `spec` into `out_dir` (created when missing). See the module docs for guarantees.
/// Blocking: see [`build_in_background`].
pub fn build_package(
    spec: &PackageSpec,
    info: &BuildInfo,
    out_dir: &Path,
    opts: &BuildOptions,
) -> Result<BuiltPackage, PackageError> {
    let started = Instant::now();
    let root = fs::canonicalize(&spec.root).map_err(|source| PackageError::Root {
        root: spec.root.clone(),
        source,
    })?;
    if !root.is_dir() {
        return Err(PackageError::RootNotADirectory {
            root: spec.root.clone(),
        });
    }
    fs::create_dir_all(out_dir).map_err(|source| PackageError::OutputDir {
        out_dir: out_dir.to_owned(),
        source,
    })?;
    let out_canon = fs::canonicalize(out_dir).map_err(|source| PackageError::OutputDir {
        out_dir: out_dir.to_owned(),
        source,
    })?;
    if out_canon == root {
        return Err(PackageError::OutputIsRoot {
            out_dir: out_dir.to_owned(),
            root: spec.root.clone(),
        });
    }
    if opts.window_files == 0 {
        return Err(PackageError::InvalidOption {
            reason: "window_files must be at least 1".to_owned(),
        });
    }

    let entries = collect_entries(spec, &root, &out_canon, &opts.cancel)?;
    if entries.is_empty() {
        return Err(PackageError::Empty {
            root: spec.root.clone(),
        });
    }

    let archive_path = out_dir.join(opts.archive_name.as_str());
    let write_err = |source| PackageError::Write {
        archive: archive_path.clone(),
        source,
    };
    // Written to a temporary file and renamed at the end, so a failed build never leaves a partial archive
    // under the final name.
    let tmp = tempfile::Builder::new()
        .prefix(".slot-release-package-")
        .suffix(".zip.part")
        .tempfile_in(out_dir)
        .map_err(write_err)?;
    let file = tmp.as_file().try_clone().map_err(write_err)?;
    let mut writer = PackageWriter {
        zip: ZipWriter::new(BufWriter::with_capacity(256 * 1024, file)),
        archive: archive_path.clone(),
        base: SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .compression_level(Some(i64::from(opts.compression_level.get())))
            .last_modified_time(opts.timestamp.to_zip())
            .system(System::Unix),
        files: Vec::with_capacity(entries.len()),
        total_bytes: entries.iter().map(|e| e.size).sum(),
        done_bytes: 0,
        last_percent: None,
        progress: opts.progress.clone(),
    };
    writer.report_progress();

    let threads = opts
        .threads
        .map(std::num::NonZeroUsize::get)
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .map(std::num::NonZeroUsize::get)
        })
        .unwrap_or(1);
    compress_and_write(&entries, &mut writer, opts, threads)?;

    // A tree of 200,000 files holds tens of MB in entries; they are done with before the manifest is built.
    drop(entries);
    let manifest = writer.finish_manifest(info)?;
    let PackageWriter { zip, archive, .. } = writer;
    let buffered = zip.finish().map_err(|source| PackageError::Zip {
        archive: archive.clone(),
        entry: "(central directory)".to_owned(),
        source,
    })?;
    let mut file = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    file.flush().map_err(write_err)?;
    file.sync_all().map_err(write_err)?;

    file.rewind().map_err(write_err)?;
    let (sha256, size) = match hash_reader(&mut file, &opts.cancel) {
        Ok(digest) => digest,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(PackageError::Cancelled),
        Err(e) => return Err(write_err(e)),
    };
    drop(file);
    make_world_readable(tmp.as_file()).map_err(write_err)?;
    tmp.persist(&archive_path).map_err(|e| write_err(e.error))?;

    let sha256_path = out_dir.join(format!("{}.sha256", opts.archive_name));
    let line = format!("{sha256}  {}\n", opts.archive_name);
    write_atomically(&sha256_path, line.as_bytes()).map_err(|source| PackageError::Write {
        archive: sha256_path.clone(),
        source,
    })?;

    Ok(BuiltPackage {
        path: archive_path,
        sha256_path,
        sha256,
        size,
        manifest,
        duration: started.elapsed(),
    })
}

/// Walks the tree with the ignore rules and validates every entry; returns entries sorted by name.
fn collect_entries(
    spec: &PackageSpec,
    root: &Path,
    out_dir: &Path,
    cancel: &CancellationToken,
) -> Result<Vec<Entry>, PackageError> {
    let mut overrides = OverrideBuilder::new(root);
    for glob in &spec.exclude {
        // Override globs whitelist unless negated; a leading '!' turns each into an exclusion.
        overrides
            .add(&format!("!{glob}"))
            .map_err(|source| PackageError::InvalidGlob {
                glob: glob.clone(),
                source,
            })?;
    }
    let overrides = overrides
        .build()
        .map_err(|source| PackageError::InvalidGlob {
            glob: spec.exclude.join(", "),
            source,
        })?;

    let mut builder = WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .hidden(!spec.include_hidden)
        .parents(false)
        .require_git(false)
        .follow_links(false)
        // Sorted so the first problem reported is the same on every machine.
        .sort_by_file_name(std::ffi::OsStr::cmp)
        .overrides(overrides);
    for name in &spec.ignore_files {
        builder.add_custom_ignore_filename(name);
    }
    let out_dir = out_dir.to_owned();
    builder.filter_entry(move |e| e.file_name() != ".git" && e.path() != out_dir);

    let mut entries = Vec::new();
    for item in builder.build() {
        if cancel.is_cancelled() {
            return Err(PackageError::Cancelled);
        }
        let dirent = item.map_err(|e| walk_error(root, &e))?;
        if dirent.depth() == 0 {
            continue;
        }
        let path = dirent.path();
        let rel = path.strip_prefix(root).unwrap_or(path);
        let Some(rel_str) = rel.to_str() else {
            return Err(PackageError::NonUtf8Name {
                path: rel.to_owned(),
                lossy: rel.to_string_lossy().into_owned(),
            });
        };
        let name_text = rel_str.replace(std::path::MAIN_SEPARATOR, "/");
        let meta = fs::symlink_metadata(path).map_err(|e| io_entry_error(&name_text, e))?;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            continue;
        }
        let name = EntryName::new(&name_text)?;
        if name.0 == MANIFEST_PATH {
            return Err(PackageError::ReservedPath { path: name.0 });
        }
        if file_type.is_file() {
            entries.push(Entry {
                name,
                source: path.to_owned(),
                size: meta.len(),
            });
        } else if file_type.is_symlink() {
            entries.push(resolve_symlink(root, path, name)?);
        } else {
            return Err(PackageError::SpecialFile {
                path: name.0,
                kind: special_kind(&meta),
            });
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Decides what an in-tree symlink becomes: links to regular files inside the root are followed (the entry
/// holds the target's bytes under the link's name); everything else is refused.
fn resolve_symlink(root: &Path, path: &Path, name: EntryName) -> Result<Entry, PackageError> {
    let target = fs::read_link(path).unwrap_or_default();
    let canonical = match fs::canonicalize(path) {
        Ok(c) => c,
        Err(e) if is_loop(&e) => return Err(PackageError::SymlinkLoop { path: name.0 }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PackageError::DanglingSymlink {
                path: name.0,
                target,
            });
        }
        Err(e) => return Err(io_entry_error(&name.0, e)),
    };
    if !canonical.starts_with(root) {
        return Err(PackageError::SymlinkOutsideRoot {
            path: name.0,
            target: canonical,
        });
    }
    let meta = fs::metadata(&canonical).map_err(|e| io_entry_error(&name.0, e))?;
    if meta.is_dir() {
        return Err(PackageError::SymlinkToDirectory {
            path: name.0,
            target,
        });
    }
    if !meta.is_file() {
        return Err(PackageError::SpecialFile {
            path: name.0,
            kind: special_kind(&meta),
        });
    }
    Ok(Entry {
        name,
        source: canonical,
        size: meta.len(),
    })
}

#[cfg(unix)]
fn is_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32)
}

#[cfg(not(unix))]
fn is_loop(e: &io::Error) -> bool {
    // Windows reports reparse-point loops as ERROR_CANT_RESOLVE_FILENAME (1921).
    e.raw_os_error() == Some(1921)
}

fn special_kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_char_device() {
            return "a character device";
        }
    }
    let _ = meta;
    "a special file"
}

fn walk_error(root: &Path, e: &ignore::Error) -> PackageError {
    // The ignore crate wraps io errors with the path they concern; dig both out for a message that names it.
    fn find(e: &ignore::Error) -> (Option<PathBuf>, Option<&io::Error>) {
        match e {
            ignore::Error::WithPath { path, err } => {
                let (_, io) = find(err);
                (Some(path.clone()), io)
            }
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                find(err)
            }
            ignore::Error::Loop { child, .. } => (Some(child.clone()), None),
            ignore::Error::Io(io) => (None, Some(io)),
            _ => (None, None),
        }
    }
    let (path, io) = find(e);
    let path = path
        .map(|p| p.strip_prefix(root).map(Path::to_owned).unwrap_or(p))
        .unwrap_or_else(|| root.to_owned());
    match io {
        Some(io) if io.kind() == io::ErrorKind::PermissionDenied => PackageError::Unreadable {
            path: path.to_string_lossy().into_owned(),
            source: io::Error::new(io.kind(), io.to_string()),
        },
        _ => PackageError::Walk {
            path,
            message: e.to_string(),
        },
    }
}

fn io_entry_error(name: &str, e: io::Error) -> PackageError {
    if e.kind() == io::ErrorKind::NotFound {
        PackageError::Vanished {
            path: name.to_owned(),
        }
    } else {
        PackageError::Unreadable {
            path: name.to_owned(),
            source: e,
        }
    }
}

/// Opens an entry without following a symlink swapped in since the walk and without blocking on a FIFO.
fn open_entry(entry: &Entry) -> Result<(File, Metadata), PackageError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits());
    }
    let file = options
        .open(&entry.source)
        .map_err(|e| io_entry_error(&entry.name.0, e))?;
    let meta = file
        .metadata()
        .map_err(|e| io_entry_error(&entry.name.0, e))?;
    if !meta.is_file() {
        return Err(PackageError::SpecialFile {
            path: entry.name.0.clone(),
            kind: special_kind(&meta),
        });
    }
    if meta.len() != entry.size {
        return Err(PackageError::ChangedWhileReading {
            path: entry.name.0.clone(),
            expected: entry.size,
            actual: meta.len(),
        });
    }
    Ok((file, meta))
}

/// A file must end as it began: `read_total` bytes read (the read stops one byte past the expected size)
/// and the same length on disk afterwards, or it changed while it was being packaged.
fn unchanged_after_reading(
    entry: &Entry,
    file: &File,
    read_total: u64,
) -> Result<(), PackageError> {
    let after = file.metadata().map(|m| m.len()).unwrap_or(read_total);
    if read_total != entry.size || after != entry.size {
        return Err(PackageError::ChangedWhileReading {
            path: entry.name.0.clone(),
            expected: entry.size,
            actual: if read_total != entry.size {
                read_total
            } else {
                after
            },
        });
    }
    Ok(())
}

fn mode_of(meta: &Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 != 0 {
            return 0o755;
        }
    }
    let _ = meta;
    0o644
}

/// Copies exactly `entry.size` bytes from `file` into `sink`, hashing them; more or fewer is an error.
fn copy_checked(
    entry: &Entry,
    file: &mut File,
    sink: &mut dyn Write,
    cancel: &CancellationToken,
) -> Result<Sha256Hex, PackageError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut read_total = 0u64;
    // One byte past the expected size is enough to notice growth without reading an unbounded file.
    let mut limited = Read::by_ref(file).take(entry.size + 1);
    loop {
        // A multi-gigabyte file is several seconds of work: checked per chunk, not per file.
        if cancel.is_cancelled() {
            return Err(PackageError::Cancelled);
        }
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_entry_error(&entry.name.0, e)),
        };
        read_total += n as u64;
        if read_total > entry.size {
            break;
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n])
            .map_err(|e| PackageError::Unreadable {
                path: entry.name.0.clone(),
                source: e,
            })?;
    }
    unchanged_after_reading(entry, file, read_total)?;
    Ok(Sha256Hex::from_digest(&hasher.finalize()))
}

/// How many bytes of a file are deflated to guess whether the whole file would shrink.
const SAMPLE_BYTES: usize = 4 * 1024;

/// Files up to this size are deflated whole without a guess: the guess would cost a good part of the work.
const SAMPLE_MIN_FILE: u64 = 4 * SAMPLE_BYTES as u64;

/// Whether deflating `sample` makes it smaller. Level 2, not 1: zlib-rs's level 1 (`deflate_quick`) codes
/// with fixed Huffman trees only, which expand skewed but compressible bytes (media with some redundancy),
/// so it would store files that zip's level 6 still shrinks.
fn sample_shrinks(sample: &[u8]) -> bool {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .compression_level(Some(2));
    let compressed = ZipFileBuilder::new("sample", options).and_then(|mut b| {
        b.write_all(sample)?;
        b.finish()
    });
    // An error here only costs the shortcut: the file is then deflated whole as usual.
    compressed.map_or(true, |p| p.compressed_size() < sample.len() as u64)
}

/// Whether a file of `len` bytes looks incompressible (already compressed media, archives, random data),
/// judged from samples at its start, middle and end that `sample_at(offset, buf)` fills. Deflating such a
/// file costs as much as deflating text and gains nothing, so it is stored. The start is tried first, so a
/// compressible file costs one small fast sample; all three must fail to shrink before the file is stored.
fn looks_incompressible(
    len: u64,
    mut sample_at: impl FnMut(u64, &mut [u8]) -> io::Result<()>,
) -> io::Result<bool> {
    if len < SAMPLE_MIN_FILE {
        return Ok(false);
    }
    let mut sample = [0u8; SAMPLE_BYTES];
    let last = len - SAMPLE_BYTES as u64;
    for offset in [0, last / 2, last] {
        sample_at(offset, &mut sample)?;
        if sample_shrinks(&sample) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Compresses one file read whole into `buf` (reused between files of one thread). The entry is stored
/// when it looks incompressible or when deflating it did not make it smaller, as Info-ZIP does.
fn prepare_entry(
    entry: &Entry,
    base: SimpleFileOptions,
    buf: &mut Vec<u8>,
) -> Result<(PreparedZipFile, ManifestFile), PackageError> {
    let (mut file, meta) = open_entry(entry)?;
    let mode = mode_of(&meta);
    let sha256 = read_checked(entry, &mut file, buf)?;
    let zip_err = |source| PackageError::Unreadable {
        path: entry.name.0.clone(),
        source: io::Error::other(source),
    };
    let options = base.unix_permissions(mode);
    let data = buf.as_slice();
    let compress = |options: SimpleFileOptions| {
        let mut builder = ZipFileBuilder::new(&entry.name.0, options).map_err(zip_err)?;
        builder.write_all(data).map_err(|e| zip_err(e.into()))?;
        builder.finish().map_err(zip_err)
    };
    let stored = options
        .compression_method(CompressionMethod::Stored)
        .compression_level(None);
    let incompressible = looks_incompressible(data.len() as u64, |offset, sample| {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let bytes = data
            .get(start..start.saturating_add(sample.len()))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        sample.copy_from_slice(bytes);
        Ok(())
    })
    .unwrap_or(false);
    let prepared = if incompressible {
        compress(stored)?
    } else {
        let deflated = compress(options)?;
        if deflated.compressed_size() < data.len() as u64 {
            deflated
        } else {
            drop(deflated);
            compress(stored)?
        }
    };
    Ok((
        prepared,
        ManifestFile {
            path: entry.name.0.clone(),
            size: entry.size,
            sha256,
            mode: format!("{mode:04o}"),
        },
    ))
}

/// Reads exactly `entry.size` bytes of `file` into `buf` and hashes them; more or fewer is an error.
fn read_checked(
    entry: &Entry,
    file: &mut File,
    buf: &mut Vec<u8>,
) -> Result<Sha256Hex, PackageError> {
    buf.clear();
    let expected = usize::try_from(entry.size).unwrap_or(usize::MAX);
    buf.reserve(expected.saturating_add(1));
    // One byte past the expected size is enough to notice growth without reading an unbounded file.
    Read::by_ref(file)
        .take(entry.size + 1)
        .read_to_end(buf)
        .map_err(|e| io_entry_error(&entry.name.0, e))?;
    let read_total = buf.len() as u64;
    unchanged_after_reading(entry, file, read_total)?;
    Ok(Sha256Hex::of(buf))
}

/// Hands out the entries to compress in archive order and bounds what is in flight between the
/// compressing threads and the writer: input bytes and entry count, one budget shared by all threads.
///
/// Entries are reserved in archive order under one lock, so whenever the writer waits for the next entry
/// that entry is already reserved (or the budget is empty and it fits): the bound cannot deadlock.
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    max_bytes: u64,
    max_files: usize,
    stream_threshold: u64,
    cancel: CancellationToken,
}

#[derive(Default)]
struct GateState {
    next: usize,
    bytes: u64,
    files: usize,
    stop: bool,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next entry for a compressing thread, waiting for room in the budget; `None` when done or stopped.
    fn take(&self, entries: &[Entry]) -> Option<usize> {
        let mut s = self.lock();
        loop {
            if s.stop || s.next >= entries.len() || self.cancel.is_cancelled() {
                return None;
            }
            let i = s.next;
            let size = entries[i].size;
            if size > self.stream_threshold {
                // The writer streams it itself when it gets there.
                s.next += 1;
                continue;
            }
            if s.files == 0 || (s.bytes + size <= self.max_bytes && s.files < self.max_files) {
                s.next += 1;
                s.bytes += size;
                s.files += 1;
                return Some(i);
            }
            s = self.changed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Returns an entry's share of the budget once the writer is done with it.
    fn release(&self, size: u64) {
        let mut s = self.lock();
        s.bytes -= size;
        s.files -= 1;
        drop(s);
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.changed.notify_all();
    }
}

/// Stops the other threads when a compressing thread unwinds, so the writer is not left waiting.
struct StopOnPanic<'a>(&'a Gate);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

type Prepared = Result<(PreparedZipFile, ManifestFile), PackageError>;

/// Compresses the entries on `threads` threads and writes them in order as soon as each one's turn comes;
/// files above the stream threshold are streamed by the writer while the threads work ahead.
fn compress_and_write(
    entries: &[Entry],
    writer: &mut PackageWriter,
    opts: &BuildOptions,
    threads: usize,
) -> Result<(), PackageError> {
    let gate = Gate {
        state: Mutex::new(GateState::default()),
        changed: Condvar::new(),
        max_bytes: opts.window_bytes,
        max_files: opts.window_files,
        stream_threshold: opts.stream_threshold,
        cancel: opts.cancel.clone(),
    };
    let base = writer.base;
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(usize, Prepared)>();
        for t in 0..threads {
            let done_tx = done_tx.clone();
            let gate = &gate;
            let spawned = std::thread::Builder::new()
                .name(format!("slot-release-zip-{t}"))
                .spawn_scoped(scope, move || {
                    let _guard = StopOnPanic(gate);
                    let mut buf = Vec::new();
                    while let Some(i) = gate.take(entries) {
                        let prepared = prepare_entry(&entries[i], base, &mut buf);
                        if done_tx.send((i, prepared)).is_err() {
                            break;
                        }
                    }
                });
            if let Err(e) = spawned {
                gate.stop();
                return Err(PackageError::InvalidOption {
                    reason: format!("cannot start {threads} compression threads: {e}"),
                });
            }
        }
        // The writer holds no sender: if every thread is gone, `recv` fails instead of waiting forever.
        drop(done_tx);
        let result = write_in_order(entries, writer, &gate, &done_rx);
        gate.stop();
        result
    })
}

fn write_in_order(
    entries: &[Entry],
    writer: &mut PackageWriter,
    gate: &Gate,
    done: &mpsc::Receiver<(usize, Prepared)>,
) -> Result<(), PackageError> {
    let mut ready: BTreeMap<usize, Prepared> = BTreeMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if gate.cancel.is_cancelled() {
            return Err(PackageError::Cancelled);
        }
        if entry.size > gate.stream_threshold {
            writer.stream_entry(entry, &gate.cancel)?;
            continue;
        }
        let prepared = loop {
            if let Some(p) = ready.remove(&i) {
                break p;
            }
            let Ok((j, p)) = done.recv() else {
                // The threads stop taking entries on a cancel; that is not a failure of this entry.
                if gate.cancel.is_cancelled() {
                    return Err(PackageError::Cancelled);
                }
                return Err(PackageError::Unreadable {
                    path: entry.name.0.clone(),
                    source: io::Error::other("the compression threads stopped early"),
                });
            };
            ready.insert(j, p);
        };
        let (file, record) = prepared?;
        writer.add_prepared(file, record)?;
        gate.release(entry.size);
    }
    Ok(())
}

struct PackageWriter {
    zip: ZipWriter<BufWriter<File>>,
    archive: PathBuf,
    base: SimpleFileOptions,
    files: Vec<ManifestFile>,
    total_bytes: u64,
    done_bytes: u64,
    last_percent: Option<u8>,
    progress: Option<Log>,
}

impl PackageWriter {
    fn zip_error(&self, entry: &str, source: zip::result::ZipError) -> PackageError {
        PackageError::Zip {
            archive: self.archive.clone(),
            entry: entry.to_owned(),
            source,
        }
    }

    fn add_prepared(
        &mut self,
        file: PreparedZipFile,
        record: ManifestFile,
    ) -> Result<(), PackageError> {
        self.zip
            .add_prepared_file(file)
            .map_err(|e| self.zip_error(&record.path, e))?;
        self.record(record);
        Ok(())
    }

    fn stream_entry(
        &mut self,
        entry: &Entry,
        cancel: &CancellationToken,
    ) -> Result<(), PackageError> {
        let (mut file, meta) = open_entry(entry)?;
        let mode = mode_of(&meta);
        // A sampling failure only costs the shortcut; a file that changed is caught by the copy below.
        let incompressible = looks_incompressible(entry.size, |offset, sample| {
            file.seek(SeekFrom::Start(offset))?;
            file.read_exact(sample)
        })
        .unwrap_or(false);
        file.rewind()
            .map_err(|e| io_entry_error(&entry.name.0, e))?;
        let mut options = self.base;
        if incompressible {
            options = options
                .compression_method(CompressionMethod::Stored)
                .compression_level(None);
        }
        let options = options
            .unix_permissions(mode)
            // Zip64 is decided from the size known up front, so the layout depends only on the input.
            .large_file(entry.size >= u64::from(u32::MAX));
        self.zip
            .start_file(entry.name.0.as_str(), options)
            .map_err(|e| self.zip_error(&entry.name.0, e))?;
        let sha256 = copy_checked(entry, &mut file, &mut self.zip, cancel)?;
        self.record(ManifestFile {
            path: entry.name.0.clone(),
            size: entry.size,
            sha256,
            mode: format!("{mode:04o}"),
        });
        Ok(())
    }

    fn record(&mut self, record: ManifestFile) {
        self.done_bytes += record.size;
        self.files.push(record);
        self.report_progress();
    }

    fn report_progress(&mut self) {
        let Some(sink) = &self.progress else { return };
        // 5 % steps: enough to see movement without flooding a plain-text log. No bytes at all is done.
        let exact = self
            .done_bytes
            .saturating_mul(100)
            .checked_div(self.total_bytes)
            .unwrap_or(100);
        let percent = u8::try_from(exact - exact % 5).unwrap_or(100);
        if self.last_percent != Some(percent) {
            self.last_percent = Some(percent);
            sink.progress(percent, "Packaging");
        }
    }

    fn finish_manifest(&mut self, info: &BuildInfo) -> Result<Manifest, PackageError> {
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            version: info.version.clone(),
            commit: info.commit.clone(),
            build_id: info.build_id.clone(),
            created_from: info.created_from.clone(),
            files: std::mem::take(&mut self.files),
            total: ManifestTotal {
                files: 0,
                bytes: self.done_bytes,
            },
        };
        let manifest = Manifest {
            total: ManifestTotal {
                files: manifest.files.len() as u64,
                ..manifest.total
            },
            ..manifest
        };
        // Compact, not pretty: for very large trees the manifest is the biggest thing held in memory.
        let mut json = serde_json::to_vec(&manifest).map_err(|e| PackageError::Write {
            archive: self.archive.clone(),
            source: io::Error::other(e),
        })?;
        json.push(b'\n');
        let options = self.base.unix_permissions(0o644);
        self.zip
            .start_file(MANIFEST_PATH, options)
            .map_err(|e| self.zip_error(MANIFEST_PATH, e))?;
        self.zip
            .write_all(&json)
            .map_err(|source| PackageError::Write {
                archive: self.archive.clone(),
                source,
            })?;
        Ok(manifest)
    }
}

/// SHA-256 and length of everything `reader` holds, read in chunks; a cancel between chunks is an
/// `Interrupted` error (never retried here: a read interrupted by a signal is).
pub(crate) fn hash_reader(
    reader: &mut impl Read,
    cancel: &CancellationToken,
) -> io::Result<(Sha256Hex, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "cancelled"));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((Sha256Hex::from_digest(&hasher.finalize()), total))
}

fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    make_world_readable(tmp.as_file())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Temporary files are created private (0600); the package is an ordinary build output that other users
/// and tools (an artifact upload, a container build) must be able to read.
fn make_world_readable(file: &File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    let _ = file;
    Ok(())
}

/// Reads the manifest back from a built package (used by tests, `rehearse` and the staging check).
pub fn read_manifest(archive: &Path) -> Result<Manifest, PackageError> {
    let io_err = |source| PackageError::Write {
        archive: archive.to_owned(),
        source,
    };
    let file = File::open(archive).map_err(io_err)?;
    let mut zip = zip::ZipArchive::new(file).map_err(|source| PackageError::Zip {
        archive: archive.to_owned(),
        entry: "(central directory)".to_owned(),
        source,
    })?;
    let mut entry = zip
        .by_name(MANIFEST_PATH)
        .map_err(|source| PackageError::Zip {
            archive: archive.to_owned(),
            entry: MANIFEST_PATH.to_owned(),
            source,
        })?;
    let mut text = Vec::new();
    entry.read_to_end(&mut text).map_err(io_err)?;
    serde_json::from_slice(&text).map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_reject_traversal_and_absolute_paths() {
        for bad in [
            "../x",
            "a/../b",
            "/etc/passwd",
            "a\\b",
            "./a",
            "a//b",
            "c:/x",
            "a/\n",
        ] {
            assert!(EntryName::new(bad).is_err(), "{bad} accepted");
        }
        for good in [
            "a",
            "a/b.txt",
            ".env.example",
            "dir/.hidden/x",
            "ünïcode/ファイル",
        ] {
            assert!(EntryName::new(good).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn unix_timestamp_is_clamped_to_the_zip_range() {
        assert_eq!(EntryTimestamp::Unix(0).to_zip(), DateTime::default());
        let t = EntryTimestamp::Unix(1_700_000_000).to_zip();
        assert_eq!((t.year(), t.month(), t.day()), (2023, 11, 14));
    }

    #[test]
    fn sha256_hex_rejects_non_hex() {
        assert!(Sha256Hex::try_from("zz".repeat(32)).is_err());
        assert_eq!(
            Sha256Hex::of(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
