//! Every kind of App Service app: Windows code apps, function apps (with host keys), Flex
//! Consumption, sitecontainers apps, and the plans whose SKU decides whether slots exist.

use crate::common::*;
use reqwest::Method;
use serde_json::json;
use slot_release_emulator::{AppOs, SeedApp, SeedPlan, SeedSlot};

fn app(name: &str, sku: &str, slots: &[&str]) -> SeedApp {
    SeedApp {
        name: name.into(),
        plan: SeedPlan {
            name: None,
            sku: sku.into(),
        },
        slots: slots.iter().map(|s| SeedSlot::named(*s)).collect(),
        ..SeedApp::default()
    }
}

async fn start_with_kinds() -> Fixture {
    start_with(|o| {
        let apps = &mut o.seed.subscriptions[0].resource_groups[0].apps;
        let mut win = app("contoso-win", "P1v3", &["production", "staging"]);
        win.os = AppOs::Windows;
        for s in &mut win.slots {
            s.metadata.insert("CURRENT_STACK".into(), "dotnet".into());
            s.site_config
                .insert("netFrameworkVersion".into(), "v8.0".into());
        }
        let mut func = app("contoso-func", "EP1", &["production", "staging"]);
        func.function_app = true;
        let mut winfunc = app("contoso-winfunc", "S1", &["production"]);
        winfunc.function_app = true;
        winfunc.os = AppOs::Windows;
        let mut flex = app("contoso-flex", "FC1", &["production"]);
        flex.function_app = true;
        let basic = app("contoso-basic", "B1", &["production"]);
        let mut sc = app("contoso-sc", "P1v3", &["production", "staging"]);
        for (s, tag) in sc.slots.iter_mut().zip(["1", "2"]) {
            s.site_config
                .insert("linuxFxVersion".into(), "SITECONTAINERS".into());
            let main = json!({"image": format!("contoso/web:{tag}"), "isMain": true, "targetPort": "8080"});
            s.site_containers
                .insert("main".into(), main.as_object().cloned().unwrap_or_default());
        }
        apps.extend([win, func, winfunc, flex, basic, sc]);
    })
    .await
}

fn site_of(f: &Fixture, app: &str, rest: &str) -> String {
    f.arm(&format!(
        "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/sites/{app}{rest}"
    ))
}

async fn get_json(f: &Fixture, method: Method, url: &str) -> (u16, serde_json::Value) {
    let r = f.arm_call(method, url, None).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

#[tokio::test]
async fn sites_tell_their_kind_os_stack_and_plan() {
    let f = start_with_kinds().await;
    for (app, kind, reserved, tier) in [
        (APP, "app,linux", true, "Standard"),
        ("contoso-api", "app,linux,container", true, "Standard"),
        ("contoso-win", "app", false, "PremiumV3"),
        ("contoso-func", "functionapp,linux", true, "ElasticPremium"),
        ("contoso-winfunc", "functionapp", false, "Standard"),
        ("contoso-flex", "functionapp,linux", true, "FlexConsumption"),
    ] {
        let (status, site) = get_json(
            &f,
            Method::GET,
            &site_of(&f, app, "?api-version=2024-04-01"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(site["kind"], kind, "{app}");
        assert_eq!(site["properties"]["reserved"], reserved, "{app}");
        assert_eq!(site["properties"]["sku"], tier, "{app}");
        let farm = site["properties"]["serverFarmId"]
            .as_str()
            .expect("serverFarmId");
        assert!(
            farm.ends_with(&format!("/serverfarms/{app}-plan")),
            "{farm}"
        );
        let (status, plan) = get_json(
            &f,
            Method::GET,
            &f.arm(&format!("{farm}?api-version=2024-04-01")),
        )
        .await;
        assert_eq!(status, 200, "{farm}");
        assert_eq!(plan["type"], "Microsoft.Web/serverfarms");
        assert_eq!(plan["sku"]["tier"], tier);
        assert_eq!(plan["properties"]["reserved"], reserved);
    }
    let (_, plan) = get_json(&f, Method::GET, &f.arm(&format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/serverfarms/contoso-flex-plan?api-version=2024-04-01"))).await;
    assert_eq!(plan["sku"]["name"], "FC1");
    let (status, _) = get_json(&f, Method::GET, &f.arm(&format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/serverfarms/nope?api-version=2024-04-01"))).await;
    assert_eq!(status, 404);

    // Windows: the stack in netFrameworkVersion and metadata, no linuxFxVersion.
    let (_, cfg) = get_json(
        &f,
        Method::GET,
        &site_of(&f, "contoso-win", "/config/web?api-version=2024-04-01"),
    )
    .await;
    assert_eq!(cfg["properties"]["netFrameworkVersion"], "v8.0");
    assert_eq!(cfg["properties"]["linuxFxVersion"], "");
    let (_, meta) = get_json(
        &f,
        Method::POST,
        &site_of(
            &f,
            "contoso-win",
            "/slots/staging/config/metadata/list?api-version=2024-04-01",
        ),
    )
    .await;
    assert_eq!(meta["properties"]["CURRENT_STACK"], "dotnet");

    // Flex Consumption carries its functionAppConfig; the others none.
    let (_, flex) = get_json(
        &f,
        Method::GET,
        &site_of(&f, "contoso-flex", "?api-version=2024-04-01"),
    )
    .await;
    assert_eq!(
        flex["properties"]["functionAppConfig"]["deployment"]["storage"]["type"],
        "blobContainer"
    );
    let (_, func) = get_json(
        &f,
        Method::GET,
        &site_of(&f, "contoso-func", "?api-version=2024-04-01"),
    )
    .await;
    assert!(func["properties"].get("functionAppConfig").is_none());
}

#[tokio::test]
async fn plans_without_slots_refuse_slot_creation_as_arm_does() {
    let f = start_with_kinds().await;
    for (app, tier) in [
        ("contoso-flex", "FlexConsumption"),
        ("contoso-basic", "Basic"),
    ] {
        let r = f
            .arm_call(
                Method::PUT,
                &site_of(&f, app, "/slots/staging?api-version=2024-04-01"),
                Some(json!({"location": "East US", "properties": {}})),
            )
            .await;
        assert_eq!(r.status(), 409, "{app}");
        let e: serde_json::Value = r.json().await.expect("json");
        assert_eq!(e["error"]["code"], "Conflict");
        assert_eq!(
            e["error"]["message"],
            format!(
                "Cannot complete the operation because the site will exceed the number of slots allowed for the '{tier}' SKU."
            )
        );
        let (_, slots) = get_json(
            &f,
            Method::GET,
            &site_of(&f, app, "/slots?api-version=2024-04-01"),
        )
        .await;
        assert_eq!(slots["value"], json!([]), "nothing created");
    }
    // Elastic Premium allows three slots with production: one more fits, the next does not.
    let put = |slot: &str| {
        site_of(
            &f,
            "contoso-func",
            &format!("/slots/{slot}?api-version=2024-04-01"),
        )
    };
    let r = f
        .arm_call(
            Method::PUT,
            &put("canary"),
            Some(json!({"location": "East US"})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 200);
    let r = f
        .arm_call(
            Method::PUT,
            &put("extra"),
            Some(json!({"location": "East US"})),
        )
        .await;
    assert_eq!(r.status(), 409);
}

#[tokio::test]
async fn function_host_keys_are_listed_per_slot_and_kept_secret() {
    let f = start_with_kinds().await;
    let (status, prod) = get_json(
        &f,
        Method::POST,
        &site_of(
            &f,
            "contoso-func",
            "/host/default/listkeys?api-version=2024-04-01",
        ),
    )
    .await;
    assert_eq!(status, 200);
    let master = prod["masterKey"].as_str().expect("masterKey").to_owned();
    assert!(master.len() >= 40, "{master}");
    assert!(prod["functionKeys"]["default"].is_string());
    assert_eq!(prod["systemKeys"], json!({}));
    let (_, stage) = get_json(
        &f,
        Method::POST,
        &site_of(
            &f,
            "contoso-func",
            "/slots/staging/host/default/listkeys?api-version=2024-04-01",
        ),
    )
    .await;
    assert_ne!(
        stage["masterKey"], prod["masterKey"],
        "each slot has its own keys"
    );
    // A web app has no Functions host.
    let (status, _) = get_json(
        &f,
        Method::POST,
        &f.site("/host/default/listkeys?api-version=2024-04-01"),
    )
    .await;
    assert_eq!(status, 400);
    // The keys reach no snapshot and no request log.
    let snapshot = serde_json::to_string(&f.emu.snapshot()).expect("serialises");
    assert!(!snapshot.contains(&master));
    let log = format!("{:?}", f.emu.requests());
    assert!(!log.contains(&master));
}

#[tokio::test]
async fn sitecontainers_are_managed_per_slot_and_follow_the_content_on_a_swap() {
    let f = start_with_kinds().await;
    let url = |rest: &str| site_of(&f, "contoso-sc", &format!("{rest}?api-version=2024-11-01"));
    let (status, list) = get_json(&f, Method::GET, &url("/sitecontainers")).await;
    assert_eq!(status, 200);
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["value"][0]["name"], "main");
    assert_eq!(
        list["value"][0]["type"],
        "Microsoft.Web/sites/sitecontainers"
    );
    assert_eq!(list["value"][0]["properties"]["image"], "contoso/web:1");

    // A sidecar on staging: PUT, GET, and a second main container refused.
    let sidecar =
        json!({"properties": {"image": "otel/collector:1", "isMain": false, "targetPort": "4317"}});
    let r = f
        .arm_call(
            Method::PUT,
            &url("/slots/staging/sitecontainers/otel"),
            Some(sidecar),
        )
        .await;
    assert_eq!(r.status(), 200);
    let put: serde_json::Value = r.json().await.expect("json");
    assert_eq!(put["type"], "Microsoft.Web/sites/slots/sitecontainers");
    assert!(put["properties"]["createdTime"].is_string());
    let (status, got) = get_json(&f, Method::GET, &url("/slots/staging/sitecontainers/OTEL")).await;
    assert_eq!(status, 200);
    assert_eq!(got["properties"]["targetPort"], "4317");
    let second_main = json!({"properties": {"image": "x:1", "isMain": true}});
    let r = f
        .arm_call(
            Method::PUT,
            &url("/slots/staging/sitecontainers/other"),
            Some(second_main),
        )
        .await;
    assert_eq!(r.status(), 400);
    let no_image = json!({"properties": {"isMain": false}});
    let r = f
        .arm_call(
            Method::PUT,
            &url("/slots/staging/sitecontainers/other"),
            Some(no_image),
        )
        .await;
    assert_eq!(r.status(), 400);
    // The main image rolls forward on staging.
    let main =
        json!({"properties": {"image": "contoso/web:3", "isMain": true, "targetPort": "8080"}});
    let r = f
        .arm_call(
            Method::PUT,
            &url("/slots/staging/sitecontainers/main"),
            Some(main),
        )
        .await;
    assert_eq!(r.status(), 200);

    let r = f
        .arm_call(
            Method::POST,
            &url("/slots/staging/slotsswap"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    let done = f.wait_lro(r).await;
    assert_eq!(done.status(), 200);
    let (_, prod) = get_json(&f, Method::GET, &url("/sitecontainers")).await;
    let images: Vec<&str> = prod["value"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["properties"]["image"].as_str())
        .collect();
    assert_eq!(images, ["contoso/web:3", "otel/collector:1"]);
    let (_, stage) = get_json(&f, Method::GET, &url("/slots/staging/sitecontainers/main")).await;
    assert_eq!(stage["properties"]["image"], "contoso/web:1");

    // DELETE: 200, then 404 on GET and 204 on a second DELETE.
    assert_eq!(
        get_json(&f, Method::DELETE, &url("/sitecontainers/otel"))
            .await
            .0,
        200
    );
    assert_eq!(
        get_json(&f, Method::GET, &url("/sitecontainers/otel"))
            .await
            .0,
        404
    );
    assert_eq!(
        get_json(&f, Method::DELETE, &url("/sitecontainers/otel"))
            .await
            .0,
        204
    );
}
