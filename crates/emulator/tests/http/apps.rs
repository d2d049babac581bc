//! Running apps: proxying, failures, Key Vault references, containers and traffic routing.

use crate::common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn slots_serve_their_own_process_with_settings_and_resolved_references() {
    let f = start().await;
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v1").await;
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v2").await;
    let prod = f.emu.app_url(APP, "production");
    eventually_body(&f, &format!("{prod}/env/DB"), "s3cr3t").await;
    eventually_body(&f, &format!("{prod}/env/WEBSITE_SLOT_NAME"), "Production").await;
    eventually_body(&f, &format!("{prod}/env/WEBSITE_SITE_NAME"), APP).await;
    let (_, home_prod) = f.get_text(&format!("{prod}/env/HOME")).await;
    let (_, home_stage) = f
        .get_text(&format!("{}/env/HOME", f.emu.app_url(APP, "staging")))
        .await;
    assert_eq!(
        home_prod, home_stage,
        "one HOME per app, shared by its slots"
    );
    // POST bodies reach the app.
    let r = f
        .http
        .post(&prod)
        .body("echo me")
        .send()
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("text"), "echo me");
    let (status, _) = f
        .get_text(&format!(
            "https://nope.azurewebsites.emulator.test:{}",
            f.emu.port()
        ))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn only_the_hosts_arm_names_answer_in_either_style() {
    let f = start().await;
    let port = f.emu.port();
    let prod = f.emu.app_url(APP, "production");
    eventually_body(&f, &prod, "v1").await;
    eventually_body(&f, &format!("{prod}/env/WEBSITE_HOSTNAME"), &prod[8..]).await;
    eventually_body(
        &f,
        &format!("{prod}/env/WEBSITE_DEFAULT_HOSTNAME"),
        &prod[8..],
    )
    .await;
    // With unique host names, the host built from the classic pattern does not exist.
    for guessed in [
        format!("https://{APP}.azurewebsites.emulator.test:{port}"),
        format!("https://{APP}-staging.azurewebsites.emulator.test:{port}"),
    ] {
        assert_eq!(f.get_text(&guessed).await.0, 404, "{guessed}");
    }

    let classic = start_with(|o| {
        o.seed.host_name_style = slot_release_emulator::HostNameStyle::Classic;
    })
    .await;
    let port = classic.emu.port();
    assert_eq!(
        classic.emu.app_url(APP, "staging"),
        format!("https://{APP}-staging.azurewebsites.emulator.test:{port}")
    );
    assert_eq!(
        classic.emu.scm_url(APP, "production"),
        format!("https://{APP}.scm.azurewebsites.emulator.test:{port}")
    );
    eventually_body(&classic, &classic.emu.app_url(APP, "staging"), "v2").await;
}

#[tokio::test]
async fn a_command_that_exits_or_never_listens_answers_503() {
    let f = start_with(|o| o.app_start_timeout = std::time::Duration::from_secs(2)).await;
    let r = f
        .arm_call(
            Method::PATCH,
            &f.site("/slots/staging/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"appCommandLine": "exit 1"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (status, body) = f.get_text(&f.emu.app_url(APP, "staging")).await;
    assert_eq!(status, 503);
    assert!(body.contains("Application Error"));
    let r = f
        .arm_call(
            Method::PATCH,
            &f.site("/slots/staging/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"appCommandLine": "sleep 30"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let started = std::time::Instant::now();
    let (status, _) = f.get_text(&f.emu.app_url(APP, "staging")).await;
    assert_eq!(status, 503);
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    let state = f
        .emu
        .snapshot()
        .slot(APP, "staging")
        .expect("s")
        .running
        .clone();
    assert!(
        matches!(state, slot_release_emulator::RunState::Failed { .. }),
        "{state:?}"
    );
}

#[tokio::test]
async fn container_images_map_to_commands_and_unmapped_images_fail_like_a_bad_pull() {
    let f = start().await;
    let api = |slot: &str| f.emu.app_url("contoso-api", slot);
    eventually_body(&f, &api("production"), "container-1.0").await;
    let (status, _) = f.get_text(&api("staging")).await;
    assert_eq!(status, 503);
    let snap = f.emu.snapshot();
    let staging = snap.slot("contoso-api", "staging").expect("s");
    assert_eq!(staging.image.as_deref(), Some("other/unknown:2.0"));
    assert!(
        matches!(&staging.running, slot_release_emulator::RunState::Failed { reason } if reason.contains("ImagePullFailure"))
    );
    // Changing the image restarts the slot with the mapped command.
    let url = f.arm(&format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/sites/contoso-api/slots/staging/config/web?api-version=2018-02-01"));
    let r = f
        .arm_call(
            Method::PATCH,
            &url,
            Some(json!({"properties": {"linuxFxVersion": "DOCKER|contoso/app:2.0"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    eventually_body(&f, &api("staging"), "container-1.0").await;
}

#[tokio::test]
async fn ramp_up_rules_route_and_pin_with_the_routing_cookie() {
    let f = start().await;
    let prod = f.emu.app_url(APP, "production");
    eventually_body(&f, &prod, "v1").await;
    eventually_body(&f, &f.emu.app_url(APP, "staging"), "v2").await;
    // Forced by the query parameter, with the cookie set.
    let r = f
        .http
        .get(format!("{prod}/?x-ms-routing-name=staging"))
        .send()
        .await
        .expect("send");
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(cookie.starts_with("x-ms-routing-name=staging"));
    assert_eq!(r.text().await.expect("text"), "v2");
    // The cookie pins.
    let r = f
        .http
        .get(&prod)
        .header("cookie", "x-ms-routing-name=staging")
        .send()
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("text"), "v2");
    let r = f
        .http
        .get(&prod)
        .header("cookie", "x-ms-routing-name=self")
        .send()
        .await
        .expect("send");
    assert_eq!(r.text().await.expect("text"), "v1");
    // 100% to staging without a cookie: the rule names the slot by the host ARM gives it.
    let staging_host = url::Url::parse(&f.emu.app_url(APP, "staging"))
        .expect("url")
        .host_str()
        .expect("host")
        .to_owned();
    let r = f.arm_call(Method::PATCH, &f.site("/config/web?api-version=2018-02-01"), Some(json!({"properties": {"experiments": {"rampUpRules": [{"actionHostName": staging_host, "reroutePercentage": 100.0, "name": "staging"}]}}}))).await;
    assert_eq!(r.status(), 200);
    for _ in 0..5 {
        let r = f.http.get(&prod).send().await.expect("send");
        assert!(
            r.headers()["set-cookie"]
                .to_str()
                .expect("ascii")
                .starts_with("x-ms-routing-name=staging")
        );
        assert_eq!(r.text().await.expect("text"), "v2");
    }
    // 0% keeps everyone on production but still allows opting in.
    f.arm_call(Method::PATCH, &f.site("/config/web?api-version=2018-02-01"), Some(json!({"properties": {"experiments": {"rampUpRules": [{"actionHostName": staging_host, "reroutePercentage": 0.0, "name": "staging"}]}}}))).await;
    for _ in 0..5 {
        assert_eq!(
            f.http
                .get(&prod)
                .send()
                .await
                .expect("send")
                .text()
                .await
                .expect("text"),
            "v1"
        );
    }
    assert_eq!(
        f.http
            .get(format!("{prod}/?x-ms-routing-name=staging"))
            .send()
            .await
            .expect("send")
            .text()
            .await
            .expect("text"),
        "v2"
    );
    // A rule whose host is no slot's routes nothing, whatever slot its `name` says.
    f.arm_call(Method::PATCH, &f.site("/config/web?api-version=2018-02-01"), Some(json!({"properties": {"experiments": {"rampUpRules": [{"actionHostName": "made-up-staging.example.test", "reroutePercentage": 100.0, "name": "staging"}]}}}))).await;
    for _ in 0..3 {
        let r = f.http.get(&prod).send().await.expect("send");
        assert_eq!(r.text().await.expect("text"), "v1");
    }
}

#[tokio::test]
async fn apps_turn_unhealthy_after_n_requests_or_after_a_swap() {
    let f = start().await;
    let stage = f.emu.app_url(APP, "staging");
    eventually_body(&f, &stage, "v2").await;
    f.emu
        .inject(slot_release_emulator::Fault::AppUnhealthyAfterRequests {
            app: APP.into(),
            slot: "staging".into(),
            after_requests: 2,
        });
    let codes: Vec<u16> = futures_codes(&f, &stage, 4).await;
    assert_eq!(codes, vec![200, 200, 500, 500]);
    f.emu.clear_faults();
    f.emu
        .inject(slot_release_emulator::Fault::AppUnhealthyAfterSwap { app: APP.into() });
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 200);
    let (status, _) = f.get_text(&f.emu.app_url(APP, "production")).await;
    assert_eq!(status, 500);
    let r = f
        .arm_call(
            Method::POST,
            &f.site("/slots/staging/slotsswap?api-version=2016-08-01"),
            Some(json!({"targetSlot": "production"})),
        )
        .await;
    assert_eq!(f.wait_lro(r).await.status(), 200);
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v1").await;
}

async fn futures_codes(f: &Fixture, url: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(f.get_text(url).await.0);
    }
    out
}

#[tokio::test]
async fn no_process_survives_the_emulator() {
    let f = start().await;
    eventually_body(&f, &f.emu.app_url(APP, "production"), "v1").await;
    let marker = f.dir.path().display().to_string();
    let ports: Vec<u16> = f
        .emu
        .snapshot()
        .apps
        .iter()
        .flat_map(|a| a.slots.iter())
        .filter_map(|s| match s.running {
            slot_release_emulator::RunState::Running { port } => Some(port),
            _ => None,
        })
        .collect();
    assert!(!ports.is_empty());
    let Fixture { emu, dir, .. } = f;
    drop(emu);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for port in ports {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still served after drop ({marker})"
        );
    }
    drop(dir);
}

#[tokio::test]
async fn a_private_image_runs_only_with_matching_credentials_or_the_managed_identity() {
    let f = start_with(|opts| {
        opts.images[0].private = Some(slot_release_emulator::PrivateImage {
            server: "contoso.azurecr.io".into(),
            username: Some("puller".into()),
            password: Some("pull-pw-7".into()),
            identity: true,
        });
    })
    .await;
    let api = |slot: &str| f.emu.app_url("contoso-api", slot);
    let site = |rest: &str| {
        f.arm(&format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/sites/contoso-api{rest}"
        ))
    };
    let failed = |slot: &str| {
        let snap = f.emu.snapshot();
        match &snap.slot("contoso-api", slot).expect("slot").running {
            slot_release_emulator::RunState::Failed { reason } => reason.clone(),
            other => format!("not failed: {other:?}"),
        }
    };
    // Without anything to pull with, the container never starts and the slot shows App Service's page.
    let (status, body) = f.get_text(&api("production")).await;
    assert_eq!(status, 503);
    assert!(body.contains("Application Error"), "{body}");
    assert!(
        failed("production").contains("unauthorized"),
        "{}",
        failed("production")
    );
    let settings = |password: &str| {
        json!({"properties": {
            "DOCKER_REGISTRY_SERVER_URL": "https://contoso.azurecr.io",
            "DOCKER_REGISTRY_SERVER_USERNAME": "puller",
            "DOCKER_REGISTRY_SERVER_PASSWORD": password,
        }})
    };
    // A wrong password is refused like none.
    let r = f
        .arm_call(
            Method::PUT,
            &site("/config/appsettings?api-version=2016-08-01"),
            Some(settings("wrong")),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (status, _) = f.get_text(&api("production")).await;
    assert_eq!(status, 503);
    assert!(failed("production").contains("unauthorized"));
    let r = f
        .arm_call(
            Method::PUT,
            &site("/config/appsettings?api-version=2016-08-01"),
            Some(settings("pull-pw-7")),
        )
        .await;
    assert_eq!(r.status(), 200);
    eventually_body(&f, &api("production"), "container-1.0").await;
    // The managed identity pulls it on a slot with no credentials at all.
    let r = f
        .arm_call(
            Method::PATCH,
            &site("/slots/staging/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"linuxFxVersion": "DOCKER|contoso/app:2.0"}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let (status, _) = f.get_text(&api("staging")).await;
    assert_eq!(status, 503);
    let r = f
        .arm_call(
            Method::PATCH,
            &site("/slots/staging/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"acrUseManagedIdentityCreds": true}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    eventually_body(&f, &api("staging"), "container-1.0").await;
}
