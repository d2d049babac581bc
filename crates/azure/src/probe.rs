//! A health probe of an app's own page: one GET with no credential (an app is not an Azure API, so no
//! token may go to it), through the same HTTP client as every Azure call (proxy, CA, emulator hosts).
//!
//! What counts as healthy is the engine's decision; this module only reports what the page answered.

use url::Url;

use crate::azure::Azure;
use crate::error::{Result, root_cause};
use crate::http::{HttpOptions, http_client};

/// How much of a response body is searched for the expected text: health pages are small, and an
/// endless body must not hold a probe.
pub const PAGE_BODY_LIMIT: usize = 1024 * 1024;

/// The title of App Service's default page (`hostingstart.html`, and the page Linux images serve when
/// no app starts), as Microsoft publishes it. It answers 200, so a status alone cannot tell it from the
/// app.
pub const DEFAULT_PAGE_TITLE: &str = "<title>Microsoft Azure App Service - Welcome</title>";

/// What a page answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAnswer {
    /// A status the caller does not accept; the body was not read.
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// An accepted status; with expected text, whether the first [`PAGE_BODY_LIMIT`] bytes hold it.
    Accepted {
        /// The HTTP status.
        status: u16,
        /// `true` when no text was expected.
        text_found: bool,
    },
    /// An accepted status, but the body is App Service's default page ([`DEFAULT_PAGE_TITLE`]): the
    /// platform answered, not the app.
    DefaultPage {
        /// The HTTP status.
        status: u16,
    },
    /// The request or the body timed out (the client's own timeout; callers usually set a shorter one).
    TimedOut,
    /// No answer: connection refused or reset, DNS, TLS, or the body broke off.
    Unreachable {
        /// The root cause (reqwest's outer message is generic).
        message: String,
    },
}

/// Asks apps' pages; it holds no credential of ours, so none can reach an app. The one key it may carry
/// is a function key, which belongs to the app it is sent to.
#[derive(Debug, Clone)]
pub struct PageClient {
    http: reqwest::Client,
    function_key: Option<crate::SecretValue>,
}

/// The header the Functions host reads a function key from.
pub const FUNCTION_KEY_HEADER: &str = "x-functions-key";

impl PageClient {
    /// A client with its own connection options (no proxy, say, for a test's loopback server).
    pub fn new(opts: &HttpOptions) -> Result<Self> {
        Ok(PageClient {
            http: http_client(opts)?,
            function_key: None,
        })
    }

    /// The same client sending `key` as [`FUNCTION_KEY_HEADER`] with every probe: for a function whose
    /// `authLevel` asks for one. It goes only where the probe goes (the slot's own host: redirects are
    /// never followed).
    pub fn with_function_key(&self, key: crate::SecretValue) -> PageClient {
        PageClient {
            http: self.http.clone(),
            function_key: Some(key),
        }
    }

    /// GETs `url` (asking caches for a fresh answer). When the status is one of `accepted` and `text` is
    /// given, reads the body up to [`PAGE_BODY_LIMIT`] looking for it.
    pub async fn probe(&self, url: &Url, accepted: &[u16], text: Option<&str>) -> PageAnswer {
        let mut request = self
            .http
            .get(url.clone())
            .header(reqwest::header::CACHE_CONTROL, "no-cache");
        if let Some(key) = &self.function_key {
            let mut value = match reqwest::header::HeaderValue::from_str(key.expose()) {
                Ok(v) => v,
                Err(_) => {
                    return PageAnswer::Unreachable {
                        message: "the function key is not a valid header value".to_owned(),
                    };
                }
            };
            value.set_sensitive(true);
            request = request.header(FUNCTION_KEY_HEADER, value);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return unreachable(&e),
        };
        let status = response.status().as_u16();
        if !accepted.contains(&status) {
            return PageAnswer::Refused { status };
        }
        // The body is always read (up to the limit): an app that did not start is answered by the
        // platform's default page with 200, which only its content tells apart.
        let needle = text.unwrap_or_default().as_bytes();
        let mut response = response;
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = PAGE_BODY_LIMIT.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    // The title sits in the head: once it is past, the page is known not to be the
                    // default one, and the search for the text can end as soon as it is found.
                    if contains(&body, DEFAULT_PAGE_TITLE.as_bytes()) {
                        return PageAnswer::DefaultPage { status };
                    }
                    if contains(&body, b"</title>") && contains(&body, needle) {
                        break;
                    }
                    if body.len() >= PAGE_BODY_LIMIT {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return unreachable(&e),
            }
        }
        PageAnswer::Accepted {
            status,
            text_found: contains(&body, needle),
        }
    }
}

impl Azure {
    /// A page client with this connection's proxy, CA and emulator hosts, and none of its credentials.
    pub fn page_client(&self) -> PageClient {
        PageClient {
            http: self.http_client().clone(),
            function_key: None,
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn unreachable(e: &reqwest::Error) -> PageAnswer {
    if e.is_timeout() {
        return PageAnswer::TimedOut;
    }
    PageAnswer::Unreachable {
        message: root_cause(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_search_finds_the_text_or_not() {
        assert!(contains(b"status: ok", b"ok"));
        assert!(!contains(b"status: down", b"ok"));
        assert!(contains(b"", b""));
    }
}
