//! Connection strings in plans: each environment's written to its slot when it differs, sticky or
//! travelling by the settings' rule, their secrets pulled with the settings', owned ones taken out when
//! the config drops them, a rollback's redeploy bringing its release's travelling ones back; and the plan
//! shows names, types and where values come from, never a value.

use std::collections::BTreeMap;

use slot_release_engine::journal::{JournalTags, Owned};
use slot_release_engine::plan::{
    self, Action, BuildInfo, ConnectionStringChange, Plan, PlanInput, Shown, Stage,
};
use slot_release_engine::release::LoadedRelease;
use slot_release_engine::state::{ConnectionStringState, LiveState, SlotName};

mod support;
use support::{fixture, root};

/// The values release.yml writes: none may appear in a plan.
const VALUES: [&str; 3] = ["stg-pw-1", "prod-pw-2", "shared-key-9"];

const STAGING: &str = "    connectionStrings:
      Db:
        value: Server=tcp:staging-db;Password=stg-pw-1
        type: SQLAzure
      Cache:
        secret: cache-conn
        type: RedisCache
      Shared:
        value: Endpoint=sb://shared/;SharedAccessKey=shared-key-9
        type: ServiceBus
      Bus:
        secret: bus-conn
        type: ServiceBus
        delivery: value
";

const PRODUCTION: &str = "    connectionStrings:
      Db:
        value: Server=tcp:prod-db;Password=prod-pw-2
        type: SQLAzure
      Cache:
        secret: cache-conn
        type: RedisCache
      Shared:
        value: Endpoint=sb://shared/;SharedAccessKey=shared-key-9
        type: ServiceBus
      Bus:
        secret: bus-conn
        type: ServiceBus
        delivery: value
";

/// The python example with connection strings in both environments, `edit` applied last.
fn load(edit: impl FnOnce(String) -> String) -> (LoadedRelease, tempfile::TempDir) {
    let text = std::fs::read_to_string(root().join("examples/python-webapp/release.yml")).unwrap();
    let text = text
        .replace(
            "    slot: staging\n    createSlot: true\n",
            &format!("    slot: staging\n    createSlot: true\n{STAGING}"),
        )
        .replace(
            "    slot: production\n",
            &format!("    slot: production\n{PRODUCTION}"),
        );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("release.yml");
    std::fs::write(&config, edit(text)).unwrap();
    let loaded = support::load(&config);
    (loaded, dir)
}

fn plan_with(
    loaded: &LoadedRelease,
    stage: Stage,
    state: &LiveState,
    target: Option<&slot_release_engine::spec::ReleaseSpec>,
    build: BuildInfo,
) -> Plan {
    plan::compute(PlanInput {
        target,
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

fn plan_for(loaded: &LoadedRelease, stage: Stage, state: &LiveState) -> Plan {
    plan_with(loaded, stage, state, None, BuildInfo::default())
}

fn cs(kind: &str, value: &str) -> ConnectionStringState {
    ConnectionStringState {
        kind: kind.into(),
        value: value.into(),
    }
}

fn put(live: &mut LiveState, slot: &str, name: &str, value: ConnectionStringState) {
    live.slots
        .entry(sn(slot))
        .or_default()
        .connection_strings
        .insert(name.into(), value);
}

fn sn(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

/// Every `SetConnectionStrings` step of a plan, by slot.
fn sets(plan: &Plan) -> Vec<(SlotName, Vec<ConnectionStringChange>)> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetConnectionStrings { slot, changes } => Some((slot.clone(), changes.clone())),
            _ => None,
        })
        .collect()
}

fn names(changes: &[ConnectionStringChange]) -> Vec<&str> {
    changes.iter().map(|c| c.name.as_str()).collect()
}

fn assert_no_value(text: &str) {
    for value in VALUES {
        assert!(!text.contains(value), "the plan shows `{value}`:\n{text}");
    }
}

#[test]
fn staging_and_production_plans_show_names_types_and_origins_never_values() {
    let (loaded, _dir) = load(|t| t);
    let mut staged = fixture("staged.json");
    // Production holds last release's: the same Db password, an older Cache reference and type.
    put(
        &mut staged,
        "production",
        "Db",
        cs("SQLAzure", "Server=tcp:prod-db;Password=prod-pw-2"),
    );
    put(&mut staged, "production", "Cache", cs("Custom", "old"));
    staged.sticky_connection_strings.insert("Db".into());
    for (name, stage, live) in [
        (
            "staging",
            Stage::Staging,
            fixture("before-first-release.json"),
        ),
        ("production", Stage::Production, staged),
    ] {
        let plan = plan_for(&loaded, stage, &live);
        let text = plan
            .render()
            .replace(&root().display().to_string(), "<repo>");
        let json = plan
            .to_json()
            .replace(&root().display().to_string(), "<repo>");
        assert_no_value(&text);
        assert_no_value(&json);
        let debug = format!("{plan:?}");
        assert_no_value(&debug);
        // What a step writes is marked as concealed, not silently absent.
        assert!(debug.contains("<concealed>"), "{debug}");
        let mut settings = insta::Settings::clone_current();
        settings.set_snapshot_suffix(name);
        settings.set_prepend_module_to_snapshot(false);
        settings.bind(|| {
            insta::assert_snapshot!("connection_strings_plan", text);
            insta::assert_json_snapshot!(
                "connection_strings_plan_json",
                serde_json::from_str::<serde_json::Value>(&json).unwrap()
            );
        });
    }
}

#[test]
fn staging_writes_every_declared_one_alike_ones_travelling_and_the_others_sticky() {
    let (loaded, _dir) = load(|t| t);
    let plan = plan_for(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
    );
    let steps = sets(&plan);
    assert_eq!(steps.len(), 1, "{}", plan.render());
    let (slot, changes) = &steps[0];
    assert_eq!(*slot, sn("staging"));
    assert_eq!(names(changes), ["Bus", "Cache", "Db", "Shared"]);
    let sticky: Vec<&str> = changes
        .iter()
        .filter(|c| c.becomes_sticky)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(sticky, ["Db"], "only Db differs between the environments");
    let cache = &changes[1];
    assert_eq!(cache.kind, "RedisCache");
    assert_eq!(
        cache.after,
        Shown::Plain("@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=cache-conn)".into())
    );
    assert_eq!(
        cache.write.as_ref().map(|w| w.expose().to_owned()),
        Some("@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=cache-conn)".into())
    );
    // A secret delivered by value is written from what the stage pulled.
    assert_eq!(
        changes[0].after,
        Shown::Secret("contoso-kv/bus-conn".into())
    );
    assert!(changes[0].write.is_none());
    assert_eq!(
        changes[2].write.as_ref().map(|w| w.expose().to_owned()),
        Some("Server=tcp:staging-db;Password=stg-pw-1".into())
    );
    // Their secrets are read with the settings', in the one pull before the lock.
    let pulls: Vec<_> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::PullSecrets { secrets, .. } => Some(secrets.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(pulls.len(), 1);
    let for_strings: Vec<(&str, &str)> = pulls[0]
        .iter()
        .filter(|p| p.connection_string)
        .map(|p| (p.setting.as_str(), p.secret.as_str()))
        .collect();
    assert_eq!(for_strings, [("Bus", "bus-conn"), ("Cache", "cache-conn")]);
    assert_ne!(pulls[0][0].key(), plan::connection_string_secret_key("Bus"));
    // Every pulled value is kept under a key of its own, and only a connection string's is told for
    // one: the executor writes those to the connection strings and keeps them out of hooks' variables.
    let keys: std::collections::BTreeSet<String> = pulls[0].iter().map(|p| p.key()).collect();
    assert_eq!(keys.len(), pulls[0].len(), "{keys:?}");
    assert!(pulls[0].iter().any(|p| !p.connection_string));
    for pull in &pulls[0] {
        assert_eq!(
            plan::is_connection_string_key(&pull.key()),
            pull.connection_string,
            "{}",
            pull.setting
        );
    }
}

#[test]
fn a_slot_that_has_them_gets_only_what_differs() {
    let (loaded, _dir) = load(|t| t);
    let mut live = fixture("before-first-release.json");
    let reference = "@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=cache-conn)";
    put(
        &mut live,
        "staging",
        "Db",
        cs("SQLAzure", "Server=tcp:staging-db;Password=stg-pw-1"),
    );
    put(&mut live, "staging", "Cache", cs("RedisCache", reference));
    // The same value under another type is a change.
    put(
        &mut live,
        "staging",
        "Shared",
        cs(
            "Custom",
            "Endpoint=sb://shared/;SharedAccessKey=shared-key-9",
        ),
    );
    live.sticky_connection_strings.insert("Db".into());
    let plan = plan_for(&loaded, Stage::Staging, &live);
    let steps = sets(&plan);
    let changes = &steps[0].1;
    // Bus is a secret delivered by value: it cannot be compared, so it is always written.
    assert_eq!(names(changes), ["Bus", "Shared"], "{}", plan.render());
    assert_eq!(changes[1].type_before.as_deref(), Some("Custom"));
    assert_eq!(
        changes[1].before,
        Some(Shown::Secret("current value".into()))
    );
    assert!(plan.render().contains(
        "Shared: Custom, <secret current value> -> ServiceBus, <secret value from release.yml>"
    ));
}

#[test]
fn production_writes_its_sticky_ones_and_the_travelling_ones_come_with_the_swap() {
    let (loaded, _dir) = load(|t| t);
    let plan = plan_for(&loaded, Stage::Production, &fixture("staged.json"));
    let steps = sets(&plan);
    // Production: Db only (sticky); the staged slot lacks the travelling ones the staging stage would
    // have written, so they are written there before the swap.
    assert_eq!(steps.len(), 2, "{}", plan.render());
    assert_eq!(steps[0].0, SlotName::production());
    assert_eq!(names(&steps[0].1), ["Db"]);
    assert_eq!(steps[1].0, sn("staging"));
    assert_eq!(names(&steps[1].1), ["Cache", "Shared"]);
    let swap = plan
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::Swap { .. }))
        .unwrap();
    let last_set = plan
        .steps
        .iter()
        .rposition(|s| matches!(s.action, Action::SetConnectionStrings { .. }))
        .unwrap();
    assert!(last_set < swap);
}

#[test]
fn sticky_true_keeps_an_alike_one_with_its_slot_and_a_false_that_cannot_travel_is_refused() {
    let (loaded, _dir) = load(|t| {
        t.replacen(
            "        type: ServiceBus\n",
            "        type: ServiceBus\n        sticky: true\n",
            1,
        )
    });
    let travelling = loaded.spec.travelling_connection_strings();
    assert!(!travelling.contains("Shared") && travelling.contains("Cache"));
    let plan = plan_for(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
    );
    let shared = sets(&plan)[0]
        .1
        .iter()
        .find(|c| c.name == "Shared")
        .cloned()
        .unwrap();
    assert!(shared.becomes_sticky);
    assert!(plan.problems().next().is_none(), "{}", plan.render());

    // Db differs between the environments: it cannot travel, whatever the config asks.
    let (loaded, _dir) = load(|t| {
        t.replacen(
            "        type: SQLAzure\n",
            "        type: SQLAzure\n        sticky: false\n",
            1,
        )
    });
    for stage in [Stage::Staging, Stage::Production] {
        let plan = plan_for(&loaded, stage, &fixture("staged.json"));
        let refused: Vec<_> = plan.problems().collect();
        assert_eq!(refused.len(), 1, "{}", plan.render());
        assert_eq!(refused[0].name, "connection-string-sticky");
        assert!(
            refused[0]
                .detail
                .contains("connection string Db says `sticky: false`, but the two environments give it a different type or value"),
            "{}",
            refused[0].detail
        );
    }
    // Alike in both, `sticky: false` only says what the rule decides anyway.
    let (loaded, _dir) = load(|t| {
        t.replace(
            "        type: ServiceBus\n        delivery: value\n",
            "        type: ServiceBus\n        delivery: value\n        sticky: false\n",
        )
    });
    let plan = plan_for(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
    );
    assert!(plan.problems().next().is_none(), "{}", plan.render());
}

/// Release r1 owned `Legacy` on both slots, besides what the config declares now.
fn with_owned(mut live: LiveState, loaded: &LoadedRelease) -> LiveState {
    let mut journal = JournalTags::from_tags(&live.tags).unwrap();
    journal.release.get_or_insert_with(|| "r1".into());
    let mut owned = BTreeMap::new();
    for (env, slot) in [("staging", "staging"), ("production", "production")] {
        let e = &loaded.spec.environments[env];
        let mut strings: std::collections::BTreeSet<String> =
            e.connection_strings.keys().cloned().collect();
        strings.insert("Legacy".into());
        owned.insert(
            sn(slot),
            Owned {
                release: "r1".into(),
                settings: e.settings.keys().cloned().collect(),
                connection_strings: strings,
            },
        );
    }
    journal.owned = Some(owned);
    journal.apply_to(&mut live.tags);
    live
}

fn removals(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveConnectionStrings { slot, removals } => Some(
                removals
                    .iter()
                    .map(|r| format!("{slot}:{}", r.name))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn an_owned_one_the_config_dropped_is_removed_and_one_added_by_hand_is_not() {
    let (loaded, _dir) = load(|t| t);
    let mut live = with_owned(fixture("after-release.json"), &loaded);
    put(&mut live, "staging", "Legacy", cs("Custom", "x"));
    put(&mut live, "production", "Legacy", cs("Custom", "x"));
    put(&mut live, "staging", "HandMade", cs("Custom", "y"));
    let plan = plan_for(&loaded, Stage::Staging, &live);
    assert_eq!(removals(&plan), ["staging:Legacy"], "{}", plan.render());
    let text = plan.render();
    assert!(
        text.contains("remove 1 connection string(s) from staging")
            && text.contains("Legacy: removed: owned by release r1"),
        "{text}"
    );
    // Still in production: owned until no slot holds it.
    let owns = plan.owns.unwrap();
    assert!(owns.connection_strings.contains("Legacy"));
    assert!(!owns.connection_strings.contains("HandMade"));
    assert!(owns.connection_strings.contains("Db"));

    // Production removes a sticky one before its swap, and takes it off the sticky list.
    let mut live = with_owned(fixture("staged.json"), &loaded);
    put(&mut live, "production", "Legacy", cs("Custom", "x"));
    live.sticky_connection_strings.insert("Legacy".into());
    let plan = plan_for(&loaded, Stage::Production, &live);
    assert_eq!(removals(&plan), ["production:Legacy"], "{}", plan.render());
    let unsticks = plan.steps.iter().any(|s| {
        matches!(&s.action, Action::RemoveConnectionStrings { removals, .. } if removals[0].unsticks)
    });
    assert!(unsticks);
}

#[test]
fn a_rollback_redeploy_brings_its_release_travelling_connection_strings_back() {
    let (loaded, _dir) = load(|t| t);
    // The target release's config, rendered with its own variables: another shared endpoint.
    let (target, _target_dir) = load(|t| t.replace("sb://shared/", "sb://shared-r1/"));
    let mut live = fixture("after-release.json");
    let mut journal = JournalTags::from_tags(&live.tags).unwrap();
    journal.history = vec![slot_release_engine::history::Entry {
        id: "20261120.1".into(),
        name: "20261120.1".into(),
        released_unix: 1,
        image: None,
        run: Some("4700".into()),
        package_sha256: Some("ab".repeat(32)),
        artifact: None,
        outcome: slot_release_engine::history::Outcome::Released,
    }];
    // The staging slot holds another release, so the target comes back from its package.
    journal.slots.insert(sn("staging"), "20261121.1".into());
    journal.apply_to(&mut live.tags);
    live.slots.get_mut("staging").unwrap().release = Some("20261121.1".into());
    let build = BuildInfo {
        package_sha256: Some("ab".repeat(32)),
        ..BuildInfo::default()
    };
    let plan = plan_with(&loaded, Stage::Rollback, &live, Some(&target.spec), build);
    let steps = sets(&plan);
    assert_eq!(steps.len(), 1, "{}", plan.render());
    assert_eq!(steps[0].0, sn("staging"));
    // Travelling ones the target declares, by value from its rendering; the sticky Db stays production's,
    // and Bus (a secret delivered by value) was written by the target's own staging run.
    assert_eq!(names(&steps[0].1), ["Cache", "Shared"]);
    assert_eq!(
        steps[0].1[1].write.as_ref().map(|w| w.expose().to_owned()),
        Some("Endpoint=sb://shared-r1/;SharedAccessKey=shared-key-9".into())
    );
}

/// The reason of the `SetConnectionStrings` step on `slot`.
fn reason_on(plan: &Plan, slot: &SlotName) -> String {
    plan.steps
        .iter()
        .find(|s| matches!(&s.action, Action::SetConnectionStrings { slot: on, .. } if on == slot))
        .map(|s| s.reason.clone())
        .unwrap_or_else(|| panic!("no connection strings step on {slot}:\n{}", plan.render()))
}

#[test]
fn each_write_says_why_in_the_words_that_fit_it() {
    let (loaded, _dir) = load(|t| t);
    let staged = fixture("staged.json");
    let staging = plan_for(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
    );
    assert!(
        reason_on(&staging, &sn("staging")).contains("declared alike in production travel"),
        "{}",
        staging.render()
    );
    let production = plan_for(&loaded, Stage::Production, &staged);
    let on_production = reason_on(&production, &SlotName::production());
    assert!(
        on_production.contains("written as sticky so a swap never carries them away"),
        "{on_production}"
    );
    assert!(
        reason_on(&production, &sn("staging")).contains("reach it with the swap itself"),
        "{}",
        production.render()
    );
    // Nothing declared alike: every one stays with its slot, and the step says so.
    let (apart, _dir) = load(|t| {
        t.replace(
            PRODUCTION,
            "    connectionStrings:\n      Db:\n        value: Server=tcp:prod-db;Password=prod-pw-2\n        type: SQLAzure\n",
        )
    });
    let staging = plan_for(
        &apart,
        Stage::Staging,
        &fixture("before-first-release.json"),
    );
    assert!(
        reason_on(&staging, &sn("staging"))
            .starts_with("connection strings written as sticky so a swap never carries one slot's"),
        "{}",
        staging.render()
    );
}
