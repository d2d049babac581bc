//! Cancellation reaches every call: a request held in flight (ARM read and write, Kudu, Key Vault, the
//! token request), a `Retry-After` wait and a backoff between retries all stop within a fraction of a
//! second of the cancel with `ErrorKind::Cancelled`, and a token cancelled before a call sends nothing.
//! Every fault here would hold the call for 30 s or more, so a call that ignored its token fails the bound.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use slot_release_azure::{
    AppRef, Azure, AzureError, CancellationToken, ClientSettings, HttpOptions, RetrySettings,
    SecretRef, ServiceConnection, SettingsChange, SlotName,
};
use slot_release_emulator::{ConnectionKind, Emulator, EmulatorOptions, Fault, RouteMatch, Seed};

const APP: &str = "contoso-web";
const ARM: &str = "management.emulator.test";
/// When the test cancels, after the call started.
const CANCEL_AFTER: Duration = Duration::from_millis(300);
/// How long a cancelled call may take to return after the cancel: a busy two-core machine included,
/// and far below any of the waits the faults cause.
const STOPPED_WITHIN: Duration = Duration::from_millis(1000);

struct Env {
    em: Emulator,
    _dir: tempfile::TempDir,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let em = Emulator::start(EmulatorOptions::new(Seed::sample(), dir.path()))
        .await
        .expect("emulator starts");
    Env { em, _dir: dir }
}

fn azure(env: &Env, settings: ClientSettings) -> Azure {
    let vars: BTreeMap<String, String> = env
        .em
        .service_connection_env(&ConnectionKind::ServicePrincipal)
        .into_iter()
        .collect();
    let id = vars
        .keys()
        .find_map(|k| k.strip_prefix("ENDPOINT_URL_"))
        .expect("an endpoint")
        .to_owned();
    let connection =
        ServiceConnection::from_agent_env(&id, &|k| vars.get(k).cloned()).expect("connection");
    let (credential, cloud) = connection.into_parts();
    Azure::with_settings(
        credential,
        cloud,
        HttpOptions::emulator(env.em.ca_pem()),
        settings,
    )
    .expect("client")
}

fn web(env: &Env) -> slot_release_azure::WebApp {
    let app = AppRef::new("00000000-0000-0000-0000-0000000000a1", "contoso-rg", APP).expect("app");
    azure(env, ClientSettings::default()).web_app(&app)
}

fn route(host: &str, method: &str, path: &str) -> RouteMatch {
    RouteMatch {
        host: Some(host.into()),
        method: Some(method.into()),
        path: Some(path.into()),
        body_contains: None,
    }
}

fn hold(env: &Env, route: RouteMatch) {
    env.em.inject(Fault::Latency {
        route,
        millis: 60_000,
        count: None,
    });
}

/// Runs `call`, cancels its token [`CANCEL_AFTER`] later, and returns its error and how long it took
/// to return after the cancel.
async fn cancel_during<T: std::fmt::Debug, F: Future<Output = Result<T, AzureError>>>(
    call: impl FnOnce(CancellationToken) -> F,
) -> (AzureError, Duration) {
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let cancelled_at = tokio::spawn(async move {
        tokio::time::sleep(CANCEL_AFTER).await;
        trigger.cancel();
        Instant::now()
    });
    let result = tokio::time::timeout(Duration::from_secs(50), call(cancel)).await;
    let returned = Instant::now();
    let cancelled_at = cancelled_at.await.expect("the cancel ran");
    let err = match result {
        Ok(Ok(value)) => panic!("the call succeeded despite the cancel: {value:?}"),
        Ok(Err(err)) => err,
        Err(_) => panic!("the call ignored its cancellation token for 50 s"),
    };
    (err, returned.saturating_duration_since(cancelled_at))
}

fn assert_cancelled(err: &AzureError, took: Duration) {
    assert_eq!(
        err.kind(),
        slot_release_azure::ErrorKind::Cancelled,
        "{err}"
    );
    assert!(
        took < STOPPED_WITHIN,
        "the call returned {took:?} after the cancel"
    );
}

#[tokio::test]
async fn an_arm_read_held_in_flight_stops_at_once() {
    let env = start().await;
    hold(&env, route(ARM, "GET", "*/sites/contoso-web"));
    let web = web(&env);
    let (err, took) =
        cancel_during(|c| async move { web.get_slot(&SlotName::production(), &c).await }).await;
    assert_cancelled(&err, took);
    assert!(err.to_string().contains("was cancelled"), "{err}");
}

#[tokio::test]
async fn an_arm_write_held_in_flight_stops_at_once() {
    let env = start().await;
    hold(&env, route(ARM, "PUT", "*/config/appsettings"));
    let web = web(&env);
    let change = SettingsChange {
        set: BTreeMap::from([("A".to_owned(), "1".to_owned())]),
        ..SettingsChange::default()
    };
    let (err, took) = cancel_during(|c| async move {
        web.update_app_settings(&SlotName::production(), &change, &c)
            .await
    })
    .await;
    assert_cancelled(&err, took);
}

#[tokio::test]
async fn a_retry_after_wait_stops_at_once() {
    let env = start().await;
    // Throttled once with a minute to wait: the client would honour it (well within `max_elapsed`).
    env.em.inject(Fault::Status {
        route: route(ARM, "GET", "*/sites/contoso-web"),
        status: 429,
        retry_after_secs: Some(60),
        scope: Some(slot_release_emulator::Scope {
            count: Some(1),
            share: None,
        }),
    });
    let web = web(&env);
    let (err, took) =
        cancel_during(|c| async move { web.get_slot(&SlotName::production(), &c).await }).await;
    assert_cancelled(&err, took);
    let gets = env
        .em
        .requests()
        .iter()
        .filter(|r| r.host.contains(ARM) && r.path.ends_with("/sites/contoso-web"))
        .count();
    assert_eq!(gets, 1, "no retry after the cancel");
}

#[tokio::test]
async fn a_backoff_between_retries_stops_at_once() {
    let env = start().await;
    env.em.inject(Fault::Status {
        route: route(ARM, "GET", "*/sites/contoso-web"),
        status: 503,
        retry_after_secs: None,
        scope: None,
    });
    let settings = ClientSettings {
        retry: RetrySettings {
            max_retries: 6,
            initial_delay: Duration::from_secs(30),
            max_delay: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(120),
        },
        ..ClientSettings::default()
    };
    let app = AppRef::new("00000000-0000-0000-0000-0000000000a1", "contoso-rg", APP).expect("app");
    let web = azure(&env, settings).web_app(&app);
    let (err, took) =
        cancel_during(|c| async move { web.get_slot(&SlotName::production(), &c).await }).await;
    assert_cancelled(&err, took);
}

#[tokio::test]
async fn a_kudu_call_held_in_flight_stops_at_once() {
    let env = start().await;
    hold(&env, route("*.scm.*", "GET", "/api/deployments"));
    let web = web(&env);
    let kudu = web.kudu(&SlotName::production());
    let (err, took) = cancel_during(|c| async move { kudu.deployments(&c).await }).await;
    assert_cancelled(&err, took);
}

#[tokio::test]
async fn a_key_vault_read_held_in_flight_stops_at_once() {
    let env = start().await;
    hold(&env, route("*.vault.emulator.test", "GET", "/secrets/*"));
    let kv = azure(&env, ClientSettings::default())
        .key_vault("contoso-kv")
        .expect("vault");
    let refs = [SecretRef::parse("db-password").expect("ref")];
    let (err, took) = cancel_during(|c| async move { kv.get_secrets(&refs, &c).await }).await;
    assert_cancelled(&err, took);
}

#[tokio::test]
async fn the_token_request_held_in_flight_stops_at_once() {
    let env = start().await;
    hold(&env, route("login.emulator.test", "POST", "*"));
    let az = azure(&env, ClientSettings::default());
    let (err, took) = cancel_during(|c| async move { az.check_credentials(&c).await }).await;
    assert_cancelled(&err, took);
    // The same through a call: the bearer policy's token request is part of the request cancelled.
    let web = web(&env);
    let (err, took) =
        cancel_during(|c| async move { web.get_slot(&SlotName::production(), &c).await }).await;
    assert_cancelled(&err, took);
}

#[tokio::test]
async fn a_token_cancelled_before_the_call_sends_nothing() {
    let env = start().await;
    let web = web(&env);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let before = env.em.requests().len();
    let err = web
        .get_slot(&SlotName::production(), &cancel)
        .await
        .expect_err("cancelled");
    assert_eq!(
        err.kind(),
        slot_release_azure::ErrorKind::Cancelled,
        "{err}"
    );
    assert_eq!(env.em.requests().len(), before, "a request was sent");
}
