//! Transport faults and the admin API.

use crate::common::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn status_faults_hit_the_next_n_requests_on_a_route() {
    let f = start().await;
    let token = f.arm_token().await;
    let fault: slot_release_emulator::Fault = serde_json::from_value(serde_json::json!({
        "kind": "status", "route": {"host": "management.emulator.test", "path": "*/config/web"},
        "status": 429, "retryAfterSecs": 2, "count": 2
    }))
    .expect("fault json");
    f.emu.inject(fault);
    let url = f.site("/config/web?api-version=2018-02-01");
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = f
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send");
        if r.status() == 429 {
            assert_eq!(r.headers()["retry-after"], "2");
        }
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, vec![429, 429, 200]);
    // Other routes were never affected.
    assert_eq!(
        f.http
            .get(f.site("?api-version=1"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    let log = f.emu.requests();
    let web: Vec<u16> = log
        .iter()
        .filter(|r| r.path.ends_with("/config/web"))
        .map(|r| r.status)
        .collect();
    assert_eq!(web, vec![429, 429, 200]);
    assert!(
        log.iter()
            .all(|r| r.host != "management.emulator.test" || r.api_version.is_some())
    );
}

#[tokio::test]
async fn latency_reset_and_hang() {
    let f = start().await;
    let token = f.arm_token().await;
    let url = f.site("?api-version=1");
    f.emu.inject(slot_release_emulator::Fault::Latency {
        route: slot_release_emulator::RouteMatch {
            host: Some("management.*".into()),
            ..Default::default()
        },
        millis: 400,
        count: Some(1),
    });
    let t = Instant::now();
    assert_eq!(
        f.http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .status(),
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(400));

    f.emu.inject(slot_release_emulator::Fault::ConnectionReset {
        route: slot_release_emulator::RouteMatch {
            host: Some("management.emulator.test".into()),
            ..Default::default()
        },
        scope: Some(slot_release_emulator::Scope {
            count: Some(1),
            share: None,
        }),
    });
    let outcome = match f.http.get(&url).bearer_auth(&token).send().await {
        Ok(r) => r.bytes().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(
        outcome.is_err(),
        "the reset must surface as a transport error"
    );
    assert_eq!(
        f.http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("send")
            .status(),
        200
    );

    f.emu.inject(slot_release_emulator::Fault::Hang {
        route: slot_release_emulator::RouteMatch::default(),
        millis: Some(5_000),
        scope: Some(slot_release_emulator::Scope {
            count: Some(1),
            share: None,
        }),
    });
    let short = f
        .emu
        .client_builder()
        .expect("builder")
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let err = short
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .expect_err("hangs until the client gives up");
    assert!(err.is_timeout());
}

#[tokio::test]
async fn admin_api_serves_state_requests_and_faults() {
    let f = start().await;
    let admin = f.emu.endpoints().admin;
    let state: serde_json::Value = f
        .http
        .get(format!("{admin}/state"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let app = state["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["name"] == APP)
        .expect("app")
        .clone();
    let prod = app["slots"][0].clone();
    assert_eq!(prod["name"], "production");
    assert_eq!(prod["stickySettingNames"], serde_json::json!(["SLOT_NAME"]));
    assert_eq!(prod["contentDigest"].as_str().map(str::len), Some(64));
    let r = f.http.post(format!("{admin}/faults")).json(&serde_json::json!([{"kind": "status", "route": {"host": "*.vault.emulator.test"}, "status": 503}])).send().await.expect("send");
    assert_eq!(r.status(), 204);
    let r = f
        .http
        .get(format!(
            "{}/secrets?api-version=7.6",
            f.emu.vault_url("contoso-kv")
        ))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503);
    let faults: serde_json::Value = f
        .http
        .get(format!("{admin}/faults"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(faults.as_array().map(Vec::len), Some(1));
    assert_eq!(
        f.http
            .delete(format!("{admin}/faults"))
            .send()
            .await
            .expect("send")
            .status(),
        204
    );
    assert!(f.emu.faults().is_empty());
    let r = f
        .http
        .post(format!("{admin}/faults"))
        .json(&serde_json::json!({"kind": "nonsense"}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let reqs: serde_json::Value = f
        .http
        .get(format!("{admin}/requests"))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let vault = reqs
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["host"] == "contoso-kv.vault.emulator.test")
        .expect("logged")
        .clone();
    assert_eq!(vault["status"], 503);
    assert_eq!(vault["apiVersion"], "7.6");
    assert_eq!(vault["method"], "GET");
}
