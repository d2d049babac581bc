//! The build stage for code apps: a deterministic, parallel-compressed zip of the package root with a manifest.
//!
//! The same input tree gives a byte-identical archive: entries are sorted by path, timestamps and modes are
//! fixed, no extra fields are written, and the manifest (`.slot-release/manifest.json`, always the last entry)
//! holds no clock or machine data beyond what the caller puts in [`BuildInfo`]. The work is cut into jobs in
//! archive order (batches of small files compressed whole, fixed-size chunks of large files deflated on their
//! own and joined into one stream), done on several threads, and written in order as each one's turn comes;
//! the buffers in flight are bounded by bytes, each thread keeps one deflate state for its whole life, and the
//! manifest and central directory wait in scratch files, so memory is about the same whatever the tree holds.
//! Entries that deflate cannot shrink (judged from their bytes' spread or small samples, then from the
//! result) are stored, as Info-ZIP does. Anything that could make the archive unsafe or not what the user
//! meant (escaping symlinks, loops, special files, non-UTF-8 names, files changing while read) is refused
//! with an error naming the path. A cancel ([`BuildOptions::cancel`]) is checked between files and between
//! the chunks of a large one, and leaves nothing behind. See `docs/packaging.md`.

mod archive;
mod compress;
mod deflate;
mod layout;
mod manifest;
mod options;
mod read;
mod walk;
mod writer;

pub use layout::{
    PYTHON_FUNCTIONS_DIR, PYTHON_VENDORED_DIR, PYTHON_VENV_DIR, PackageFiles, onedeploy_type,
};
pub use manifest::{
    BuiltPackage, MANIFEST_FORMAT, MANIFEST_PATH, Manifest, ManifestFile, ManifestTotal, Sha256Hex,
    read_manifest,
};
pub use options::{
    ArchiveName, BuildInfo, BuildOptions, CompressionLevel, EntryTimestamp, PackageSpec,
};

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use archive::{ArchiveWriter, DosTime};
use compress::compress_and_write;
use manifest::ManifestWriter;
use walk::collect_entries;
use writer::PackageWriter;

/// Above this chunk size the buffers in flight would no longer be small beside the memory target.
const MAX_CHUNK: usize = 16 << 20;

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
    let min_chunk = 2 * deflate::WINDOW;
    if opts.chunk_bytes < min_chunk || opts.chunk_bytes > MAX_CHUNK {
        return Err(PackageError::InvalidOption {
            reason: format!(
                "chunk_bytes must be between {} KiB and {} MiB",
                min_chunk >> 10,
                MAX_CHUNK >> 20
            ),
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
    // under the final name. The central directory and the manifest wait in unnamed scratch files beside
    // it (gone when closed, whatever happens), so their size never weighs on memory.
    let tmp = tempfile::Builder::new()
        .prefix(".slot-release-package-")
        .suffix(".zip.part")
        .tempfile_in(out_dir)
        .map_err(write_err)?;
    let file = tmp.as_file().try_clone().map_err(write_err)?;
    let central = tempfile::tempfile_in(out_dir).map_err(write_err)?;
    let manifest_spool = tempfile::tempfile_in(out_dir).map_err(write_err)?;
    let time = opts.timestamp.to_zip();
    let level = opts.compression_level.get();
    let archive = ArchiveWriter::new(
        file,
        central,
        DosTime {
            time: time.timepart(),
            date: time.datepart(),
        },
    );
    let manifest = ManifestWriter::new(info, level, manifest_spool).map_err(write_err)?;
    let mut writer = PackageWriter::new(
        archive,
        manifest,
        archive_path.clone(),
        entries.total_bytes(),
        opts.progress.clone(),
    );

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
    drop(entries);
    let finished = writer.finish()?;
    if opts.cancel.is_cancelled() {
        return Err(PackageError::Cancelled);
    }
    let mut file = finished.file;
    file.flush().map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    let sha256 = Sha256Hex::from_digest(&finished.sha256);
    let size = finished.size;
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
        total: finished.total,
        duration: started.elapsed(),
    })
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
