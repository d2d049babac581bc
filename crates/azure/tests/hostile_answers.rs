//! Hostile and broken answers from "Azure": a tiny HTTPS server in the test plays ARM and answers
//! with malformed JSON, missing fields, an HTML page, a huge body, absurd `Retry-After`, a redirect
//! to another host, or a certificate for the wrong name. The client must fail cleanly and quickly,
//! never follow a redirect with its token, and never print the token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use slot_release_azure::{
    AppRef, Azure, ClientSettings, Cloud, CredentialSource, HttpOptions, KeyVaultSettings,
    PollSettings, RetrySettings, Secret, SlotName,
};

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
    EchoToken,
}

/// A request the server saw: host, path, whether it carried a bearer token.
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

struct Hostile {
    port: u16,
    ca_pem: String,
    seen: Seen,
    handle: axum_server::Handle<SocketAddr>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A CA the client trusts and a server certificate it signs for `names`.
fn tls(names: &[&str]) -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf =
        CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("leaf params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");
    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), Arc::new(config))
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
    let (ca_pem, config) = tls(names);
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, uri: Uri| {
        let log = log.clone();
        async move {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            let bearer = headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .is_some_and(|v| v.contains(TOKEN));
            if let Ok(mut seen) = log.lock() {
                seen.push((host, uri.path().to_owned(), bearer));
            }
            respond(answer, port)
        }
    });
    let handle = axum_server::Handle::<SocketAddr>::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )
    .expect("server")
    .handle(handle.clone());
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    Hostile {
        port,
        ca_pem,
        seen,
        handle,
    }
}

fn settings() -> ClientSettings {
    ClientSettings {
        retry: RetrySettings {
            max_retries: 3,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
        },
        poll: PollSettings {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(1),
        },
        keyvault: KeyVaultSettings {
            initial_backoff: Duration::from_millis(50),
            ..KeyVaultSettings::default()
        },
        ..ClientSettings::default()
    }
}

fn client(server: &Hostile) -> Azure {
    Azure::with_settings(
        CredentialSource::StaticToken {
            token: Secret::new(TOKEN),
        },
        Cloud::emulator(server.port),
        HttpOptions::emulator(server.ca_pem.clone()),
        settings(),
    )
    .expect("client builds")
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
            .get_slot(&SlotName::production()),
    )
    .await;
    let elapsed = started.elapsed();
    let text = match result {
        Err(_) => panic!("the call did not end within a minute"),
        Ok(Ok(_)) => None,
        Ok(Err(e)) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            Some(text)
        }
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
