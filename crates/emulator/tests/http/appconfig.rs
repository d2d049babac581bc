//! Connection strings and whole site config: their ARM routes, validation, what a swap moves and
//! what the app process sees.

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use slot_release_emulator::{ConnectionString, ConnectionStringType};

fn cs(value: &str, kind: ConnectionStringType) -> ConnectionString {
    ConnectionString {
        value: value.into(),
        kind,
    }
}

/// The common fixture, with seeded connection strings: `DB` (sticky) and `CACHE` in both slots.
async fn start_with_connection_strings() -> Fixture {
    start_with(|o| {
        let app = &mut o.seed.subscriptions[0].resource_groups[0].apps[0];
        app.slot_config_names.connection_string_names = vec!["DB".into()];
        for (slot, suffix) in app.slots.iter_mut().zip(["prod", "stage"]) {
            slot.connection_strings.insert(
                "DB".into(),
                cs(
                    &format!("Server=db-{suffix}"),
                    ConnectionStringType::SqlAzure,
                ),
            );
            slot.connection_strings.insert(
                "CACHE".into(),
                cs(&format!("cache-{suffix}"), ConnectionStringType::RedisCache),
            );
        }
    })
    .await
}

async fn list_cs(f: &Fixture, slot_path: &str) -> serde_json::Value {
    let r = f
        .arm_call(
            Method::POST,
            &f.site(&format!(
                "{slot_path}/config/connectionstrings/list?api-version=2024-04-01"
            )),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

#[tokio::test]
async fn connection_strings_round_trip_validate_and_reach_the_process_with_their_prefix() {
    let f = start_with_connection_strings().await;
    let listed = list_cs(&f, "").await;
    assert_eq!(listed["name"], "connectionstrings");
    assert_eq!(listed["type"], "Microsoft.Web/sites/config");
    assert_eq!(
        listed["properties"]["DB"],
        json!({"value": "Server=db-prod", "type": "SQLAzure"})
    );
    assert_eq!(listed["properties"]["CACHE"]["type"], "RedisCache");

    // PUT replaces the whole dictionary: CACHE is gone afterwards.
    let body = json!({"properties": {
        "DB": {"value": "Server=db-stage-2", "type": "SQLAzure"},
        "PG": {"value": "Host=pg", "type": "PostgreSQL"},
        "MY": {"value": "Server=my", "type": "mysql"},
        "LEGACY": {"value": "Data Source=sql", "type": "SQLServer"},
        "OTHER": {"value": "anything", "type": "Custom"}
    }});
    let r = f
        .arm_call(
            Method::PUT,
            &f.site("/slots/staging/config/connectionstrings?api-version=2024-04-01"),
            Some(body),
        )
        .await;
    assert_eq!(r.status(), 200);
    let put: serde_json::Value = r.json().await.expect("json");
    assert_eq!(put["type"], "Microsoft.Web/sites/slots/config");
    assert_eq!(
        put["properties"]["MY"]["type"], "MySql",
        "answered canonical"
    );
    let listed = list_cs(&f, "/slots/staging").await;
    let names: Vec<&String> = listed["properties"]
        .as_object()
        .expect("object")
        .keys()
        .collect();
    assert_eq!(names, ["DB", "LEGACY", "MY", "OTHER", "PG"]);

    // Each type has the platform's prefix in the process's environment.
    let base = f.emu.app_url(APP, "staging");
    for (var, value) in [
        ("SQLAZURECONNSTR_DB", "Server=db-stage-2"),
        ("POSTGRESQLCONNSTR_PG", "Host=pg"),
        ("MYSQLCONNSTR_MY", "Server=my"),
        ("SQLCONNSTR_LEGACY", "Data Source=sql"),
        ("CUSTOMCONNSTR_OTHER", "anything"),
    ] {
        eventually_body(&f, &format!("{base}/env/{var}"), value).await;
    }
    eventually_body(
        &f,
        &format!("{base}/env/REDISCACHECONNSTR_CACHE"),
        "<unset>",
    )
    .await;

    // A type outside the spec's enum, or none, is refused and changes nothing.
    for bad in [
        json!({"properties": {"X": {"value": "v", "type": "Oracle"}}}),
        json!({"properties": {"X": {"value": "v"}}}),
        json!({"value": "no properties"}),
    ] {
        let r = f
            .arm_call(
                Method::PUT,
                &f.site("/slots/staging/config/connectionstrings?api-version=2024-04-01"),
                Some(bad),
            )
            .await;
        assert_eq!(r.status(), 400);
        let e: serde_json::Value = r.json().await.expect("json");
        assert_eq!(e["error"]["code"], "BadRequest");
    }
    assert_eq!(list_cs(&f, "/slots/staging").await, listed);
}

#[tokio::test]
async fn swaps_move_connection_strings_unless_sticky() {
    let f = start_with_connection_strings().await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsdiffs?api-version=2024-04-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    let diffs: serde_json::Value = r.json().await.expect("json");
    let cs_diffs: Vec<&serde_json::Value> = diffs["value"]
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| d["properties"]["settingType"] == "ConnectionString")
        .collect();
    assert_eq!(cs_diffs.len(), 1, "only the non-sticky one: {cs_diffs:?}");
    assert_eq!(cs_diffs[0]["properties"]["settingName"], "CACHE");
    assert_eq!(
        cs_diffs[0]["properties"]["valueInCurrentSlot"],
        "cache-stage"
    );

    // Phase 1 gives the source the target's sticky connection string; reset takes it back.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/applySlotConfig?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let stage = list_cs(&f, "/slots/staging").await;
    assert_eq!(stage["properties"]["DB"]["value"], "Server=db-prod");
    assert_eq!(stage["properties"]["CACHE"]["value"], "cache-stage");
    eventually_body(
        &f,
        &format!("{}/env/SQLAZURECONNSTR_DB", f.emu.app_url(APP, "staging")),
        "Server=db-prod",
    )
    .await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/resetSlotConfig?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let stage = list_cs(&f, "/slots/staging").await;
    assert_eq!(stage["properties"]["DB"]["value"], "Server=db-stage");

    // The swap: CACHE moves, DB stays.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 200);
    let snap = f.emu.snapshot();
    let prod = &snap.slot(APP, "production").expect("p").connection_strings;
    let stage = &snap.slot(APP, "staging").expect("s").connection_strings;
    assert_eq!(prod["CACHE"].value, "cache-stage");
    assert_eq!(stage["CACHE"].value, "cache-prod");
    assert_eq!(prod["DB"].value, "Server=db-prod");
    assert_eq!(stage["DB"].value, "Server=db-stage");
    eventually_body(
        &f,
        &format!(
            "{}/env/REDISCACHECONNSTR_CACHE",
            f.emu.app_url(APP, "production")
        ),
        "cache-stage",
    )
    .await;
}
