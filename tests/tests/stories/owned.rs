//! What the config manages whole: a setting and a connection string an earlier release declared are
//! removed once the config drops them (and the plan names each removal), while names added by hand stay;
//! connection strings reach their slots sticky or travelling, and no value shows in the log or the journal.

use std::collections::BTreeMap;

use slot_release_engine::port::{ConnectionStringValue, SettingValue};
use slot_release_engine::state::SlotName;
use slot_release_tests::{LeakDetector, World, printed, stdout};
use tokio_util::sync::CancellationToken;

/// Values written in release.yml: none may show in the log or the journal.
const STAGING_DB: &str = "Server=staging-db;Password=stg-e2e-pw-4d1";
const PRODUCTION_DB: &str = "Server=prod-db;Password=prod-e2e-pw-8a2";
const LEGACY: &str = "Server=legacy-db;Password=legacy-pw-51c";
const PASSWORDS: [&str; 3] = ["stg-e2e-pw-4d1", "prod-e2e-pw-8a2", "legacy-pw-51c"];

fn connection_strings(db: &str, legacy: bool) -> String {
    let mut block =
        format!("    connectionStrings:\n      Db:\n        value: {db}\n        type: SQLAzure\n");
    if legacy {
        block.push_str(&format!(
            "      Legacy:\n        value: {LEGACY}\n        type: Custom\n"
        ));
    }
    block
}

/// The python example with `OLD_FLAG` (the same in both environments, so it travels) and the connection
/// strings `Db` (different, so sticky) and, when `release_one`, `Legacy` (the same, so it travels).
fn config(text: &str, release_one: bool) -> String {
    let text = text
        .replace(
            "    slot: staging\n    createSlot: true\n",
            &format!(
                "    slot: staging\n    createSlot: true\n{}",
                connection_strings(STAGING_DB, release_one)
            ),
        )
        .replace(
            "    slot: production\n",
            &format!(
                "    slot: production\n{}",
                connection_strings(PRODUCTION_DB, release_one)
            ),
        );
    if release_one {
        text.replace(
            "      RELEASE_VERSION: $(Build.BuildNumber)\n",
            "      RELEASE_VERSION: $(Build.BuildNumber)\n      OLD_FLAG: \"1\"\n",
        )
    } else {
        text
    }
}

async fn release(world: &World, id: &str) -> (String, String) {
    let staged = world.cli(&["staging", "--release-id", id]).await;
    assert!(staged.status.success(), "{}", printed(&staged));
    let released = world.cli(&["production", "--release-id", id]).await;
    assert!(released.status.success(), "{}", printed(&released));
    (stdout(&staged), stdout(&released))
}

fn slot(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_a_release_dropped_are_removed_and_names_added_by_hand_stay() {
    // The app as the previous release left it, with this config's settings and connection strings.
    let world = World::released(|t| config(&t, true)).await;
    let original = std::fs::read_to_string(world.config()).unwrap();
    let (staging_one, production_one) = release(&world, "r1").await;
    let production = world.slot("production");
    assert_eq!(
        production.app_settings.get("OLD_FLAG").map(String::as_str),
        Some("1")
    );
    assert!(production.connection_strings.contains_key("Legacy"));
    assert_eq!(production.connection_strings["Db"].value, PRODUCTION_DB);
    assert_eq!(
        production.connection_strings["Db"].kind.as_str(),
        "SQLAzure"
    );
    assert_eq!(
        world.slot("staging").connection_strings["Db"].value,
        STAGING_DB,
        "Db is sticky: each slot keeps its own through the swap"
    );
    let none = CancellationToken::new();
    let live = world
        .port
        .read_state(&[slot("staging")], &none)
        .await
        .unwrap();
    assert!(live.sticky_connection_strings.contains("Db"));
    assert!(!live.sticky_connection_strings.contains("Legacy"));

    // Someone adds a setting and a connection string to both slots by hand, through ARM.
    for name in ["production", "staging"] {
        world
            .port
            .set_settings(
                &slot(name),
                &BTreeMap::from([(
                    "HAND_ADDED".to_owned(),
                    SettingValue::Plain("by-hand".into()),
                )]),
                &none,
            )
            .await
            .unwrap();
        world
            .port
            .set_connection_strings(
                &slot(name),
                &BTreeMap::from([(
                    "HandDb".to_owned(),
                    ConnectionStringValue {
                        kind: "MySql".into(),
                        value: SettingValue::Plain("Server=hand-db".into()),
                    },
                )]),
                &none,
            )
            .await
            .unwrap();
    }

    // Release 2's config no longer declares OLD_FLAG and Legacy.
    let dropped = original.replace("      OLD_FLAG: \"1\"\n", "").replace(
        &format!("      Legacy:\n        value: {LEGACY}\n        type: Custom\n"),
        "",
    );
    std::fs::write(world.config(), &dropped).unwrap();
    let text = std::fs::read_to_string(world.config()).unwrap();
    assert!(
        !text.contains("OLD_FLAG") && !text.contains("Legacy"),
        "{text}"
    );
    let (staging_two, production_two) = release(&world, "r2").await;

    // The plan named both removals, and why.
    for line in [
        "remove 1 setting(s) from staging",
        "OLD_FLAG: removed: owned by release r1, no longer in the config of environment staging",
        "remove 1 connection string(s) from staging",
        "Legacy: removed: owned by release r1, no longer in the config of environment staging",
    ] {
        assert!(staging_two.contains(line), "no `{line}` in:\n{staging_two}");
    }
    let production = world.slot("production");
    assert!(
        !production.app_settings.contains_key("OLD_FLAG"),
        "{:?}",
        production.app_settings.keys()
    );
    assert!(
        !production.connection_strings.contains_key("Legacy"),
        "{:?}",
        production.connection_strings.keys()
    );
    assert_eq!(production.connection_strings["Db"].value, PRODUCTION_DB);
    // Names nobody declared survive in both slots.
    for name in ["production", "staging"] {
        let s = world.slot(name);
        assert_eq!(
            s.app_settings.get("HAND_ADDED").map(String::as_str),
            Some("by-hand"),
            "{name}"
        );
        assert_eq!(
            s.connection_strings.get("HandDb").map(|c| c.value.as_str()),
            Some("Server=hand-db"),
            "{name}"
        );
    }

    // Names, types and origins in every plan; never a value, in the log or the journal.
    assert!(
        staging_one.contains("Db: (unset) -> SQLAzure, <secret value from release.yml> [sticky]"),
        "{staging_one}"
    );
    for out in [&staging_one, &production_one, &staging_two, &production_two] {
        for password in PASSWORDS {
            assert!(!out.contains(password), "`{password}` shows in:\n{out}");
        }
    }
    let leaks = LeakDetector::new(PASSWORDS).scan_journal(&world.emulator.snapshot());
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_hook_sees_the_connection_strings_as_the_app_does() {
    // A migration run on the agent must reach the database the app reaches: the staging environment's
    // `Db`, under the name App Service gives the app, and never printed.
    let hook = format!(
        "      - name: check-db\n        run: test \"$SQLAZURECONNSTR_Db\" = \"{STAGING_DB}\" && echo db-reached\n        where: agent\n"
    );
    let world = World::released(move |t| {
        config(&t, false).replacen(
            "    healthCheck:\n",
            &format!("{hook}    healthCheck:\n"),
            1,
        )
    })
    .await;
    let staged = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(staged.status.success(), "{}", printed(&staged));
    let out = stdout(&staged);
    assert!(out.contains("run hook check-db"), "{out}");
    assert!(out.contains("db-reached"), "{out}");
    for password in PASSWORDS {
        assert!(!printed(&staged).contains(password), "{password} printed");
    }
}
