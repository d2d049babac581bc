//! Loading a release for a run: the config with its variables resolved, the engine's spec, and the release id.
//!
//! In a pipeline the agent supplies `Build.BuildNumber` and friends; on a laptop (plan, rehearse) the build
//! variables fall back to a local release id so the same config works in both places.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use slot_release_config::{self as cfg, Diagnostics, LoadOptions, VariableMode, VariableSource};

use crate::identity::{IdentitySources, Release};
use crate::spec::{self, ReleaseSpec};

/// What a run needs to load its config.
#[derive(Debug, Clone, Default)]
pub struct LoadRequest {
    /// An explicit release id (`--release-id`): the identity and the display name, beating the pipeline's.
    pub release_id: Option<String>,
    /// The pipeline run's identity (see `AgentEnv::run_identity`), when running in a pipeline.
    pub run_identity: Option<String>,
    /// The variables `$(...)` in release.yml may name, by their environment names (`BUILD_BUILDNUMBER`):
    /// the job's, as `slot_release_pipelines::AgentEnv::vars` gives them. The engine reads no process
    /// environment of its own.
    pub variables: BTreeMap<String, String>,
    /// `Build.BuildNumber`, the release's display name in a pipeline.
    pub build_number: Option<String>,
    /// Resolve only the syntax of `$(...)` references (for `validate`).
    pub syntax_only: bool,
    /// The pipeline's sources (`System.DefaultWorkingDirectory`): when set, the package root must lie
    /// inside them, as the config file must.
    pub sources: Option<PathBuf>,
}

/// A loaded release.
#[derive(Debug, Clone)]
pub struct LoadedRelease {
    /// The config file.
    pub path: PathBuf,
    /// The config as loaded.
    pub loaded: cfg::Loaded,
    /// The engine's view of it.
    pub spec: ReleaseSpec,
    /// The release's identity.
    pub release_id: String,
    /// The release's display name (the build number).
    pub release_name: String,
}

/// The job's variables plus local fallbacks for the build variables.
#[derive(Debug, Clone)]
struct RunVariables {
    overrides: BTreeMap<String, String>,
    release_id: String,
    timestamp: String,
}

impl VariableSource for RunVariables {
    fn environment_variable(&self, name: &str) -> Option<String> {
        if let Some(v) = self.overrides.get(name) {
            return Some(v.clone());
        }
        // Outside a pipeline the build variables do not exist; the release id stands in for them.
        slot_release_pipelines::BuildRun::NAME_VARIABLES
            .contains(&name)
            .then(|| self.release_id.clone())
    }

    fn timestamp(&self) -> String {
        self.timestamp.clone()
    }
}

/// The release: an explicit `--release-id`; else the pipeline run's identity, named by `Build.BuildNumber`;
/// else the build number alone; else a local timestamp (see [`IdentitySources::resolve`]).
pub fn release(request: &LoadRequest) -> Result<Release, crate::Error> {
    let build_number = request.build_number.clone().filter(|v| !v.is_empty());
    IdentitySources {
        explicit: request.release_id.clone(),
        run: request.run_identity.clone(),
        build_number,
    }
    .resolve(|| {
        format!(
            "local-{}",
            cfg::vars::utc_timestamp(std::time::SystemTime::now())
        )
    })
}

/// Loads and validates the config, resolving variables unless `syntax_only`.
pub fn load(path: &Path, request: &LoadRequest) -> Result<LoadedRelease, Diagnostics> {
    let release = release(request).map_err(|err| {
        let mut diagnostics = Diagnostics::new();
        diagnostics.push(cfg::Diagnostic {
            severity: cfg::Severity::Error,
            code: "release-id",
            file: path.display().to_string(),
            line: 0,
            column: 0,
            path: String::new(),
            message: err.to_string(),
            help: Some("pass a release id with --release-id (task input releaseId)".into()),
            source_line: None,
            width: 1,
        });
        diagnostics
    })?;
    let release_id = release.id.to_string();
    let variables = if request.syntax_only {
        VariableMode::SyntaxOnly
    } else {
        VariableMode::Strict(Arc::new(RunVariables {
            overrides: request.variables.clone(),
            release_id: release.name.clone(),
            timestamp: cfg::vars::utc_timestamp(std::time::SystemTime::now()),
        }))
    };
    let loaded = cfg::load_file(path, &LoadOptions { variables })?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Some(sources) = &request.sources {
        cfg::check_package_root(&loaded, base, sources)?;
    }
    let spec = spec::from_config(&loaded.config, base);
    Ok(LoadedRelease {
        path: path.to_path_buf(),
        loaded,
        spec,
        release_id,
        release_name: release.name,
    })
}
