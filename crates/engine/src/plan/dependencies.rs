//! How a code release's dependencies get installed on App Service, said in one plan line before any
//! change: built by App Service from `requirements.txt` or `package.json` when
//! `SCM_DO_BUILD_DURING_DEPLOYMENT` is on (judged on the value the release leaves on the slot: the
//! environment's own setting when the config has one, the live value only when it has none), or brought
//! in the package (`__oryx_packages__`, `antenv`, `node_modules`). A package that needs dependencies and
//! gets them by neither route would start without them, so it is refused, naming both fixes.

use super::*;
use crate::package::{PYTHON_FUNCTIONS_DIR, PYTHON_VENDORED_DIR, PYTHON_VENV_DIR, PackageFiles};
use crate::state::SlotState;
use slot_release_config::stack::Runtime;

/// The setting Kudu reads to run a build (Oryx on Linux) on a push deployment.
pub const SCM_BUILD: &str = "SCM_DO_BUILD_DURING_DEPLOYMENT";

/// Where the value a deployment sees comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// The environment sets it; the release writes it before the package is deployed.
    Config,
    /// The config does not set it: the slot keeps the value it has.
    Live,
    /// The config no longer declares it and the release removes it (a release owned it).
    Removed,
    /// Set nowhere.
    Unset,
}

/// A setting as the deployment will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Effective {
    /// The value, when the slot will have one.
    pub(super) value: Option<String>,
    /// Where it comes from.
    pub(super) origin: Origin,
}

impl Effective {
    /// The value of `name` the release leaves on the slot: the environment's, else (unless a planned
    /// removal takes it away) the slot's own.
    pub(super) fn of(
        name: &str,
        env: &EnvironmentSpec,
        live: Option<&SlotState>,
        removed: bool,
    ) -> Self {
        if let Some(v) = env.settings.get(name) {
            return Self {
                value: Some(v.clone()),
                origin: Origin::Config,
            };
        }
        if removed {
            return Self {
                value: None,
                origin: Origin::Removed,
            };
        }
        match live.and_then(|s| s.settings.get(name)) {
            Some(v) => Self {
                value: Some(v.clone()),
                origin: Origin::Live,
            },
            None => Self {
                value: None,
                origin: Origin::Unset,
            },
        }
    }

    /// Kudu's reading: `true` or `1` in any case.
    pub(super) fn is_true(&self) -> bool {
        self.value
            .as_deref()
            .map(str::trim)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// How the plan names the value and where it comes from.
    pub(super) fn describe(&self, name: &str, env_name: &str, slot: &SlotName) -> String {
        match (&self.origin, &self.value) {
            (Origin::Config, Some(v)) => {
                format!("{name} is {v:?} on {slot} (set by environment {env_name})")
            }
            (Origin::Live, Some(v)) => {
                format!(
                    "{name} is {v:?} on {slot} (the slot's own; environment {env_name} does not set it)"
                )
            }
            (Origin::Removed, _) => {
                format!("{name} is removed from {slot} (the config no longer declares it)")
            }
            _ => format!("{name} is not set on {slot}"),
        }
    }
}

/// Whether one of the plan's removal steps takes the app setting `name` off the slot.
pub(super) fn removes(steps: &[Step], name: &str) -> bool {
    steps.iter().any(|step| {
        matches!(&step.action, Action::RemoveSettings { removals, .. }
            if removals.iter().any(|r| r.name == name))
    })
}

/// What the release leaves on the slot that decides whether App Service builds the deployment.
pub(super) struct BuildSettings {
    /// `SCM_DO_BUILD_DURING_DEPLOYMENT`.
    pub(super) build: Effective,
    /// `WEBSITE_RUN_FROM_PACKAGE`: a site run from its zip is mounted as deployed, never built.
    pub(super) run_from_package: Effective,
}

impl BuildSettings {
    /// Whether App Service will build the deployment.
    pub(super) fn builds(&self) -> bool {
        self.build.is_true() && !self.runs_from_package()
    }

    fn runs_from_package(&self) -> bool {
        self.run_from_package.value.as_deref().map(str::trim) == Some("1")
    }
}

/// The `scm-build` check: whether App Service builds the package, and a build asked for that cannot run.
pub(super) fn scm_build_check(env_name: &str, slot: &SlotName, settings: &BuildSettings) -> Check {
    let said = settings.build.describe(SCM_BUILD, env_name, slot);
    if settings.build.is_true() && settings.runs_from_package() {
        check(
            "scm-build",
            false,
            format!(
                "{said}, but WEBSITE_RUN_FROM_PACKAGE is \"1\": App Service runs the zip as deployed and never builds it; set {SCM_BUILD} to \"false\" for environment {env_name} and bring the dependencies in the package, or stop running from the package"
            ),
        )
    } else if settings.build.is_true() {
        check(
            "scm-build",
            true,
            format!("{said}: App Service builds the package on deployment"),
        )
    } else {
        check(
            "scm-build",
            true,
            format!("{said}: the deployed package is used as built"),
        )
    }
}

/// The `dependencies` check of a Python or Node stack: the route the dependencies take, or why none does.
pub(super) fn dependencies_check(
    env_name: &str,
    slot: &SlotName,
    runtime: Runtime,
    settings: &BuildSettings,
    layout: Option<&PackageFiles>,
) -> Option<Check> {
    let (ok, detail) = match (runtime, layout) {
        (Runtime::Python | Runtime::Node, None) => (
            true,
            if settings.builds() {
                "built by App Service from the package on deployment; the staging stage reads the package before any change".to_owned()
            } else {
                "the package is not built yet; the staging stage names how its dependencies get installed before any change".to_owned()
            },
        ),
        (Runtime::Python, Some(files)) => python(env_name, slot, settings, files),
        (Runtime::Node, Some(files)) => node(env_name, slot, settings, files),
        _ => return None,
    };
    Some(check("dependencies", ok, detail))
}

fn python(
    env_name: &str,
    slot: &SlotName,
    settings: &BuildSettings,
    files: &PackageFiles,
) -> (bool, String) {
    let nested = files.nested_requirements.join(", ");
    if settings.builds() {
        return if files.has_requirements() {
            (
                true,
                format!(
                    "built by App Service (Oryx) from requirements.txt into the virtual environment {PYTHON_VENV_DIR}"
                ),
            )
        } else if !files.nested_requirements.is_empty() {
            (
                false,
                format!(
                    "App Service's build reads requirements.txt at the package root only, and this package has it at {nested}: make the folder holding it the package root (package.root), or vendor the packages and set {SCM_BUILD} to \"false\""
                ),
            )
        } else if files.python_vendored {
            (
                false,
                format!(
                    "App Service's build creates the virtual environment {PYTHON_VENV_DIR}, and with one in the site its startup ignores {PYTHON_VENDORED_DIR}: set {SCM_BUILD} to \"false\" for environment {env_name}, or ship requirements.txt at the package root"
                ),
            )
        } else {
            (
                true,
                "nothing to install: the package has no requirements.txt".to_owned(),
            )
        };
    }
    if files.python_vendored {
        return (
            true,
            format!(
                "vendored in the package ({PYTHON_VENDORED_DIR}), which App Service's Python startup puts on the path"
            ),
        );
    }
    if files.python_venv {
        return (
            true,
            format!(
                "vendored in the package's virtual environment {PYTHON_VENV_DIR}, whose site-packages App Service's Python startup puts on PYTHONPATH (built for the stack's Python version)"
            ),
        );
    }
    let functions = if files.python_functions_dir {
        format!(
            " (its {PYTHON_FUNCTIONS_DIR} is Azure Functions' folder, which a web app's startup does not read)"
        )
    } else {
        String::new()
    };
    let requirements = if files.has_requirements() {
        "requirements.txt".to_owned()
    } else if !files.nested_requirements.is_empty() {
        nested
    } else if files.python_functions_dir {
        return (
            false,
            format!(
                "the package vendors its packages in {PYTHON_FUNCTIONS_DIR}, Azure Functions' folder, which a web app's startup does not read: install them into {PYTHON_VENDORED_DIR} at the package root instead (`pip install -r requirements.txt --target {PYTHON_VENDORED_DIR}`)"
            ),
        );
    } else {
        return (
            true,
            "nothing to install: the package has no requirements.txt".to_owned(),
        );
    };
    let said = settings.build.describe(SCM_BUILD, env_name, slot);
    (
        false,
        format!(
            "the package lists dependencies in {requirements}, but nothing installs them: {said}, and the package brings no {PYTHON_VENDORED_DIR}{functions}; the app would start without them. Set {SCM_BUILD} to \"true\" in environment {env_name}'s settings (App Service then builds requirements.txt at the package root), or vendor them with a build step before packaging: `pip install -r requirements.txt --target {PYTHON_VENDORED_DIR}` in the package root"
        ),
    )
}

fn node(
    env_name: &str,
    slot: &SlotName,
    settings: &BuildSettings,
    files: &PackageFiles,
) -> (bool, String) {
    if !files.node_dependencies {
        return (
            true,
            "nothing to install: package.json lists no dependencies".to_owned(),
        );
    }
    if settings.builds() {
        return (
            true,
            "built by App Service from package.json (npm install on deployment)".to_owned(),
        );
    }
    if files.node_modules {
        return (true, "node_modules in the package".to_owned());
    }
    let said = settings.build.describe(SCM_BUILD, env_name, slot);
    (
        false,
        format!(
            "package.json lists dependencies, but nothing installs them: {said}, and the package has no node_modules; the app would start without them. Set {SCM_BUILD} to \"true\" in environment {env_name}'s settings, or install them with a build step before packaging: `npm ci --omit=dev` (and keep node_modules in the package: .gitignore often lists it, and package.ignoreFiles honours it)"
        ),
    )
}
