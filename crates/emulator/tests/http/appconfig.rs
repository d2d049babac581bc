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

async fn config_web(
    f: &Fixture,
    method: Method,
    slot_path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let r = f
        .arm_call(
            method,
            &f.site(&format!("{slot_path}/config/web?api-version=2024-04-01")),
            body,
        )
        .await;
    let status = r.status().as_u16();
    (status, r.json().await.expect("json"))
}

#[tokio::test]
async fn site_config_round_trips_whole_and_is_validated_as_arm_validates_it() {
    let f = start().await;
    let whole = json!({
        "alwaysOn": true, "http20Enabled": true, "minTlsVersion": "1.3", "ftpsState": "FtpsOnly",
        "healthCheckPath": "/health", "appCommandLine": start_command(),
        "linuxFxVersion": "PYTHON|3.12", "windowsFxVersion": "", "netFrameworkVersion": "v4.0",
        "pythonVersion": "3.12", "nodeVersion": "", "phpVersion": "",
        "javaVersion": "17", "javaContainer": "TOMCAT", "javaContainerVersion": "10.1",
        "acrUseManagedIdentityCreds": true, "acrUserManagedIdentityID": "33333333-0000-0000-0000-000000000001"
    });
    let (status, put) = config_web(
        &f,
        Method::PUT,
        "/slots/staging",
        Some(json!({"properties": whole})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got) = config_web(&f, Method::GET, "/slots/staging", None).await;
    for (k, v) in whole.as_object().expect("object") {
        assert_eq!(&put["properties"][k], v, "{k} in the PUT answer");
        assert_eq!(&got["properties"][k], v, "{k} read back");
    }
    // PATCH changes what it names and keeps the rest; enums are stored as ARM spells them.
    let (status, _) = config_web(
        &f,
        Method::PATCH,
        "/slots/staging",
        Some(json!({"properties": {"ftpsState": "disabled", "alwaysOn": false}})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, got) = config_web(&f, Method::GET, "/slots/staging", None).await;
    assert_eq!(got["properties"]["ftpsState"], "Disabled");
    assert_eq!(got["properties"]["alwaysOn"], false);
    assert_eq!(got["properties"]["minTlsVersion"], "1.3");

    // Values outside the spec's enums or types: 400 in ARM's error shape, nothing written.
    for (bad, parameter) in [
        (
            json!({"minTlsVersion": "1.4", "alwaysOn": true}),
            "MinTlsVersion",
        ),
        (json!({"ftpsState": "Sometimes"}), "FtpsState"),
        (json!({"alwaysOn": "yes"}), "AlwaysOn"),
        (json!({"http20Enabled": 1}), "Http20Enabled"),
    ] {
        for method in [Method::PUT, Method::PATCH] {
            let (status, e) = config_web(
                &f,
                method,
                "/slots/staging",
                Some(json!({"properties": bad})),
            )
            .await;
            assert_eq!(status, 400, "{bad}");
            assert_eq!(e["error"]["code"], "BadRequest");
            assert_eq!(
                e["error"]["message"],
                format!("The parameter {parameter} has an invalid value.")
            );
        }
        // The site's own PATCH validates its siteConfig the same way.
        let r = f
            .arm_call(
                Method::PATCH,
                &f.site("/slots/staging?api-version=2024-04-01"),
                Some(json!({"properties": {"siteConfig": bad}})),
            )
            .await;
        assert_eq!(r.status(), 400);
    }
    let (_, after) = config_web(&f, Method::GET, "/slots/staging", None).await;
    assert_eq!(
        after["properties"], got["properties"],
        "refused bodies change nothing"
    );
}

#[tokio::test]
async fn a_swap_moves_the_stack_and_keeps_slot_specific_config() {
    let f = start().await;
    let stage = json!({"pythonVersion": "3.13", "webSocketsEnabled": true, "alwaysOn": true,
        "minTlsVersion": "1.3", "healthCheckPath": "/health", "http20Enabled": true});
    assert_eq!(
        config_web(
            &f,
            Method::PATCH,
            "/slots/staging",
            Some(json!({"properties": stage}))
        )
        .await
        .0,
        200
    );
    let swap = |from: &'static str| {
        let f = &f;
        async move {
            let r = f
                .arm_call(Method::POST, &f.site(&format!("{from}/slotsswap?api-version=2016-08-01")), Some(json!({"targetSlot": if from.is_empty() { "staging" } else { "production" }})))
                .await;
            assert_eq!(f.wait_lro(r).await.status(), 200);
        }
    };
    swap("/slots/staging").await;
    let (_, prod) = config_web(&f, Method::GET, "", None).await;
    let (_, stg) = config_web(&f, Method::GET, "/slots/staging", None).await;
    // The stack, 32/64-bit and web sockets move with the content…
    assert_eq!(prod["properties"]["pythonVersion"], "3.13");
    assert_eq!(prod["properties"]["webSocketsEnabled"], true);
    assert_eq!(stg["properties"]["webSocketsEnabled"], false);
    // …Always On, TLS, HTTP/2 and the health check stay with their slot.
    for key in [
        "alwaysOn",
        "minTlsVersion",
        "healthCheckPath",
        "http20Enabled",
    ] {
        assert_eq!(
            stg["properties"][key], stage[key],
            "{key} stayed in staging"
        );
        assert_ne!(prod["properties"][key], stage[key], "{key} did not move");
    }

    // With WEBSITE_OVERRIDE_PRESERVE_DEFAULT_STICKY_SLOT_SETTINGS=false in every slot, Always On and
    // TLS swap too, and so do `*_EXTENSION_VERSION` settings.
    for (slot, ext) in [("", "~2"), ("/slots/staging", "~3")] {
        let r = f
            .arm_call(
                Method::PUT,
                &f.site(&format!("{slot}/config/appsettings?api-version=2016-08-01")),
                Some(json!({"properties": {
                    "WEBSITE_OVERRIDE_PRESERVE_DEFAULT_STICKY_SLOT_SETTINGS": "false",
                    "ApplicationInsightsAgent_EXTENSION_VERSION": ext,
                    "SLOT_NAME": if slot.is_empty() { "prod" } else { "stage" }
                }})),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    swap("/slots/staging").await;
    let (_, prod) = config_web(&f, Method::GET, "", None).await;
    assert_eq!(prod["properties"]["alwaysOn"], true);
    assert_eq!(prod["properties"]["minTlsVersion"], "1.3");
    assert_eq!(
        prod["properties"]["healthCheckPath"],
        json!(null),
        "still slot-specific"
    );
    let snap = f.emu.snapshot();
    assert_eq!(
        snap.slot(APP, "production").expect("p").app_settings["ApplicationInsightsAgent_EXTENSION_VERSION"],
        "~3"
    );
}
