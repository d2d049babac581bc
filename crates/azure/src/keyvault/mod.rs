//! Key Vault secrets through `azure_security_keyvault_secrets`: named secrets read all at once up to
//! the vault's documented budget (and throttled back when the vault answers 429 anyway), list mode
//! that starts reading each page's secrets while the next page is fetched and skips disabled and
//! expired secrets, and a value type that cannot be printed by accident. The SDK's requests go
//! through [`transport::VaultTransport`], which keeps the token on the vault's own host, refuses
//! oversized or non-JSON answers before the SDK reads them, and notes whether the vault answered
//! over HTTP/2 (one connection multiplexing every read) or HTTP/1.1 (a connection per read).

mod pace;
mod transport;

use crate::client::{Inner, chain_message, client_options, until_cancelled};
use crate::error::{AzureError, ErrorKind, Result, SecretFailure};
use azure_core::http::{ExponentialRetryOptions, RetryOptions, Transport};
use azure_security_keyvault_secrets::models::{SecretClientGetSecretOptions, SecretProperties};
use azure_security_keyvault_secrets::{ResourceExt, SecretClient, SecretClientOptions};
use futures::{Stream, StreamExt, TryStreamExt};
use pace::{Budget, Throttle};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use transport::{Link, VaultTransport, is_refused};

/// Key Vault's documented budget for secret reads: 4,000 transactions per 10 s per vault (service
/// limits, "All other transactions" for secrets).
pub const VAULT_BUDGET: usize = 4000;
/// The window [`VAULT_BUDGET`] is counted over.
pub const VAULT_BUDGET_WINDOW: Duration = Duration::from_secs(10);

/// Key Vault tunables.
#[derive(Debug, Clone)]
pub struct KeyVaultSettings {
    /// Most reads in flight at once when the vault answers over HTTP/2 (halved each time the vault
    /// throttles). Defaults to the vault's whole budget, so any count the budget allows goes out in
    /// one wave multiplexed over one connection; the budget below paces anything larger.
    pub max_concurrency: usize,
    /// Most reads in flight when the vault answers over HTTP/1.1, where each one in flight is its own
    /// TLS connection.
    pub http1_concurrency: usize,
    /// Requests (every page, read, retry and challenge) started per `budget_window` at most; the
    /// rest wait for the window instead of drawing 429s. Defaults to [`VAULT_BUDGET`].
    pub budget: usize,
    /// The window of `budget`.
    pub budget_window: Duration,
    /// Attempts per secret on 429/5xx/network errors.
    pub max_attempts: u32,
    /// First backoff when the vault gives no `Retry-After`.
    pub initial_backoff: Duration,
}

impl Default for KeyVaultSettings {
    fn default() -> Self {
        Self {
            max_concurrency: VAULT_BUDGET,
            http1_concurrency: 100,
            budget: VAULT_BUDGET,
            budget_window: VAULT_BUDGET_WINDOW,
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

/// What this client knows of each vault it reads, by vault name: the requests counted against its
/// budget and the connection's HTTP version. One entry per vault named, a few hundred bytes each
/// plus the budget's log (at most `budget` instants).
#[derive(Debug, Default)]
pub(crate) struct VaultStates(std::sync::Mutex<std::collections::HashMap<String, VaultState>>);

#[derive(Debug, Clone)]
struct VaultState {
    budget: Arc<Budget>,
    link: Arc<Link>,
}

impl VaultStates {
    fn get(&self, vault: &str, settings: &KeyVaultSettings) -> VaultState {
        let fresh = || VaultState {
            budget: Arc::new(Budget::new(settings.budget, settings.budget_window)),
            link: Arc::new(Link::default()),
        };
        match self.0.lock() {
            Ok(mut map) => map
                .entry(vault.to_ascii_lowercase())
                .or_insert_with(fresh)
                .clone(),
            Err(_) => fresh(),
        }
    }
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
    /// Whether a read has completed the vault's 401 challenge (the SDK then caches the scope).
    challenged: Arc<std::sync::atomic::AtomicBool>,
    /// The HTTP version and age of the vault's last answer.
    link: Arc<Link>,
}

impl fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyVault")
            .field("name", &self.name)
            .finish_non_exhaustive()
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
        let settings = inner.settings.keyvault.clone();
        let VaultState { budget, link } = inner.vaults.get(vault, &settings);
        let transport = Arc::new(VaultTransport::new(
            inner.http.clone(),
            vault,
            &url,
            link.clone(),
            budget,
        )?);
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
            settings,
            get_client: mk(RetryOptions::none())?,
            list_client: mk(list_retry)?,
            challenged: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            link,
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
        let mut unique: Vec<SecretRef> = refs.to_vec();
        unique.sort();
        unique.dedup();
        self.read_all(futures::stream::iter(unique.into_iter().map(Ok)))
            .await
    }

    /// Reads every secret `refs` yields, starting each read as soon as its name arrives (list mode
    /// feeds names page by page). In flight at once: at most `max_concurrency` reads over HTTP/2, or
    /// `http1_concurrency` over HTTP/1.1, halved on each 429; the stream is not pulled further while
    /// that many are in flight, so what is held besides the values read is bounded by the limit
    /// plus one list page. Any missing, disabled or unreadable secret fails the call, listing every
    /// failure; an error of `refs` itself (a list page) ends it at once.
    async fn read_all<S>(&self, refs: S) -> Result<BTreeMap<String, SecretValue>>
    where
        S: Stream<Item = Result<SecretRef>> + Send,
    {
        let throttle = Arc::new(Throttle::new(self.settings.max_concurrency));
        // A cold client (no answer lately, or no challenge answered yet) sends its first read alone:
        // every concurrent request would otherwise get its own 401 and token round trip, and open
        // its own connection before ALPN says one HTTP/2 connection can carry them all. The rest wait
        // at this gate; listing goes on meanwhile.
        let cold = !self.link.warm() || !self.challenged.load(std::sync::atomic::Ordering::Relaxed);
        if !cold && !self.link.multiplexed() {
            throttle.cap(self.settings.http1_concurrency);
        }
        let (open, gate) = tokio::sync::watch::channel(!cold);
        let mut open = Some(open);
        let reads = refs
            .enumerate()
            .map(|(i, r)| {
                // Owned items and handles keep the future `Send` (borrowed items inside a stream
                // closure trip the compiler's higher-ranked lifetime check).
                let vault = self.clone();
                let throttle = throttle.clone();
                let mut gate = gate.clone();
                let opener = if i == 0 { open.take() } else { None };
                async move {
                    let r = r?;
                    let attempts = vault.settings.max_attempts;
                    let result = match opener.filter(|o| !*o.borrow()) {
                        Some(opener) => vault.open_with(&r, &throttle, opener).await,
                        None => {
                            // A dropped opener (the first read cancelled) also opens the gate.
                            let _ = gate.wait_for(|open| *open).await;
                            vault.get_one(&r, &throttle, attempts).await
                        }
                    };
                    Ok::<_, AzureError>((r.to_string(), result))
                }
            })
            .buffer_unordered(self.settings.max_concurrency.max(1));
        futures::pin_mut!(reads);
        let mut out = BTreeMap::new();
        let mut failures = vec![];
        while let Some(read) = reads.next().await {
            match read? {
                (k, Ok(v)) => {
                    out.insert(k, v);
                }
                (_, Err(f)) => failures.push(f),
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

    /// The first read of a cold client: one attempt alone, then the gate opens with the reads in
    /// flight sized to the HTTP version the vault answered with. A transient failure (429) is
    /// retried with the others, sharing their throttling.
    async fn open_with(
        &self,
        r: &SecretRef,
        throttle: &Throttle,
        opener: tokio::sync::watch::Sender<bool>,
    ) -> std::result::Result<SecretValue, SecretFailure> {
        let first_try = self.get_one(r, throttle, 1).await;
        self.challenged
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !self.link.multiplexed() {
            throttle.cap(self.settings.http1_concurrency);
        }
        let _ = opener.send(true);
        match first_try {
            Err(f) if matches!(f.status, Some(429) | Some(408) | Some(500..=599) | None) => {
                self.get_one(r, throttle, self.settings.max_attempts).await
            }
            done => done,
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
        let pager = self
            .list_client
            .list_secret_properties(None)
            .map_err(|e| AzureError::protocol(op, chain_message(&e)))?;
        let now = time::OffsetDateTime::now_utc();
        let skipped = std::sync::Mutex::new(Vec::new());
        // Each page's names go to the reads as the page arrives; the pager fetches the next page
        // while they are in flight.
        let names = pager
            .map_err(|e| list_error(op, "/secrets", e))
            .try_filter_map(|p| {
                let kept = match classify(&p, filter, now) {
                    Some(Ok(r)) => Some(r),
                    Some(Err(s)) => {
                        if let Ok(mut v) = skipped.lock() {
                            v.push(s);
                        }
                        None
                    }
                    None => None,
                };
                futures::future::ready(Ok(kept))
            });
        let secrets = self.read_all(names).await?;
        let mut skipped = skipped.into_inner().unwrap_or_default();
        skipped.sort_by(|a, b| a.name.cmp(&b.name));
        for s in &skipped {
            tracing::warn!(vault = %self.name, secret = %s.name, reason = %s.reason, "secret skipped");
        }
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
        for p in &props {
            match classify(p, filter, now) {
                Some(Ok(r)) => wanted.push(r),
                Some(Err(s)) => skipped.push(s),
                None => {}
            }
        }
        Ok((wanted, skipped))
    }
}

/// What list mode does with one listed secret: read it (`Ok`), skip it with a reason (`Err`), or
/// leave it out silently (`None`: another prefix, or no name in its id).
fn classify(
    p: &SecretProperties,
    filter: &SecretFilter,
    now: time::OffsetDateTime,
) -> Option<std::result::Result<SecretRef, SkippedSecret>> {
    let name = p.resource_id().ok()?.name;
    if let SecretFilter::Prefix(prefix) = filter
        && !name.starts_with(prefix.as_str())
    {
        return None;
    }
    let attrs = p.attributes.as_ref();
    let skip = |reason: &str| {
        Some(Err(SkippedSecret {
            name: name.clone(),
            reason: reason.into(),
        }))
    };
    if attrs.and_then(|a| a.enabled) == Some(false) {
        skip("disabled")
    } else if attrs.and_then(|a| a.expires).is_some_and(|e| e <= now) {
        skip("expired")
    } else {
        Some(Ok(SecretRef {
            name: name.clone(),
            version: None,
        }))
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

#[cfg(test)]
mod tests {
    use super::*;

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
