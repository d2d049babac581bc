//! Key Vault: challenge, paging, get by version, disabled/expired/missing secrets, throttling.

use crate::common::*;

fn kv(f: &Fixture, vault: &str, path: &str) -> String {
    format!("{}{path}", f.emu.vault_url(vault))
}

#[tokio::test]
async fn unauthenticated_requests_get_the_challenge() {
    let f = start().await;
    let r = f
        .http
        .get(kv(&f, "contoso-kv", "/secrets?api-version=7.6"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let www = r.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let tenant = &f.emu.seed().tenant_id;
    assert_eq!(
        www,
        format!(
            "Bearer authorization=\"https://login.emulator.test:{port}/{tenant}\", resource=\"https://vault.emulator.test:{port}\"",
            port = f.emu.port()
        )
    );
    // The resource named by the challenge is what the SDKs ask Entra for: it must give a token the
    // vault accepts.
    let token = f
        .token(&format!(
            "https://vault.emulator.test:{}/.default",
            f.emu.port()
        ))
        .await;
    let r = f
        .http
        .get(kv(&f, "contoso-kv", "/secrets?api-version=7.6"))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let arm = f.arm_token().await;
    let r = f
        .http
        .get(kv(&f, "contoso-kv", "/secrets?api-version=7.6"))
        .bearer_auth(arm)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401, "an ARM token is the wrong audience");
}

#[tokio::test]
async fn list_pages_with_next_link_and_get_latest_or_by_version() {
    let f = start().await;
    let token = f.token("https://vault.emulator.test/.default").await;
    let mut url = kv(&f, "contoso-kv", "/secrets?api-version=7.6&maxresults=1");
    let mut names = Vec::new();
    let mut pages = 0;
    loop {
        let v: serde_json::Value = f
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .json()
            .await
            .expect("json");
        pages += 1;
        for item in v["value"].as_array().expect("array") {
            names.push(
                item["id"]
                    .as_str()
                    .expect("id")
                    .rsplit('/')
                    .next()
                    .expect("name")
                    .to_owned(),
            );
        }
        match v["nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(
        names,
        vec!["api-key", "db-password", "disabled-one", "expired-one"]
    );
    for bad in ["0", "26", "x"] {
        let r = f
            .http
            .get(kv(
                &f,
                "contoso-kv",
                &format!("/secrets?api-version=7.6&maxresults={bad}"),
            ))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400);
    }
    let v: serde_json::Value = f
        .http
        .get(kv(&f, "contoso-kv", "/secrets/db-password?api-version=7.6"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["value"], "s3cr3t");
    let id = v["id"].as_str().expect("id").to_owned();
    let version = id.rsplit('/').next().expect("version");
    let v2: serde_json::Value = f
        .http
        .get(kv(
            &f,
            "contoso-kv",
            &format!("/secrets/db-password/{version}?api-version=7.6"),
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v2["value"], "s3cr3t");
    let v3: serde_json::Value = f
        .http
        .get(kv(
            &f,
            "contoso-kv",
            "/secrets/db-password/?api-version=7.6",
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v3["id"], id, "empty version means latest");
    let v4: serde_json::Value = f
        .http
        .get(kv(
            &f,
            "contoso-kv",
            &format!("/secrets/db-password%2F{version}?api-version=7.6"),
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v4["id"], id, "an encoded name/version selects that version");
    let versions: Vec<String> = {
        let snap = f.emu.snapshot();
        snap.vaults.iter().map(|v| v.name.clone()).collect()
    };
    assert_eq!(versions, vec!["contoso-kv", "tiny-kv"]);
}

#[tokio::test]
async fn disabled_expired_and_missing_secrets_fail_like_key_vault() {
    let f = start().await;
    let token = f.token("https://vault.emulator.test/.default").await;
    let get = |name: &str| {
        f.http
            .get(kv(
                &f,
                "contoso-kv",
                &format!("/secrets/{name}?api-version=7.6"),
            ))
            .bearer_auth(&token)
            .send()
    };
    let r = get("disabled-one").await.expect("send");
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "Forbidden");
    assert_eq!(v["error"]["innerError"]["code"], "SecretDisabled");
    let r = get("expired-one").await.expect("send");
    assert_eq!(r.status(), 403);
    let r = get("nope").await.expect("send");
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "SecretNotFound");
    let r = f
        .http
        .get(kv(
            &f,
            "contoso-kv",
            "/secrets/db-password/0000?api-version=7.6",
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let f = start().await;
    let token = f.token("https://vault.emulator.test/.default").await;
    let mut codes = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let r = f
            .http
            .get(kv(&f, "tiny-kv", "/secrets/one?api-version=7.6"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        if r.status() == 429 {
            retry_after = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
        }
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, vec![200, 200, 200, 429, 429]);
    assert!(retry_after.is_some_and(|s| (1..=30).contains(&s)));
}

#[tokio::test]
async fn secret_versions_are_listed_in_pages_oldest_first() {
    let f = start().await;
    let token = f.token("https://vault.emulator.test/.default").await;
    let mut url = kv(
        &f,
        "contoso-kv",
        "/secrets/db-password/versions?api-version=7.6&maxresults=1",
    );
    let mut ids = Vec::new();
    let mut pages = 0;
    loop {
        let r = f
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.expect("json");
        pages += 1;
        for item in v["value"].as_array().expect("array") {
            assert!(item.get("value").is_none(), "list items never carry values");
            assert_eq!(item["attributes"]["enabled"], true);
            ids.push(item["id"].as_str().expect("id").to_owned());
        }
        match v["nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!((pages, ids.len()), (2, 2));
    let prefix = format!("{}/secrets/db-password/", f.emu.vault_url("contoso-kv"));
    assert!(ids.iter().all(|id| id.starts_with(&prefix)), "{ids:?}");
    let latest: serde_json::Value = f
        .http
        .get(kv(&f, "contoso-kv", "/secrets/db-password?api-version=7.6"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(latest["id"].as_str(), ids.last().map(String::as_str));
    let oldest: serde_json::Value = f
        .http
        .get(format!("{}?api-version=7.6", ids[0]))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(oldest["value"], "s3cr3t-old");

    let r = f
        .http
        .get(kv(
            &f,
            "contoso-kv",
            "/secrets/nope/versions?api-version=7.6",
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "SecretNotFound");
    let r = f
        .http
        .get(kv(
            &f,
            "contoso-kv",
            "/secrets/db-password/versions?api-version=7.6&maxresults=26",
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
}
