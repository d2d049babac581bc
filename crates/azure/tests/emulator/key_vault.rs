//! Key Vault: named, versioned and listed secrets, paging, disabled and expired ones, and throttling.

use super::*;

fn seed_with_vault(secrets: Vec<SeedSecret>) -> Seed {
    let mut seed = Seed::sample();
    seed.subscriptions[0].resource_groups[0].vaults[0].secrets = secrets;
    seed
}

#[tokio::test]
async fn named_and_versioned_secrets_are_read() {
    let mut s = secret("db-password", "new");
    s.previous_values = vec![SecretString::new("old")];
    let env = start_with(seed_with_vault(vec![s, secret("api-key", "k")]), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs = [
        SecretRef::parse("db-password").expect("ref"),
        SecretRef::parse("api-key").expect("ref"),
    ];
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("secrets");
    assert_eq!(got["db-password"].expose(), "new");
    assert_eq!(got["api-key"].expose(), "k");
    assert!(
        !format!("{got:?}").contains("new"),
        "values never appear in Debug output"
    );
    // A pinned version goes to /secrets/{name}/{version}: an unknown one is the vault's 404.
    let pinned = SecretRef::parse("db-password/0123456789abcdef").expect("ref");
    match kv
        .get_secrets(std::slice::from_ref(&pinned), &CancellationToken::new())
        .await
    {
        Err(AzureError::Secrets { failures, .. }) => {
            assert_eq!(failures[0].name, "db-password/0123456789abcdef");
            assert_eq!(failures[0].status, Some(404), "{failures:?}");
        }
        other => panic!("expected a 404 for an unknown version, got {other:?}"),
    }
    assert!(env.em.requests().iter().any(|r| {
        r.path
            .eq_ignore_ascii_case("/secrets/db-password/0123456789abcdef")
    }));
}

#[tokio::test]
async fn versions_are_listed_across_pages_oldest_first() {
    // 31 versions: more than the 25 a page holds, so the second page comes from nextLink.
    let mut s = secret("db-password", "v30");
    s.previous_values = (0..30)
        .map(|i| SecretString::new(format!("v{i}")))
        .collect();
    let env = start_with(seed_with_vault(vec![s, secret("api-key", "k")]), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let versions = kv
        .versions("db-password", &CancellationToken::new())
        .await
        .expect("versions");
    assert_eq!(versions.len(), 31);
    assert!(versions.iter().all(|v| v.enabled && v.created.is_some()));
    let pages = env
        .em
        .requests()
        .iter()
        .filter(|r| r.path == "/secrets/db-password/versions" && r.status == 200)
        .count();
    assert_eq!(pages, 2, "two pages (the challenge aside)");
    let refs: Vec<SecretRef> = versions
        .iter()
        .map(|v| SecretRef::parse(&format!("db-password/{}", v.version)).expect("ref"))
        .collect();
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("every version reads");
    let values: Vec<&str> = refs.iter().map(|r| got[&r.to_string()].expose()).collect();
    let expected: Vec<String> = (0..=30).map(|i| format!("v{i}")).collect();
    assert_eq!(values, expected, "oldest first, latest last");

    let err = kv
        .versions("no-such-secret", &CancellationToken::new())
        .await
        .expect_err("missing");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert!(text.contains("SecretNotFound"), "{text}");
    assert!(text.contains("/secrets/no-such-secret/versions"), "{text}");
}

#[tokio::test]
async fn missing_and_disabled_named_secrets_fail_with_the_vault_message() {
    let mut off = secret("off", "x");
    off.enabled = false;
    let env = start_with(seed_with_vault(vec![secret("ok", "v"), off]), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs = ["ok", "off", "missing"].map(|n| SecretRef::parse(n).expect("ref"));
    match kv.get_secrets(&refs, &CancellationToken::new()).await {
        Err(AzureError::Secrets { failures, .. }) => {
            let by: HashMap<_, _> = failures.iter().map(|f| (f.name.as_str(), f)).collect();
            assert_eq!(by.len(), 2, "{failures:?}");
            assert_eq!(by["missing"].status, Some(404));
            assert!(
                by["missing"].message.contains("not found"),
                "{:?}",
                by["missing"]
            );
            assert_eq!(by["off"].status, Some(403));
            assert!(
                by["off"].message.to_ascii_lowercase().contains("disabled"),
                "{:?}",
                by["off"]
            );
        }
        other => panic!("expected secret failures, got {other:?}"),
    }
}

#[tokio::test]
async fn list_mode_reads_500_secrets_and_skips_disabled_and_expired() {
    let mut secrets: Vec<SeedSecret> = (0..500)
        .map(|i| secret(&format!("app-s{i:03}"), &format!("v{i}")))
        .collect();
    secrets[10].enabled = false;
    secrets[20].exp = Some(1);
    secrets.push(secret("other-x", "y"));
    let env = start_with(seed_with_vault(secrets), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let listed = kv
        .list_secrets(
            &SecretFilter::Prefix("app-".into()),
            &CancellationToken::new(),
        )
        .await
        .expect("list");
    assert_eq!(listed.secrets.len(), 498);
    assert_eq!(listed.secrets["app-s499"].expose(), "v499");
    let skipped: BTreeMap<_, _> = listed
        .skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        BTreeMap::from([("app-s010", "disabled"), ("app-s020", "expired")])
    );
    let all = kv
        .list_secrets(&SecretFilter::All, &CancellationToken::new())
        .await
        .expect("all");
    assert_eq!(all.secrets.len(), 499);
}

#[tokio::test]
async fn throttled_vault_is_read_completely() {
    let secrets: Vec<SeedSecret> = (0..60)
        .map(|i| secret(&format!("s{i}"), &format!("v{i}")))
        .collect();
    let env = start_with(seed_with_vault(secrets), |_| {}).await;
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: Some("*.vault.*".into()),
            method: Some("GET".into()),
            path: Some("/secrets/*".into()),
            body_contains: None,
        },
        status: 429,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(40),
            share: None,
        }),
    });
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs: Vec<SecretRef> = (0..60)
        .map(|i| SecretRef::parse(&format!("s{i}")).expect("ref"))
        .collect();
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("all read despite the 429 storm");
    assert_eq!(got.len(), 60);
    assert_eq!(got["s59"].expose(), "v59");
}
