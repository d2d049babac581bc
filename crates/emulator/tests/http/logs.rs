//! App logs as App Service keeps them: the app's output and the platform's lines in `/home/LogFiles`,
//! listed by `/api/logs/docker`, read through `/api/vfs`, and streamed by `/api/logstream`.

use crate::common::*;
use futures::StreamExt;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

/// A startup command that prints, then fails the way a missing dependency does (`-S`: no
/// site-packages, so the module is missing on every machine).
fn crashing_command() -> String {
    format!(
        "echo booting the app; echo a warning >&2; {} -S -c 'import gunicorn'",
        python()
    )
}

async fn wait_failed(f: &Fixture, slot: &str) {
    for _ in 0..200 {
        let running = f.emu.snapshot().slot(APP, slot).map(|s| s.running.clone());
        if matches!(
            running,
            Some(slot_release_emulator::RunState::Failed { .. })
        ) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app of {slot} never failed");
}

#[tokio::test]
async fn a_crashed_app_leaves_its_output_and_exit_in_the_logs_kudu_serves() {
    let f = start().await;
    let token = f.arm_token().await;
    let stream = f
        .http
        .get(f.scm("staging", "/api/logstream"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logstream");
    assert_eq!(stream.status(), 200);
    let mut stream = stream.bytes_stream();

    let r = f
        .arm_call(
            Method::PATCH,
            &f.site("/slots/staging/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"appCommandLine": crashing_command()}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    wait_failed(&f, "staging").await;

    let list: serde_json::Value = f
        .http
        .get(f.scm("staging", "/api/logs/docker"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let files = list.as_array().expect("a list");
    let href = |suffix: &str| -> String {
        let entry = files
            .iter()
            .find(|e| {
                e["href"].as_str().is_some_and(|h| {
                    h.ends_with(suffix)
                        && (suffix != "_docker.log" || !h.ends_with("default_docker.log"))
                })
            })
            .unwrap_or_else(|| panic!("no {suffix} in {list}"));
        assert!(entry["size"].as_u64().is_some_and(|s| s > 0), "{entry}");
        assert!(
            entry["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/home/LogFiles/"))
        );
        entry["href"].as_str().expect("href").to_owned()
    };
    let app_log = href("_default_docker.log");
    assert!(
        app_log.starts_with(&format!(
            "{}/api/vfs/LogFiles/",
            f.emu.scm_url(APP, "staging")
        )),
        "{app_log}"
    );
    let read = |url: String| {
        let (http, token) = (f.http.clone(), token.clone());
        async move {
            let r = http.get(url).bearer_auth(token).send().await.expect("read");
            assert_eq!(r.status(), 200);
            r.text().await.expect("text")
        }
    };
    let text = read(app_log).await;
    for expected in [
        "booting the app",
        "a warning",
        "ModuleNotFoundError: No module named 'gunicorn'",
    ] {
        assert!(text.contains(expected), "{expected} not in {text}");
    }
    assert!(
        text.lines()
            .all(|l| l.starts_with("20") && l.contains("Z ")),
        "every line starts with its time: {text}"
    );
    let platform = read(href("_docker.log")).await;
    for expected in [
        "INFO  - Starting container for site contoso-web__staging",
        "has exited with status 1, failing site start",
        "didn't respond to HTTP pings on port: ",
    ] {
        assert!(platform.contains(expected), "{expected} not in {platform}");
    }

    // The folder lists both files; other parts of /home are not emulated.
    let folder = read(f.scm("staging", "/api/vfs/LogFiles/")).await;
    assert!(
        folder.contains("default_docker.log") && folder.contains("_docker.log\""),
        "{folder}"
    );
    let r = f
        .http
        .get(f.scm("staging", "/api/vfs/etc/passwd"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("vfs");
    assert_eq!(r.status(), 404);

    // The stream connected before the crash carries its lines.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("No module named 'gunicorn'") {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            other => panic!("the stream ended or stalled ({other:?}) after: {seen}"),
        }
    }
    assert!(
        seen.contains("Welcome, you are now connected to log-streaming service."),
        "{seen}"
    );
}
