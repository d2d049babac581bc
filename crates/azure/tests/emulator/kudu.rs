//! Kudu: zip deploys and their conflicts and failures, commands, deployment records, and basic auth with
//! publishing credentials when the site allows it.

use super::*;

#[tokio::test]
async fn one_deploy_uploads_and_waits_for_success() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "hello v2")]);
    let web = azure(&env).web_app(&app_ref());
    let kudu = web.kudu(&slot("staging"));
    let before = env
        .em
        .snapshot()
        .slot(APP, "staging")
        .expect("slot")
        .content_digest
        .clone();
    let d = kudu
        .deploy_zip(
            &pkg,
            &DeployOptions {
                message: Some("r1".into()),
                ..DeployOptions::default()
            },
        )
        .await
        .expect("deploy");
    assert_eq!(d.status, DeployStatus::Success);
    let after = env
        .em
        .snapshot()
        .slot(APP, "staging")
        .expect("slot")
        .content_digest
        .clone();
    assert_ne!(before, after, "content changed");
    assert!(
        kudu.deployments(&CancellationToken::new())
            .await
            .expect("history")
            .iter()
            .any(|x| x.id == d.id)
    );
}

#[tokio::test]
async fn deployment_conflict_is_waited_out_then_upload_starts_over() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "v3")]);
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("/api/publish".into()),
            body_contains: None,
        },
        status: 409,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(2),
            share: None,
        }),
    });
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    let d = kudu
        .deploy_zip(&pkg, &DeployOptions::default())
        .await
        .expect("deploy after the conflict cleared");
    assert_eq!(d.status, DeployStatus::Success);
    assert_eq!(count(&env, ".scm.", "/api/publish"), 3);

    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("/api/publish".into()),
            body_contains: None,
        },
        status: 409,
        retry_after_secs: Some(1),
        scope: None,
    });
    let opts = DeployOptions {
        conflict_wait: Duration::from_secs(2),
        ..DeployOptions::default()
    };
    let err = kudu
        .deploy_zip(&pkg, &opts)
        .await
        .expect_err("bounded wait");
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
}

#[tokio::test]
async fn upload_is_not_retried_after_a_server_error() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "v4")]);
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: None,
            method: Some("POST".into()),
            path: Some("/api/publish".into()),
            body_contains: None,
        },
        status: 503,
        retry_after_secs: None,
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let err = kudu
        .deploy_zip(&pkg, &DeployOptions::default())
        .await
        .expect_err("not retried");
    assert_eq!(err.status(), Some(503));
    assert_eq!(count(&env, ".scm.", "/api/publish"), 1);
}

#[tokio::test]
async fn failed_deployment_returns_its_log() {
    let env = start().await;
    let dir = tempfile::tempdir().expect("dir");
    let pkg = write_zip(dir.path(), &[("index.html", "bad")]);
    env.em.inject(Fault::DeploymentFails {
        app: APP.into(),
        slot: Some("staging".into()),
    });
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    match kudu.deploy_zip(&pkg, &DeployOptions::default()).await {
        Err(err @ AzureError::DeploymentFailed { .. }) => {
            let text = err.to_string();
            let AzureError::DeploymentFailed { id, log, .. } = err else {
                unreachable!()
            };
            assert!(!id.is_empty());
            assert!(!log.is_empty(), "the log is attached");
            // Its last lines are part of the message a person reads.
            let last = log.last().map(|e| e.message.clone()).unwrap_or_default();
            assert!(text.contains(&format!("\n  {last}")), "{text}");
        }
        other => panic!("expected a failed deployment, got {other:?}"),
    }
}

#[tokio::test]
async fn commands_run_synchronously_and_in_the_background() {
    let env = start().await;
    let kudu = azure(&env).web_app(&app_ref()).kudu(&slot("staging"));
    let cancel = CancellationToken::new();
    let out = kudu
        .command(
            "echo hello; echo oops >&2; exit 3",
            "site/wwwroot",
            Duration::from_secs(30),
            &cancel,
        )
        .await
        .expect("sync");
    assert_eq!(
        (out.exit_code, out.output.trim(), out.error.trim()),
        (3, "hello", "oops")
    );

    let settings = ClientSettings {
        sync_command_limit: Duration::from_secs(1),
        ..fast()
    };
    let kudu = azure_with(&env, ConnectionKind::ServicePrincipal, settings)
        .web_app(&app_ref())
        .kudu(&slot("staging"));
    let out = kudu
        .command(
            "sleep 1; echo 'long done'; exit 5",
            "site/wwwroot",
            Duration::from_secs(30),
            &cancel,
        )
        .await
        .expect("background");
    assert_eq!((out.exit_code, out.output.trim()), (5, "long done"));

    env.em.inject(Fault::KuduCommandFails {
        app: APP.into(),
        exit_code: 7,
        count: Some(1),
    });
    let out = kudu
        .command("true", "", Duration::from_millis(500), &cancel)
        .await
        .expect("injected");
    assert_eq!(out.exit_code, 7);
}

#[tokio::test]
async fn deployment_records_are_written_and_read() {
    let env = start().await;
    let kudu = azure(&env)
        .web_app(&app_ref())
        .kudu(&SlotName::production());
    let record = DeploymentRecord {
        status: DeployStatus::Success,
        message: "{\"type\":\"SlotSwap\"}".into(),
        author: "slot-release".into(),
        deployer: "SlotRelease".into(),
        active: true,
        details: String::new(),
    };
    kudu.put_deployment_record("swap-1", &record, &CancellationToken::new())
        .await
        .expect("record");
    let all = kudu
        .deployments(&CancellationToken::new())
        .await
        .expect("list");
    assert!(
        all.iter()
            .any(|d| d.id == "swap-1" && d.deployer == "SlotRelease"),
        "{all:?}"
    );
    assert!(
        kudu.deployment_log("swap-1", &CancellationToken::new())
            .await
            .is_ok()
    );
    assert!(
        kudu.put_deployment_record("bad/id", &record, &CancellationToken::new())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn kudu_with_publishing_credentials_uses_basic_auth_when_allowed() {
    let env = start().await;
    let kudu = azure(&env)
        .web_app(&app_ref())
        .kudu(&slot("staging"))
        .with_auth(KuduAuth::PublishingCredentialsIfAllowed);
    let out = kudu
        .command(
            "echo basic",
            "",
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await
        .expect("command");
    assert_eq!(out.output.trim(), "basic");
    assert!(env.em.requests().iter().any(|r| {
        r.path
            .to_ascii_lowercase()
            .ends_with("/publishingcredentials/list")
    }));
    assert!(env.em.requests().iter().any(|r| {
        r.path
            .to_ascii_lowercase()
            .contains("basicpublishingcredentialspolicies")
    }));
}

#[tokio::test]
async fn kept_packages_are_hashed_as_they_stream_and_one_can_be_made_active() {
    use sha2::Digest as _;
    let env = start().await;
    let cancel = CancellationToken::new();
    let web = azure(&env).web_app(&app_ref());
    let staging = slot("staging");
    web.update_app_settings(
        &staging,
        &SettingsChange {
            set: BTreeMap::from([("WEBSITE_RUN_FROM_PACKAGE".into(), "1".into())]),
            remove: BTreeSet::new(),
        },
        &cancel,
    )
    .await
    .expect("run from package");
    let kudu = web.kudu(&staging);
    let mut digests = Vec::new();
    for (i, version) in ["v1", "v2"].iter().enumerate() {
        let dir = tempfile::tempdir().expect("dir");
        // A body of a few MiB arrives in many chunks: the digest must cover every one, in order.
        let filler = format!("{version}-").repeat(400_000 + i);
        let pkg = write_zip(
            dir.path(),
            &[("index.html", version), ("filler.txt", &filler)],
        );
        let bytes = std::fs::read(&pkg).expect("read package");
        digests.push(
            sha2::Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
        );
        kudu.deploy_zip(&pkg, &DeployOptions::default())
            .await
            .expect("deploy");
    }
    let kept = kudu.site_packages(&cancel).await.expect("kept packages");
    assert_eq!(kept.zips.len(), 2, "{kept:?}");
    let mut hashed = Vec::new();
    for zip in &kept.zips {
        hashed.push(kudu.site_package_sha256(zip, &cancel).await.expect("hash"));
    }
    // Newest first.
    assert_eq!(hashed, [digests[1].clone(), digests[0].clone()]);
    assert_eq!(kept.active.as_ref(), Some(&kept.zips[0]));
    kudu.use_site_package(&kept.zips[1], &cancel)
        .await
        .expect("point at the older one");
    assert_eq!(
        kudu.site_packages(&cancel)
            .await
            .expect("again")
            .active
            .as_ref(),
        Some(&kept.zips[1])
    );
    let missing = kudu
        .site_package_sha256("19700101000000.zip", &cancel)
        .await
        .expect_err("no such package");
    assert_eq!(missing.status(), Some(404), "{missing}");
}
