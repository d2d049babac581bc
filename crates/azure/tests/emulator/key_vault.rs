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

/// `n` secrets named `s000`…, valued `v0`….
fn numbered(n: usize) -> Vec<SeedSecret> {
    (0..n)
        .map(|i| secret(&format!("s{i:03}"), &format!("v{i}")))
        .collect()
}

/// When a request arrived and when its answer was finished, from the request log.
fn span(r: &RequestRecord) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let at = time::OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    let ms = i64::try_from(r.duration_ms).expect("duration");
    (at, at + time::Duration::milliseconds(ms))
}

#[tokio::test]
async fn list_mode_reads_each_page_while_the_next_is_listed() {
    // 100 secrets: four pages of 25. Every page and every read takes 300 ms to answer. Pipelined,
    // the second page is asked for before any read is answered, and the reads start long before
    // the last page is asked for; a client that reads after listing, or that lists a page only
    // when the previous page's reads are done, fails one or the other.
    let env = start_with(seed_with_vault(numbered(100)), |_| {}).await;
    env.em.inject(Fault::Latency {
        route: RouteMatch {
            host: Some("*.vault.*".into()),
            method: Some("GET".into()),
            path: Some("/secrets*".into()),
            body_contains: None,
        },
        millis: 300,
        count: None,
    });
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let listed = kv
        .list_secrets(&SecretFilter::All, &CancellationToken::new())
        .await
        .expect("list");
    assert_eq!(listed.secrets.len(), 100);
    assert_eq!(listed.secrets["s099"].expose(), "v99");
    let log: Vec<RequestRecord> = env
        .em
        .requests()
        .into_iter()
        .filter(|r| r.host.contains(".vault.") && r.status == 200)
        .collect();
    let mut pages: Vec<_> = log
        .iter()
        .filter(|r| r.path == "/secrets")
        .map(span)
        .collect();
    pages.sort();
    assert_eq!(pages.len(), 4, "four list pages answered");
    let reads: Vec<_> = log
        .iter()
        .filter(|r| r.path.starts_with("/secrets/"))
        .map(span)
        .collect();
    assert_eq!(reads.len(), 100);
    let first_read_started = reads.iter().map(|r| r.0).min().expect("a read");
    let first_read_answered = reads.iter().map(|r| r.1).min().expect("a read");
    assert!(
        pages[1].0 < first_read_answered,
        "the second page is asked for while the first page's reads are in flight \
         (page 2 at {}, first read answered at {first_read_answered})",
        pages[1].0
    );
    assert!(
        first_read_started < pages[3].0,
        "reads start before the last page is asked for (first read at {first_read_started}, \
         last page at {})",
        pages[3].0
    );
}

#[tokio::test]
async fn reads_go_over_http2_when_the_vault_offers_it() {
    let env = start_with(seed_with_vault(numbered(60)), |_| {}).await;
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs: Vec<SecretRef> = (0..60)
        .map(|i| SecretRef::parse(&format!("s{i:03}")).expect("ref"))
        .collect();
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("secrets");
    assert_eq!(got.len(), 60);
    let versions: BTreeSet<String> = env
        .em
        .requests()
        .into_iter()
        .filter(|r| r.host.contains(".vault."))
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, BTreeSet::from(["HTTP/2.0".to_owned()]));
    // The other hosts keep HTTP/1.1 (the token request went to login.*).
    assert!(
        env.em
            .requests()
            .iter()
            .any(|r| r.host.starts_with("login.") && r.version == "HTTP/1.1"),
        "{:?}",
        env.em.requests()
    );
}

#[tokio::test]
async fn reads_beyond_the_budget_wait_for_the_window_instead_of_drawing_429s() {
    // The vault allows 20 requests a second; the client's budget is 20 per 1.2 s (the margin covers
    // the first request's handshake, which starts the vault's window a little after ours).
    let mut seed = seed_with_vault(numbered(45));
    seed.subscriptions[0].resource_groups[0].vaults[0].throttle = Some(Throttle {
        limit: 20,
        window_seconds: 1,
    });
    let env = start_with(seed, |_| {}).await;
    let mut settings = fast();
    settings.keyvault.budget = 20;
    settings.keyvault.budget_window = Duration::from_millis(1200);
    let az = azure_with(&env, ConnectionKind::ServicePrincipal, settings);
    let refs: Vec<SecretRef> = (0..45)
        .map(|i| SecretRef::parse(&format!("s{i:03}")).expect("ref"))
        .collect();
    let t = Instant::now();
    // Two handles on the vault, one after the other, as a release's stages take them: the budget is
    // the vault's, so the second handle goes on counting where the first stopped.
    let mut got = az
        .key_vault(VAULT)
        .expect("vault")
        .get_secrets(&refs[..25], &CancellationToken::new())
        .await
        .expect("secrets");
    got.extend(
        az.key_vault(VAULT)
            .expect("vault")
            .get_secrets(&refs[25..], &CancellationToken::new())
            .await
            .expect("secrets"),
    );
    assert_eq!(got.len(), 45);
    let vault_log: Vec<RequestRecord> = env
        .em
        .requests()
        .into_iter()
        .filter(|r| r.host.contains(".vault."))
        .collect();
    assert!(
        vault_log.iter().all(|r| r.status != 429),
        "no read drew a 429: {:?}",
        vault_log.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // 47 requests (each handle answers the challenge: a 401 and its retry, then 24 and 19 more
    // reads) take three windows.
    assert_eq!(vault_log.len(), 47, "{vault_log:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(2400),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn throttling_over_http2_still_backs_off_for_retry_after() {
    let env = start_with(seed_with_vault(numbered(60)), |_| {}).await;
    env.em.inject(Fault::Status {
        route: RouteMatch {
            host: Some("*.vault.*".into()),
            method: Some("GET".into()),
            path: Some("/secrets/*".into()),
            body_contains: None,
        },
        status: 429,
        retry_after_secs: Some(1),
        // The cold client's first read alone, then the whole wave of 60.
        scope: Some(Scope {
            count: Some(61),
            share: None,
        }),
    });
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    let refs: Vec<SecretRef> = (0..60)
        .map(|i| SecretRef::parse(&format!("s{i:03}")).expect("ref"))
        .collect();
    let t = Instant::now();
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("all read once the vault lets them through");
    assert_eq!(got.len(), 60);
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "the reads waited out Retry-After: {:?}",
        t.elapsed()
    );
    let log = env.em.requests();
    let throttled: Vec<&RequestRecord> = log.iter().filter(|r| r.status == 429).collect();
    assert_eq!(throttled.len(), 61, "every injected 429 was met");
    assert!(
        log.iter()
            .filter(|r| r.host.contains(".vault."))
            .all(|r| r.version == "HTTP/2.0")
    );
    // No read came back before the second the vault asked for had passed since the last 429.
    let at = |r: &RequestRecord| {
        time::OffsetDateTime::parse(&r.time, &time::format_description::well_known::Rfc3339)
            .expect("rfc3339")
    };
    let last_429 = throttled.iter().map(|r| at(r)).max().expect("a 429");
    let first_read = log
        .iter()
        .filter(|r| r.status == 200 && r.path.starts_with("/secrets/"))
        .map(at)
        .min()
        .expect("a read");
    assert!(
        first_read - last_429 >= time::Duration::milliseconds(900),
        "last 429 at {last_429}, first read at {first_read}"
    );
}

/// The most requests of `log` in flight at one instant, from their spans.
fn peak_in_flight(log: &[RequestRecord]) -> usize {
    let mut edges: Vec<(time::OffsetDateTime, i32)> = log
        .iter()
        .flat_map(|r| {
            let (start, end) = span(r);
            [(start, 1), (end, -1)]
        })
        .collect();
    // An answer that ends as another starts is not overlapping it.
    edges.sort();
    let (mut now, mut peak) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    usize::try_from(peak).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_reads_are_all_in_flight_at_once_on_a_warm_client() {
    // 2,000 named reads, each answered 3 s after it arrives. A warm client sends them as one wave
    // over HTTP/2, so at some instant the vault holds every one of them. Reads held to HTTP/1.1's
    // 100, or to any other fixed width, or waiting on a token or a connection per read, never
    // overlap all at once (and a token per read shows in the log). Counted from the emulator's
    // request log, not from the clock, so a slow machine cannot fail it: every read arrives well
    // within the 3 s the first one is held.
    let n = 2000;
    let env = start_with(seed_with_vault(numbered(n)), |_| {}).await;
    let refs: Vec<SecretRef> = (0..n)
        .map(|i| SecretRef::parse(&format!("s{i:03}")).expect("ref"))
        .collect();
    let kv = azure(&env).key_vault(VAULT).expect("vault");
    kv.get_secrets(&refs[..1], &CancellationToken::new())
        .await
        .expect("the first read warms the client");
    env.em.clear_requests();
    env.em.inject(Fault::Latency {
        route: RouteMatch {
            host: Some("*.vault.*".into()),
            method: Some("GET".into()),
            path: Some("/secrets/*".into()),
            body_contains: None,
        },
        millis: 3000,
        count: None,
    });
    let got = kv
        .get_secrets(&refs, &CancellationToken::new())
        .await
        .expect("secrets");
    assert_eq!(got.len(), n);
    let log = env.em.requests();
    let reads: Vec<RequestRecord> = log
        .iter()
        .filter(|r| r.host.contains(".vault.") && r.path.starts_with("/secrets/"))
        .cloned()
        .collect();
    assert_eq!(reads.len(), n, "one request per read, no 401 and retry");
    assert!(
        reads
            .iter()
            .all(|r| r.status == 200 && r.version == "HTTP/2.0")
    );
    assert!(
        log.iter().all(|r| !r.host.starts_with("login.")),
        "no token was fetched for the wave"
    );
    assert_eq!(
        peak_in_flight(&reads),
        n,
        "every read was in flight at once"
    );
}
