//! Response bodies carry the fields of the official examples (field sets kept in
//! `tests/expected_shapes.json`, extracted from the REST API specs' examples).

use crate::common::*;
use reqwest::Method;
use std::collections::BTreeSet;

fn paths(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            if prefix.ends_with("azureStorageAccounts") || prefix.ends_with("tags") {
                return;
            }
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(x, &p, out);
            }
        }
        serde_json::Value::Array(a) => {
            for x in a {
                paths(x, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

fn expected(name: &str) -> BTreeSet<String> {
    let all: serde_json::Value =
        serde_json::from_str(include_str!("../expected_shapes.json")).expect("shapes json");
    all[name]
        .as_array()
        .expect("known example")
        .iter()
        .map(|p| p.as_str().expect("str").to_owned())
        .collect()
}

fn assert_shape(name: &str, body: &serde_json::Value) {
    let mut got = BTreeSet::new();
    paths(body, "", &mut got);
    let missing: Vec<_> = expected(name).difference(&got).cloned().collect();
    assert!(
        missing.is_empty(),
        "{name}: fields of the official example missing: {missing:?}"
    );
}

async fn body(
    f: &Fixture,
    method: Method,
    url: &str,
    b: Option<serde_json::Value>,
) -> serde_json::Value {
    f.arm_call(method, url, b).await.json().await.expect("json")
}

#[tokio::test]
async fn arm_bodies_have_the_fields_of_the_official_examples() {
    let f = start().await;
    assert_shape(
        "GetWebApp",
        &body(&f, Method::GET, &f.site("?api-version=2025-05-01"), None).await,
    );
    assert_shape(
        "GetWebAppSlot",
        &body(
            &f,
            Method::GET,
            &f.site("/slots/staging?api-version=2025-05-01"),
            None,
        )
        .await,
    );
    assert_shape(
        "ListWebAppSlots",
        &body(
            &f,
            Method::GET,
            &f.site("/slots?api-version=2025-05-01"),
            None,
        )
        .await,
    );
    assert_shape(
        "CreateOrUpdateWebAppSlot",
        &body(
            &f,
            Method::PUT,
            &f.site("/slots/new1?api-version=2025-05-01"),
            Some(serde_json::json!({"kind": "app", "location": "East US", "properties": {}})),
        )
        .await,
    );
    assert_shape(
        "ListAppSettings",
        &body(
            &f,
            Method::POST,
            &f.site("/config/appsettings/list?api-version=2025-05-01"),
            None,
        )
        .await,
    );
    assert_shape(
        "UpdateAppSettings",
        &body(
            &f,
            Method::PUT,
            &f.site("/config/appsettings?api-version=2025-05-01"),
            Some(serde_json::json!({"properties": {"A": "1"}})),
        )
        .await,
    );
    assert_shape(
        "GetSiteConfig",
        &body(
            &f,
            Method::GET,
            &f.site("/config/web?api-version=2025-05-01"),
            None,
        )
        .await,
    );
    assert_shape(
        "UpdateSiteConfig",
        &body(
            &f,
            Method::PUT,
            &f.site("/config/web?api-version=2025-05-01"),
            Some(serde_json::json!({"properties": {"alwaysOn": true}})),
        )
        .await,
    );
    assert_shape(
        "GetPublishingCredentialsPolicy",
        &body(
            &f,
            Method::GET,
            &f.site("/basicPublishingCredentialsPolicies/scm?api-version=2025-05-01"),
            None,
        )
        .await,
    );
    let record = f.one_deploy("staging", app_zip("shape")).await;
    let id = record["id"].as_str().expect("id").to_owned();
    assert_shape(
        "GetSiteDeploymentStatus",
        &body(
            &f,
            Method::GET,
            &f.site(&format!(
                "/slots/staging/deploymentStatus/{id}?api-version=2025-05-01"
            )),
            None,
        )
        .await,
    );
}

#[tokio::test]
async fn key_vault_bodies_have_the_fields_of_the_official_examples() {
    let f = start().await;
    let token = f.token("https://vault.emulator.test/.default").await;
    let base = f.emu.vault_url("contoso-kv");
    let list: serde_json::Value = f
        .http
        .get(format!("{base}/secrets?api-version=7.6&maxresults=1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_shape("GetSecrets", &list);
    let one: serde_json::Value = f
        .http
        .get(format!("{base}/secrets/db-password?api-version=7.6"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_shape("GetSecret", &one);
}
