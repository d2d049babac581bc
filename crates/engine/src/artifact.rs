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

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};
use slot_release_pipelines::Log;
use tokio_util::sync::CancellationToken;

use crate::package::{self, ArchiveName, PackageError, PackageSpec, Sha256Hex};

/// The build record's file name, in the output folder beside the package.
pub const BUILD_RECORD_FILE: &str = "slot-release-build.json";

/// The build record format written by this version; a reader refuses a newer one.
pub const BUILD_RECORD_VERSION: u32 = 1;

/// The name of a folder package zipped to be deployed (not recorded), beside the work folder's `package.zip`.
pub const FOLDER_ARCHIVE: &str = "folder-package.zip";

/// How many matches an ambiguous wildcard error lists before summarising the rest.
const LISTED_MATCHES: usize = 10;

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

/// The build record: what `build` made, so a later stage (another job, another agent) can check it deploys
/// exactly that, built from the same config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRecord {
    /// Always [`BUILD_RECORD_VERSION`] when written by this version.
    pub record_version: u32,
    /// The release's id.
    pub release_id: String,
    /// The release's display name (the build number).
    pub release_name: String,
    /// The package's file name, beside the record.
    pub package: String,
    /// The package's size in bytes.
    pub size: u64,
    /// The package's SHA-256.
    pub sha256: Sha256Hex,
    /// SHA-256 of the config file's bytes.
    pub config_sha256: Sha256Hex,
    /// The source commit (`Build.SourceVersion`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// `Build.BuildId`, or the release id outside a pipeline.
    pub build_id: String,
    /// The pipeline (`System.DefinitionId`), when built in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_id: Option<String>,
    /// The run (`Build.BuildId`), when built in a pipeline: with the pipeline and project, where the artifact
    /// can be downloaded again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The project (`System.TeamProjectId`), when built in a pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// The organisation (`System.CollectionId`), when built in a pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection_id: Option<String>,
}

/// Who is building: the release and the pipeline run, as the agent describes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildContext {
    /// The release's id.
    pub release_id: String,
    /// The release's display name.
    pub release_name: String,
    /// `Build.SourceVersion`.
    pub source_commit: Option<String>,
    /// `Build.BuildId`.
    pub build_id: Option<String>,
    /// `System.DefinitionId`.
    pub pipeline_id: Option<String>,
    /// `System.TeamProjectId`.
    pub project_id: Option<String>,
    /// `System.CollectionId`.
    pub collection_id: Option<String>,
    /// `Build.Repository.Name`, shown in the package manifest.
    pub repository: Option<String>,
}

impl BuildContext {
    /// The release as given, and the run the agent describes (`slot_release_pipelines::AgentEnv::build_run`).
    pub fn from_run(
        release_id: &str,
        release_name: &str,
        run: &slot_release_pipelines::BuildRun,
    ) -> Self {
        Self {
            release_id: release_id.to_owned(),
            release_name: release_name.to_owned(),
            source_commit: run.source_version.clone(),
            build_id: run.build_id.clone(),
            pipeline_id: run.definition_id.clone(),
            project_id: run.team_project_id.clone(),
            collection_id: run.collection_id.clone(),
            repository: run.repository_name.clone(),
        }
    }

    fn package_info(&self, created_from: String) -> package::BuildInfo {
        package::BuildInfo {
            version: self.release_name.clone(),
            commit: self.source_commit.clone(),
            build_id: self
                .build_id
                .clone()
                .unwrap_or_else(|| self.release_id.clone()),
            created_from,
        }
    }

    fn record(
        &self,
        package: &Path,
        size: u64,
        sha256: Sha256Hex,
        config: Sha256Hex,
    ) -> BuildRecord {
        BuildRecord {
            record_version: BUILD_RECORD_VERSION,
            release_id: self.release_id.clone(),
            release_name: self.release_name.clone(),
            package: package
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size,
            sha256,
            config_sha256: config,
            source_commit: self.source_commit.clone(),
            build_id: self
                .build_id
                .clone()
                .unwrap_or_else(|| self.release_id.clone()),
            // A run id only means something with the pipeline it belongs to.
            pipeline_id: self.build_id.as_ref().and(self.pipeline_id.clone()),
            run_id: self.pipeline_id.as_ref().and(self.build_id.clone()),
            project_id: self.project_id.clone(),
            collection_id: self.collection_id.clone(),
        }
    }
}

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

/// Checks the package against its build record: the same bytes, built from the same config.
pub fn verify(
    package: &PreparedPackage,
    record: &BuildRecord,
    record_path: &Path,
    config: Option<&Path>,
) -> Result<(), ArtifactError> {
    if package.sha256 != record.sha256 {
        return Err(ArtifactError::PackageDigestMismatch(Box::new(
            DigestMismatch {
                subject: package.path.clone(),
                record: record_path.to_owned(),
                detail: record.package.clone(),
                expected: record.sha256.clone(),
                actual: package.sha256.clone(),
            },
        )));
    }
    let Some(config) = config else {
        return Ok(());
    };
    let current = config_digest(config)?;
    if current != record.config_sha256 {
        return Err(ArtifactError::ConfigDigestMismatch(Box::new(
            DigestMismatch {
                subject: config.to_owned(),
                record: record_path.to_owned(),
                detail: record
                    .source_commit
                    .clone()
                    .unwrap_or_else(|| "unknown".to_owned()),
                expected: record.config_sha256.clone(),
                actual: current,
            },
        )));
    }
    Ok(())
}

/// SHA-256 of the config file's bytes.
pub fn config_digest(config: &Path) -> Result<Sha256Hex, ArtifactError> {
    let bytes = fs::read(config).map_err(|source| ArtifactError::ConfigUnreadable {
        path: config.to_owned(),
        source,
    })?;
    Ok(Sha256Hex::of(&bytes))
}

/// SHA-256 and size of a file, read in chunks (packages can be large); a cancel stops it between chunks.
pub fn sha256_file(
    path: &Path,
    cancel: &CancellationToken,
) -> Result<(Sha256Hex, u64), ArtifactError> {
    let unreadable = |source| ArtifactError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let mut file = File::open(path).map_err(unreadable)?;
    match package::hash_reader(&mut file, cancel) {
        Ok(digest) => Ok(digest),
        // `hash_reader` retries interrupted reads itself: an `Interrupted` coming out is the cancel.
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(ArtifactError::Cancelled),
        Err(e) => Err(unreadable(e)),
    }
}

/// Writes a build record (pretty JSON, replaced atomically).
pub fn write_build_record(path: &Path, record: &BuildRecord) -> Result<(), ArtifactError> {
    let write_err = |source| ArtifactError::Write {
        path: path.to_owned(),
        source,
    };
    let mut json = serde_json::to_vec_pretty(record).map_err(|e| write_err(io::Error::other(e)))?;
    json.push(b'\n');
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(write_err)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(write_err)?;
    io::Write::write_all(&mut tmp, &json).map_err(write_err)?;
    #[cfg(unix)]
    {
        // Temporary files are private; the record is published as an artifact and read by other users.
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(write_err)?;
    }
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

/// Reads a build record, refusing one this version cannot understand.
pub fn read_build_record(path: &Path) -> Result<BuildRecord, ArtifactError> {
    let text = fs::read(path).map_err(|source| ArtifactError::RecordUnreadable {
        path: path.to_owned(),
        source,
    })?;
    // The version first: a newer format may not parse as this one, and that is the clearer message.
    let version = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("recordVersion").and_then(serde_json::Value::as_u64));
    if let Some(version) = version
        && version > u64::from(BUILD_RECORD_VERSION)
    {
        return Err(ArtifactError::RecordTooNew {
            path: path.to_owned(),
            version: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    serde_json::from_slice(&text).map_err(|e| ArtifactError::RecordInvalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// What a package path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inspected {
    Zip,
    Folder,
}

/// A package must be a readable zip (its central directory parses, it has files, no entry escapes the
/// site folder) or a folder with something in it.
fn inspect(path: &Path) -> Result<Inspected, ArtifactError> {
    let meta = fs::metadata(path).map_err(|source| ArtifactError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        let mut entries = fs::read_dir(path).map_err(|source| ArtifactError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        return match entries.next() {
            Some(Ok(_)) => Ok(Inspected::Folder),
            Some(Err(source)) => Err(ArtifactError::Unreadable {
                path: path.to_owned(),
                source,
            }),
            None => Err(ArtifactError::EmptyFolder {
                path: path.to_owned(),
            }),
        };
    }
    if !meta.is_file() {
        return Err(ArtifactError::NotFileOrFolder {
            path: path.to_owned(),
        });
    }
    let file = File::open(path).map_err(|source| ArtifactError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|source| {
        ArtifactError::NotAZip {
            path: path.to_owned(),
            source,
        }
    })?;
    if archive.is_empty() {
        return Err(ArtifactError::EmptyZip {
            path: path.to_owned(),
        });
    }
    for name in archive.file_names() {
        let name = name.map_err(|source| ArtifactError::NotAZip {
            path: path.to_owned(),
            source,
        })?;
        if escapes(&name) {
            return Err(ArtifactError::UnsafeZipEntry {
                path: path.to_owned(),
                entry: name.into_owned(),
            });
        }
    }
    Ok(Inspected::Zip)
}

/// Whether a zip entry name would land outside the folder it is extracted into. Backslashes count as
/// separators: Kudu on Windows treats them so, and tools on Windows write them.
fn escapes(name: &str) -> bool {
    let normal = name.replace('\\', "/");
    let drive = normal.as_bytes().get(1) == Some(&b':');
    normal.starts_with('/') || drive || normal.split('/').any(|part| part == "..")
}

/// Whether a path component holds a wildcard.
fn is_wild(part: &str) -> bool {
    part.contains(['*', '?', '[', '{'])
}

/// Resolves a package path or wildcard pattern (`drop/*.zip`, `**/*.zip`, `$(Pipeline.Workspace)/drop/*.zip`
/// once the agent expanded the macro) to exactly one existing file or folder. Relative patterns are resolved
/// against `base`. `*` and `?` stay within one folder, `**` spans folders; `.git` folders are not searched.
pub fn resolve_pattern(pattern: &str, base: &Path) -> Result<PathBuf, ArtifactError> {
    let normal = if cfg!(windows) {
        pattern.replace('\\', "/")
    } else {
        pattern.to_owned()
    };
    let parts: Vec<&str> = normal.split('/').collect();
    let Some(first_wild) = parts.iter().position(|p| is_wild(p)) else {
        let path = base.join(pattern);
        return if fs::symlink_metadata(&path).is_ok() {
            Ok(path)
        } else {
            Err(ArtifactError::NoMatch {
                pattern: pattern.to_owned(),
                searched: path,
            })
        };
    };
    let prefix = parts[..first_wild].join("/");
    let dir = if prefix.is_empty() && normal.starts_with('/') {
        PathBuf::from("/")
    } else if prefix.is_empty() {
        base.to_path_buf()
    } else {
        base.join(&prefix)
    };
    let rest = parts[first_wild..].join("/");
    let matcher = GlobBuilder::new(&rest)
        .literal_separator(true)
        .build()
        .map_err(|source| ArtifactError::InvalidPattern {
            pattern: pattern.to_owned(),
            source,
        })?
        .compile_matcher();
    // Without `**` nothing deeper than the pattern's own depth can match.
    let max_depth = if rest.split('/').any(|p| p.contains("**")) {
        usize::MAX
    } else {
        rest.split('/').count()
    };
    let mut matches = Vec::new();
    if dir.is_dir() {
        search(&dir, &dir, &matcher, 1, max_depth, &mut matches)?;
    }
    matches.sort();
    match matches.len() {
        0 => Err(ArtifactError::NoMatch {
            pattern: pattern.to_owned(),
            searched: dir,
        }),
        1 => Ok(matches.remove(0)),
        count => {
            let mut listed: Vec<String> = matches
                .iter()
                .take(LISTED_MATCHES)
                .map(|m| m.display().to_string())
                .collect();
            if count > LISTED_MATCHES {
                listed.push(format!("and {} more", count - LISTED_MATCHES));
            }
            Err(ArtifactError::AmbiguousMatch {
                pattern: pattern.to_owned(),
                count,
                matches: listed.join(", "),
            })
        }
    }
}

fn search(
    root: &Path,
    dir: &Path,
    matcher: &GlobMatcher,
    depth: usize,
    max_depth: usize,
    out: &mut Vec<PathBuf>,
) -> Result<(), ArtifactError> {
    let entries = fs::read_dir(dir).map_err(|source| ArtifactError::Search {
        dir: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ArtifactError::Search {
            dir: dir.to_owned(),
            source,
        })?;
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let rel_text: String = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/");
        if matcher.is_match(&rel_text) {
            out.push(path.clone());
        }
        // Symlinked folders are not followed: they could loop, or lead out of the search.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && depth < max_depth {
            search(root, &path, matcher, depth + 1, max_depth, out)?;
        }
    }
    Ok(())
}

/// The checked-out sources a package root must lie in: the pipeline's (`Build.SourcesDirectory`, as
/// `AgentEnv::sources_directory` gives it) in a pipeline, else the git work tree holding the config, else
/// the config's folder.
pub fn sources_dir(config: &Path, pipeline_sources: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = pipeline_sources.filter(|d| !d.as_os_str().is_empty()) {
        return dir;
    }
    let config_dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let absolute = fs::canonicalize(config_dir).unwrap_or_else(|_| config_dir.to_path_buf());
    absolute
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map_or(absolute.clone(), Path::to_path_buf)
}

/// The package root exists, is a folder, lies inside the sources (both resolved through symlinks) and is
/// not empty; returns it resolved. Checked before anything is built or changed.
pub fn check_package_root(root: &Path, sources: &Path) -> Result<PathBuf, ArtifactError> {
    let resolved = fs::canonicalize(root).map_err(|source| ArtifactError::RootMissing {
        root: root.to_owned(),
        source,
    })?;
    if !resolved.is_dir() {
        return Err(ArtifactError::RootNotAFolder {
            root: root.to_owned(),
        });
    }
    let sources_resolved = fs::canonicalize(sources).unwrap_or_else(|_| sources.to_path_buf());
    if !resolved.starts_with(&sources_resolved) {
        return Err(ArtifactError::RootOutsideSources {
            root: root.to_owned(),
            resolved,
            sources: sources_resolved,
        });
    }
    let mut entries = fs::read_dir(&resolved).map_err(|source| ArtifactError::RootMissing {
        root: root.to_owned(),
        source,
    })?;
    // `.git` alone is nothing to deploy; what the ignore rules leave is checked by the packager itself.
    let any = entries.any(|e| e.is_ok_and(|e| e.file_name() != ".git"));
    if !any {
        return Err(ArtifactError::RootEmpty {
            root: root.to_owned(),
        });
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_that_leave_the_site_folder_are_caught() {
        for bad in [
            "/etc/passwd",
            "c:/windows/x",
            "C:\\x",
            "a/../../b",
            "..",
            "a\\..\\..\\b",
            "\\\\server\\share",
        ] {
            assert!(escapes(bad), "{bad} passed");
        }
        for good in ["a/b", "..a/b", "a..b/c", "bin\\app.dll", ".well-known/x"] {
            assert!(!escapes(good), "{good} refused");
        }
    }

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

    #[test]
    fn only_wildcard_components_start_a_search() {
        assert!(is_wild("*.zip"));
        assert!(is_wild("**"));
        assert!(is_wild("pkg-?.zip"));
        assert!(!is_wild("package.zip"));
        assert!(!is_wild("$(Pipeline.Workspace)"));
    }
}
