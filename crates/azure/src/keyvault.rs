//! Key Vault secrets through `azure_security_keyvault_secrets`: named secrets fetched concurrently
//! (bounded, and throttled back when the vault answers 429), list-and-filter mode that skips disabled
//! and expired secrets, and a value type that cannot be printed by accident. The SDK's requests go
//! through [`VaultTransport`], which keeps the token on the vault's own host and refuses oversized or
//! non-JSON answers before the SDK reads them.

use crate::client::{Inner, chain_message, client_options, until_cancelled};
use crate::error::{AzureError, ErrorKind, Result, SecretFailure, causes};
use async_trait::async_trait;
use azure_core::http::{
    AsyncRawResponse, ExponentialRetryOptions, HttpClient, Request, RetryOptions, Transport, Url,
};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Key Vault tunables.
#[derive(Debug, Clone)]
pub struct KeyVaultSettings {
    /// Most requests in flight at once (halved each time the vault throttles). 200 reads are far below
    /// Key Vault's 4,000-per-10-s budget, so a wide first wave is safe and keeps latency to a few round trips.
    pub max_concurrency: usize,
    /// Attempts per secret on 429/5xx/network errors.
    pub max_attempts: u32,
    /// First backoff when the vault gives no `Retry-After`.
    pub initial_backoff: Duration,
}

impl Default for KeyVaultSettings {
    fn default() -> Self {
        Self {
            max_concurrency: 100,
            max_attempts: 8,
            initial_backoff: Duration::from_millis(250),
        }
    }
}

/// A secret value. It has no `Display`, and `Debug` prints `<redacted>`; read it with [`expose`].
///
/// [`expose`]: SecretValue::expose
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(String);

impl SecretValue {
    /// Wrap a value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value. Register it with the logger's masking before it can reach any output.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// A reference to a secret: `name` (latest version) or `name/version`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretRef {
    name: String,
    version: Option<String>,
}

impl SecretRef {
    /// Parse `name` or `name/version` (names: 1-127 letters, digits, hyphens).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let (name, version) = match t.split_once('/') {
            Some((n, v)) => (n, Some(v)),
            None => (t, None),
        };
        if name.is_empty()
            || name.len() > 127
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AzureError::invalid(
                "secret name",
                text,
                "use 1-127 letters, digits and hyphens",
            ));
        }
        if let Some(v) = version
            && (v.is_empty() || v.len() > 64 || !v.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return Err(AzureError::invalid(
                "secret version",
                text,
                "a version is up to 64 letters and digits",
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            version: version.map(str::to_owned),
        })
    }

    /// Secret name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Version, if pinned.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}/{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Which secrets list mode reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFilter {
    /// Every enabled, unexpired secret.
    All,
    /// Enabled, unexpired secrets whose name starts with this prefix.
    Prefix(String),
}

/// A secret skipped in list mode, with why (the caller logs it as a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSecret {
    /// Secret name.
    pub name: String,
    /// `disabled` or `expired`.
    pub reason: String,
}

/// The result of list mode.
#[derive(Debug, Clone)]
pub struct ListedSecrets {
    /// Values by secret name.
    pub secrets: BTreeMap<String, SecretValue>,
    /// Secrets left out because they are disabled or expired.
    pub skipped: Vec<SkippedSecret>,
}

/// One version of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretVersion {
    /// Version id (use as `name/version`).
    pub version: String,
    /// Whether this version is enabled.
    pub enabled: bool,
    /// Creation time.
    pub created: Option<time::OffsetDateTime>,
}

/// One Key Vault.
#[derive(Clone)]
pub struct KeyVault {
    name: String,
    settings: KeyVaultSettings,
    /// No SDK retries: our loop retries with `Retry-After` and shares throttling across requests.
    get_client: Arc<SecretClient>,
    /// Paging is the SDK's; its retry policy covers throttled pages.
    list_client: Arc<SecretClient>,
    /// Whether a request has completed the vault's 401 challenge (the SDK then caches the scope).
    challenged: Arc<std::sync::atomic::AtomicBool>,
}

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVault")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Throttle state shared by the concurrent requests of one batch.
struct Throttle {
    semaphore: tokio::sync::Semaphore,
    limit: std::sync::Mutex<usize>,
    pause_until: std::sync::Mutex<Option<Instant>>,
}

impl Throttle {
    fn on_throttled(&self, wait: Duration) {
        if let Ok(mut p) = self.pause_until.lock() {
            let until = Instant::now() + wait;
            if p.is_none_or(|cur| cur < until) {
                *p = Some(until);
            }
        }
        // Halve the concurrency (never below 1) by retiring permits as they come back.
        if let Ok(mut l) = self.limit.lock() {
            let target = (*l / 2).max(1);
            let retire = *l - target;
            if retire > 0 {
                *l = target;
                self.semaphore.forget_permits(retire);
            }
        }
    }

    fn pause(&self) -> Option<Duration> {
        let p = self.pause_until.lock().ok()?;
        p.and_then(|u| u.checked_duration_since(Instant::now()))
    }
}

impl KeyVault {
    pub(crate) fn new(inner: &Inner, vault: &str) -> Result<Self> {
        if vault.len() < 3
            || vault.len() > 24
            || !vault.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AzureError::invalid(
                "vault name",
                vault,
                "use 3-24 letters, digits and hyphens",
            ));
        }
        let url = inner.cloud.vault_url(vault)?;
        let transport = Arc::new(VaultTransport::new(inner.http.clone(), vault, &url)?);
        let mk = |retry: RetryOptions| {
            let mut client_options = client_options(&inner.http, &inner.cloud);
            client_options.retry = retry;
            client_options.transport = Some(Transport::new(transport.clone()));
            SecretClient::new(
                url.as_str(),
                inner.credential.clone(),
                Some(SecretClientOptions {
                    api_version: "7.6".into(),
                    client_options,
                    ..Default::default()
                }),
            )
            .map(Arc::new)
            .map_err(|e| AzureError::invalid("vault URL", url.as_str(), chain_message(&e)))
        };
        let list_retry = RetryOptions::exponential(ExponentialRetryOptions {
            max_retries: 6,
            max_total_elapsed: azure_core::time::Duration::seconds(60),
            ..Default::default()
        });
        Ok(Self {
            name: vault.to_owned(),
            settings: inner.settings.keyvault.clone(),
            get_client: mk(RetryOptions::none())?,
            list_client: mk(list_retry)?,
            challenged: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// The vault name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Read named secrets concurrently. The map is keyed by the reference as given (`name` or
    /// `name/version`). Any missing, disabled or unreadable secret fails the call, listing every failure
    /// with the vault's message. `cancel` stops every request, retry and throttling pause at once.
    pub async fn get_secrets(
        &self,
        refs: &[SecretRef],
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, SecretValue>> {
        let op = format!("read secrets from vault {}", self.name);
        until_cancelled(cancel, &op, self.read_secrets(refs)).await?
    }

    async fn read_secrets(&self, refs: &[SecretRef]) -> Result<BTreeMap<String, SecretValue>> {
        let mut unique: Vec<&SecretRef> = refs.iter().collect();
        unique.sort();
        unique.dedup();
        let limit = self.settings.max_concurrency.max(1);
        let throttle = Arc::new(Throttle {
            semaphore: tokio::sync::Semaphore::new(limit),
            limit: std::sync::Mutex::new(limit),
            pause_until: std::sync::Mutex::new(None),
        });
        let mut results: Vec<(String, std::result::Result<SecretValue, SecretFailure>)> =
            Vec::with_capacity(unique.len());
        // Until the vault's challenge has been answered once, every concurrent request would get its own
        // 401 and token round trip; send one request alone first so the rest go out authorised.
        if !self.challenged.load(std::sync::atomic::Ordering::Relaxed)
            && let Some((first, rest)) = unique.split_first()
        {
            // One attempt only: whatever it returns, the challenge is done. A transient failure (429)
            // puts the secret back with the others so it shares their retries and throttling.
            let first_try = self.get_one(first, &throttle, 1).await;
            self.challenged
                .store(true, std::sync::atomic::Ordering::Relaxed);
            match first_try {
                Err(f) if matches!(f.status, Some(429) | Some(408) | Some(500..=599) | None) => {}
                done => {
                    results.push((first.to_string(), done));
                    unique = rest.to_vec();
                }
            }
        }
        let rest: Vec<(String, std::result::Result<SecretValue, SecretFailure>)> =
            // Owned items and an owned handle keep the future `Send` (borrowed items inside a stream
            // closure trip the compiler's higher-ranked lifetime check).
            futures::stream::iter(unique.into_iter().cloned().collect::<Vec<SecretRef>>())
                .map(|r| {
                    let throttle = throttle.clone();
                    let vault = self.clone();
                    async move {
                        let attempts = vault.settings.max_attempts;
                        let result = vault.get_one(&r, &throttle, attempts).await;
                        (r.to_string(), result)
                    }
                })
                .buffer_unordered(limit)
                .collect()
                .await;
        results.extend(rest);
        let mut out = BTreeMap::new();
        let mut failures = vec![];
        for (k, r) in results {
            match r {
                Ok(v) => {
                    out.insert(k, v);
                }
                Err(f) => failures.push(f),
            }
        }
        if failures.is_empty() {
            Ok(out)
        } else {
            failures.sort_by(|a, b| a.name.cmp(&b.name));
            Err(AzureError::Secrets {
                vault: self.name.clone(),
                failures,
            })
        }
    }

    async fn get_one(
        &self,
        r: &SecretRef,
        throttle: &Throttle,
        max_attempts: u32,
    ) -> std::result::Result<SecretValue, SecretFailure> {
        let mut attempt = 0u32;
        loop {
            while let Some(p) = throttle.pause() {
                tokio::time::sleep(p).await;
            }
            let permit = throttle.semaphore.acquire().await;
            let opts = SecretClientGetSecretOptions {
                secret_version: r.version.clone(),
                ..Default::default()
            };
            let result = self.get_client.get_secret(&r.name, Some(opts)).await;
            drop(permit);
            let err = match result.and_then(|rsp| rsp.into_model()) {
                Ok(s) => {
                    return s.value.map(SecretValue).ok_or_else(|| SecretFailure {
                        name: r.to_string(),
                        status: Some(200),
                        code: "NoValue".into(),
                        message: "the vault returned the secret without a value".into(),
                    });
                }
                Err(e) => e,
            };
            let failure = failure_of(r, &err);
            let retry_after = match err.kind() {
                azure_core::error::ErrorKind::HttpResponse {
                    raw_response: Some(raw),
                    ..
                } => crate::client::retry_after(raw),
                _ => None,
            };
            let transient = match failure.status {
                Some(429) | Some(408) | Some(500..=599) => true,
                Some(_) => false,
                // A refused answer comes back the same on every attempt.
                None => !crate::client::is_tls_error(&err) && !is_refused(&err),
            };
            attempt += 1;
            if !transient || attempt >= max_attempts {
                return Err(failure);
            }
            let backoff = self
                .settings
                .initial_backoff
                .saturating_mul(2u32.saturating_pow(attempt - 1))
                .min(Duration::from_secs(16));
            let wait = retry_after.unwrap_or_default().max(backoff);
            if failure.status == Some(429) {
                throttle.on_throttled(wait);
            } else {
                // Other transient failures only delay this request.
                tokio::time::sleep(wait).await;
            }
        }
    }

    /// The versions of a secret, oldest first.
    pub async fn versions(
        &self,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<Vec<SecretVersion>> {
        let r = SecretRef::parse(name)?;
        let op = format!("list versions of secret {} in vault {}", r.name, self.name);
        until_cancelled(cancel, &op, self.list_versions(&r, &op)).await?
    }

    async fn list_versions(&self, r: &SecretRef, op: &str) -> Result<Vec<SecretVersion>> {
        let pager = self
            .list_client
            .list_secret_properties_versions(&r.name, None)
            .map_err(|e| AzureError::protocol(op, chain_message(&e)))?;
        let path = format!("/secrets/{}/versions", r.name);
        let props: Vec<_> = pager
            .try_collect()
            .await
            .map_err(|e| list_error(op, &path, e))?;
        let mut out: Vec<SecretVersion> = props
            .into_iter()
            .filter_map(|p| {
                let version = p.resource_id().ok()?.version?;
                let attrs = p.attributes.as_ref();
                Some(SecretVersion {
                    version,
                    enabled: attrs.and_then(|a| a.enabled).unwrap_or(true),
                    created: attrs.and_then(|a| a.created),
                })
            })
            .collect();
        out.sort_by_key(|v| v.created);
        Ok(out)
    }

    /// List mode: every enabled, unexpired secret (optionally by name prefix), then read them all.
    pub async fn list_secrets(
        &self,
        filter: &SecretFilter,
        cancel: &CancellationToken,
    ) -> Result<ListedSecrets> {
        let op = format!("list secrets of vault {}", self.name);
        until_cancelled(cancel, &op, self.list_and_read(filter, &op)).await?
    }

    /// List mode without the values: the enabled, unexpired secrets' names (optionally by prefix) and
    /// the ones left out, read from the listing's attributes alone. A plan needs nothing more.
    pub async fn list_secret_names(
        &self,
        filter: &SecretFilter,
        cancel: &CancellationToken,
    ) -> Result<(Vec<String>, Vec<SkippedSecret>)> {
        let op = format!("list secrets of vault {}", self.name);
        let (wanted, skipped) =
            until_cancelled(cancel, &op, self.list_names(filter, &op)).await??;
        Ok((wanted.into_iter().map(|r| r.name).collect(), skipped))
    }

    async fn list_and_read(&self, filter: &SecretFilter, op: &str) -> Result<ListedSecrets> {
        let (wanted, skipped) = self.list_names(filter, op).await?;
        for s in &skipped {
            tracing::warn!(vault = %self.name, secret = %s.name, reason = %s.reason, "secret skipped");
        }
        let secrets = self.read_secrets(&wanted).await?;
        Ok(ListedSecrets { secrets, skipped })
    }

    async fn list_names(
        &self,
        filter: &SecretFilter,
        op: &str,
    ) -> Result<(Vec<SecretRef>, Vec<SkippedSecret>)> {
        let pager = self
            .list_client
            .list_secret_properties(None)
            .map_err(|e| AzureError::protocol(op, chain_message(&e)))?;
        let props: Vec<_> = pager
            .try_collect()
            .await
            .map_err(|e| list_error(op, "/secrets", e))?;
        let now = time::OffsetDateTime::now_utc();
        let mut wanted = vec![];
        let mut skipped = vec![];
        for p in props {
            let Some(name) = p.resource_id().ok().map(|r| r.name) else {
                continue;
            };
            if let SecretFilter::Prefix(prefix) = filter
                && !name.starts_with(prefix.as_str())
            {
                continue;
            }
            let attrs = p.attributes.as_ref();
            if attrs.and_then(|a| a.enabled) == Some(false) {
                skipped.push(SkippedSecret {
                    name,
                    reason: "disabled".into(),
                });
            } else if attrs.and_then(|a| a.expires).is_some_and(|e| e <= now) {
                skipped.push(SkippedSecret {
                    name,
                    reason: "expired".into(),
                });
            } else {
                wanted.push(SecretRef {
                    name,
                    version: None,
                });
            }
        }
        Ok((wanted, skipped))
    }
}

fn failure_of(r: &SecretRef, e: &azure_core::Error) -> SecretFailure {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let (code, message) = raw_response
                .as_ref()
                .map(|raw| crate::client::azure_error_body(raw.body()))
                .unwrap_or_default();
            SecretFailure {
                name: r.to_string(),
                status: Some(u16::from(*status)),
                code: if code.is_empty() {
                    error_code.clone().unwrap_or_default()
                } else {
                    code
                },
                message: if message.is_empty() {
                    chain_message(e)
                } else {
                    message
                },
            }
        }
        _ => SecretFailure {
            name: r.to_string(),
            status: None,
            code: if is_refused(e) {
                "InvalidResponse".into()
            } else {
                String::new()
            },
            message: chain_message(e),
        },
    }
}

fn list_error(op: &str, path: &str, e: azure_core::Error) -> AzureError {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            status,
            raw_response,
            ..
        } => {
            let (code, message) = raw_response
                .as_ref()
                .map(|r| crate::client::azure_error_body(r.body()))
                .unwrap_or_default();
            let status = u16::from(*status);
            AzureError::Http(Box::new(crate::error::HttpFailure {
                operation: op.to_owned(),
                method: "GET",
                path: path.to_owned(),
                status,
                kind: crate::error::classify(status, &code, &message),
                code,
                message,
                retry_after: None,
            }))
        }
        _ if is_refused(&e) => AzureError::Protocol {
            operation: op.to_owned(),
            message: chain_message(&e),
        },
        _ => AzureError::Transport {
            operation: op.to_owned(),
            method: "GET",
            path: path.to_owned(),
            message: chain_message(&e),
            kind: if crate::client::is_tls_error(&e) {
                ErrorKind::Tls
            } else {
                ErrorKind::Network
            },
            source: Some(Box::new(e)),
        },
    }
}

/// The largest answer read from a vault. A secret value is at most 25 KB and a list page holds at
/// most 25 items, so 4 MiB is far above any real answer and still a small, fixed amount of memory.
pub(crate) const MAX_VAULT_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Why [`VaultTransport`] refused a request or an answer. Refusals are never retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

fn refused(message: String) -> azure_core::Error {
    azure_core::Error::new(
        azure_core::error::ErrorKind::DataConversion,
        Refused(message),
    )
}

/// Whether an error chain holds a [`Refused`].
fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|err| err.is::<Refused>())
}

/// The transport of one vault's SDK clients: the shared HTTP client, plus the checks the SDK does not
/// make. A request for another host (a `nextLink` elsewhere) is never sent, because the SDK has already
/// put the vault's token on it; a redirect is refused (the HTTP client never follows one); an answer
/// over [`MAX_VAULT_RESPONSE_BYTES`] is cut off while streaming; and a success must be JSON (a list
/// page with its `value` array), so a proxy's sign-in page or a truncated page cannot pass for an
/// empty vault.
#[derive(Debug)]
struct VaultTransport {
    http: reqwest::Client,
    vault: String,
    host: String,
    port: Option<u16>,
}

impl VaultTransport {
    fn new(http: reqwest::Client, vault: &str, url: &Url) -> Result<Self> {
        let host = url
            .host_str()
            .ok_or_else(|| AzureError::invalid("vault URL", url.as_str(), "it has no host"))?;
        Ok(Self {
            http,
            vault: vault.to_owned(),
            host: host.to_ascii_lowercase(),
            port: url.port_or_known_default(),
        })
    }

    fn is_vault_host(&self, url: &Url) -> bool {
        crate::hosts::same_origin(url, &self.host, self.port)
    }
}

/// A header of a response, looked up case-insensitively.
fn header_of<'h>(headers: &'h azure_core::http::headers::Headers, name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(k, _)| k.as_str().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether a request path reads a page of a list (its `value` is an array, not a secret's value).
fn is_list_page(url: &Url) -> bool {
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    matches!(
        segments.as_slice(),
        ["secrets"] | ["deletedsecrets"] | ["secrets", _, "versions"]
    )
}

#[async_trait]
impl HttpClient for VaultTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = request.url();
        // Only the host is named: a query can carry a skip token.
        let host = url.host_str().unwrap_or("(no host)");
        if !self.is_vault_host(url) {
            return Err(refused(format!(
                "refused to send a request for vault {} to {}://{host}: a link from the vault \
                 points at another host, and the request carries the vault's token",
                self.vault,
                url.scheme()
            )));
        }
        let rsp = self.http.execute_request(request).await?;
        let (status, headers, mut body) = rsp.deconstruct();
        let code = u16::from(status);
        if (300..400).contains(&code) {
            let to = header_of(&headers, "location")
                .and_then(|l| url.join(l).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "(no location)".to_owned());
            return Err(refused(format!(
                "vault {} answered HTTP {code} redirecting to {to}; redirects are not followed",
                self.vault
            )));
        }
        let too_large = || {
            refused(format!(
                "vault {} answered HTTP {code} with a body larger than {} MiB; refused",
                self.vault,
                MAX_VAULT_RESPONSE_BYTES / (1024 * 1024)
            ))
        };
        if header_of(&headers, "content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > MAX_VAULT_RESPONSE_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut body).await {
            let chunk = chunk?;
            if bytes.len() + chunk.len() > MAX_VAULT_RESPONSE_BYTES {
                // Dropping the body closes the connection: the rest is never read.
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if (200..300).contains(&code) {
            let content_type = header_of(&headers, "content-type").unwrap_or("(none)");
            let is_json = content_type
                .split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
            if !is_json {
                return Err(refused(format!(
                    "vault {} answered HTTP {code} with content type {content_type:?}, not JSON",
                    self.vault
                )));
            }
            let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                refused(format!(
                    "vault {} answered HTTP {code} with malformed JSON ({}, line {} column {})",
                    self.vault,
                    json_problem(&e),
                    e.line(),
                    e.column()
                ))
            })?;
            if !json.is_object() {
                return Err(refused(format!(
                    "vault {} answered HTTP {code} with JSON that is not an object",
                    self.vault
                )));
            }
            if is_list_page(url) && !json.get("value").is_some_and(|v| v.is_array()) {
                return Err(refused(format!(
                    "vault {} answered a list page without its \"value\" array",
                    self.vault
                )));
            }
        }
        Ok(AsyncRawResponse::from_bytes(status, headers, bytes))
    }
}

/// What kind of JSON error, without serde's text (which can quote the input).
fn json_problem(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends early",
        serde_json::error::Category::Syntax => "a syntax error",
        serde_json::error::Category::Data => "unexpected data",
        serde_json::error::Category::Io => "a read error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_are_told_from_secret_reads() {
        let url = |p: &str| Url::parse(&format!("https://kv.vault.azure.net{p}")).expect("url");
        assert!(is_list_page(&url("/secrets")));
        assert!(is_list_page(&url("/secrets/")));
        assert!(is_list_page(&url("/secrets/db-password/versions")));
        assert!(is_list_page(&url("/deletedsecrets")));
        assert!(!is_list_page(&url("/secrets/db-password")));
        assert!(!is_list_page(&url("/secrets/db-password/0123abcd")));
        assert!(!is_list_page(&url("/secrets/versions")));
    }

    #[test]
    fn refusals_are_found_in_an_error_chain() {
        assert!(is_refused(&refused("x".into())));
        let other = azure_core::Error::with_message(azure_core::error::ErrorKind::Io, "reset");
        assert!(!is_refused(&other));
    }

    #[test]
    fn secret_refs() {
        let r = SecretRef::parse("db-password/0123abcd").expect("ok");
        assert_eq!((r.name(), r.version()), ("db-password", Some("0123abcd")));
        assert_eq!(r.to_string(), "db-password/0123abcd");
        assert!(SecretRef::parse("bad_name").is_err());
        assert!(SecretRef::parse("a/").is_err());
    }

    #[test]
    fn secret_value_is_redacted() {
        let v = SecretValue::new("hunter2".into());
        assert_eq!(format!("{v:?}"), "SecretValue(<redacted>)");
        assert_eq!(v.expose(), "hunter2");
    }
}
