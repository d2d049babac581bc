//! How a release's dependencies get installed, as the staging plan judges it: App Service's build
//! (`SCM_DO_BUILD_DURING_DEPLOYMENT`) judged on the value the release leaves on the slot, and the route the
//! package's layout and that value give, named in one plan line or refused before any change.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use slot_release_engine::journal::{JournalTags, Owned};
use slot_release_engine::package::PackageFiles;
use slot_release_engine::plan::{self, BuildInfo, Check, Plan, PlanInput, Stage};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::state::{LiveState, SlotName};

const SCM: &str = "SCM_DO_BUILD_DURING_DEPLOYMENT";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example() -> release::LoadedRelease {
    let request = LoadRequest {
        release_id: Some("20261122.7".to_owned()),
        variables: [
            ("BUILD_BUILDNUMBER", "20261122.7"),
            ("BUILD_BUILDID", "4711"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        ..LoadRequest::default()
    };
    let path = root().join("examples/python-webapp/release.yml");
    release::load(&path, &request).unwrap_or_else(|d| panic!("does not load:\n{d}"))
}

fn staged() -> LiveState {
    LiveState::from_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/staged.json"))
        .unwrap()
}

fn plan_with(
    loaded: &release::LoadedRelease,
    live: &LiveState,
    layout: Option<PackageFiles>,
) -> Plan {
    plan::compute(PlanInput {
        target: None,
        spec: &loaded.spec,
        stage: Stage::Staging,
        environment: None,
        state: live,
        build: &BuildInfo {
            release_id: loaded.release_id.clone(),
            layout,
            ..BuildInfo::default()
        },
    })
    .unwrap()
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
    let mut loaded = example();
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

/// Every combination of the live value and the config's: the value judged is the config's when it sets
/// one (the release writes it before the deploy), the live one only when it does not.
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
        (None, None, false),
    ];
    for (config, live, builds) in cases {
        let (loaded, state) = world(config, live);
        let plan = plan_with(&loaded, &state, None);
        let c = named(&plan, "scm-build");
        assert_eq!(
            c.ok, !builds,
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
    }
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
