//! A bearer token only goes to the host it was issued for. A rewriting proxy stands in front of the
//! emulator (a man in the middle the client trusts, as a TLS-inspection device is): it passes every
//! request through, but rewrites the swap's `Azure-AsyncOperation` and `Location` headers to point at
//! another loopback server. That server records every `Authorization` header it receives; the client
//! must send it nothing, and the swap wait must fail with an error naming the other host.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use slot_release_azure::{
    AppRef, Azure, AzureError, CancellationToken, ClientSettings, Cloud, HttpOptions, LroOptions,
    PollSettings, RetrySettings, ServiceConnection, SlotName, SwapOptions,
};
use slot_release_emulator::{ConnectionKind, Emulator, EmulatorOptions, Seed};

const SUB: &str = "00000000-0000-0000-0000-0000000000a1";
const COLLECTOR: &str = "collector.evil.emulator.test";

/// A CA and a server certificate it signs for `names` (plus 127.0.0.1).
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

/// Serves `app` over TLS on a fresh loopback port; returns the port and the handle that stops it.
fn serve(
    config: Arc<rustls::ServerConfig>,
    app: axum::Router,
) -> (u16, axum_server::Handle<SocketAddr>) {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
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
    (port, handle)
}

/// Every request the collector received: its path and its `Authorization` header, if any.
type Received = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// The other host: records everything and answers every status poll with success, which is what a
/// thief would answer to end the swap wait.
fn start_collector() -> (String, u16, Received, axum_server::Handle<SocketAddr>) {
    let (ca, config) = tls(&[COLLECTOR]);
    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, uri: Uri| {
        let log = log.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Ok(mut seen) = log.lock() {
                seen.push((uri.path().to_owned(), auth));
            }
            Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"status":"Succeeded"}"#))
                .expect("response")
        }
    });
    let (port, handle) = serve(config, app);
    (ca, port, received, handle)
}

/// The rewriting proxy: forwards every request to the emulator, moves the emulator's port to its own
/// in every answer (so the run works through it), and points the swap's status headers elsewhere.
fn start_proxy(emulator: &Emulator, collector_port: u16) -> (String, u16, Arc<Mutex<u32>>) {
    let names = [
        "management.emulator.test",
        "login.emulator.test",
        "*.emulator.test",
        "*.azurewebsites.emulator.test",
        "*.scm.azurewebsites.emulator.test",
    ];
    let (ca, config) = tls(&names);
    let upstream = emulator
        .client_builder()
        .expect("builder")
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("upstream client");
    let emulator_port = emulator.port();
    let rewritten = Arc::new(Mutex::new(0u32));
    let counter = rewritten.clone();
    let proxy_port = Arc::new(Mutex::new(0u16));
    let own_port = proxy_port.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let upstream = upstream.clone();
            let counter = counter.clone();
            let own = own_port.lock().map(|p| *p).unwrap_or_default();
            async move {
                let host = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .and_then(|h| h.split(':').next())
                    .unwrap_or_default()
                    .to_owned();
                let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                let url = format!("https://{host}:{emulator_port}{path}");
                let mut request = upstream.request(method.clone(), &url).body(body.to_vec());
                for (name, value) in &headers {
                    if name != "host" && name != "content-length" {
                        request = request.header(name, value);
                    }
                }
                let answer = match request.send().await {
                    Ok(answer) => answer,
                    Err(e) => {
                        return Response::builder()
                            .status(StatusCode::BAD_GATEWAY)
                            .body(Body::from(e.to_string()))
                            .expect("response");
                    }
                };
                let from = format!(":{emulator_port}");
                let to = format!(":{own}");
                let is_swap = method == Method::POST && path.contains("/slotsswap");
                let mut response = Response::builder().status(answer.status().as_u16());
                for (name, value) in answer.headers() {
                    if name == "content-length" || name == "transfer-encoding" {
                        continue;
                    }
                    let text = value.to_str().unwrap_or_default();
                    let status_header = name == "azure-asyncoperation" || name == "location";
                    let text = if is_swap && status_header {
                        if let Ok(mut n) = counter.lock() {
                            *n += 1;
                        }
                        format!("https://{COLLECTOR}:{collector_port}/steal")
                    } else {
                        text.replace(&from, &to)
                    };
                    if let Ok(value) = HeaderValue::from_str(&text) {
                        response = response.header(name.as_str(), value);
                    }
                }
                let body = answer.text().await.unwrap_or_default();
                response
                    .body(Body::from(body.replace(&from, &to)))
                    .expect("response")
            }
        },
    );
    let (port, handle) = serve(config, app);
    if let Ok(mut p) = proxy_port.lock() {
        *p = port;
    }
    // The proxy lives as long as the test's runtime.
    std::mem::forget(handle);
    (ca, port, rewritten)
}

#[tokio::test]
async fn a_rewritten_status_url_gets_no_token_and_fails_the_swap_naming_the_host() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut opts = EmulatorOptions::new(Seed::sample(), dir.path());
    opts.lro_retry_after = Duration::from_millis(200);
    let emulator = Emulator::start(opts).await.expect("emulator starts");
    let (collector_ca, collector_port, received, _collector) = start_collector();
    let (proxy_ca, proxy_port, rewritten) = start_proxy(&emulator, collector_port);

    // A service principal of the emulator, reached through the proxy (ARM and the identity provider).
    let vars: BTreeMap<String, String> = emulator
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
    let (credential, _) = connection.into_parts();
    let settings = ClientSettings {
        retry: RetrySettings {
            max_retries: 2,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            max_elapsed: Duration::from_secs(5),
        },
        poll: PollSettings {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_millis(500),
        },
        ..ClientSettings::default()
    };
    let azure = Azure::with_settings(
        credential,
        Cloud::emulator(proxy_port),
        HttpOptions::emulator(format!("{proxy_ca}\n{collector_ca}")),
        settings,
    )
    .expect("client builds");
    let web = azure.web_app(&AppRef::new(SUB, "contoso-rg", "contoso-web").expect("app"));
    // Through the proxy, ordinary calls work: the test is not refused for another reason.
    web.get_slot(
        &SlotName::new("staging").expect("slot"),
        &CancellationToken::new(),
    )
    .await
    .expect("the proxy passes ordinary calls");

    let result = web
        .swap(
            &SlotName::new("staging").expect("slot"),
            &SlotName::production(),
            &SwapOptions {
                wait: LroOptions {
                    timeout: Duration::from_secs(20),
                    ..LroOptions::default()
                },
                ..SwapOptions::default()
            },
        )
        .await;
    assert!(
        rewritten.lock().map(|n| *n).unwrap_or_default() > 0,
        "the proxy rewrote the swap's status headers"
    );
    let seen = received.lock().map(|s| s.clone()).unwrap_or_default();
    let with_auth: Vec<_> = seen.iter().filter(|(_, auth)| auth.is_some()).collect();
    assert!(
        with_auth.is_empty(),
        "the other host received credentials: {with_auth:?}"
    );
    assert!(
        seen.is_empty(),
        "nothing is sent to the other host: {seen:?}"
    );
    let err = result.expect_err("the swap wait fails instead of trusting the other host");
    assert!(matches!(err, AzureError::ForeignHost { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("{COLLECTOR}:{collector_port}")),
        "the error names the host: {text}"
    );
    assert!(!text.contains("/steal"), "only the host is named: {text}");
}
