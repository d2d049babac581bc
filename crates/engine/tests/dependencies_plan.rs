//! How a release's dependencies get installed, as the staging plan judges it: App Service's build
//! (`SCM_DO_BUILD_DURING_DEPLOYMENT`) judged on the value the release leaves on the slot, and the route the
//! package's layout and that value give, named in one plan line or refused before any change.

use std::collections::{BTreeMap, BTreeSet};

use slot_release_engine::journal::{JournalTags, Owned};
use slot_release_engine::package::PackageFiles;
use slot_release_engine::plan::{BuildInfo, Check, Plan, Stage};
use slot_release_engine::release::{self};
use slot_release_engine::state::{LiveState, SlotName};

mod support;
use support::{example, fixture, plan_built};

const SCM: &str = "SCM_DO_BUILD_DURING_DEPLOYMENT";

fn staged() -> LiveState {
    fixture("staged.json")
}

fn plan_with(
    loaded: &release::LoadedRelease,
    live: &LiveState,
    layout: Option<PackageFiles>,
) -> Plan {
    plan_built(
        loaded,
        Stage::Staging,
        live,
        BuildInfo {
            layout,
            ..BuildInfo::default()
        },
    )
}

fn named<'a>(plan: &'a Plan, name: &str) -> &'a Check {
    plan.preflight
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} check:\n{}", plan.render()))
}

/// The example with the staging environment setting `SCM_DO_BUILD_DURING_DEPLOYMENT` (or not), and the
/// staging slot holding `live` (or not).
fn world(config: Option<&str>, live: Option<&str>) -> (release::LoadedRelease, LiveState) {
    let mut loaded = example("python-webapp");
    let env = loaded.spec.environments.get_mut("staging").unwrap();
    if let Some(v) = config {
        env.settings.insert(SCM.into(), v.into());
    }
    let mut state = staged();
    if let Some(v) = live {
        state
            .slots
            .get_mut("staging")
            .unwrap()
            .settings
            .insert(SCM.into(), v.into());
    }
    (loaded, state)
}

fn requirements_only() -> PackageFiles {
    PackageFiles::from_names(["app.py", "requirements.txt"], None)
}

/// Every combination of the live value and the config's: the value judged is the config's when it sets
/// one (the release writes it before the deploy), the live one only when it does not. A package listing
/// requirements and vendoring none is built by App Service exactly when the judged value is on, and
/// refused otherwise.
#[test]
fn the_build_setting_is_judged_on_the_value_the_release_sets() {
    // (config, live, App Service builds)
    let cases = [
        (Some("false"), Some("true"), false), // issue 16: the plan itself turns the build off
        (Some("true"), Some("true"), true),
        (None, Some("true"), true),
        (Some("true"), Some("false"), true), // the plan turns the build on
        (Some("false"), Some("false"), false),
        (None, Some("false"), false),
        (Some("1"), None, true),
        (Some("TRUE"), None, true),
        (None, None, false),
    ];
    for (config, live, builds) in cases {
        let (loaded, state) = world(config, live);
        let plan = plan_with(&loaded, &state, Some(requirements_only()));
        let c = named(&plan, "scm-build");
        assert!(c.ok, "config {config:?}, live {live:?}: {}", c.detail);
        let said = if builds {
            "App Service builds the package"
        } else {
            "used as built"
        };
        assert!(
            c.detail.contains(said),
            "config {config:?}, live {live:?}: {}",
            c.detail
        );
        let source = if config.is_some() {
            "set by environment staging"
        } else if live.is_some() {
            "the slot's own"
        } else {
            "not set"
        };
        assert!(
            c.detail.contains(source),
            "config {config:?}, live {live:?}: {}",
            c.detail
        );
        let d = named(&plan, "dependencies");
        assert_eq!(
            d.ok, builds,
            "config {config:?}, live {live:?}: {}",
            d.detail
        );
        if builds {
            assert!(
                d.detail
                    .starts_with("built by App Service (Oryx) from requirements.txt"),
                "{}",
                d.detail
            );
        }
    }
}

/// A package with requirements and neither route is refused before any change, naming both fixes; the
/// refusal keeps the stage from changing anything.
#[test]
fn requirements_with_neither_route_are_refused_naming_both_fixes() {
    let (loaded, state) = world(Some("false"), Some("true"));
    let plan = plan_with(&loaded, &state, Some(requirements_only()));
    let d = named(&plan, "dependencies");
    assert!(!d.ok, "{}", plan.render());
    for fix in [
        "Set SCM_DO_BUILD_DURING_DEPLOYMENT to \"true\" in environment staging's settings",
        "pip install -r requirements.txt --target __oryx_packages__",
        "set by environment staging",
    ] {
        assert!(d.detail.contains(fix), "{fix:?} not in {}", d.detail);
    }
    assert_eq!(plan.problems().count(), 1, "{}", plan.render());
    // Azure Functions' folder is no route for a web app, and the refusal says so.
    let functions = PackageFiles::from_names(
        [
            "app.py",
            "requirements.txt",
            ".python_packages/lib/site-packages/flask/__init__.py",
        ],
        None,
    );
    let plan = plan_with(&loaded, &state, Some(functions));
    let d = named(&plan, "dependencies");
    assert!(
        !d.ok && d.detail.contains("Azure Functions"),
        "{}",
        d.detail
    );
}

/// The routes a package can take, each named in the plan's one dependencies line.
#[test]
fn each_python_route_is_named_in_the_plan() {
    let vendored = || {
        PackageFiles::from_names(
            [
                "app.py",
                "requirements.txt",
                "__oryx_packages__/flask/__init__.py",
                "__oryx_packages__/bin/gunicorn",
            ],
            None,
        )
    };
    let (loaded, off) = world(Some("false"), None);
    let plan = plan_with(&loaded, &off, Some(vendored()));
    let d = named(&plan, "dependencies");
    assert!(d.ok, "{}", plan.render());
    assert!(
        d.detail
            .starts_with("vendored in the package (__oryx_packages__)"),
        "{}",
        d.detail
    );
    let venv = PackageFiles::from_names(
        [
            "app.py",
            "requirements.txt",
            "antenv/lib/python3.12/site-packages/flask/__init__.py",
        ],
        None,
    );
    let plan = plan_with(&loaded, &off, Some(venv));
    assert!(named(&plan, "dependencies").ok, "{}", plan.render());
    let plain = PackageFiles::from_names(["app.py"], None);
    let plan = plan_with(&loaded, &off, Some(plain));
    let d = named(&plan, "dependencies");
    assert!(
        d.ok && d.detail.contains("nothing to install"),
        "{}",
        d.detail
    );

    let (loaded, on) = world(Some("true"), None);
    // Oryx reads requirements.txt at the root only.
    let nested = PackageFiles::from_names(
        [
            "application/single_app/app.py",
            "application/single_app/requirements.txt",
        ],
        None,
    );
    let plan = plan_with(&loaded, &on, Some(nested));
    let d = named(&plan, "dependencies");
    assert!(!d.ok, "{}", plan.render());
    assert!(
        d.detail.contains("application/single_app/requirements.txt")
            && d.detail.contains("package.root"),
        "{}",
        d.detail
    );
    // A build creates antenv, and with it the startup ignores the vendored folder.
    let vendored_only =
        PackageFiles::from_names(["app.py", "__oryx_packages__/flask/__init__.py"], None);
    let plan = plan_with(&loaded, &on, Some(vendored_only));
    let d = named(&plan, "dependencies");
    assert!(
        !d.ok && d.detail.contains("ignores __oryx_packages__"),
        "{}",
        d.detail
    );
    // Before the package is built (`plan` in a pull request) the line says the stage will judge it.
    let plan = plan_with(&loaded, &on, None);
    assert!(named(&plan, "dependencies").ok, "{}", plan.render());
}

/// A site run from its zip is never built: a build asked for there is refused, and the dependencies are
/// judged as unbuilt.
#[test]
fn a_build_on_a_site_run_from_its_package_is_refused() {
    let (mut loaded, state) = world(Some("true"), None);
    loaded
        .spec
        .environments
        .get_mut("staging")
        .unwrap()
        .settings
        .insert("WEBSITE_RUN_FROM_PACKAGE".into(), "1".into());
    let plan = plan_with(&loaded, &state, Some(requirements_only()));
    let c = named(&plan, "scm-build");
    assert!(
        !c.ok && c.detail.contains("never builds it"),
        "{}",
        c.detail
    );
    assert!(!named(&plan, "dependencies").ok, "{}", plan.render());
}

/// Node: `node_modules` in the package, or App Service's build of package.json, or refused.
#[test]
fn each_node_route_is_named_in_the_plan_and_neither_is_refused() {
    let package_json =
        r#"{"scripts": {"start": "node server.js"}, "dependencies": {"left-pad": "1.3.0"}}"#;
    let (mut loaded, off) = world(None, None);
    loaded.spec.app.stack = Some("NODE|20-lts".into());
    let bare = PackageFiles::from_names(["package.json", "server.js"], Some(package_json));
    let plan = plan_with(&loaded, &off, Some(bare.clone()));
    let d = named(&plan, "dependencies");
    assert!(!d.ok, "{}", plan.render());
    assert!(
        d.detail.contains("npm ci --omit=dev")
            && d.detail
                .contains("SCM_DO_BUILD_DURING_DEPLOYMENT to \"true\""),
        "{}",
        d.detail
    );
    let vendored = PackageFiles::from_names(
        [
            "package.json",
            "server.js",
            "node_modules/left-pad/index.js",
        ],
        Some(package_json),
    );
    let plan = plan_with(&loaded, &off, Some(vendored));
    assert_eq!(
        named(&plan, "dependencies").detail,
        "node_modules in the package"
    );
    let none = PackageFiles::from_names(
        ["package.json", "server.js"],
        Some(r#"{"scripts": {"start": "node server.js"}}"#),
    );
    let plan = plan_with(&loaded, &off, Some(none));
    assert!(named(&plan, "dependencies").ok, "{}", plan.render());
    loaded
        .spec
        .environments
        .get_mut("staging")
        .unwrap()
        .settings
        .insert(SCM.into(), "true".into());
    let plan = plan_with(&loaded, &off, Some(bare));
    let d = named(&plan, "dependencies");
    assert!(
        d.ok && d
            .detail
            .starts_with("built by App Service from package.json"),
        "{}",
        d.detail
    );
    // Stacks that run a published app say nothing of dependencies.
    loaded.spec.app.stack = Some("DOTNETCORE|8.0".into());
    let plan = plan_with(&loaded, &off, Some(PackageFiles::default()));
    assert!(
        plan.preflight.iter().all(|c| c.name != "dependencies"),
        "{}",
        plan.render()
    );
}

/// A release that owned the setting and no longer declares it removes it: the build is then off.
#[test]
fn a_build_setting_the_release_removes_is_judged_absent() {
    let (loaded, mut state) = world(None, Some("true"));
    let mut journal = JournalTags::from_tags(&state.tags).unwrap();
    journal.release.get_or_insert_with(|| "r1".into());
    let mut owned = BTreeMap::new();
    for slot in ["staging", "production"] {
        owned.insert(
            SlotName::new(slot).unwrap(),
            Owned {
                release: "r1".into(),
                settings: BTreeSet::from([SCM.to_owned()]),
                connection_strings: BTreeSet::new(),
            },
        );
    }
    journal.owned = Some(owned);
    journal.apply_to(&mut state.tags);
    let plan = plan_with(&loaded, &state, None);
    let c = named(&plan, "scm-build");
    assert!(c.ok && c.detail.contains("removed"), "{}", plan.render());
}
