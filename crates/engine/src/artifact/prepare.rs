//! Preparing the package a stage deploys: the given one resolved, checked and verified (a folder zipped), or
//! one built from the package root, copied into the work folder and recorded when asked, all cancellable.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;

use crate::package::{self, ArchiveName, PackageError, PackageSpec, Sha256Hex};

use super::checks::{Inspected, check_package_root, inspect};
use super::record::{
    BuildContext, BuildRecord, config_digest, read_build_record, sha256_file, verify,
    write_build_record,
};
use super::resolve::resolve_pattern;
use super::{ArtifactError, BUILD_RECORD_FILE, FOLDER_ARCHIVE};

/// Where the package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSource {
    /// A package given by the user: a path or wildcard pattern naming one zip or folder, and optionally the
    /// build record to verify it against (else the one beside a zip is used when it exists).
    Given {
        pattern: String,
        build_record: Option<PathBuf>,
    },
    /// Build one from the config's package root.
    Build {
        spec: PackageSpec,
        /// A deploying stage builds only because no package was given, and says so.
        none_given: bool,
    },
}

/// What [`prepare`] needs.
#[derive(Debug, Clone)]
pub struct PrepareRequest {
    /// The package, or how to build it.
    pub source: PackageSource,
    /// Relative package paths and patterns are resolved against this folder (the working directory).
    pub base_dir: PathBuf,
    /// The release config, whose bytes' SHA-256 is recorded and verified.
    pub config: PathBuf,
    /// The checked-out sources: the package root must lie inside them.
    pub sources: PathBuf,
    /// Where a built or zipped package, and the build record, are written.
    pub out_dir: PathBuf,
    /// The release and the run.
    pub context: BuildContext,
    /// Write a build record beside the package (`build`; a folder or zip given to `build` is recorded too).
    pub write_record: bool,
    /// Check the record's config digest against the config (not for a rollback, which brings back a
    /// release built from an earlier config).
    pub verify_config: bool,
}

/// The package a stage deploys: a zip, its digest, and the build record it was checked against or written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedPackage {
    /// The zip to deploy.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: Sha256Hex,
    /// Its size in bytes.
    pub size: u64,
    /// The build record it was verified against, or the one written for it.
    pub record: Option<BuildRecord>,
    /// Where that record is.
    pub record_path: Option<PathBuf>,
    /// Whether this run built the package from the package root.
    pub built: bool,
}

/// [`prepare`] on tokio's blocking pool, so the runtime (signals, timers, the log) runs on while a big
/// tree is zipped or a big package hashed or copied. A cancel stops the work between files or chunks,
/// within a fraction of a second, and what it had written is removed.
pub async fn prepare_in_background(
    request: &PrepareRequest,
    log: &Log,
    cancel: &CancellationToken,
) -> Result<PreparedPackage, ArtifactError> {
    let (request, log, cancel) = (request.clone(), log.clone(), cancel.clone());
    match tokio::task::spawn_blocking(move || prepare(&request, &log, &cancel)).await {
        Ok(prepared) => prepared,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // Only a runtime shutting down drops a blocking task: the run is over.
        Err(_) => Err(ArtifactError::Cancelled),
    }
}

/// Resolves, validates, builds or zips, and verifies the package a stage uses, before the stage changes
/// anything. Every refusal here happens while nothing has been written to Azure. Blocking: see
/// [`prepare_in_background`].
pub fn prepare(
    request: &PrepareRequest,
    log: &Log,
    cancel: &CancellationToken,
) -> Result<PreparedPackage, ArtifactError> {
    let prepared = match &request.source {
        PackageSource::Given {
            pattern,
            build_record,
        } => prepare_given(request, pattern, build_record.as_deref(), log, cancel)?,
        PackageSource::Build { spec, none_given } => {
            check_package_root(&spec.root, &request.sources)?;
            if *none_given {
                log.info(&format!(
                    "No package given: building one from {}",
                    spec.root.display()
                ));
            } else {
                log.info(&format!(
                    "Building the package from {}",
                    spec.root.display()
                ));
            }
            let created_from = request
                .context
                .repository
                .clone()
                .unwrap_or_else(|| "local build".to_owned());
            let built = build_zip(
                spec,
                &request.context.package_info(created_from),
                ArchiveName::default(),
                request,
                log,
                cancel,
            )?;
            PreparedPackage {
                built: true,
                ..built
            }
        }
    };
    if request.write_record {
        let config = config_digest(&request.config)?;
        let record = request.context.record(
            &prepared.path,
            prepared.size,
            prepared.sha256.clone(),
            config,
        );
        let dir = prepared
            .path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let path = dir.join(BUILD_RECORD_FILE);
        write_build_record(&path, &record)?;
        log.info(&format!(
            "Build record {} (release {}, package sha256 {})",
            path.display(),
            record.release_name,
            record.sha256
        ));
        return Ok(PreparedPackage {
            record: Some(record),
            record_path: Some(path),
            ..prepared
        });
    }
    Ok(prepared)
}

fn prepare_given(
    request: &PrepareRequest,
    pattern: &str,
    build_record: Option<&Path>,
    log: &Log,
    cancel: &CancellationToken,
) -> Result<PreparedPackage, ArtifactError> {
    let found = resolve_pattern(pattern, &request.base_dir)?;
    let is_folder = match inspect(&found)? {
        Inspected::Zip => false,
        Inspected::Folder => true,
    };
    let mut prepared = if is_folder {
        log.info(&format!(
            "Package folder {}: zipping it to deploy it",
            found.display()
        ));
        let spec = PackageSpec {
            root: found.clone(),
            exclude: Vec::new(),
            // A folder made by another tool (`dotnet publish`, `npm run build`) is deployed as it is.
            ignore_files: Vec::new(),
            include_hidden: true,
        };
        let name = found
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let info = request
            .context
            .package_info(format!("package folder {name}"));
        // A folder zipped only to deploy it gets its own name: it must not replace a package (and leave its
        // build record describing other bytes) that `build` wrote to the same work folder.
        let archive = if request.write_record {
            ArchiveName::default()
        } else {
            ArchiveName::new(FOLDER_ARCHIVE)?
        };
        build_zip(&spec, &info, archive, request, log, cancel)?
    } else {
        let (sha256, size) = sha256_file(&found, cancel)?;
        let path = if request.write_record {
            copy_into(&found, &request.out_dir, cancel)?
        } else {
            found.clone()
        };
        log.info(&format!(
            "Package {} ({size} bytes, sha256 {sha256})",
            found.display()
        ));
        PreparedPackage {
            path,
            sha256,
            size,
            record: None,
            record_path: None,
            built: false,
        }
    };
    // A record beside a folder would describe something else than the folder; only an explicit one is used.
    let record_path = build_record.map(Path::to_path_buf).or_else(|| {
        let beside = found.parent()?.join(BUILD_RECORD_FILE);
        (!is_folder && beside.is_file()).then_some(beside)
    });
    let Some(record_path) = record_path else {
        log.info(
            "No build record beside the package: it is deployed as given (only `build` records one to verify against)",
        );
        return Ok(prepared);
    };
    let record = read_build_record(&record_path)?;
    verify(
        &prepared,
        &record,
        &record_path,
        request.verify_config.then_some(request.config.as_path()),
    )?;
    log.info(&format!(
        "Package verified against its build record {}: release {}, commit {}, sha256 {}",
        record_path.display(),
        record.release_name,
        record.source_commit.as_deref().unwrap_or("unknown"),
        record.sha256
    ));
    if record.release_id != request.context.release_id {
        log.warning(&format!(
            "The package was built as release {} and is deployed as release {}; pass --release-id {} to keep one name",
            record.release_name, request.context.release_name, record.release_id
        ));
    }
    prepared.record = Some(record);
    prepared.record_path = Some(record_path);
    Ok(prepared)
}

/// Packages `spec` into the output folder with the deterministic packager.
fn build_zip(
    spec: &PackageSpec,
    info: &package::BuildInfo,
    archive_name: ArchiveName,
    request: &PrepareRequest,
    log: &Log,
    cancel: &CancellationToken,
) -> Result<PreparedPackage, ArtifactError> {
    let options = package::BuildOptions {
        archive_name,
        progress: Some(log.clone()),
        cancel: cancel.clone(),
        ..package::BuildOptions::default()
    };
    let built = match package::build_package(spec, info, &request.out_dir, &options) {
        Err(PackageError::Cancelled) => return Err(ArtifactError::Cancelled),
        built => built?,
    };
    log.info(&format!(
        "Package {} ({} bytes, sha256 {})",
        built.path.display(),
        built.size,
        built.sha256
    ));
    Ok(PreparedPackage {
        path: built.path,
        sha256: built.sha256,
        size: built.size,
        record: None,
        record_path: None,
        built: false,
    })
}

/// Copies a given zip into the output folder (unless it is already there), so the record sits beside it.
/// Copied in chunks into a temporary file renamed at the end: a cancel (checked between chunks) or a
/// failure leaves no partial package under the final name.
fn copy_into(
    zip: &Path,
    out_dir: &Path,
    cancel: &CancellationToken,
) -> Result<PathBuf, ArtifactError> {
    let name = zip.file_name().unwrap_or_default();
    let target = out_dir.join(name);
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ArtifactError::Write { path, source }
    };
    fs::create_dir_all(out_dir).map_err(write_err(out_dir))?;
    let same = match (fs::canonicalize(zip), fs::canonicalize(&target)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Ok(target);
    }
    let mut from = File::open(zip).map_err(|source| ArtifactError::Unreadable {
        path: zip.to_owned(),
        source,
    })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".slot-release-copy-")
        .tempfile_in(out_dir)
        .map_err(write_err(out_dir))?;
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        if cancel.is_cancelled() {
            return Err(ArtifactError::Cancelled);
        }
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(ArtifactError::Unreadable {
                    path: zip.to_owned(),
                    source,
                });
            }
        };
        io::Write::write_all(&mut tmp, &buf[..n]).map_err(write_err(&target))?;
    }
    #[cfg(unix)]
    {
        // Temporary files are private; the package is published as an artifact and read by other users.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(write_err(&target))?;
    }
    tmp.persist(&target)
        .map_err(|e| write_err(&target)(e.error))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_stops_between_chunks_and_leaves_no_partial_file() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let from = dir.path().join("package.zip");
        // Sparse: 2 GiB that take no disk, and seconds to copy; a copy not cancelled finishes (and fails
        // the test on its `Ok`) rather than fill the disk.
        File::create(&from)
            .and_then(|f| f.set_len(2 << 30))
            .expect("sparse file");
        let out = dir.path().join("out");
        let cancel = CancellationToken::new();
        let trigger = cancel.clone();
        let timer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            trigger.cancel();
            std::time::Instant::now()
        });
        let result = copy_into(&from, &out, &cancel);
        let returned = std::time::Instant::now();
        let cancelled_at = timer.join().expect("timer");
        assert!(
            matches!(result, Err(ArtifactError::Cancelled)),
            "expected a cancelled copy, got {result:?}"
        );
        let took = returned.saturating_duration_since(cancelled_at);
        assert!(took < std::time::Duration::from_millis(500), "{took:?}");
        let left: Vec<_> = fs::read_dir(&out).expect("out").flatten().collect();
        assert!(left.is_empty(), "partial copy left: {left:?}");
    }
}
