//! App Service through ARM: settings, sticky names, site config, tags, slots, swaps and their long-running
//! operations, and which failures are retried.

use super::*;

#[tokio::test]
async fn app_settings_read_modify_write_keeps_other_settings() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let first = SettingsChange {
        set: BTreeMap::from([("A".into(), "1".into()), ("B".into(), "2".into())]),
        remove: BTreeSet::new(),
    };
    web.update_app_settings(&s, &first, &CancellationToken::new())
        .await
        .expect("first write");
    let second = SettingsChange {
        set: BTreeMap::from([("C".into(), "3".into())]),
        remove: BTreeSet::from(["A".into()]),
    };
    let written = web
        .update_app_settings(&s, &second, &CancellationToken::new())
        .await
        .expect("second write");
    assert_eq!(written.get("B").map(String::as_str), Some("2"));
    assert_eq!(written.get("C").map(String::as_str), Some("3"));
    assert!(!written.contains_key("A"));
    let read = web
        .app_settings(&s, &CancellationToken::new())
        .await
        .expect("read back");
    assert_eq!(read, written);
    let snap = env.em.snapshot();
    let live = &snap.slot(APP, "staging").expect("slot").app_settings;
    assert_eq!(live.get("B").map(String::as_str), Some("2"));
    // Production was not touched.
    assert!(
        !snap
            .slot(APP, "production")
            .expect("prod")
            .app_settings
            .contains_key("C")
    );
}

#[tokio::test]
async fn sticky_names_site_config_and_tags_round_trip() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let names = SlotConfigNames {
        app_setting_names: vec!["SLOT_NAME".into()],
        ..SlotConfigNames::default()
    };
    web.set_slot_config_names(&names, &CancellationToken::new())
        .await
        .expect("set sticky");
    assert_eq!(
        web.slot_config_names(&CancellationToken::new())
            .await
            .expect("get sticky")
            .app_setting_names,
        vec!["SLOT_NAME".to_owned()]
    );

    let s = slot("staging");
    let patch = SiteConfigPatch {
        app_command_line: Some("python app.py".into()),
        health_check_path: Some("/healthz".into()),
        linux_fx_version: Some("PYTHON|3.12".into()),
        ..SiteConfigPatch::default()
    };
    let cfg = web
        .patch_site_config(&s, &patch, &CancellationToken::new())
        .await
        .expect("patch");
    assert_eq!(cfg.app_command_line.as_deref(), Some("python app.py"));
    let cfg = web
        .site_config(&s, &CancellationToken::new())
        .await
        .expect("get config");
    assert_eq!(cfg.health_check_path.as_deref(), Some("/healthz"));
    assert_eq!(cfg.linux_fx_version.as_deref(), Some("PYTHON|3.12"));

    let rule = RampUpRule {
        action_host_name: "contoso-web-staging.x".into(),
        reroute_percentage: 10.0,
        name: "staging".into(),
        other: serde_json::Map::new(),
    };
    let routing = SiteConfigPatch {
        ramp_up_rules: Some(vec![rule.clone()]),
        ..SiteConfigPatch::default()
    };
    web.patch_site_config(&SlotName::production(), &routing, &CancellationToken::new())
        .await
        .expect("routing");
    assert_eq!(
        web.site_config(&SlotName::production(), &CancellationToken::new())
            .await
            .expect("config")
            .ramp_up_rules,
        vec![rule.clone()]
    );
    // The routing calls read production's rules back whole, and clear them with an empty list.
    let cancel = CancellationToken::new();
    assert_eq!(
        web.routing_rules(&cancel).await.expect("rules"),
        vec![rule.clone()]
    );
    let mut other = rule.clone();
    other.name = "blue".into();
    other.reroute_percentage = 12.5;
    let both = web
        .set_routing_rules(&[rule, other.clone()], &cancel)
        .await
        .expect("set rules");
    assert_eq!(both[1], other);
    assert!(
        web.set_routing_rules(&[], &cancel)
            .await
            .expect("clear")
            .is_empty()
    );

    let tags = BTreeMap::from([("slot-release.journal".to_owned(), "r1".to_owned())]);
    web.set_tags(&s, &tags, &CancellationToken::new())
        .await
        .expect("set tags");
    assert_eq!(
        web.tags(&s, &CancellationToken::new()).await.expect("tags"),
        tags
    );
}

#[tokio::test]
async fn slots_are_listed_and_created_through_the_lro() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let before: Vec<String> = web
        .list_slots(&CancellationToken::new())
        .await
        .expect("list")
        .iter()
        .map(|s| s.slot.to_string())
        .collect();
    assert_eq!(before, vec!["staging".to_owned()]);
    let created = web
        .create_slot(&slot("canary"), &wait())
        .await
        .expect("create");
    assert_eq!(created.slot.slot(), Some("canary"));
    let after: BTreeSet<String> = web
        .list_slots(&CancellationToken::new())
        .await
        .expect("list")
        .iter()
        .map(|s| s.slot.to_string())
        .collect();
    assert!(after.contains("canary"), "{after:?}");
    assert!(
        !web.slot_exists(&slot("nope"), &CancellationToken::new())
            .await
            .expect("exists check")
    );
}

#[tokio::test]
async fn swap_polls_with_retry_after_and_moves_content() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let change = SettingsChange {
        set: BTreeMap::from([("VERSION".into(), "2".into())]),
        remove: BTreeSet::new(),
    };
    web.update_app_settings(&s, &change, &CancellationToken::new())
        .await
        .expect("settings");
    env.em.clear_requests();
    let started = Instant::now();
    web.swap(
        &s,
        &SlotName::production(),
        &SwapOptions {
            wait: wait(),
            ..SwapOptions::default()
        },
    )
    .await
    .expect("swap");
    let polls: Vec<_> = env
        .em
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.host.starts_with("management."))
        .collect();
    assert!(!polls.is_empty(), "the swap was an LRO that was polled");
    // The server asked for 300 ms between polls; we must not poll faster than that.
    assert!(
        started.elapsed() >= Duration::from_millis(300) * polls.len() as u32,
        "{} polls in {:?}",
        polls.len(),
        started.elapsed()
    );
    let prod = web
        .app_settings(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("prod settings");
    assert_eq!(prod.get("VERSION").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn swap_warmup_failure_is_a_transient_operation_error() {
    let env = start().await;
    env.em.inject(Fault::SwapWarmupFails { app: APP.into() });
    let web = azure(&env).web_app(&app_ref());
    let err = web
        .swap(
            &slot("staging"),
            &SlotName::production(),
            &SwapOptions {
                wait: wait(),
                ..SwapOptions::default()
            },
        )
        .await
        .expect_err("warm-up fails");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn a_failed_swap_is_read_from_its_status_resource_once() {
    // The status resource answers a failed operation with the failure's own HTTP status (500 here)
    // and `{"status":"Failed","error"}`: the client reports Azure's code and does not retry the poll.
    let env = start().await;
    env.em.inject(Fault::SwapTimesOut {
        app: APP.into(),
        millis: 300,
    });
    let web = azure(&env).web_app(&app_ref());
    let err = web
        .swap(
            &slot("staging"),
            &SlotName::production(),
            &SwapOptions {
                wait: wait(),
                ..SwapOptions::default()
            },
        )
        .await
        .expect_err("the swap timed out");
    match &err {
        AzureError::OperationFailed { status, code, .. } => {
            assert_eq!((status.as_str(), code.as_str()), ("Failed", "SwapTimedOut"));
        }
        other => panic!("expected OperationFailed, got {other:?}"),
    }
    let failed_polls = env
        .em
        .requests()
        .iter()
        .filter(|r| r.path.contains("/operationresults/") && r.status == 500)
        .count();
    assert_eq!(failed_polls, 1, "a failed operation's answer is final");
}

#[tokio::test]
async fn swap_wait_honours_deadline_and_cancellation() {
    let env = start().await;
    env.em.inject(Fault::SwapTimesOut {
        app: APP.into(),
        millis: 20_000,
    });
    let web = azure(&env).web_app(&app_ref());
    let opts = SwapOptions {
        wait: LroOptions {
            timeout: Duration::from_secs(1),
            cancel: CancellationToken::new(),
        },
        ..SwapOptions::default()
    };
    let err = web
        .swap(&slot("staging"), &SlotName::production(), &opts)
        .await
        .expect_err("deadline");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");

    let env = start().await;
    env.em.inject(Fault::SwapTimesOut {
        app: APP.into(),
        millis: 20_000,
    });
    let web = azure(&env).web_app(&app_ref());
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.cancel();
    });
    let opts = SwapOptions {
        wait: LroOptions {
            timeout: Duration::from_secs(60),
            cancel,
        },
        ..SwapOptions::default()
    };
    let started = Instant::now();
    let err = web
        .swap(&slot("staging"), &SlotName::production(), &opts)
        .await
        .expect_err("cancelled");
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn swap_with_preview_apply_reset_and_restart() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let s = slot("staging");
    let opts = SwapOptions {
        wait: wait(),
        ..SwapOptions::default()
    };
    web.apply_slot_config(&s, &SlotName::production(), &opts)
        .await
        .expect("apply slot config");
    web.reset_slot_config(&s, &CancellationToken::new())
        .await
        .expect("reset slot config");
    web.restart(&s, &CancellationToken::new())
        .await
        .expect("restart");
    assert!(
        env.em
            .requests()
            .iter()
            .any(|r| r.path.to_ascii_lowercase().ends_with("/applyslotconfig") && r.status < 300)
    );
    assert!(
        env.em
            .requests()
            .iter()
            .any(|r| r.path.to_ascii_lowercase().ends_with("/resetslotconfig") && r.status < 300)
    );
    let same = web
        .swap(&s, &s, &opts)
        .await
        .expect_err("self swap refused");
    assert_eq!(same.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn five_hundreds_and_resets_are_retried_for_reads() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("warm up the token");
    let arm = |m: &str| RouteMatch {
        host: Some("management.*".into()),
        method: Some(m.into()),
        path: None,
        body_contains: None,
    };
    env.em.inject(Fault::Status {
        route: arm("GET"),
        status: 503,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(3),
            share: None,
        }),
    });
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("503 burst absorbed");
    env.em.inject(Fault::ConnectionReset {
        route: arm("GET"),
        scope: Some(Scope {
            count: Some(2),
            share: None,
        }),
    });
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("resets absorbed");
    env.em.inject(Fault::Status {
        route: arm("GET"),
        status: 429,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let started = Instant::now();
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("429 absorbed");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn non_idempotent_calls_are_not_retried_after_a_5xx() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("token");
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("*/restart".into()),
            body_contains: None,
        },
        status: 500,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let err = web
        .restart(&slot("staging"), &CancellationToken::new())
        .await
        .expect_err("not retried");
    assert_eq!(err.status(), Some(500), "{err}");
    assert_eq!(count(&env, "management.", "/restart"), 1);
}

#[tokio::test]
async fn not_found_is_classified_with_context() {
    let env = start().await;
    let web = azure(&env).web_app(&AppRef::new(SUB, RG, "missing-app").expect("ref"));
    let err = web
        .get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect_err("404");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.status(), Some(404));
    let text = err.to_string();
    assert!(
        text.contains("missing-app") && !text.contains("api-version"),
        "{text}"
    );
}

#[tokio::test]
async fn expired_token_mid_operation_is_renewed() {
    let env = start().await;
    env.em.set_token_lifetime(Duration::from_secs(1));
    let web = azure(&env).web_app(&app_ref());
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await
        .expect("first");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // A swap spans several requests (POST + polls) issued after the first token expired.
    web.swap(
        &slot("staging"),
        &SlotName::production(),
        &SwapOptions {
            wait: wait(),
            ..SwapOptions::default()
        },
    )
    .await
    .expect("swap with renewed tokens");
    assert!(count(&env, "login.", "/token") >= 2);
    assert!(
        env.em
            .requests()
            .iter()
            .filter(|r| r.host.starts_with("management."))
            .all(|r| r.status != 401)
    );
}

#[tokio::test]
async fn a_tags_write_waits_out_a_conflict_and_other_writes_do_not() {
    let env = start().await;
    let web = azure(&env).web_app(&app_ref());
    let cancel = CancellationToken::new();
    web.get_slot(&SlotName::production(), &cancel)
        .await
        .expect("token");
    let conflict = |method: &str, path: &str, count: u32| Fault::Status {
        route: RouteMatch {
            host: Some("management.*".into()),
            method: Some(method.into()),
            path: Some(path.into()),
            body_contains: None,
        },
        status: 409,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(count),
            share: None,
        }),
    };
    // ARM answers 409 to a tags write while a swap or a restart runs on the site: the journal rides on
    // it, so the write waits the operation out.
    env.em.inject(conflict(
        "PATCH",
        "*/providers/Microsoft.Resources/tags/default",
        2,
    ));
    let tags = BTreeMap::from([("slotrelease.phase".to_owned(), "swapped".to_owned())]);
    let written = web
        .merge_tags(&SlotName::production(), &tags, &cancel)
        .await
        .expect("the conflict is waited out");
    assert_eq!(
        written.get("slotrelease.phase").map(String::as_str),
        Some("swapped")
    );
    assert_eq!(count(&env, "management.", "/tags/default"), 3);
    // Elsewhere a 409 stays the caller's to handle, even for a write that is safe to repeat: the swap, for
    // one, reads the state between its tries to learn whether the running operation was its own.
    env.em.inject(conflict("PATCH", "*/config/web", 1));
    let err = web
        .patch_site_config(
            &slot("staging"),
            &SiteConfigPatch {
                always_on: Some(true),
                ..SiteConfigPatch::default()
            },
            &cancel,
        )
        .await
        .expect_err("not retried");
    assert_eq!(err.status(), Some(409), "{err}");
    assert_eq!(count(&env, "management.", "/config/web"), 1);
}
