//! Hostile and broken answers from "Azure": a tiny HTTPS server in the test plays ARM and answers
//! with malformed JSON, missing fields, an HTML page, a huge body, absurd `Retry-After`, a redirect
//! to another host, or a certificate for the wrong name. The client must fail cleanly and quickly,
//! never follow a redirect with its token, and never print the token.

mod hostile;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Response, StatusCode};
use hostile::Hostile;
use slot_release_azure::{AppRef, Azure, CancellationToken, SlotName};

const TOKEN: &str = "hostile-test-bearer-token-4c1e9a";
const SUB: &str = "00000000-0000-0000-0000-0000000000a1";

/// What the hostile server answers to every request.
#[derive(Clone, Copy)]
enum Answer {
    MalformedJson,
    MissingFields,
    HtmlPage,
    Huge,
    AbsurdRetryAfter,
    GarbageRetryAfter,
    RedirectElsewhere,
    NextLinkElsewhere,
    EchoToken,
}

fn respond(answer: Answer, port: u16) -> Response<Body> {
    let json = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header("content-type", "application/json; charset=utf-8")
            .body(Body::from(body))
            .expect("response")
    };
    match answer {
        Answer::MalformedJson => json(
            StatusCode::OK,
            r#"{"id": "/subscriptions/x", "properties": {"state": "#.into(),
        ),
        Answer::MissingFields => json(StatusCode::OK, "{}".into()),
        Answer::HtmlPage => Response::builder()
            .status(StatusCode::OK)
            .header("content-type", "text/html")
            .body(Body::from("<html><body>Sign in to continue</body></html>"))
            .expect("response"),
        Answer::Huge => {
            // 64 MiB of a never-ending JSON array: a client must not wait for or keep all of it.
            let chunk = bytes_of_ones();
            let stream = futures_stream(chunk, 64);
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .expect("response")
        }
        Answer::AbsurdRetryAfter => Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", "999999999")
            .header("content-type", "application/json")
            .body(Body::from(
                r#"{"error":{"code":"TooManyRequests","message":"slow down"}}"#,
            ))
            .expect("response"),
        Answer::GarbageRetryAfter => Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header("retry-after", "soon-ish, maybe -5")
            .body(Body::from("not json either"))
            .expect("response"),
        Answer::RedirectElsewhere => Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(
                "location",
                format!("https://collector.evil.emulator.test:{port}/steal"),
            )
            .body(Body::empty())
            .expect("response"),
        Answer::NextLinkElsewhere => json(
            StatusCode::OK,
            format!(
                r#"{{"value":[],"nextLink":"https://collector.evil.emulator.test:{port}/steal?$skiptoken=1"}}"#
            ),
        ),
        Answer::EchoToken => json(
            StatusCode::BAD_REQUEST,
            format!(
                r#"{{"error":{{"code":"BadRequest","message":"invalid token Bearer {TOKEN}"}}}}"#
            ),
        ),
    }
}

fn bytes_of_ones() -> axum::body::Bytes {
    axum::body::Bytes::from("1,".repeat(512 * 1024))
}

fn futures_stream(
    chunk: axum::body::Bytes,
    mib: usize,
) -> impl futures_core_stream::Stream<Item = Result<axum::body::Bytes, std::io::Error>> {
    let first = std::iter::once(Ok(axum::body::Bytes::from_static(b"[")));
    futures_core_stream::iter(first.chain((0..mib).map(move |_| Ok(chunk.clone()))))
}

/// Re-exported stream helpers, so the test needs no extra dependency.
mod futures_core_stream {
    pub use futures::stream::{Stream, iter};
}

async fn start(answer: Answer, names: &[&str]) -> Hostile {
    hostile::start(names, TOKEN, move |_, port, _| respond(answer, port))
}

fn client(server: &Hostile) -> Azure {
    hostile::client(server, TOKEN)
}

/// Reads the production slot through the hostile server; returns the error text (or `None` when the
/// answer was accepted) and how long it took.
async fn read_site(server: &Hostile) -> (Option<String>, Duration) {
    let app = AppRef::new(SUB, "contoso-rg", "contoso-web").expect("app");
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        client(server)
            .web_app(&app)
            .get_slot(&SlotName::production(), &CancellationToken::new()),
    )
    .await;
    let elapsed = started.elapsed();
    let text = match result {
        Err(_) => panic!("the call did not end within a minute"),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(hostile::chain(&e)),
    };
    (text, elapsed)
}

const NAMES: &[&str] = &[
    "*.emulator.test",
    "management.emulator.test",
    "*.evil.emulator.test",
];

fn assert_refused(answer: &str, text: Option<String>, elapsed: Duration, within: Duration) {
    let text = text.unwrap_or_else(|| panic!("{answer}: the answer was accepted as a site"));
    assert!(!text.trim().is_empty(), "{answer}: an empty error");
    assert!(
        !text.contains(TOKEN),
        "{answer}: the error shows the bearer token: {text}"
    );
    assert!(
        elapsed < within,
        "{answer}: took {elapsed:?} (limit {within:?}): {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_an_error_not_a_panic() {
    let server = start(Answer::MalformedJson, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused("malformed JSON", text, elapsed, Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_without_its_fields_is_refused() {
    let server = start(Answer::MissingFields, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused("missing fields", text, elapsed, Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_sign_in_page_is_not_a_site() {
    let server = start(Answer::HtmlPage, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused("HTML page", text, elapsed, Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_is_refused_within_bounded_time() {
    let server = start(Answer::Huge, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused("64 MiB body", text, elapsed, Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_does_not_stall_the_release() {
    let server = start(Answer::AbsurdRetryAfter, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    // The retry budget (5 s here) bounds the wait, whatever the server asks for.
    assert_refused(
        "Retry-After: 999999999",
        text,
        elapsed,
        Duration::from_secs(15),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_retry_after_is_survived() {
    let server = start(Answer::GarbageRetryAfter, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused(
        "garbage Retry-After",
        text,
        elapsed,
        Duration::from_secs(15),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_host_is_never_followed_with_the_token() {
    let server = start(Answer::RedirectElsewhere, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused("redirect", text, elapsed, Duration::from_secs(15));
    let seen = server.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(!seen.is_empty(), "the server saw no request");
    let elsewhere: Vec<_> = seen
        .iter()
        .filter(|(host, _, _)| host != "management.emulator.test")
        .collect();
    assert!(
        elsewhere.is_empty(),
        "the redirect was followed: {elsewhere:?}"
    );
}

/// A paging link to another host is refused before the token is attached, and the error names the
/// host (the same check guards the swap's status URL, see `token_host.rs`, and Kudu's `Location`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_link_to_another_host_gets_no_token_and_names_the_host() {
    let server = start(Answer::NextLinkElsewhere, NAMES).await;
    let app = AppRef::new(SUB, "contoso-rg", "contoso-web").expect("app");
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        client(&server)
            .web_app(&app)
            .list_slots(&CancellationToken::new()),
    )
    .await
    .expect("the call ends");
    let err = result.expect_err("a nextLink elsewhere is refused");
    let text = hostile::chain(&err);
    assert!(
        text.contains(&format!("collector.evil.emulator.test:{}", server.port)),
        "the error names the host: {text}"
    );
    assert!(
        !text.contains("skiptoken"),
        "only the host is named: {text}"
    );
    let seen = server.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        seen.iter()
            .all(|(host, _, _)| host == "management.emulator.test"),
        "a request went to another host: {seen:?}"
    );
}

/// Kudu's answer to an upload names where to poll (`Location`); an absolute URL on another host is
/// refused like any other, though Kudu's own host (named by ARM) is trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kudu_location_on_another_host_gets_no_token_and_names_the_host() {
    const SCM: &str = "contoso-web-staging.scm.azurewebsites.emulator.test";
    let names: Vec<&str> = NAMES.iter().copied().chain([SCM]).collect();
    let server = hostile::start(&names, TOKEN, |_, port, path| {
        let json = |status: StatusCode, body: String| {
            Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .expect("response")
        };
        if path.ends_with("/api/publish") {
            return Response::builder()
                .status(StatusCode::ACCEPTED)
                .header(
                    "location",
                    format!("https://collector.evil.emulator.test:{port}/api/deployments/steal"),
                )
                .body(Body::empty())
                .expect("response");
        }
        // Every ARM read is the staging slot, with its Kudu host on this server.
        json(
            StatusCode::OK,
            format!(
                r#"{{"kind":"app,linux","location":"westeurope","properties":{{"state":"Running",
                "defaultHostName":"contoso-web-staging.azurewebsites.emulator.test",
                "hostNameSslStates":[{{"name":"{SCM}:{port}","hostType":"Repository"}}]}}}}"#
            ),
        )
    });
    let dir = tempfile::tempdir().expect("dir");
    let package = dir.path().join("app.zip");
    std::fs::write(&package, b"PK").expect("package");
    let app = AppRef::new(SUB, "contoso-rg", "contoso-web").expect("app");
    let slot = SlotName::new("staging").expect("slot");
    let kudu = client(&server).web_app(&app).kudu(&slot);
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        kudu.deploy_zip(&package, &slot_release_azure::DeployOptions::default()),
    )
    .await
    .expect("the call ends");
    let err = result.expect_err("a Location elsewhere is refused");
    let text = hostile::chain(&err);
    assert!(
        text.contains(&format!("collector.evil.emulator.test:{}", server.port)),
        "the error names the host: {text}"
    );
    let seen = server.seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        seen.iter()
            .any(|(host, path, _)| host == SCM && path.ends_with("/api/publish")),
        "the upload went to Kudu's own host: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(host, _, _)| !host.starts_with("collector.")),
        "a request went to another host: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_message_echoing_the_token_does_not_print_it() {
    let server = start(Answer::EchoToken, NAMES).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused(
        "error echoing the token",
        text,
        elapsed,
        Duration::from_secs(15),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_the_wrong_name_is_refused_at_once_and_not_retried() {
    // Signed by the CA the client trusts, but for another name.
    let server = start(Answer::MissingFields, &["wrong-name.example"]).await;
    let (text, elapsed) = read_site(&server).await;
    assert_refused(
        "wrong certificate name",
        text.clone(),
        elapsed,
        Duration::from_secs(5),
    );
    let text = text.unwrap_or_default().to_ascii_lowercase();
    assert!(
        text.contains("certificate") || text.contains("tls"),
        "the error does not say it is the certificate: {text}"
    );
    let seen = server.seen.lock().map(|s| s.len()).unwrap_or_default();
    assert_eq!(
        seen, 0,
        "a request got through a certificate for the wrong name"
    );
}
