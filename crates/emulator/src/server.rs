//! The HTTPS server: TLS setup, routing by `Host` header to each emulated service, transport-level
//! faults, the request log, and helpers shared by the services.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State as AxState;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::fault::{FaultSet, TransportAction};
use crate::seed::{ConnectionKind, SecretString, SeedServiceConnection};
use crate::state::{HostKind, RequestRecord, now_rfc3339};
use crate::{DOMAIN, Emulator, EmulatorError, EmulatorOptions, Endpoints, Shared, lock};

/// Streams one HTTP/2 connection may carry at once (only vault hosts negotiate HTTP/2).
pub(crate) const VAULT_MAX_STREAMS: u32 = 4000;

pub(crate) async fn start(opts: EmulatorOptions) -> Result<Emulator, EmulatorError> {
    opts.seed.validate().map_err(EmulatorError::SeedInvalid)?;
    let work_dir = opts.work_dir.clone();
    std::fs::create_dir_all(&work_dir).map_err(|source| EmulatorError::WorkDir {
        path: work_dir.clone(),
        source,
    })?;
    let state = crate::state::from_seed(&opts.seed, &work_dir)?;
    // Unique host names sit one label deeper (`<label>.<region>.azurewebsites…`), beyond the
    // classic wildcards: the certificate names each region the seed's sites live in.
    let mut host_wildcards: Vec<String> = state
        .apps
        .values()
        .flat_map(|a| crate::hostnames::certificate_names(&a.naming))
        .collect();
    host_wildcards.sort();
    host_wildcards.dedup();
    let tls = crate::tls::generate(&host_wildcards)?;
    let ca_path = work_dir.join("ca.pem");
    std::fs::write(&ca_path, &tls.ca_pem).map_err(|source| EmulatorError::WorkDir {
        path: ca_path.clone(),
        source,
    })?;
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", opts.port)).map_err(EmulatorError::Bind)?;
    listener
        .set_nonblocking(true)
        .map_err(EmulatorError::Bind)?;
    let port = listener.local_addr().map_err(EmulatorError::Bind)?.port();
    let client_certificates = opts
        .client_certificates
        .iter()
        .map(|c| {
            if !opts
                .seed
                .clients
                .iter()
                .any(|k| k.client_id.eq_ignore_ascii_case(&c.client_id))
            {
                return Err(EmulatorError::SeedInvalid(format!(
                    "a certificate is registered for unknown client '{}'",
                    c.client_id
                )));
            }
            crate::cert::RegisteredCert::from_pem(&c.client_id, &c.certificate_pem)
        })
        .chain(opts.seed.clients.iter().flat_map(|client| {
            client
                .certificates
                .iter()
                .map(|pem| crate::cert::RegisteredCert::from_pem(&client.client_id, pem))
        }))
        .collect::<Result<Vec<_>, _>>()?;
    let mut faults = FaultSet::default();
    for f in opts.faults {
        faults.add(f);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(EmulatorError::HttpClient)?;
    // The options' mappings first: a test or the command line overrides the seed's.
    let images = opts
        .images
        .into_iter()
        .chain(opts.seed.images.iter().cloned())
        .collect();
    let shared = Arc::new(Shared {
        port,
        seed: opts.seed,
        work_dir,
        images,
        runtime: crate::RuntimeTools {
            path: opts.runtime_path,
            python_packages: opts.python_packages,
            npm_cache: opts.npm_cache,
        },
        app_start_timeout: opts.app_start_timeout,
        lro_retry_after: opts.lro_retry_after,
        deployment_step_delay: opts.deployment_step_delay,
        token_lifetime: Mutex::new(opts.token_lifetime),
        oidc_token_lifetime: Mutex::new(opts.oidc_token_lifetime),
        identity_header: SecretString::new(crate::state::new_id()),
        key: crate::token::TokenKey::generate(),
        client_certificates,
        state: Mutex::new(state),
        faults: Mutex::new(faults),
        requests: Mutex::new(crate::reqlog::RequestLog::default()),
        metrics: Mutex::new(crate::metrics::Store::default()),
        http,
    });
    let proxy = crate::proxy::start(port)
        .await
        .map_err(EmulatorError::Bind)?;
    crate::runtime::start_all(&shared);
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(shared.clone());
    let acceptor = crate::tls::SniAcceptor {
        default: tls.server_config,
        vault: tls.vault_config,
    };
    let handle = axum_server::Handle::<SocketAddr>::new();
    let mut server = axum_server::from_tcp(listener)
        .map_err(EmulatorError::Bind)?
        .acceptor(acceptor)
        .handle(handle.clone());
    // Key Vault does not publish its front door's stream limit; the emulator allows a whole
    // window's budget of reads (4,000 per 10 s) on one connection, so a client is limited by the
    // vault's documented throttle and not by an undocumented number.
    server
        .http_builder()
        .http2()
        .max_concurrent_streams(VAULT_MAX_STREAMS);
    let task = tokio::spawn(async move {
        if let Err(e) = server.serve(app.into_make_service()).await {
            tracing::error!(error = %e, "emulator server stopped");
        }
    });
    Ok(Emulator {
        shared,
        handle,
        server: Some(task),
        proxy,
        ca_pem: tls.ca_pem,
        ca_path,
    })
}

/// The host a request was sent to, lowercase and without port.
fn request_host(req: &Request<Body>) -> String {
    let raw = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().host().map(str::to_owned))
        .unwrap_or_default();
    let host = match raw.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_owned(),
        _ => raw,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.into_owned())
}

async fn handle(AxState(shared): AxState<Arc<Shared>>, req: Request<Body>) -> Response {
    let started = Instant::now();
    let host = request_host(&req);
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let api_version = query_param(req.uri().query(), "api-version");
    let mut record = RequestRecord {
        version: format!("{:?}", req.version()),
        method: method.clone(),
        host: host.clone(),
        path: path.clone(),
        api_version,
        status: 0,
        time: now_rfc3339(),
        duration_ms: 0,
    };
    let admin_host = format!("admin.{DOMAIN}");
    let mut req = req;
    if host != admin_host {
        let wants_body = lock(&shared.faults).wants_body(&host, &method, &path);
        let body = if wants_body {
            let (read, bytes) = read_small_body(req).await;
            req = read;
            bytes
        } else {
            None
        };
        let actions =
            lock(&shared.faults).transport_actions(&host, &method, &path, body.as_deref());
        for action in actions {
            match action {
                TransportAction::Delay(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                TransportAction::Status {
                    status,
                    retry_after,
                } => {
                    let resp = fault_response(&host, status, retry_after);
                    return finish(&shared, record, started, resp);
                }
                TransportAction::Refuse {
                    status,
                    code,
                    message,
                } => {
                    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
                    let resp = error_json(status, &code, &message);
                    return finish(&shared, record, started, resp);
                }
                TransportAction::Reset => {
                    lock(&shared.requests).push(record);
                    return reset_response();
                }
                TransportAction::Hang(ms) => {
                    record.duration_ms = ms;
                    lock(&shared.requests).push(record);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    return reset_response();
                }
            }
        }
    }
    let resp = dispatch(shared.clone(), &host, req).await;
    finish(&shared, record, started, resp)
}

/// Reads a request's body for a fault's `bodyContains`, and gives back a request with the same body.
/// Only a body that declares its length, up to the limit, is read: a package upload streams on untouched.
async fn read_small_body(req: Request<Body>) -> (Request<Body>, Option<bytes::Bytes>) {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_none_or(|n| n > crate::fault::BODY_MATCH_LIMIT) {
        return (req, None);
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, crate::fault::BODY_MATCH_LIMIT).await {
        Ok(bytes) => (
            Request::from_parts(parts, Body::from(bytes.clone())),
            Some(bytes),
        ),
        // The client broke off while sending: what is left to handle is an empty body, as the
        // connection would have given the handler anyway.
        Err(_) => (Request::from_parts(parts, Body::empty()), None),
    }
}

fn finish(
    shared: &Shared,
    mut record: RequestRecord,
    started: Instant,
    resp: Response,
) -> Response {
    record.status = resp.status().as_u16();
    record.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    lock(&shared.requests).push(record);
    resp
}

/// A response whose body fails at once: hyper then drops the connection without a complete
/// response, which clients see as a reset.
fn reset_response() -> Response {
    let stream = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, "1024")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

fn fault_response(host: &str, status: u16, retry_after: Option<u64>) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (err_code, message) = match status {
        429 => (
            if host.ends_with(&format!(".vault.{DOMAIN}")) {
                "Throttled"
            } else {
                "TooManyRequests"
            },
            "Too many requests. Please retry after the time given in Retry-After (injected fault).",
        ),
        503 => (
            "ServiceUnavailable",
            "The service is unavailable (injected fault).",
        ),
        502 => ("BadGateway", "Bad gateway (injected fault)."),
        504 => ("GatewayTimeout", "The gateway timed out (injected fault)."),
        _ => (
            "InternalServerError",
            "An internal server error occurred (injected fault).",
        ),
    };
    let mut resp = error_json(code, err_code, message);
    if let Some(secs) = retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

async fn dispatch(shared: Arc<Shared>, host: &str, req: Request<Body>) -> Response {
    let Some(prefix) = host.strip_suffix(&format!(".{DOMAIN}")) else {
        return not_found_host(host);
    };
    match prefix {
        "login" => crate::entra::token_endpoint(shared, req).await,
        "pipelines" => crate::entra::oidc_endpoint(shared, req).await,
        "identity" => crate::entra::identity_endpoint(shared, req).await,
        "management" => crate::arm::handle(shared, req).await,
        "admin" => crate::admin::handle(shared, req).await,
        "api.loganalytics" => crate::logs::handle(shared, req).await,
        _ => {
            if let Some(vault) = prefix.strip_suffix(".vault") {
                return crate::keyvault::handle(shared, vault.to_owned(), req).await;
            }
            let target = crate::state::resolve_host(&lock(&shared.state), host);
            match target {
                Some((app, slot, HostKind::Scm)) => {
                    crate::kudu::handle(shared, app, slot, req).await
                }
                Some((app, slot, HostKind::App)) => {
                    crate::frontend::proxy(shared, app, slot, req).await
                }
                None => not_found_host(host),
            }
        }
    }
}

fn not_found_host(host: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<html><body><h1>404 Web Site not found.</h1><p>No emulated service answers for host '{host}'.</p></body></html>"),
    )
        .into_response()
}

/// `{"error":{"code","message"}}`, the ARM and Key Vault error shape.
pub(crate) fn error_json(status: StatusCode, code: &str, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({"error": {"code": code, "message": message}}),
    )
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        value.to_string(),
    )
        .into_response()
}

/// Reads a JSON body up to a limit; an empty body is `null`.
pub(crate) async fn read_json(body: Body) -> Result<serde_json::Value, Response> {
    let bytes = axum::body::to_bytes(body, 8 * 1024 * 1024)
        .await
        .map_err(|_| {
            error_json(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                "The request body could not be read.",
            )
        })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error_json(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            &format!("The request content was invalid and could not be deserialized: '{e}'."),
        )
    })
}

/// The agent-style environment for one service connection.
pub(crate) fn service_connection_env(
    shared: &Shared,
    endpoints: &Endpoints,
    sc: &SeedServiceConnection,
) -> Vec<(String, String)> {
    let id = &sc.id;
    let tenant = &shared.seed.tenant_id;
    let (scheme, params): (&str, Vec<(&str, String)>) = match sc.kind {
        ConnectionKind::ServicePrincipal => {
            let secret = shared
                .seed
                .clients
                .iter()
                .find(|c| c.client_id == sc.client_id)
                .and_then(|c| c.secret.as_ref())
                .map(|s| s.expose().to_owned())
                .unwrap_or_default();
            (
                "ServicePrincipal",
                vec![
                    ("serviceprincipalid", sc.client_id.clone()),
                    ("tenantid", tenant.clone()),
                    ("authenticationType", "spnKey".into()),
                    ("serviceprincipalkey", secret),
                ],
            )
        }
        ConnectionKind::WorkloadIdentityFederation => (
            "WorkloadIdentityFederation",
            vec![
                ("serviceprincipalid", sc.client_id.clone()),
                ("tenantid", tenant.clone()),
            ],
        ),
        ConnectionKind::ManagedIdentity => {
            ("ManagedServiceIdentity", vec![("tenantid", tenant.clone())])
        }
    };
    let subscription_name = shared
        .seed
        .subscriptions
        .iter()
        .find(|s| s.id == sc.subscription_id)
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let mut data: Vec<(&str, String)> = vec![
        ("subscriptionid", sc.subscription_id.clone()),
        ("subscriptionname", subscription_name),
        ("environment", "AzureStack".into()),
        ("scopeLevel", "Subscription".into()),
        ("environmentUrl", format!("{}/", endpoints.arm)),
        ("resourceManagerUrl", format!("{}/", endpoints.arm)),
        (
            "activeDirectoryAuthority",
            format!("{}/", endpoints.authority),
        ),
        (
            "environmentAuthorityUrl",
            format!("{}/", endpoints.authority),
        ),
        (
            "activeDirectoryServiceEndpointResourceId",
            endpoints.arm_audience.clone(),
        ),
        (
            "AzureKeyVaultServiceEndpointResourceId",
            endpoints.vault_audience.clone(),
        ),
        ("AzureKeyVaultDnsSuffix", endpoints.vault_dns_suffix.clone()),
        (
            "appServiceDnsSuffix",
            endpoints.app_service_dns_suffix.clone(),
        ),
    ];
    if sc.kind == ConnectionKind::ManagedIdentity {
        data.push(("msiclientId", sc.client_id.clone()));
    }
    let auth = serde_json::json!({
        "parameters": params.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
        "scheme": scheme,
    });
    let data_json: serde_json::Map<String, serde_json::Value> = data
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone())))
        .collect();
    let mut env = vec![
        (format!("ENDPOINT_URL_{id}"), format!("{}/", endpoints.arm)),
        (format!("ENDPOINT_AUTH_{id}"), auth.to_string()),
        (format!("ENDPOINT_AUTH_SCHEME_{id}"), scheme.to_owned()),
        (
            format!("ENDPOINT_DATA_{id}"),
            serde_json::Value::Object(data_json).to_string(),
        ),
    ];
    for (k, v) in &params {
        env.push((
            format!("ENDPOINT_AUTH_PARAMETER_{id}_{}", k.to_ascii_uppercase()),
            v.clone(),
        ));
    }
    for (k, v) in &data {
        env.push((
            format!("ENDPOINT_DATA_{id}_{}", k.to_ascii_uppercase()),
            v.clone(),
        ));
    }
    let token = shared.seed.system_access_token.expose().to_owned();
    env.push((
        "SYSTEM_OIDCREQUESTURI".into(),
        endpoints.pipelines_oidc.clone(),
    ));
    env.push(("SYSTEM_ACCESSTOKEN".into(), token.clone()));
    env.push((
        "ENDPOINT_AUTH_SYSTEMVSSCONNECTION".into(),
        serde_json::json!({"parameters": {"AccessToken": token}, "scheme": "OAuth"}).to_string(),
    ));
    env.push((
        "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN".into(),
        token,
    ));
    if sc.kind == ConnectionKind::ManagedIdentity {
        env.push(("IDENTITY_ENDPOINT".into(), endpoints.identity.clone()));
        env.push((
            "IDENTITY_HEADER".into(),
            shared.identity_header.expose().to_owned(),
        ));
    }
    env
}

/// A reqwest DNS resolver that maps every `*.emulator.test` name to 127.0.0.1 and resolves other
/// names with the system resolver.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopbackResolver;

impl reqwest::dns::Resolve for LoopbackResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().trim_end_matches('.').to_ascii_lowercase();
        Box::pin(async move {
            if host == DOMAIN || host.ends_with(&format!(".{DOMAIN}")) {
                let addrs: reqwest::dns::Addrs =
                    Box::new(std::iter::once(SocketAddr::from(([127, 0, 0, 1], 0))));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}
