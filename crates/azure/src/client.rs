//! The authenticated request layer shared by ARM, Kudu and Key Vault: an `azure_core` pipeline with the
//! bearer policy over our reqwest client, our own retry loop (idempotent calls only, `Retry-After`
//! honoured, TLS failures never retried), error mapping with context, and ARM long-running operations.

use crate::cloud::Cloud;
use crate::error::{AzureError, ErrorKind, Result, causes, classify, classify_operation};
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    Body, ClientOptions, Context, Method, Pipeline, PipelineSendOptions, PipelineStreamOptions,
    RawResponse, Request, RetryOptions, Transport,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use url::Url;

/// Retry behaviour for idempotent calls.
#[derive(Debug, Clone)]
pub struct RetrySettings {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubled each retry (plus jitter), capped at `max_delay`.
    pub initial_delay: Duration,
    /// Longest backoff when the server gives no `Retry-After`.
    pub max_delay: Duration,
    /// Longest total time spent retrying one call.
    pub max_elapsed: Duration,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_retries: 6,
            initial_delay: Duration::from_millis(300),
            max_delay: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// Polling behaviour for long-running operations (ARM LROs, Kudu deployments, background commands).
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// First wait when the server gives no `Retry-After`.
    pub initial_interval: Duration,
    /// Longest wait between polls (the adaptive interval grows by half each poll up to this).
    pub max_interval: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            initial_interval: Duration::from_millis(500),
            max_interval: Duration::from_secs(10),
        }
    }
}

/// Tunables of the client (everything has a production default; tests shorten them).
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Retries of idempotent calls.
    pub retry: RetrySettings,
    /// LRO and deployment polling.
    pub poll: PollSettings,
    /// Key Vault concurrency and retries.
    pub keyvault: crate::keyvault::KeyVaultSettings,
    /// Kudu commands with a longer timeout run in the background (see [`crate::SYNC_COMMAND_LIMIT`]).
    pub sync_command_limit: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            retry: RetrySettings::default(),
            poll: PollSettings::default(),
            keyvault: crate::keyvault::KeyVaultSettings::default(),
            sync_command_limit: crate::kudu::SYNC_COMMAND_LIMIT,
        }
    }
}

/// A deadline plus a cancellation token: every wait in this crate takes one.
#[derive(Debug, Clone)]
pub struct LroOptions {
    /// Give up (with [`AzureError::Timeout`]) after this long.
    pub timeout: Duration,
    /// Stop waiting when cancelled (with [`AzureError::Cancelled`]).
    pub cancel: CancellationToken,
}

impl Default for LroOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30 * 60),
            cancel: CancellationToken::new(),
        }
    }
}

pub(crate) struct Inner {
    pub(crate) cloud: Cloud,
    pub(crate) http: reqwest::Client,
    pub(crate) credential: Arc<dyn TokenCredential>,
    pub(crate) arm: Pipeline,
    /// Same transport without the bearer policy (Kudu with publishing credentials).
    pub(crate) plain: Pipeline,
    /// The hosts the credentials may go to (the ARM endpoint, then each Kudu host ARM names).
    pub(crate) trusted: Arc<crate::hosts::TrustedHosts>,
    pub(crate) settings: ClientSettings,
    /// Each vault's request budget and connection state, shared by every `KeyVault` handle on it
    /// from this client: the vault counts its budget per vault, not per handle.
    pub(crate) vaults: crate::keyvault::VaultStates,
    /// Whether `credential` keeps its tokens (see `CredentialSource::cached_by_identity`).
    pub(crate) caches_tokens: bool,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("cloud", &self.cloud.name)
            .finish_non_exhaustive()
    }
}

/// Client options for anything built on our transport; retries are ours, so the SDK's are off.
pub(crate) fn client_options(http: &reqwest::Client, cloud: &Cloud) -> ClientOptions {
    let mut custom = azure_core::cloud::CustomConfiguration::default();
    custom.authority_host = cloud
        .authority_host
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: Some(Arc::new(azure_core::cloud::CloudConfiguration::Custom(
            custom,
        ))),
        retry: RetryOptions::none(),
        ..Default::default()
    }
}

pub(crate) fn bearer_pipeline(
    http: &reqwest::Client,
    cloud: &Cloud,
    credential: Arc<dyn TokenCredential>,
    scope: String,
    guard: Arc<dyn Policy>,
) -> Pipeline {
    let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(credential, [scope]));
    Pipeline::new(
        Some("slot-release-azure"),
        Some(env!("CARGO_PKG_VERSION")),
        client_options(http, cloud),
        vec![guard],
        vec![auth],
        None,
    )
}

/// Whether a call may be repeated after a failure that might have reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotency {
    /// GET, PUT of a whole resource, DELETE, and POSTs that only read (`…/list`).
    Idempotent,
    /// Retried only when the server certainly did not act (401 before processing, 429).
    NotIdempotent,
}

/// One request, described for sending and for error messages.
pub(crate) struct Call<'a> {
    pub operation: String,
    pub method: Method,
    pub url: Url,
    pub body: Option<serde_json::Value>,
    /// A plain-text body (a file written through Kudu's VFS), sent instead of `body`.
    pub text: Option<String>,
    pub headers: Vec<(&'static str, String)>,
    pub idempotency: Idempotency,
    /// Statuses that are not errors for this call (besides 2xx).
    pub accept: &'a [u16],
    /// Whether a 409 means "another operation is running on the resource, try again" (ARM's answer to a
    /// write that arrives during a swap or a restart) rather than a conflict the caller must resolve.
    pub conflict_is_transient: bool,
}

impl<'a> Call<'a> {
    pub(crate) fn new(operation: impl Into<String>, method: Method, url: Url) -> Self {
        let idempotency = match method {
            Method::Get | Method::Put | Method::Delete | Method::Head => Idempotency::Idempotent,
            _ => Idempotency::NotIdempotent,
        };
        Self {
            operation: operation.into(),
            method,
            url,
            body: None,
            text: None,
            headers: vec![],
            idempotency,
            accept: &[],
            conflict_is_transient: false,
        }
    }

    pub(crate) fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    pub(crate) fn text(mut self, body: String) -> Self {
        self.text = Some(body);
        self
    }

    pub(crate) fn idempotent(mut self) -> Self {
        self.idempotency = Idempotency::Idempotent;
        self
    }

    /// A 409 is retried like a 503: only for a call that is idempotent and whose resource answers 409
    /// solely while another operation runs on it.
    pub(crate) fn conflict_is_transient(mut self) -> Self {
        self.conflict_is_transient = true;
        self
    }

    pub(crate) fn accept(mut self, statuses: &'a [u16]) -> Self {
        self.accept = statuses;
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

pub(crate) fn method_name(m: Method) -> &'static str {
    match m {
        Method::Delete => "DELETE",
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Patch => "PATCH",
        Method::Post => "POST",
        Method::Put => "PUT",
        _ => "OTHER",
    }
}

/// A header value, looked up case-insensitively.
pub(crate) fn header<'r>(rsp: &'r RawResponse, name: &str) -> Option<&'r str> {
    rsp.headers()
        .iter()
        .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The wait a response asks for: `x-ms-retry-after-ms`, `retry-after-ms`, or `Retry-After`
/// (seconds or an HTTP date).
pub(crate) fn retry_after(rsp: &RawResponse) -> Option<Duration> {
    for h in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = header(rsp, h).and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(Duration::from_millis(ms));
        }
    }
    let v = header(rsp, "retry-after")?.trim();
    if let Ok(secs) = v.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite()).then(|| Duration::from_secs_f64(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let delta = when - time::OffsetDateTime::now_utc();
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

/// Remove credentials a service might echo back (`Bearer …`, `Basic …`, JWTs) from text we did not
/// write, before it can reach an error message or a log.
pub(crate) fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut words = text.split_inclusive(char::is_whitespace).peekable();
    while let Some(w) = words.next() {
        let bare = w.trim_end();
        let lower = bare.to_ascii_lowercase();
        let scheme = lower.trim_start_matches(|c: char| !c.is_ascii_alphanumeric());
        if (scheme == "bearer" || scheme == "basic") && words.peek().is_some() {
            out.push_str(w);
            if let Some(secret) = words.next() {
                out.push_str("<redacted>");
                out.push_str(&secret[secret.trim_end().len()..]);
            }
            continue;
        }
        // A JWT (header.payload.signature, header starting with "eyJ") anywhere in a word.
        if let Some(pos) = bare.find("eyJ")
            && bare[pos..].matches('.').count() >= 2
        {
            out.push_str(&bare[..pos]);
            out.push_str("<redacted>");
            out.push_str(&w[bare.len()..]);
            continue;
        }
        out.push_str(w);
    }
    out
}

/// Parse Azure's `{"error":{"code","message"}}` (also Kudu's `{"Message"}` and plain text).
pub(crate) fn azure_error_body(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        let e = v.get("error").unwrap_or(&v);
        let s = |k: &[&str]| {
            k.iter()
                .find_map(|k| e.get(*k).and_then(|x| x.as_str()).map(str::to_owned))
        };
        let code = s(&["code", "Code"]).unwrap_or_default();
        let mut message = s(&["message", "Message", "ExceptionMessage"]).unwrap_or_default();
        // Key Vault puts the precise reason ("SecretDisabled") in innererror.
        if let Some(inner) = e.get("innererror").or_else(|| e.get("innerError"))
            && let Some(ic) = inner.get("code").and_then(|x| x.as_str())
            && !message.contains(ic)
        {
            message = format!("{message} ({ic})");
        }
        if !code.is_empty() || !message.is_empty() {
            return (redact(&code), redact(&message));
        }
    }
    let mut t: String = text.trim().chars().take(500).collect();
    if t.is_empty() {
        t = "(empty response body)".into();
    }
    (String::new(), redact(&t))
}

/// True when an error chain shows a TLS failure (retrying cannot help; the CA or host is wrong).
pub(crate) fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|err| {
        let s = err.to_string().to_ascii_lowercase();
        s.contains("certificate")
            || s.contains("unknownissuer")
            || s.contains("tls handshake")
            || s.contains("invalid peer")
    })
}

/// Describe an error chain in one line (the outer `azure_core` message hides the cause).
pub(crate) fn chain_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![];
    for err in causes(e) {
        let s = redact(&err.to_string());
        if parts.last() != Some(&s) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

pub(crate) fn path_of(url: &Url) -> String {
    // The path only: query strings can carry SAS tokens or skip tokens, and userinfo credentials.
    format!("{}{}", url.host_str().unwrap_or_default(), url.path())
}

pub(crate) fn transport_error(
    operation: &str,
    method: Method,
    url: &Url,
    e: azure_core::Error,
) -> AzureError {
    if let Some(refused) = e.downcast_ref::<crate::hosts::ForeignHost>() {
        return AzureError::ForeignHost {
            operation: operation.to_owned(),
            origin: refused.origin.clone(),
            issued_for: refused.issued_for.clone(),
        };
    }
    let tls = is_tls_error(&e);
    let credential = matches!(e.kind(), azure_core::error::ErrorKind::Credential);
    if credential {
        return AzureError::Authentication {
            credential: "token credential",
            scope: String::new(),
            message: chain_message(&e),
            source: Some(Box::new(e)),
        };
    }
    AzureError::Transport {
        operation: operation.to_owned(),
        method: method_name(method),
        path: path_of(url),
        message: chain_message(&e),
        kind: if tls {
            ErrorKind::Tls
        } else {
            ErrorKind::Network
        },
        source: Some(Box::new(e)),
    }
}

pub(crate) fn http_error(
    operation: &str,
    method: Method,
    url: &Url,
    rsp: &RawResponse,
) -> AzureError {
    let status = u16::from(rsp.status());
    let (mut code, mut message) = azure_error_body(rsp.body());
    if (300..400).contains(&status) {
        // Redirects are never followed (the request carries a credential): say where it pointed.
        let to = header(rsp, "location")
            .and_then(|l| url.join(l).ok())
            .map(|u| crate::hosts::origin_of(&u))
            .unwrap_or_else(|| "(no location)".to_owned());
        code = "Redirect".to_owned();
        message = format!(
            "redirected to {to}; redirects are not followed, because the request carries a credential"
        );
    }
    if code.is_empty() {
        code = rsp.status().canonical_reason().to_string();
    }
    let kind = classify(status, &code, &message);
    AzureError::Http(Box::new(crate::error::HttpFailure {
        operation: operation.to_owned(),
        method: method_name(method),
        path: path_of(url),
        status,
        code,
        message,
        retry_after: retry_after(rsp),
        kind,
    }))
}

fn backoff(settings: &RetrySettings, attempt: u32) -> Duration {
    let base = settings
        .initial_delay
        .saturating_mul(2u32.saturating_pow(attempt.min(16)));
    let jitter = Duration::from_millis(u64::from(rand_u8()));
    base.min(settings.max_delay) + jitter / 4
}

fn rand_u8() -> u8 {
    // Jitter only needs to de-synchronise concurrent clients, not be unpredictable.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (nanos >> 7) as u8
}

/// Sleep, or stop early when cancelled.
pub(crate) async fn sleep_or_cancel(
    d: Duration,
    cancel: &CancellationToken,
    operation: &str,
) -> Result<()> {
    until_cancelled(cancel, operation, tokio::time::sleep(d)).await
}

/// Runs `work` unless `cancel` fires first; then `work` is dropped where it stands (a request in flight
/// is abandoned, a wait cut short) and the error is [`AzureError::Cancelled`]. A token cancelled before
/// the call starts nothing.
pub(crate) async fn until_cancelled<T>(
    cancel: &CancellationToken,
    operation: &str,
    work: impl std::future::Future<Output = T>,
) -> Result<T> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(AzureError::Cancelled { operation: operation.to_owned() }),
        out = work => Ok(out),
    }
}

impl Inner {
    /// Send a JSON call through the ARM pipeline with retries; non-accepted statuses become errors.
    pub(crate) async fn send(
        &self,
        call: Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<RawResponse> {
        self.send_with(&self.arm, call, cancel).await
    }

    /// A GET whose body is too large to hold (a kept package of any size): each chunk goes to `sink` as
    /// it arrives, so memory stays at one chunk. Retried once on a 401 (a fresh token), never after the
    /// body began: a caller that needs the whole body again asks again. Returns the bytes read.
    pub(crate) async fn get_streamed(
        &self,
        pipeline: &Pipeline,
        call: Call<'_>,
        cancel: &CancellationToken,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64> {
        use futures::StreamExt as _;
        let mut reauthenticated = false;
        let rsp = loop {
            let mut req = Request::new(call.url.clone(), call.method);
            for (k, v) in &call.headers {
                req.insert_header(*k, v.clone());
            }
            let ctx = Context::new();
            let stream = pipeline.stream(
                &ctx,
                &mut req,
                Some(PipelineStreamOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            );
            let rsp = until_cancelled(cancel, &call.operation, stream)
                .await?
                .map_err(|e| transport_error(&call.operation, call.method, &call.url, e))?;
            let status = u16::from(rsp.status());
            if (200..300).contains(&status) {
                break rsp;
            }
            if status == 401 && !reauthenticated {
                reauthenticated = true;
                continue;
            }
            let rsp = until_cancelled(cancel, &call.operation, rsp.try_into_raw_response())
                .await?
                .map_err(|e| transport_error(&call.operation, call.method, &call.url, e))?;
            return Err(http_error(&call.operation, call.method, &call.url, &rsp));
        };
        let mut body = rsp.into_body();
        let mut read = 0u64;
        loop {
            let chunk = until_cancelled(cancel, &call.operation, body.next()).await?;
            match chunk {
                None => return Ok(read),
                Some(Ok(bytes)) => {
                    read += bytes.len() as u64;
                    sink(&bytes);
                }
                Some(Err(e)) => {
                    return Err(transport_error(&call.operation, call.method, &call.url, e));
                }
            }
        }
    }

    /// Sends with retries. `cancel` stops it at once wherever it is: the request in flight (a request
    /// Azure already received may still take effect: the caller must treat a cancelled write as
    /// "may have happened"), a backoff, or a `Retry-After` wait.
    pub(crate) async fn send_with(
        &self,
        pipeline: &Pipeline,
        call: Call<'_>,
        cancel: &CancellationToken,
    ) -> Result<RawResponse> {
        let started = Instant::now();
        let settings = &self.settings.retry;
        let mut attempt: u32 = 0;
        let mut reauthenticated = false;
        let body_bytes = match (&call.text, &call.body) {
            (Some(t), _) => Some((t.clone().into_bytes(), "text/plain; charset=utf-8")),
            (None, Some(v)) => Some((
                serde_json::to_vec(v)
                    .map_err(|e| AzureError::protocol(&call.operation, e.to_string()))?,
                "application/json; charset=utf-8",
            )),
            (None, None) => None,
        };
        loop {
            let mut req = Request::new(call.url.clone(), call.method);
            req.insert_header("accept", "application/json");
            for (k, v) in &call.headers {
                req.insert_header(*k, v.clone());
            }
            if let Some((b, content_type)) = &body_bytes {
                req.insert_header("content-type", *content_type);
                req.set_body(Body::from(b.clone()));
            } else if matches!(call.method, Method::Post | Method::Put | Method::Patch) {
                req.insert_header("content-length", "0");
            }
            let ctx = Context::new();
            let send = pipeline.send(
                &ctx,
                &mut req,
                Some(PipelineSendOptions {
                    skip_checks: true,
                    ..Default::default()
                }),
            );
            let result = until_cancelled(cancel, &call.operation, send).await?;
            // At trace level, every request: method, host and path, status. Never a header, a body or a
            // query string, which can hold a token or a secret.
            match &result {
                Ok(rsp) => tracing::trace!(
                    "{} {} -> {}",
                    call.method,
                    path_of(&call.url),
                    u16::from(rsp.status())
                ),
                Err(e) => tracing::trace!("{} {} -> {}", call.method, path_of(&call.url), e.kind()),
            }
            let (err, wait) = match result {
                Ok(rsp) => {
                    let status = u16::from(rsp.status());
                    if (200..300).contains(&status) || call.accept.contains(&status) {
                        if attempt > 0 {
                            // Worth knowing (Azure throttled or failed and the call got through): the
                            // run reports it, and ends SucceededWithIssues if nothing else goes wrong.
                            tracing::warn!(
                                "{} succeeded after {attempt} retr{}",
                                call.operation,
                                if attempt == 1 { "y" } else { "ies" }
                            );
                        }
                        return Ok(rsp);
                    }
                    // The bearer policy dropped its cached token on the 401; one more try gets a fresh one
                    // (an expired token mid-release). A 401 means the server did nothing, so any method may repeat.
                    if status == 401 && !reauthenticated {
                        reauthenticated = true;
                        tracing::debug!(operation = %call.operation, "401, retrying once with a fresh token");
                        continue;
                    }
                    let err = http_error(&call.operation, call.method, &call.url, &rsp);
                    let retryable = match status {
                        429 => true, // throttled requests were not processed
                        408 | 500 | 502 | 503 | 504 => call.idempotency == Idempotency::Idempotent,
                        409 => {
                            call.conflict_is_transient
                                && call.idempotency == Idempotency::Idempotent
                        }
                        _ => false,
                    };
                    if !retryable {
                        return Err(err);
                    }
                    (err, retry_after(&rsp))
                }
                Err(e) => {
                    let err = transport_error(&call.operation, call.method, &call.url, e);
                    if err.kind() != ErrorKind::Network
                        || call.idempotency != Idempotency::Idempotent
                    {
                        return Err(err);
                    }
                    (err, None)
                }
            };
            let delay = wait.unwrap_or_default().max(backoff(settings, attempt));
            if attempt >= settings.max_retries || started.elapsed() + delay > settings.max_elapsed {
                return Err(err);
            }
            tracing::debug!(
                operation = %call.operation,
                attempt,
                ?delay,
                retry_after = ?wait,
                error = %err,
                "retrying"
            );
            sleep_or_cancel(delay, cancel, &call.operation).await?;
            attempt += 1;
        }
    }

    /// Send a call that may answer 201/202 with `Azure-AsyncOperation`/`Location`, and follow it to
    /// completion. Returns the final response body (empty for operations without one).
    pub(crate) async fn send_lro(
        &self,
        call: Call<'_>,
        opts: &LroOptions,
    ) -> Result<serde_json::Value> {
        let operation = call.operation.clone();
        let deadline = Instant::now() + opts.timeout;
        let first = self.send_with(&self.arm, call, &opts.cancel).await?;
        let status = u16::from(first.status());
        let async_op = header(&first, "azure-asyncoperation").map(str::to_owned);
        let location = header(&first, "location").map(str::to_owned);
        if !(status == 201 || status == 202) || (async_op.is_none() && location.is_none()) {
            return Ok(body_json(&first));
        }
        let poll_url = async_op.clone().or(location.clone()).unwrap_or_default();
        let poll_url = Url::parse(&poll_url)
            .map_err(|e| AzureError::protocol(&operation, format!("bad operation URL: {e}")))?;
        let mut interval = self.settings.poll.initial_interval;
        let mut wait = retry_after(&first);
        loop {
            let delay = wait.unwrap_or(interval);
            if Instant::now() + delay > deadline {
                return Err(AzureError::Timeout {
                    operation,
                    waited: opts.timeout,
                });
            }
            sleep_or_cancel(delay, &opts.cancel, &operation).await?;
            interval = (interval + interval / 2).min(self.settings.poll.max_interval);
            let poll = Call::new(
                format!("{operation} (status)"),
                Method::Get,
                poll_url.clone(),
            )
            // A failed operation's status resource answers with the failure's own HTTP status
            // and `{"status":"Failed","error"}` (App Service's operationResults): read it as the
            // operation's outcome rather than retrying the poll or losing the operation's error.
            .accept(&[202, 400, 409, 417, 500]);
            let rsp = self.send_with(&self.arm, poll, &opts.cancel).await?;
            wait = retry_after(&rsp);
            let code = u16::from(rsp.status());
            let body = body_json(&rsp);
            let op_status = body
                .get("status")
                .and_then(|s| s.as_str())
                .map(str::to_owned);
            if code >= 300 && op_status.is_none() {
                return Err(http_error(&operation, Method::Get, &poll_url, &rsp));
            }
            match (code, op_status.as_deref()) {
                (202, _) => continue,
                (_, Some(s))
                    if matches!(
                        s.to_ascii_lowercase().as_str(),
                        "inprogress" | "running" | "accepted" | "notstarted" | "deploymentnotfound"
                    ) =>
                {
                    continue;
                }
                (_, Some(s))
                    if s.eq_ignore_ascii_case("failed")
                        || s.eq_ignore_ascii_case("canceled")
                        || s.eq_ignore_ascii_case("cancelled") =>
                {
                    let e = body.get("error").cloned().unwrap_or_default();
                    let code = e
                        .get("code")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let message = e
                        .get("message")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let kind = classify_operation(&code, &message);
                    return Err(AzureError::OperationFailed {
                        operation,
                        status: s.to_owned(),
                        code,
                        message,
                        kind,
                    });
                }
                (300.., _) => return Err(http_error(&operation, Method::Get, &poll_url, &rsp)),
                _ => return Ok(body),
            }
        }
    }
}

pub(crate) fn body_json(rsp: &RawResponse) -> serde_json::Value {
    if rsp.body().is_empty() {
        return serde_json::Value::Null;
    }
    serde_json::from_slice(rsp.body()).unwrap_or(serde_json::Value::Null)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    operation: &str,
    rsp: &RawResponse,
) -> Result<T> {
    serde_json::from_slice(rsp.body())
        .map_err(|e| AzureError::protocol(operation, format!("cannot parse the response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_in_service_text_are_redacted() {
        assert_eq!(
            redact("invalid token Bearer abc.def here"),
            "invalid token Bearer <redacted> here"
        );
        assert_eq!(
            redact("Authorization: basic dXNlcjpwYXNz"),
            "Authorization: basic <redacted>"
        );
        assert_eq!(
            redact("token=eyJhbGciOi.eyJzdWIi.c2ln end"),
            "token=<redacted> end"
        );
        assert_eq!(redact("nothing secret. Bearer"), "nothing secret. Bearer");
    }
}
