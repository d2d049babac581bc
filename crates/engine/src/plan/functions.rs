//! Azure Functions apps and plans without slots. A function app on a plan with slots (Elastic Premium,
//! Dedicated) is released as a web app is: staged, gated and swapped. What differs is what runs: the
//! Functions host starts the package itself (no startup command), finds it by `host.json` at the package
//! root, and learns the language from `FUNCTIONS_WORKER_RUNTIME`. A plan with no slot besides production
//! (Flex Consumption, Linux Consumption, Free, Shared, Basic) is refused before any change, saying why
//! and what to do instead.

use super::*;
use crate::package::{PYTHON_FUNCTIONS_DIR, PackageFiles};
use crate::state::SlotState;
use slot_release_config::stack::{PackageLayout, Runtime};

/// The setting that tells the Functions host which language worker runs the functions.
pub const WORKER_RUNTIME: &str = "FUNCTIONS_WORKER_RUNTIME";

/// The file the Functions host reads first; without it at the package root no function is found.
pub const HOST_JSON: &str = "host.json";

/// The `hosting-plan` check: shown for a function app, and for any app whose plan has no slots. A web
/// app on a plan with slots gets no line, so the plans people already read stay as they were.
pub(super) fn hosting_preflight(spec: &ReleaseSpec, state: &LiveState, plan: &mut Plan) {
    let hosting = &state.hosting;
    let tier = hosting.plan_tier.as_deref().unwrap_or("an unreported");
    if let Some(no) = hosting.no_slots() {
        plan.preflight.push(check(
            "hosting-plan",
            false,
            Error::NoDeploymentSlots {
                app: spec.app.name.clone(),
                plan: no.plan,
                advice: no.advice,
            }
            .to_string(),
        ));
    } else if hosting.function_app {
        plan.preflight.push(check(
            "hosting-plan",
            true,
            format!(
                "an Azure Functions app on {tier} plan tier, which has deployment slots: staged, gated and swapped like a web app"
            ),
        ));
    }
}

/// The `functions-host` check that takes the place of `startup-command` for a function app: the host
/// needs `FUNCTIONS_WORKER_RUNTIME` and, once the package is at hand, `host.json` at its root.
pub(super) fn functions_preflight(
    env: &EnvironmentSpec,
    state: &LiveState,
    slot: &SlotName,
    layout: Option<&PackageFiles>,
    plan: &mut Plan,
) {
    let runtime = worker_runtime(env, state, slot);
    let stack = state
        .slot(slot)
        .or_else(|| state.production())
        .and_then(|s| s.linux_fx_version.as_deref())
        .unwrap_or("no linuxFxVersion");
    let (ok, detail) = match (runtime, layout) {
        (None, _) => (
            false,
            format!(
                "{WORKER_RUNTIME} is set neither by the config nor on slot {slot} or production: the Functions host cannot tell which language worker runs the functions; set it in the environment's settings (python, node, dotnet-isolated, java, powershell or custom)"
            ),
        ),
        (Some(runtime), None) => (
            true,
            format!(
                "the Functions host runs the package ({WORKER_RUNTIME}={runtime}, {stack}); no startup command is needed; the staging stage checks {HOST_JSON} before any change"
            ),
        ),
        (Some(runtime), Some(files)) if files.has_file(HOST_JSON) => (
            true,
            format!(
                "the Functions host runs the package ({WORKER_RUNTIME}={runtime}, {stack}) from {HOST_JSON} at its root; no startup command is needed"
            ),
        ),
        (Some(_), Some(files)) => {
            let below = files.one_folder_down(HOST_JSON);
            let hint = if below.is_empty() {
                "add host.json to the package root (`func init` writes one)".to_owned()
            } else {
                format!(
                    "the package has it at {}: make that folder the package root (package.root)",
                    below.join(", ")
                )
            };
            (
                false,
                format!(
                    "the package has no {HOST_JSON} at its root, so the Functions host on slot {slot} would find no function and the slot would serve none: {hint}"
                ),
            )
        }
    };
    plan.preflight.push(check("functions-host", ok, detail));
}

/// The worker runtime the slot will have: the environment's, else the slot's own, else production's (a
/// slot being created starts from production's settings).
fn worker_runtime(env: &EnvironmentSpec, state: &LiveState, slot: &SlotName) -> Option<String> {
    env.settings
        .get(WORKER_RUNTIME)
        .cloned()
        .or_else(|| {
            state
                .slot(slot)
                .or_else(|| state.production())
                .and_then(|s: &SlotState| s.settings.get(WORKER_RUNTIME).cloned())
        })
        .map(|v| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// The `dependencies` check of a Python function app: the Functions Python worker reads the packages a
/// package brings in `.python_packages/lib/site-packages`, not a web app's `__oryx_packages__`.
pub(super) fn python_functions_dependencies(
    runtime: Runtime,
    builds: bool,
    layout: Option<&PackageFiles>,
) -> Option<Check> {
    if runtime != Runtime::Python {
        return None;
    }
    let (ok, detail) = match layout {
        None => (
            true,
            "the package is not built yet; the staging stage names how its dependencies get installed before any change".to_owned(),
        ),
        Some(_) if builds => (
            true,
            "built by App Service (Oryx) from requirements.txt on deployment".to_owned(),
        ),
        Some(files) if files.python_functions_dir => (
            true,
            format!("vendored in the package ({PYTHON_FUNCTIONS_DIR}), which the Functions Python worker reads"),
        ),
        Some(files) if files.has_requirements() => (
            false,
            format!(
                "the package lists dependencies in requirements.txt, but nothing installs them: App Service does not build it and the package brings no {PYTHON_FUNCTIONS_DIR}; set {SCM_BUILD} to \"true\", or vendor them before packaging: `pip install -r requirements.txt --target {PYTHON_FUNCTIONS_DIR}`"
            ),
        ),
        Some(_) => (
            true,
            "nothing to install: the package has no requirements.txt".to_owned(),
        ),
    };
    Some(check("dependencies", ok, detail))
}
