//! Hostile and broken answers from a Key Vault: a tiny HTTPS server in the test plays the vault
//! (with its real 401 challenge first) and answers a secret read or a list page with malformed JSON,
//! a body without `value`, 64 MiB, an HTML page, a redirect to another host, or a `nextLink` to another
//! host. Each must end in a clear error naming the vault (and the secret), within bounded time and
//! memory, without the token ever going to another host and without the token or a secret value in
//! the error text.

mod hostile;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Response, StatusCode};
use hostile::Hostile;
use slot_release_azure::{Azure, AzureError, CancellationToken, SecretFilter, SecretRef};

const TOKEN: &str = "hostile-kv-bearer-token-7d2b5e";
/// A value the hostile vault puts in its answers: it must never reach an error message.
const SECRET: &str = "hostile-kv-secret-value-0f4c8a";
const VAULT: &str = "contoso-kv";
const VAULT_HOST: &str = "contoso-kv.vault.emulator.test";
const NAME: &str = "api-key";
const MIB: usize = 1024 * 1024;

/// What the hostile vault answers once the request carries the token.
#[derive(Clone, Copy, Debug)]
enum Answer {
    /// A well-formed answer: proves the client and this server talk at all.
    Valid,
    MalformedJson,
    NoValue,
    Huge,
    WrongContentType,
    RedirectElsewhere,
    NextLinkElsewhere,
}

fn json(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(body))
        .expect("response")
}

/// Key Vault's answer to a request without a token: the challenge naming the resource to ask for.
fn challenge() -> Response<Body> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(
            "www-authenticate",
            r#"Bearer authorization="https://login.emulator.test/72f988bf-0000-0000-0000-000000000001", resource="https://vault.emulator.test""#,
        )
        .header("content-type", "application/json; charset=utf-8")
        .body(Body::from(
            r#"{"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}}"#,
        ))
        .expect("response")
}

fn secret_id(port: u16, name: &str) -> String {
    format!("https://{VAULT_HOST}:{port}/secrets/{name}")
}

fn respond(answer: Answer, port: u16, path: &str) -> Response<Body> {
    let list = path.trim_end_matches('/') == "/secrets";
    match answer {
        Answer::Valid if list => json(
            StatusCode::OK,
            format!(
                r#"{{"value":[{{"id":"{}","attributes":{{"enabled":true}}}}],"nextLink":null}}"#,
                secret_id(port, NAME)
            ),
        ),
        Answer::Valid => json(
            StatusCode::OK,
            format!(
                r#"{{"value":"{SECRET}","id":"{}/0123abcd","attributes":{{"enabled":true}}}}"#,
                secret_id(port, NAME)
            ),
        ),
        Answer::MalformedJson => json(
            StatusCode::OK,
            format!(
                r#"{{"value":"{SECRET}","id":"{}","attributes":{{"enab"#,
                secret_id(port, NAME)
            ),
        ),
        Answer::NoValue if list => json(StatusCode::OK, r#"{"nextLink":null}"#.into()),
        Answer::NoValue => json(
            StatusCode::OK,
            format!(
                r#"{{"id":"{}/0123abcd","attributes":{{"enabled":true}}}}"#,
                secret_id(port, NAME)
            ),
        ),
        Answer::Huge => {
            // 64 MiB of a never-ending JSON string, made of the secret: a client must neither wait
            // for nor keep all of it.
            let chunk = axum::body::Bytes::from(SECRET.repeat(MIB / SECRET.len()));
            let head = std::iter::once(Ok::<_, std::io::Error>(axum::body::Bytes::from_static(
                b"{\"value\":\"",
            )));
            let stream = futures::stream::iter(head.chain((0..64).map(move |_| Ok(chunk.clone()))));
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .expect("response")
        }
        Answer::WrongContentType => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .body(Body::from(format!(
                "<html><body>Sign in to continue <!-- {SECRET} --></body></html>"
            )))
            .expect("response"),
        Answer::RedirectElsewhere => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(
                "location",
                format!("https://collector.evil.emulator.test:{port}/steal?s={SECRET}"),
            )
            .body(Body::empty())
            .expect("response"),
        Answer::NextLinkElsewhere if list => json(
            StatusCode::OK,
            format!(
                r#"{{"value":[{{"id":"{}","attributes":{{"enabled":true}}}}],"nextLink":"https://collector.evil.emulator.test:{port}/secrets?api-version=7.6&$skiptoken=abc"}}"#,
                secret_id(port, NAME)
            ),
        ),
        Answer::NextLinkElsewhere => respond(Answer::Valid, port, path),
    }
}

async fn start(answer: Answer) -> Hostile {
    let names = [
        "*.vault.emulator.test",
        "*.evil.emulator.test",
        "*.emulator.test",
    ];
    hostile::start(&names, TOKEN, move |bearer, port, path| {
        if bearer {
            respond(answer, port, path)
        } else {
            challenge()
        }
    })
}

fn client(server: &Hostile) -> Azure {
    hostile::client(server, TOKEN)
}

fn error_text(e: &AzureError) -> String {
    hostile::chain(e)
}

/// Reads `api-key`; the error text (`None` when the answer was accepted) and the time taken.
async fn get_secret(server: &Hostile) -> (Option<String>, Duration) {
    let vault = client(server).key_vault(VAULT).expect("vault");
    let name = SecretRef::parse(NAME).expect("name");
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        vault.get_secrets(&[name], &CancellationToken::new()),
    )
    .await;
    let elapsed = started.elapsed();
    match result {
        Err(_) => panic!("the read did not end within a minute"),
        Ok(Ok(values)) => {
            assert_eq!(
                values.get(NAME).map(|v| v.expose()),
                Some(SECRET),
                "accepted, but not the value sent"
            );
            (None, elapsed)
        }
        Ok(Err(e)) => (Some(error_text(&e)), elapsed),
    }
}

/// Lists every secret (list mode); the error text (`None` when accepted) and the time taken.
async fn list_secrets(server: &Hostile) -> (Option<String>, Duration) {
    let vault = client(server).key_vault(VAULT).expect("vault");
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        vault.list_secrets(&SecretFilter::All, &CancellationToken::new()),
    )
    .await;
    let elapsed = started.elapsed();
    match result {
        Err(_) => panic!("the list did not end within a minute"),
        Ok(Ok(listed)) => {
            assert!(listed.secrets.contains_key(NAME), "accepted, but empty");
            (None, elapsed)
        }
        Ok(Err(e)) => (Some(error_text(&e)), elapsed),
    }
}

/// The answer was refused with a clear error naming `names`, in time, without the token or the
/// secret value; the token never went to another host.
fn assert_refused(
    server: &Hostile,
    what: &str,
    (text, elapsed): (Option<String>, Duration),
    names: &[&str],
    within: Duration,
) -> String {
    let text = text.unwrap_or_else(|| panic!("{what}: the answer was accepted"));
    for name in names {
        assert!(
            text.contains(name),
            "{what}: the error does not name {name:?}: {text}"
        );
    }
    assert!(
        !text.contains(TOKEN),
        "{what}: the error shows the token: {text}"
    );
    assert!(
        !text.contains(SECRET),
        "{what}: the error shows the secret value: {text}"
    );
    assert!(
        elapsed < within,
        "{what}: took {elapsed:?} (limit {within:?}): {text}"
    );
    let seen = server.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        seen.iter()
            .any(|(host, _, bearer)| host == VAULT_HOST && *bearer),
        "{what}: the vault never saw an authorised request: {seen:?}"
    );
    let elsewhere: Vec<_> = seen
        .iter()
        .filter(|(host, _, _)| host != VAULT_HOST)
        .collect();
    assert!(
        elsewhere.is_empty(),
        "{what}: a request went to another host: {elsewhere:?}"
    );
    text
}

const QUICK: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_formed_vault_answer_is_read() {
    // The control case: the same server and client accept a real answer, so the refusals below are
    // about the answers and nothing else.
    let server = start(Answer::Valid).await;
    assert_eq!(get_secret(&server).await.0, None);
    assert_eq!(list_secrets(&server).await.0, None);
    let seen = server.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        seen.iter().all(|(host, _, _)| host == VAULT_HOST),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_a_clear_error() {
    let server = start(Answer::MalformedJson).await;
    let text = assert_refused(
        &server,
        "malformed secret",
        get_secret(&server).await,
        &[VAULT, NAME],
        QUICK,
    );
    assert!(text.contains("malformed JSON"), "{text}");
    let server = start(Answer::MalformedJson).await;
    assert_refused(
        &server,
        "malformed list page",
        list_secrets(&server).await,
        &[VAULT],
        QUICK,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_without_value_is_a_clear_error() {
    let server = start(Answer::NoValue).await;
    let text = assert_refused(
        &server,
        "secret without value",
        get_secret(&server).await,
        &[VAULT, NAME],
        QUICK,
    );
    assert!(text.contains("without a value"), "{text}");
    // A list page without `value` must not pass for an empty vault.
    let server = start(Answer::NoValue).await;
    let text = assert_refused(
        &server,
        "list page without value",
        list_secrets(&server).await,
        &[VAULT],
        QUICK,
    );
    assert!(text.contains("\"value\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_answer_is_cut_off_with_memory_bounded() {
    let before = peak_rss_bytes();
    let server = start(Answer::Huge).await;
    let text = assert_refused(
        &server,
        "64 MiB secret",
        get_secret(&server).await,
        &[VAULT, NAME],
        Duration::from_secs(30),
    );
    assert!(text.contains("larger than 4 MiB"), "{text}");
    let server = start(Answer::Huge).await;
    let text = assert_refused(
        &server,
        "64 MiB list page",
        list_secrets(&server).await,
        &[VAULT],
        Duration::from_secs(30),
    );
    assert!(text.contains("larger than 4 MiB"), "{text}");
    // Reading either body whole would raise the peak by 64 MiB or more; the cap keeps it to a few.
    if let (Some(before), Some(after)) = (before, peak_rss_bytes()) {
        let grown = after.saturating_sub(before);
        assert!(
            grown < 32 * MIB as u64,
            "peak memory grew by {} MiB reading a 64 MiB answer",
            grown / MIB as u64
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_page_is_not_a_secret() {
    let server = start(Answer::WrongContentType).await;
    let text = assert_refused(
        &server,
        "HTML secret",
        get_secret(&server).await,
        &[VAULT, NAME],
        QUICK,
    );
    assert!(text.contains("text/html"), "{text}");
    let server = start(Answer::WrongContentType).await;
    assert_refused(
        &server,
        "HTML list page",
        list_secrets(&server).await,
        &[VAULT],
        QUICK,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_is_never_followed() {
    let server = start(Answer::RedirectElsewhere).await;
    let text = assert_refused(
        &server,
        "redirected secret",
        get_secret(&server).await,
        &[VAULT, NAME],
        QUICK,
    );
    assert!(text.contains("redirect"), "{text}");
    let server = start(Answer::RedirectElsewhere).await;
    assert_refused(
        &server,
        "redirected list page",
        list_secrets(&server).await,
        &[VAULT],
        QUICK,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_to_another_host_is_not_followed_with_the_token() {
    let server = start(Answer::NextLinkElsewhere).await;
    let text = assert_refused(
        &server,
        "nextLink elsewhere",
        list_secrets(&server).await,
        &[VAULT],
        QUICK,
    );
    assert!(text.contains("collector.evil.emulator.test"), "{text}");
    assert!(!text.contains("skiptoken"), "the query is shown: {text}");
}

/// The process's peak resident memory (`VmHWM`), where the platform reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
