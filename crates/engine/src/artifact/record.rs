//! The build record: what `build` made and from which config and run, written beside the package, read back
//! by a later stage, and the package and config checked against it.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::package::{self, Sha256Hex};

use super::prepare::PreparedPackage;
use super::{ArtifactError, BUILD_RECORD_VERSION, DigestMismatch};

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

    pub(super) fn package_info(&self, created_from: String) -> package::BuildInfo {
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

    pub(super) fn record(
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
