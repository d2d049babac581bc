//! The transport of a vault's SDK clients: the checks the SDK does not make (host, redirects, size,
//! JSON), and the HTTP version each answer came over, so reads can be sized to what one
//! connection carries.

use crate::error::{AzureError, Result, causes};
use async_trait::async_trait;
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Method, Request, StatusCode, Url};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long after its last answer a vault's connection is taken to be still open: under the HTTP
/// client's 60 s pool idle timeout, with room for the answer's own time in flight.
const WARM_FOR: Duration = Duration::from_secs(45);

/// What the answers so far say about the connection to one vault.
#[derive(Debug, Default)]
pub(super) struct Link {
    /// 0 before any answer, 1 for HTTP/1.x, 2 for HTTP/2.
    version: AtomicU8,
    last_answer: Mutex<Option<Instant>>,
}

impl Link {
    /// Whether the last answer came over HTTP/2, so concurrent reads share one connection.
    pub(super) fn multiplexed(&self) -> bool {
        self.version.load(Ordering::Relaxed) == 2
    }

    /// Whether the vault answered recently enough that its connection is still pooled. A cold client
    /// sends one request alone first: with none open, every concurrent request would start its own
    /// TLS handshake before ALPN could say that one HTTP/2 connection carries them all.
    pub(super) fn warm(&self) -> bool {
        self.last_answer
            .lock()
            .ok()
            .and_then(|t| *t)
            .is_some_and(|t| t.elapsed() < WARM_FOR)
    }

    fn answered(&self, version: reqwest::Version) {
        let v = if version == reqwest::Version::HTTP_2 {
            2
        } else {
            1
        };
        self.version.store(v, Ordering::Relaxed);
        if let Ok(mut t) = self.last_answer.lock() {
            *t = Some(Instant::now());
        }
    }
}

/// The largest answer read from a vault. A secret value is at most 25 KB and a list page holds at
/// most 25 items, so 4 MiB is far above any real answer and still a small, fixed amount of memory.
pub(crate) const MAX_VAULT_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Why [`VaultTransport`] refused a request or an answer. Refusals are never retried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(String);

pub(super) fn refused(message: String) -> azure_core::Error {
    azure_core::Error::new(
        azure_core::error::ErrorKind::DataConversion,
        Refused(message),
    )
}

/// Whether an error chain holds a [`Refused`].
pub(super) fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    causes(e).any(|err| err.is::<Refused>())
}

/// The transport of one vault's SDK clients: the shared HTTP client, plus the checks the SDK does not
/// make. A request for another host (a `nextLink` elsewhere) is never sent, because the SDK has already
/// put the vault's token on it; a redirect is refused (the HTTP client never follows one); an answer
/// over [`MAX_VAULT_RESPONSE_BYTES`] is cut off while streaming; and a success must be JSON (a list
/// page with its `value` array), so a proxy's sign-in page or a truncated page cannot pass for an
/// empty vault.
#[derive(Debug)]
pub(super) struct VaultTransport {
    http: reqwest::Client,
    vault: String,
    host: String,
    port: Option<u16>,
    link: Arc<Link>,
    budget: Arc<super::pace::Budget>,
}

impl VaultTransport {
    pub(super) fn new(
        http: reqwest::Client,
        vault: &str,
        url: &Url,
        link: Arc<Link>,
        budget: Arc<super::pace::Budget>,
    ) -> Result<Self> {
        let host = url
            .host_str()
            .ok_or_else(|| AzureError::invalid("vault URL", url.as_str(), "it has no host"))?;
        Ok(Self {
            http,
            vault: vault.to_owned(),
            host: host.to_ascii_lowercase(),
            port: url.port_or_known_default(),
            link,
            budget,
        })
    }

    /// Sends the SDK's request as it is (the SDK's own reqwest adapter does the same, but hides
    /// which HTTP version answered). Vault requests carry JSON or nothing, never a stream.
    async fn send(&self, request: &Request) -> azure_core::Result<reqwest::Response> {
        let method = match request.method() {
            Method::Delete => reqwest::Method::DELETE,
            Method::Get => reqwest::Method::GET,
            Method::Head => reqwest::Method::HEAD,
            Method::Patch => reqwest::Method::PATCH,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            other => {
                return Err(refused(format!(
                    "refused to send a {other:?} request to vault {}",
                    self.vault
                )));
            }
        };
        let mut req = self.http.request(method, request.url().clone());
        for (name, value) in request.headers().iter() {
            req = req.header(name.as_str(), value.as_str());
        }
        let req = match request.body() {
            Body::Bytes(bytes) => req.body(bytes.clone()),
            Body::SeekableStream(_) => {
                return Err(refused(format!(
                    "refused to stream a request body to vault {}",
                    self.vault
                )));
            }
        };
        req.send().await.map_err(|e| {
            let kind = if e.is_connect() {
                azure_core::error::ErrorKind::Connection
            } else {
                azure_core::error::ErrorKind::Io
            };
            azure_core::Error::with_error(kind, e, "failed to execute `reqwest` request")
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
        // Every request counts against the vault's budget, the SDK's challenge and page requests too.
        self.budget.take().await;
        let mut rsp = self.send(request).await?;
        self.link.answered(rsp.version());
        let code = rsp.status().as_u16();
        let status = StatusCode::from(code);
        let headers = to_headers(rsp.headers());
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
        while let Some(chunk) = rsp.chunk().await.map_err(|e| {
            azure_core::Error::with_error(
                azure_core::error::ErrorKind::Io,
                e,
                "error reading the vault's answer",
            )
        })? {
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
            check_json(&self.vault, code, &bytes, is_list_page(url))?;
        }
        Ok(AsyncRawResponse::from_bytes(status, headers, bytes))
    }
}

/// A success's body must be one JSON object (and a list page's must hold a `value` array), so a
/// proxy's page or a cut-off answer cannot pass for a secret or an empty vault. A secret read is
/// checked without building a tree of it (the SDK parses it into its model next; a second
/// `serde_json::Value` of every read showed in the profile of 2,000 reads at once).
fn check_json(vault: &str, code: u16, bytes: &[u8], list_page: bool) -> azure_core::Result<()> {
    let malformed = |e: serde_json::Error| {
        refused(format!(
            "vault {vault} answered HTTP {code} with malformed JSON ({}, line {} column {})",
            json_problem(&e),
            e.line(),
            e.column()
        ))
    };
    let not_object = || {
        refused(format!(
            "vault {vault} answered HTTP {code} with JSON that is not an object"
        ))
    };
    if list_page {
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(malformed)?;
        if !json.is_object() {
            return Err(not_object());
        }
        if !json.get("value").is_some_and(|v| v.is_array()) {
            return Err(refused(format!(
                "vault {vault} answered a list page without its \"value\" array"
            )));
        }
        return Ok(());
    }
    // Well-formed JSON whose first token opens an object is one object.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(malformed)?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_object());
    }
    Ok(())
}

/// The answer's headers as the SDK keeps them (a header that is not UTF-8 is left out, as the SDK's
/// own adapter does).
fn to_headers(map: &reqwest::header::HeaderMap) -> Headers {
    let map: HashMap<HeaderName, HeaderValue> = map
        .iter()
        .filter_map(|(k, v)| {
            let value = v.to_str().ok()?;
            Some((
                HeaderName::from(k.as_str().to_owned()),
                HeaderValue::from(value.to_owned()),
            ))
        })
        .collect();
    Headers::from(map)
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
    fn a_success_must_be_one_json_object() {
        let check = |body: &str, list: bool| check_json("kv", 200, body.as_bytes(), list);
        assert!(check(r#" {"value":"x","id":"i"}"#, false).is_ok());
        assert!(check(r#"{"value":[],"nextLink":null}"#, true).is_ok());
        for (body, list) in [
            (r#"["value"]"#, false),
            (r#""text""#, false),
            (r#"{"value":"x""#, false),
            (r#"{"value":"x"} {}"#, false),
            ("<html></html>", false),
            (r#"{"value":"x"}"#, true),
            (r#"[{"value":[]}]"#, true),
        ] {
            let err = check(body, list).expect_err(body);
            assert!(is_refused(&err), "{body}");
        }
    }

    #[test]
    fn refusals_are_found_in_an_error_chain() {
        assert!(is_refused(&refused("x".into())));
        let other = azure_core::Error::with_message(azure_core::error::ErrorKind::Io, "reset");
        assert!(!is_refused(&other));
    }
}
