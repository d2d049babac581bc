//! Kudu: OneDeploy, ZipDeploy, statuses, 409, failures with logs, zip-slip, history, command, auth.

use crate::common::*;
use base64::Engine;
use std::time::Duration;

#[tokio::test]
async fn one_deploy_extracts_the_package_and_restarts_the_app() {
    let f = start().await;
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v2").await;
    let before = f
        .emu
        .snapshot()
        .slot(APP, "staging")
        .expect("s")
        .content_digest
        .clone();
    let record = f.one_deploy("staging", app_zip("v3")).await;
    assert_eq!(record["status"], 4);
    assert_eq!(record["complete"], true);
    assert_eq!(record["active"], true);
    assert_eq!(record["deployer"], "OneDeploy");
    let snap = f.emu.snapshot();
    let staging = snap.slot(APP, "staging").expect("s");
    assert_ne!(staging.content_digest, before);
    assert!(staging.content_dir.join("VERSION").exists());
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v3").await;
    // Production was not touched.
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v1").await;
    let token = f.arm_token().await;
    let list: serde_json::Value = f
        .http
        .get(f.scm("staging", "/api/deployments"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    // The same history through ARM.
    let r = f
        .arm_call(
            reqwest::Method::GET,
            &f.site("/slots/staging/deployments?api-version=2016-08-01"),
            None,
        )
        .await;
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["value"][0]["properties"]["status"], 4);
}

#[tokio::test]
async fn status_goes_through_0_1_2_then_4_and_a_second_deploy_gets_409() {
    let f = start_with(|o| o.deployment_step_delay = Duration::from_millis(300)).await;
    let token = f.arm_token().await;
    let r = f
        .http
        .post(f.scm("staging", "/api/zipdeploy?isAsync=true"))
        .bearer_auth(&token)
        .body(app_zip("v4"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"].to_str().expect("ascii").to_owned();
    let second = f
        .http
        .post(f.scm("staging", "/api/publish?type=zip&async=true"))
        .bearer_auth(&token)
        .body(app_zip("v5"))
        .send()
        .await
        .expect("send");
    assert_eq!(second.status(), 409);
    let mut seen = Vec::new();
    loop {
        let r = f
            .http
            .get(&location)
            .bearer_auth(&token)
            .send()
            .await
            .expect("poll");
        let code = r.status().as_u16();
        let v: serde_json::Value = r.json().await.expect("json");
        let s = v["status"].as_i64().expect("status");
        if seen.last() != Some(&s) {
            seen.push(s);
        }
        if v["complete"] == true {
            assert_eq!(code, 200);
            break;
        }
        assert_eq!(code, 202);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(seen, vec![0, 1, 2, 4]);
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v4").await;
}

#[tokio::test]
async fn failed_deployments_report_status_3_with_a_log_and_keep_the_content() {
    let f = start().await;
    let before = f
        .emu
        .snapshot()
        .slot(APP, "staging")
        .expect("s")
        .content_digest
        .clone();
    f.emu.inject(slot_release_emulator::Fault::DeploymentFails {
        app: APP.into(),
        slot: Some("staging".into()),
    });
    let record = f.one_deploy("staging", app_zip("bad")).await;
    assert_eq!(record["status"], 3);
    let token = f.arm_token().await;
    let log: serde_json::Value = f
        .http
        .get(record["log_url"].as_str().expect("log_url"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert!(
        log.as_array()
            .expect("array")
            .iter()
            .any(|e| e["message"].as_str().is_some_and(|m| m.contains("failed")))
    );
    assert_eq!(
        f.emu
            .snapshot()
            .slot(APP, "staging")
            .expect("s")
            .content_digest,
        before
    );

    // A zip-slip entry fails the deployment and writes nothing outside.
    let record = f
        .one_deploy("staging", zip(&[("../../escape.txt", "x")]))
        .await;
    assert_eq!(record["status"], 3);
    assert!(
        record["status_text"]
            .as_str()
            .is_some_and(|t| t.contains("outside"))
    );
    assert_eq!(
        f.emu
            .snapshot()
            .slot(APP, "staging")
            .expect("s")
            .content_digest,
        before
    );

    // Not a zip at all.
    let record = f.one_deploy("staging", b"not a zip".to_vec()).await;
    assert_eq!(record["status"], 3);

    // OneDeploy requires a type.
    let r = f
        .http
        .post(f.scm("staging", "/api/publish?async=true"))
        .bearer_auth(&token)
        .body(app_zip("x"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn checksum_mismatch_is_refused() {
    let f = start().await;
    let token = f.arm_token().await;
    let r = f
        .http
        .post(f.scm("staging", "/api/publish?type=zip&async=true"))
        .bearer_auth(&token)
        .header("x-ms-artifact-checksum", "00")
        .body(app_zip("x"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn deployment_records_command_and_basic_auth() {
    let f = start().await;
    let token = f.arm_token().await;
    let r = f.http.put(f.scm("production", "/api/deployments/release-42")).bearer_auth(&token).json(&serde_json::json!({"status": 4, "message": "{\"release\":42}", "author": "slot-release", "deployer": "SlotRelease", "active": true})).send().await.expect("send");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = f
        .http
        .get(f.scm("production", "/api/deployments/release-42"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["deployer"], "SlotRelease");
    assert_eq!(v["message"], "{\"release\":42}");

    let r = f.http.post(f.scm("staging", "/api/command")).bearer_auth(&token).json(&serde_json::json!({"command": "cat VERSION; echo \"$GREETING\" >&2; exit 3", "dir": "site/wwwroot"})).send().await.expect("send");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["Output"], "v2");
    assert_eq!(v["Error"], "hello-v2\n");
    assert_eq!(v["ExitCode"], 3);

    f.emu
        .inject(slot_release_emulator::Fault::KuduCommandFails {
            app: APP.into(),
            exit_code: 7,
            count: Some(1),
        });
    let v: serde_json::Value = f
        .http
        .post(f.scm("staging", "/api/command"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"command": "true", "dir": ""}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ExitCode"], 7);
    let v: serde_json::Value = f
        .http
        .post(f.scm("staging", "/api/command"))
        .bearer_auth(&token)
        .json(&serde_json::json!({"command": "true", "dir": ""}))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["ExitCode"], 0, "count-limited fault is spent");

    // Basic auth with the publishing credentials, while the policy allows it.
    let creds: serde_json::Value = f
        .arm_call(
            reqwest::Method::POST,
            &f.site("/slots/staging/config/publishingcredentials/list?api-version=2016-08-01"),
            None,
        )
        .await
        .json()
        .await
        .expect("json");
    let user = creds["properties"]["publishingUserName"]
        .as_str()
        .expect("user")
        .to_owned();
    let pass = creds["properties"]["publishingPassword"]
        .as_str()
        .expect("pass")
        .to_owned();
    assert_eq!(user, format!("${APP}__staging"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    let r = f
        .http
        .get(f.scm("staging", "/api/settings"))
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let r = f
        .http
        .get(f.scm("staging", "/api/settings"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    f.arm_call(
        reqwest::Method::PUT,
        &f.site("/basicPublishingCredentialsPolicies/scm?api-version=2022-03-01"),
        Some(serde_json::json!({"properties": {"allow": false}})),
    )
    .await;
    let r = f
        .http
        .get(f.scm("staging", "/api/settings"))
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn large_uploads_are_streamed_to_disk() {
    let f = start().await;
    // 64 MiB of zeros compresses well; the body is streamed, so memory does not grow with it.
    let big = vec![0u8; 64 * 1024 * 1024];
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(&mut buf);
        w.start_file("big.bin", zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(&big).expect("write");
        w.start_file("VERSION", zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(b"big").expect("write");
        w.finish().expect("finish");
    }
    let record = f.one_deploy("staging", buf.into_inner()).await;
    assert_eq!(record["status"], 4);
    let dir = f
        .emu
        .snapshot()
        .slot(APP, "staging")
        .expect("s")
        .content_dir
        .clone();
    assert_eq!(
        std::fs::metadata(dir.join("big.bin"))
            .expect("extracted")
            .len(),
        64 * 1024 * 1024
    );
}

#[tokio::test]
async fn an_upload_dropped_half_way_gives_the_deployment_lock_back() {
    let f = start().await;
    let token = f.arm_token().await;
    // A body that sends 1 MiB, then stalls: the client gives up (as a cancelled run does) and the
    // connection is dropped while Kudu is still receiving.
    let chunk = bytes::Bytes::from(vec![0u8; 1024 * 1024]);
    let body = futures::StreamExt::chain(
        futures::stream::iter([Ok::<_, std::io::Error>(chunk)]),
        futures::stream::pending(),
    );
    let dropped = f
        .http
        .post(f.scm("staging", "/api/publish?type=zip&async=true"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(500))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    assert!(dropped.is_err(), "the stalled upload never completes");
    // The next deployment is not refused with 409 for ever.
    let started = std::time::Instant::now();
    loop {
        let r = f
            .http
            .post(f.scm("staging", "/api/publish?type=zip&async=true"))
            .bearer_auth(&token)
            .body(app_zip("v6"))
            .send()
            .await
            .expect("send");
        if r.status() == 202 {
            break;
        }
        assert_eq!(r.status(), 409);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the dropped upload still holds the deployment lock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v6").await;
}
