//! ARM App Service routes and swap semantics.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn get_site_with_trailing_slash_and_slot_and_list() {
    let f = start().await;
    let r = f
        .arm_call(Method::GET, &f.site("/?api-version=2016-08-01"), None)
        .await;
    assert_eq!(r.status(), 200);
    let site: serde_json::Value = r.json().await.expect("json");
    assert_eq!(site["name"], APP);
    assert_eq!(site["kind"], "app,linux");
    assert_eq!(site["properties"]["state"], "Running");
    let port = f.emu.port();
    // Unique default host names by default: `<site>-<16 characters>.<region>.azurewebsites…`.
    let host = site["properties"]["defaultHostName"]
        .as_str()
        .expect("defaultHostName")
        .to_owned();
    let (label, rest) = host.split_once('.').expect("a dotted host");
    let hash = label
        .strip_prefix(&format!("{APP}-"))
        .expect("the site first");
    assert_eq!(hash.len(), 16, "{host}");
    assert_eq!(
        rest,
        format!("eastus-01.azurewebsites.emulator.test:{port}")
    );
    assert_eq!(
        host,
        format!("{}:{port}", f.emu.app_host(APP, "production"))
    );
    let repo = site["properties"]["hostNameSslStates"]
        .as_array()
        .expect("array")
        .iter()
        .find(|h| h["hostType"] == "Repository")
        .expect("scm host")
        .clone();
    assert_eq!(
        repo["name"],
        format!("{label}.scm.eastus-01.azurewebsites.emulator.test:{port}")
    );
    assert_eq!(
        site["properties"]["enabledHostNames"],
        json!([host, repo["name"]])
    );

    let r = f
        .arm_call(
            Method::GET,
            &f.site("/slots/staging?api-version=2024-04-01"),
            None,
        )
        .await;
    let slot: serde_json::Value = r.json().await.expect("json");
    assert_eq!(slot["name"], format!("{APP}/staging"));
    assert_eq!(slot["type"], "Microsoft.Web/sites/slots");
    let staging = slot["properties"]["defaultHostName"]
        .as_str()
        .expect("defaultHostName");
    assert!(staging.starts_with(&format!("{APP}-staging-")), "{staging}");
    assert_eq!(
        staging,
        format!("{}:{port}", f.emu.app_host(APP, "staging"))
    );

    let r = f
        .arm_call(Method::GET, &f.site("/slots?api-version=2024-04-01"), None)
        .await;
    let list: serde_json::Value = r.json().await.expect("json");
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));

    let r = f
        .arm_call(
            Method::GET,
            &f.site("/slots/nope?api-version=2024-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "ResourceNotFound");
    let r = f.arm_call(Method::GET, &f.arm(&format!("/subscriptions/{SUB}/resourceGroups/nope/providers/Microsoft.Web/sites/{APP}?api-version=1")), None).await;
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "ResourceGroupNotFound");
    let r = f.arm_call(Method::GET, &f.site(""), None).await;
    assert_eq!(r.status(), 400, "api-version is required");
}

#[tokio::test]
async fn app_settings_sticky_names_site_config_tags_and_credentials() {
    let f = start().await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/config/appsettings/list?api-version=2016-08-01"),
            None,
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["GREETING"], "hello-v2");

    let r = f
        .arm_call(
            Method::PUT,
            &f.site("/slots/staging/config/appsettings?api-version=2016-08-01"),
            Some(json!({"properties": {"GREETING": "changed", "NEW": "1"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let snap = f.emu.snapshot();
    let staging = snap.slot(APP, "staging").expect("staging");
    assert_eq!(
        staging.app_settings.get("GREETING").map(String::as_str),
        Some("changed")
    );
    assert!(
        !staging.app_settings.contains_key("SLOT_NAME"),
        "PUT replaces the whole dictionary"
    );
    // The app restarted with the new settings.
    eventually_body(
        &f,
        &format!("{}/env/GREETING", f.emu.app_url(APP, "staging")),
        "changed",
    )
    .await;

    let r = f
        .arm_call(
            Method::GET,
            &f.site("/config/slotConfigNames?api-version=2016-08-01"),
            None,
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["appSettingNames"], json!(["SLOT_NAME"]));
    let r = f.arm_call(Method::PUT, &f.site("/config/slotConfigNames?api-version=2016-08-01"), Some(json!({"properties": {"appSettingNames": ["SLOT_NAME", "DB"], "connectionStringNames": null}}))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        f.emu.snapshot().apps[1].slot_config_names.app_setting_names,
        vec!["SLOT_NAME", "DB"]
    );

    let r = f
        .arm_call(
            Method::PATCH,
            &f.site("/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"healthCheckPath": "/health", "alwaysOn": true}})),
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["healthCheckPath"], "/health");
    let r = f
        .arm_call(
            Method::PUT,
            &f.site("/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"experiments": {"rampUpRules": []}}})),
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        v["properties"]["alwaysOn"], true,
        "PUT merges like App Service"
    );
    let r = f
        .arm_call(
            Method::GET,
            &f.site("/config/web?api-version=2018-02-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);

    let r = f
        .arm_call(
            Method::PATCH,
            &f.site("?api-version=2022-03-01"),
            Some(json!({"tags": {"release": "42"}})),
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["tags"]["release"], "42");

    let r = f
        .arm_call(
            Method::POST,
            &f.site("/config/publishingcredentials/list?api-version=2016-08-01"),
            None,
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["publishingUserName"], format!("${APP}"));
    assert!(
        v["properties"]["scmUri"]
            .as_str()
            .is_some_and(|u| u.contains(".scm.eastus-01.azurewebsites.emulator.test:"))
    );

    let r = f
        .arm_call(
            Method::GET,
            &f.site("/basicPublishingCredentialsPolicies/scm?api-version=2022-03-01"),
            None,
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["allow"], true);
    let r = f
        .arm_call(
            Method::PUT,
            &f.site("/basicPublishingCredentialsPolicies/scm?api-version=2022-03-01"),
            Some(json!({"properties": {"allow": false}})),
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["allow"], false);
}

#[tokio::test]
async fn create_slot_is_a_long_running_operation() {
    let f = start().await;
    let r = f
        .arm_call(
            Method::PUT,
            &f.site("/slots/canary?api-version=2024-04-01"),
            Some(json!({"kind": "app", "location": "East US", "properties": {}})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let status_url = r.headers()["azure-asyncoperation"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let done = f.wait_lro(r).await;
    assert_eq!(done.status(), 200);
    let v: serde_json::Value = done.json().await.expect("json");
    assert_eq!(v["status"], "Succeeded");
    // The same operation at the subscription-level address of the spec's example answers too.
    let id = status_url
        .split("/operationresults/")
        .nth(1)
        .and_then(|rest| rest.split('?').next())
        .expect("operation id");
    let r = f
        .arm_call(
            Method::GET,
            &f.arm(&format!(
                "/subscriptions/{SUB}/providers/Microsoft.Web/sites/{APP}/operationResults/{id}?api-version=2024-04-01"
            )),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = f
        .arm_call(
            Method::GET,
            &f.site("/slots/canary?api-version=2024-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = f
        .arm_call(
            Method::DELETE,
            &f.site("/slots/canary?api-version=2024-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = f
        .arm_call(
            Method::GET,
            &f.site("/slots/canary?api-version=2024-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    // Deleting it again: 404, as the contract says; production is never deleted as a slot.
    let r = f
        .arm_call(
            Method::DELETE,
            &f.site("/slots/canary?api-version=2024-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = f
        .arm_call(
            Method::DELETE,
            &f.site("/slots/Production?api-version=2024-04-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.expect("json");
    assert_eq!(e["error"]["code"], "BadRequest");
    assert_eq!(
        f.emu
            .snapshot()
            .slot(APP, "production")
            .map(|s| s.state.as_str()),
        Some("Running")
    );
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v1").await;
}

#[tokio::test]
async fn swap_moves_content_and_non_sticky_settings_and_keeps_sticky_ones() {
    let f = start().await;
    let before = f.emu.snapshot();
    let prod_before = before.slot(APP, "production").expect("prod").clone();
    let stage_before = before.slot(APP, "staging").expect("staging").clone();
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v1").await;

    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    let done = f.wait_lro(r).await;
    assert_eq!(done.status(), 200);

    let after = f.emu.snapshot();
    let prod = after.slot(APP, "production").expect("prod");
    let stage = after.slot(APP, "staging").expect("staging");
    assert_eq!(
        prod.content_digest, stage_before.content_digest,
        "content moved"
    );
    assert_eq!(stage.content_digest, prod_before.content_digest);
    assert_eq!(
        prod.app_settings["GREETING"], "hello-v2",
        "non-sticky setting moved"
    );
    assert_eq!(stage.app_settings["GREETING"], "hello-v1");
    assert_eq!(
        prod.app_settings["SLOT_NAME"], "prod",
        "sticky setting stayed"
    );
    assert_eq!(stage.app_settings["SLOT_NAME"], "stage");
    assert!(!prod.app_settings.contains_key("DB") || prod_before.app_settings.contains_key("DB"));
    assert_eq!(
        stage.app_settings.get("DB"),
        prod_before.app_settings.get("DB"),
        "non-sticky DB moved to staging"
    );
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v2").await;
    eventually_body(
        &f,
        &format!("{}/env/SLOT_NAME", f.emu.app_url(APP, "production")),
        "prod",
    )
    .await;
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v1").await;

    // Swapping back (the site form with "production" as the source) restores everything.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "staging", "preserveVnet": true})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 200);
    let back = f.emu.snapshot();
    assert_eq!(
        back.slot(APP, "production").expect("prod").content_digest,
        prod_before.content_digest
    );
    assert_eq!(
        back.slot(APP, "production").expect("prod").app_settings,
        prod_before.app_settings
    );
    assert_eq!(
        back.slot(APP, "staging").expect("stage").app_settings,
        stage_before.app_settings
    );
}

#[tokio::test]
async fn failed_warm_up_aborts_the_swap_and_leaves_both_slots_unchanged() {
    let f = start().await;
    let settings = json!({"properties": {"SLOT_NAME": "stage", "GREETING": "hello-v2", "WEBSITE_SWAP_WARMUP_PING_PATH": "/status/500", "WEBSITE_SWAP_WARMUP_PING_STATUSES": "200,202"}});
    let r = f
        .arm_call(
            Method::PUT,
            &f.site("/slots/staging/config/appsettings?api-version=2016-08-01"),
            Some(settings),
        )
        .await;
    assert_eq!(r.status(), 200);
    let before = f.emu.snapshot();
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    // Both polling headers name the one status resource, so a poller that prefers
    // Azure-AsyncOperation (azure-arm-rest, azure-core) sees the failure's status code too.
    let header = |name: &str| r.headers()[name].to_str().expect("ascii").to_owned();
    let (location, async_op) = (header("location"), header("azure-asyncoperation"));
    assert_eq!(location, async_op);
    // Under the swapped slot's own resource, as Azure's swap answers (azure-arm-rest's logs).
    assert!(
        location.contains(&format!(
            "/resourceGroups/{RG}/providers/Microsoft.Web/sites/{APP}/slots/staging/operationresults/"
        )),
        "{location}"
    );
    let done = f.wait_lro(r).await;
    assert_eq!(done.status(), 400);
    let e: serde_json::Value = done.json().await.expect("json");
    assert_eq!(e["status"], "Failed");
    assert!(
        e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("WEBSITE_SWAP_WARMUP_PING_PATH"))
    );
    let after = f.emu.snapshot();
    for slot in ["production", "staging"] {
        let (a, b) = (
            before.slot(APP, slot).expect("slot"),
            after.slot(APP, slot).expect("slot"),
        );
        assert_eq!(a.content_digest, b.content_digest);
        assert_eq!(a.app_settings, b.app_settings);
    }
    // The injected fault aborts the same way.
    f.emu
        .inject(slot_release_emulator::Fault::SwapWarmupFails { app: APP.into() });
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 400);
}

#[tokio::test]
async fn a_second_operation_while_one_runs_gets_409() {
    let f = start().await;
    f.emu.inject(slot_release_emulator::Fault::SwapTimesOut {
        app: APP.into(),
        millis: 1500,
    });
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(r.status(), 202);
    let second = f
        .arm_call(
            Method::POST,
            &f.site("/restart?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(second.status(), 409);
    let e: serde_json::Value = second.json().await.expect("json");
    assert_eq!(e["error"]["code"], "Conflict");
    let before = f.emu.snapshot();
    let done = f.wait_lro(r).await;
    assert_eq!(done.status(), 500);
    assert_eq!(
        f.emu
            .snapshot()
            .slot(APP, "production")
            .expect("p")
            .content_digest,
        before.slot(APP, "production").expect("p").content_digest
    );
    // Released: a new operation is accepted.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/restart?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "answered when done, as Azure does");
}

#[tokio::test]
async fn swap_with_preview_applies_then_resets_the_target_config() {
    let f = start().await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/applySlotConfig?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(r.status(), 200, "answered when done, as Azure does");
    let snap = f.emu.snapshot();
    assert_eq!(
        snap.slot(APP, "staging").expect("s").app_settings["SLOT_NAME"],
        "prod",
        "target's sticky setting applied to the source"
    );
    eventually_body(
        &f,
        &format!("{}/env/SLOT_NAME", f.emu.app_url(APP, "staging")),
        "prod",
    )
    .await;
    let r = f
        .arm_call(Method::GET, &f.site("?api-version=2016-08-01"), None)
        .await;
    let site: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        site["properties"]["slotSwapStatus"]["sourceSlotName"],
        "staging"
    );
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/resetSlotConfig?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "answered when done, as Azure does");
    assert_eq!(
        f.emu
            .snapshot()
            .slot(APP, "staging")
            .expect("s")
            .app_settings["SLOT_NAME"],
        "stage"
    );

    // Apply then complete.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/applySlotConfig?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(r.status(), 200, "answered when done, as Azure does");
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 200);
    let snap = f.emu.snapshot();
    assert_eq!(
        snap.slot(APP, "production").expect("p").app_settings["GREETING"],
        "hello-v2"
    );
    assert_eq!(
        snap.slot(APP, "staging").expect("s").app_settings["SLOT_NAME"],
        "stage"
    );
}

#[tokio::test]
async fn stop_start_and_restart() {
    let f = start().await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/stop?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "answered when done, as Azure does");
    let (status, _) = f.get_text(&f.emu.app_url(APP, "staging")).await;
    assert_eq!(status, 403);
    let r = f
        .arm_call(
            Method::GET,
            &f.site("/slots/staging?api-version=2016-08-01"),
            None,
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["state"], "Stopped");
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/start?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "answered when done, as Azure does");
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v2").await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/restart?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "answered when done, as Azure does");
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v2").await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site(
                "/slots/staging/restart?api-version=2016-08-01&softRestart=false&synchronous=true",
            ),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v2").await;
}
