//! Calls official clients make around a release: `config/metadata`, `slotsdiffs`, Key Vault secret
//! writes, and the Azure DevOps location lookup before a job OIDC token.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn metadata_is_written_and_listed_per_slot() {
    let f = start().await;
    for (prefix, stack) in [("", "python"), ("/slots/staging", "node")] {
        let r = f
            .arm_call(
                Method::PUT,
                &f.site(&format!("{prefix}/config/metadata?api-version=2016-08-01")),
                Some(json!({"properties": {"CURRENT_STACK": stack}})),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    for (prefix, stack) in [("", "python"), ("/slots/staging", "node")] {
        let r = f
            .arm_call(
                Method::POST,
                &f.site(&format!(
                    "{prefix}/config/metadata/list?api-version=2016-08-01"
                )),
                None,
            )
            .await;
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.expect("json");
        assert_eq!(v["properties"]["CURRENT_STACK"], stack, "{prefix}");
        assert_eq!(v["name"], "metadata");
    }
}

#[tokio::test]
async fn slots_diffs_lists_what_a_swap_would_move_and_not_sticky_settings() {
    let f = start().await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsdiffs?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    let diffs = v["value"].as_array().expect("value");
    let greeting = diffs
        .iter()
        .find(|d| d["properties"]["settingName"] == "GREETING")
        .expect("GREETING differs and is not sticky");
    assert_eq!(greeting["properties"]["valueInCurrentSlot"], "hello-v2");
    assert_eq!(greeting["properties"]["valueInTargetSlot"], "hello-v1");
    assert_eq!(greeting["properties"]["settingType"], "AppSetting");
    assert!(
        diffs
            .iter()
            .all(|d| d["properties"]["settingName"] != "SLOT_NAME"),
        "sticky settings stay, so they are no difference: {v}"
    );
}

#[tokio::test]
async fn set_secret_adds_a_version_that_get_and_list_see() {
    let f = start().await;
    let token = f.token("https://vault.emulator.test/.default").await;
    let kv = |path: &str| format!("{}{path}", f.emu.vault_url("contoso-kv"));
    let put = |name: &str, body: serde_json::Value| {
        let (url, token) = (
            kv(&format!("/secrets/{name}?api-version=7.6")),
            token.clone(),
        );
        let f = &f;
        async move {
            f.http
                .put(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .expect("put")
        }
    };
    let r = put(
        "db-password",
        json!({"value": "rotated", "contentType": "text/plain"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["value"], "rotated");
    let id = v["id"].as_str().expect("id").to_owned();
    let got: serde_json::Value = f
        .http
        .get(kv("/secrets/db-password?api-version=7.6"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (got["value"].as_str(), got["id"].as_str()),
        (Some("rotated"), Some(id.as_str()))
    );
    let r = put("brand-new", json!({"value": "v1"})).await;
    assert_eq!(r.status(), 200);
    let versions: serde_json::Value = f
        .http
        .get(kv("/secrets/brand-new/versions?api-version=7.6"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("versions")
        .json()
        .await
        .expect("json");
    assert_eq!(versions["value"].as_array().map(Vec::len), Some(1));
    let r = put("bad_name", json!({"value": "x"})).await;
    assert_eq!(r.status(), 400);
    let r = put("no-value", json!({"contentType": "x"})).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn devops_location_lookup_names_the_oidc_token_resource() {
    let f = start().await;
    let pipelines = f.emu.endpoints().pipelines_oidc;
    let collection = pipelines
        .split("/_apis/")
        .next()
        .expect("collection")
        .to_owned();
    let collection = collection
        .rsplit_once('/')
        .map(|(c, _)| c)
        .unwrap_or(&collection)
        .to_owned();
    let r = f
        .http
        .request(
            Method::OPTIONS,
            format!("{collection}/_apis/distributedtask"),
        )
        .send()
        .await
        .expect("options");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    let location = &v["value"][0];
    assert_eq!(location["id"], "69a319f4-28c1-4bfd-93e6-ea0ff5c6f1a2");
    assert_eq!(location["resourceName"], "oidctoken");
    assert!(
        location["routeTemplate"]
            .as_str()
            .is_some_and(|t| t.ends_with("/jobs/{jobId}/{resource}"))
    );
}

#[tokio::test]
async fn the_proxy_reaches_emulator_hosts_without_dns_and_nothing_else() {
    let f = start().await;
    let e = f.emu.endpoints();
    // No loopback resolver: the names resolve only because the proxy tunnels them.
    let http = reqwest::Client::builder()
        .tls_certs_merge([reqwest::Certificate::from_pem(f.emu.ca_pem().as_bytes()).expect("ca")])
        .proxy(reqwest::Proxy::https(&e.proxy).expect("proxy"))
        .build()
        .expect("client");
    let r = http
        .get(format!(
            "{}/metadata/endpoints?api-version=2022-09-01",
            e.arm
        ))
        .send()
        .await
        .expect("through the proxy");
    assert_eq!(r.status(), 200);
    let r = http
        .get("https://login.microsoftonline.com/common/discovery/instance")
        .send()
        .await;
    assert!(r.is_err(), "a foreign host is refused by the proxy: {r:?}");
    // The raw refusal names the reason.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(e.proxy.trim_start_matches("http://"))
        .await
        .expect("connect");
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("only reaches *.emulator.test"), "{answer}");
}

#[tokio::test]
async fn the_oidc_token_takes_its_api_version_from_the_accept_header() {
    // azure-devops-node-api sends `Accept: application/json;api-version=…` and no query parameter.
    let f = start().await;
    let url = format!(
        "{}?serviceConnectionId=5a7c3f10-0000-0000-0000-000000000002",
        f.emu.endpoints().pipelines_oidc
    );
    let send = |accept: &'static str| {
        let (f, url) = (&f, url.clone());
        async move {
            f.http
                .post(url)
                .bearer_auth(f.emu.seed().system_access_token.expose())
                .header("accept", accept)
                .json(&json!({}))
                .send()
                .await
                .expect("oidc")
        }
    };
    let r = send("application/json;api-version=7.2-preview.1").await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["oidcToken"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
    let r = send("application/json").await;
    assert_eq!(r.status(), 400, "no api-version anywhere is still refused");
}

#[tokio::test]
async fn publish_profile_lists_the_slots_publishing_endpoints() {
    let f = start().await;
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/publishxml?api-version=2016-08-01"),
            Some(json!({"format": "WebDeploy"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let xml = r.text().await.expect("text");
    let scm = f.emu.scm_url(APP, "staging");
    let scm_host = scm.trim_start_matches("https://");
    for method in ["MSDeploy", "FTP", "ZipDeploy"] {
        assert!(
            xml.contains(&format!("publishMethod=\"{method}\"")),
            "{xml}"
        );
    }
    assert!(xml.contains(&format!("publishUrl=\"{scm_host}\"")), "{xml}");
    assert!(
        xml.contains(&format!("userName=\"${APP}__staging\"")),
        "{xml}"
    );
}

#[tokio::test]
async fn routes_are_case_insensitive_and_wrong_methods_get_arms_405() {
    let f = start().await;
    // ARM's words and names in any case, with a doubled slash, reach the route.
    let shouting = f.arm(&format!(
        "/SUBSCRIPTIONS/{SUB}/ResourceGroups/{}/Providers/MICROSOFT.WEB//Sites/{}/Slots/Staging/Config/AppSettings/List?api-version=2016-08-01",
        RG.to_uppercase(),
        APP.to_uppercase()
    ));
    let r = f.arm_call(Method::POST, &shouting, None).await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["properties"]["SLOT_NAME"], "stage");
    // A known route with a method it does not take: 405 with ARM's error body.
    let r = f
        .arm_call(
            Method::GET,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 405);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "MethodNotAllowed");
    // An operation the emulator does not know: 404 naming it.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/backup?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/backup") && m.contains("not emulated")),
        "{v}"
    );
    // A slot that does not exist is ARM's ResourceNotFound, on every route under it.
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/nope/restart?api-version=2016-08-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "ResourceNotFound");
}
