//! Shared by the engine's plan tests: a release config loaded as a pipeline run would load it, the live-state
//! fixtures, and a plan computed from them.

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use slot_release_engine::plan::{self, BuildInfo, Plan, PlanInput, Stage};
use slot_release_engine::release::{self, LoadRequest, LoadedRelease};
use slot_release_engine::state::LiveState;

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The agent's variables of the run every plan test pretends to be.
fn request() -> LoadRequest {
    LoadRequest {
        release_id: Some("20261122.7".to_owned()),
        variables: [
            ("BUILD_BUILDNUMBER", "20261122.7"),
            ("BUILD_BUILDID", "4711"),
            (
                "STAGING_URL",
                "https://contoso-api-staging.azurewebsites.net",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        ..LoadRequest::default()
    }
}

/// A release config, loaded for the run of [`request`].
pub fn load(path: &Path) -> LoadedRelease {
    release::load(path, &request())
        .unwrap_or_else(|d| panic!("{} does not load:\n{d}", path.display()))
}

/// The bundled example `examples/<name>/release.yml`.
pub fn example(name: &str) -> LoadedRelease {
    load(&root().join("examples").join(name).join("release.yml"))
}

/// `tests/fixtures/<name>`: a live state as `plan --state` reads it.
pub fn fixture(name: &str) -> LiveState {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    LiveState::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The plan of `stage` with `build` (its release id taken from the loaded release).
pub fn plan_built(
    loaded: &LoadedRelease,
    stage: Stage,
    state: &LiveState,
    build: BuildInfo,
) -> Plan {
    plan::compute(PlanInput {
        target: None,
        spec: &loaded.spec,
        stage,
        environment: None,
        state,
        build: &BuildInfo {
            release_id: loaded.release_id.clone(),
            ..build
        },
    })
    .unwrap()
}

/// The plan of `stage`, with nothing known about the package.
pub fn plan_for(loaded: &LoadedRelease, stage: Stage, state: &LiveState) -> Plan {
    plan_built(loaded, stage, state, BuildInfo::default())
}
