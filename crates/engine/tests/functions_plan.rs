//! Azure Functions apps as the plans judge them: on a plan with slots a function app is staged and
//! swapped like a web app, its host found by `host.json` and its language by `FUNCTIONS_WORKER_RUNTIME`
//! (no startup command); on a plan without slots every stage that needs one is refused, naming why and
//! what to do instead.

use slot_release_engine::package::PackageFiles;
use slot_release_engine::plan::{Action, BuildInfo, Check, Plan, Stage};
use slot_release_engine::release::LoadedRelease;
use slot_release_engine::state::{Hosting, LiveState, SlotName, SlotState};

mod support;
use support::{example, plan_built, plan_for};

/// The function app before its first release: production only, on `tier`.
fn function_app(tier: &str, flex: bool, worker: Option<&str>) -> LiveState {
    let mut production = SlotState::default();
    if let Some(w) = worker {
        production
            .settings
            .insert("FUNCTIONS_WORKER_RUNTIME".into(), w.into());
    }
    LiveState {
        slots: [(SlotName::production(), production)].into_iter().collect(),
        hosting: Hosting {
            function_app: true,
            plan_tier: Some(tier.into()),
            function_app_config: flex,
            linux: true,
        },
        ..LiveState::default()
    }
}

fn check<'a>(plan: &'a Plan, name: &str) -> &'a Check {
    plan.preflight
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check:\n{}", plan.render()))
}

fn staging(loaded: &LoadedRelease, state: &LiveState, names: Option<&[&str]>) -> Plan {
    plan_built(
        loaded,
        Stage::Staging,
        state,
        BuildInfo {
            layout: names.map(|n| PackageFiles::from_names(n.iter().copied(), None)),
            ..BuildInfo::default()
        },
    )
}

const PACKAGE: &[&str] = &["host.json", "handler.py", "health/function.json"];

#[test]
fn a_function_app_on_premium_is_staged_like_a_web_app_without_a_startup_command() {
    let loaded = example("functions-app");
    for tier in ["ElasticPremium", "Standard", "PremiumV3"] {
        let plan = staging(&loaded, &function_app(tier, false, None), Some(PACKAGE));
        assert!(
            plan.problems().next().is_none(),
            "{tier}:\n{}",
            plan.render()
        );
        assert!(check(&plan, "hosting-plan").detail.contains(tier));
        let host = &check(&plan, "functions-host").detail;
        assert!(
            host.contains("FUNCTIONS_WORKER_RUNTIME=custom") && host.contains("no startup command"),
            "{host}"
        );
        // No startup-command rule applies: the host runs the package.
        assert!(plan.preflight.iter().all(|c| c.name != "startup-command"));
        let staging_slot = SlotName::new("staging").unwrap();
        assert!(plan.steps.iter().any(|s| matches!(
            &s.action, Action::DeployPackage { slot, .. } if *slot == staging_slot
        )));
        assert!(plan.steps.iter().any(|s| matches!(
            &s.action, Action::HealthGate { slot, .. } if *slot == staging_slot
        )));
    }
}

#[test]
fn a_package_without_host_json_at_its_root_is_refused_naming_it() {
    let loaded = example("functions-app");
    let state = function_app("ElasticPremium", false, None);
    let plan = staging(
        &loaded,
        &state,
        Some(&["handler.py", "health/function.json"]),
    );
    let host = check(&plan, "functions-host");
    assert!(
        !host.ok && host.detail.contains("no host.json at its root"),
        "{host:?}"
    );
    // One folder down: the fix names the folder.
    let plan = staging(&loaded, &state, Some(&["src/host.json", "src/handler.py"]));
    let host = check(&plan, "functions-host");
    assert!(
        !host.ok && host.detail.contains("src/host.json"),
        "{host:?}"
    );
}

#[test]
fn the_worker_runtime_comes_from_the_config_else_the_live_slot() {
    let mut loaded = example("functions-app");
    for env in loaded.spec.environments.values_mut() {
        env.settings.remove("FUNCTIONS_WORKER_RUNTIME");
    }
    let plan = staging(
        &loaded,
        &function_app("ElasticPremium", false, None),
        Some(PACKAGE),
    );
    let host = check(&plan, "functions-host");
    assert!(
        !host.ok
            && host
                .detail
                .contains("FUNCTIONS_WORKER_RUNTIME is set neither"),
        "{host:?}"
    );
    let plan = staging(
        &loaded,
        &function_app("ElasticPremium", false, Some("Python")),
        Some(PACKAGE),
    );
    let host = check(&plan, "functions-host");
    assert!(host.ok && host.detail.contains("=python"), "{host:?}");
}

#[test]
fn a_python_function_app_vendors_into_python_packages() {
    let loaded = example("functions-app");
    let mut state = function_app("ElasticPremium", false, Some("python"));
    state
        .slots
        .get_mut(&SlotName::production())
        .unwrap()
        .linux_fx_version = Some("PYTHON|3.11".into());
    let mut loaded = loaded;
    loaded.spec.app.stack = Some("PYTHON|3.11".into());
    for env in loaded.spec.environments.values_mut() {
        env.settings
            .insert("FUNCTIONS_WORKER_RUNTIME".into(), "python".into());
    }
    let plan = staging(
        &loaded,
        &state,
        Some(&["host.json", "function_app.py", "requirements.txt"]),
    );
    let deps = check(&plan, "dependencies");
    assert!(
        !deps.ok
            && deps
                .detail
                .contains("--target .python_packages/lib/site-packages"),
        "{deps:?}"
    );
    let plan = staging(
        &loaded,
        &state,
        Some(&[
            "host.json",
            "function_app.py",
            "requirements.txt",
            ".python_packages/lib/site-packages/azure/functions/__init__.py",
        ]),
    );
    assert!(plan.problems().next().is_none(), "{}", plan.render());
    // No requirements.txt: nothing to install, nothing refused.
    let plan = staging(&loaded, &state, Some(&["host.json", "function_app.py"]));
    let deps = check(&plan, "dependencies");
    assert!(
        deps.ok && deps.detail.contains("no requirements.txt"),
        "{deps:?}"
    );
    // App Service builds it on deployment: the same unvendored package passes, and the plan says why.
    for env in loaded.spec.environments.values_mut() {
        env.settings
            .insert("SCM_DO_BUILD_DURING_DEPLOYMENT".into(), "true".into());
    }
    let plan = staging(
        &loaded,
        &state,
        Some(&["host.json", "function_app.py", "requirements.txt"]),
    );
    let deps = check(&plan, "dependencies");
    assert!(
        deps.ok && deps.detail.contains("built by App Service"),
        "{deps:?}"
    );
}

#[test]
fn plans_without_slots_are_refused_before_any_change_with_what_to_do() {
    let loaded = example("functions-app");
    for (state, plan_name) in [
        (
            function_app("FlexConsumption", true, None),
            "Flex Consumption plan",
        ),
        (
            function_app("Dynamic", false, None),
            "Linux Consumption plan",
        ),
    ] {
        for stage in [Stage::Staging, Stage::Production] {
            let plan = plan_for(&loaded, stage, &state);
            let hosting = check(&plan, "hosting-plan");
            assert!(!hosting.ok, "{stage}: {hosting:?}");
            for words in [
                plan_name,
                "no deployment slots",
                "Elastic Premium",
                "not something this task does",
            ] {
                assert!(
                    hosting.detail.contains(words),
                    "{stage}: {words}: {}",
                    hosting.detail
                );
            }
        }
    }
    // Windows Consumption keeps one staging slot.
    let mut windows = function_app("Dynamic", false, None);
    windows.hosting.linux = false;
    let plan = plan_for(&loaded, Stage::Staging, &windows);
    assert!(check(&plan, "hosting-plan").ok, "{}", plan.render());
}

#[test]
fn a_web_app_on_a_plan_with_slots_gets_no_hosting_line() {
    let loaded = example("python-webapp");
    let mut state: LiveState = support::fixture("staged.json");
    state.hosting.plan_tier = Some("Standard".into());
    let plan = plan_for(&loaded, Stage::Staging, &state);
    assert!(
        plan.preflight.iter().all(|c| c.name != "hosting-plan"),
        "{}",
        plan.render()
    );
    state.hosting.plan_tier = Some("Basic".into());
    let plan = plan_for(&loaded, Stage::Staging, &state);
    assert!(!check(&plan, "hosting-plan").ok, "{}", plan.render());
}

/// What a reader sees: the staging plan of a function app on Elastic Premium, and the one refused on Flex
/// Consumption (the app's kind and plan named in the `hosting-plan` line).
#[test]
fn the_staging_plans_read_as_snapshotted() {
    let loaded = example("functions-app");
    for (name, state) in [
        ("premium", function_app("ElasticPremium", false, None)),
        ("flex", function_app("FlexConsumption", true, None)),
    ] {
        let plan = staging(&loaded, &state, Some(PACKAGE));
        insta::assert_snapshot!(format!("functions_staging_plan_{name}"), plan.render());
    }
}
