//! Key Vault secrets data plane (api-version 7.6 shapes): list with paging, get latest or by
//! version, disabled/expired/missing secrets, the 401 challenge, and per-vault throttling. Writes
//! are in `crate::kv_write`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::entra::{AuthFailure, check_bearer, tenant_authority};
use crate::server::{error_json, json, query_param};
use crate::state::{Secret, now_unix};
use crate::{Shared, VAULT_AUDIENCE, lock};

fn kv_error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response {
    let mut err = serde_json::json!({"code": code, "message": message});
    if let Some(inner) = inner {
        err["innerError"] = serde_json::json!({"code": inner});
    }
    json(status, &serde_json::json!({"error": err}))
}

fn challenge(shared: &Shared, failure: &AuthFailure) -> Response {
    let mut resp = match failure {
        AuthFailure::Missing => kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
            None,
        ),
        AuthFailure::Expired { .. } => kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10022: Invalid audience or token expired.",
            Some("TokenExpired"),
        ),
        AuthFailure::WrongAudience { aud } => kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &format!("AKV10022: Invalid audience. Expected {VAULT_AUDIENCE}, found: {aud}."),
            None,
        ),
        AuthFailure::Invalid => kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10032: Invalid issuer or signature.",
            None,
        ),
    };
    // The resource carries the emulator's port: the Python SDK's challenge check compares the
    // resource's host *and port* with the vault URL's (Azure's vault and resource are both on 443),
    // and the Rust SDK compares hosts only. Entra issues a Key Vault token for it.
    let value = format!(
        "Bearer authorization=\"{}\", resource=\"{VAULT_AUDIENCE}:{}\"",
        tenant_authority(shared),
        shared.port
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

pub(crate) fn attributes(secret: &Secret, created: i64) -> serde_json::Value {
    let mut a = serde_json::json!({
        "enabled": secret.enabled,
        "created": created,
        "updated": created,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    });
    if let Some(exp) = secret.exp {
        a["exp"] = exp.into();
    }
    if let Some(nbf) = secret.nbf {
        a["nbf"] = nbf.into();
    }
    a
}

pub(crate) async fn handle(shared: Arc<Shared>, vault: String, req: Request<Body>) -> Response {
    let base = shared.url(&format!("{vault}.vault"));
    // Throttling counts every request that reaches the vault (429s excepted), as Key Vault does.
    {
        let mut state = lock(&shared.state);
        let Some(v) = state.vaults.get_mut(&vault) else {
            return error_json(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                &format!("The vault '{vault}' does not exist in the emulator."),
            );
        };
        if let Some(t) = v.throttle {
            let window = std::time::Duration::from_secs(t.window_seconds.max(1));
            let now = Instant::now();
            let (start, count) = match v.window {
                Some((start, count)) if now.duration_since(start) < window => (start, count),
                _ => (now, 0),
            };
            if count >= t.limit {
                let wait = window
                    .saturating_sub(now.duration_since(start))
                    .as_secs()
                    .max(1);
                let mut resp = kv_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Throttled",
                    "Request was not processed because too many requests were received. Reason: VaultRequestTypeLimitReached",
                    None,
                );
                if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                    resp.headers_mut().insert(header::RETRY_AFTER, v);
                }
                return resp;
            }
            v.window = Some((start, count + 1));
        }
    }
    if let Err(failure) = check_bearer(&shared, req.headers(), VAULT_AUDIENCE) {
        return challenge(&shared, &failure);
    }
    let q = req.uri().query().map(str::to_owned);
    let q = q.as_deref();
    if query_param(q, "api-version").is_none() {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid or missing api-version.",
            None,
        );
    }
    if req.method() == Method::PUT {
        let path = req.uri().path().to_owned();
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        if let ["secrets", name] | ["Secrets", name] = segs.as_slice() {
            let name = percent_decode(name);
            return crate::kv_write::set_secret(&shared, &vault, &name, req.into_body()).await;
        }
    }
    if req.method() != Method::GET {
        return kv_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "BadParameter",
            "Only GET of secrets and PUT of a secret are emulated.",
            None,
        );
    }
    let path = req.uri().path().to_owned();
    // `name%2Fversion` (AzureKeyVault@2's `name/version` filter) decodes to two segments.
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .flat_map(|s| s.split('/').map(str::to_owned).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let state = lock(&shared.state);
    let Some(v) = state.vaults.get(&vault) else {
        return error_json(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            "The vault does not exist.",
        );
    };
    match segs.as_slice() {
        [s] if s.eq_ignore_ascii_case("secrets") => {
            let page = match Page::from_query(q) {
                Ok(p) => p,
                Err(message) => {
                    return kv_error(StatusCode::BAD_REQUEST, "BadParameter", message, None);
                }
            };
            let items: Vec<serde_json::Value> = v
                .secrets
                .values()
                .map(|s| {
                    let created = s.versions.last().map(|v| v.created).unwrap_or(0);
                    secret_item(s, format!("{base}/secrets/{}", s.name), created)
                })
                .collect();
            page.answer(items, &format!("{base}/secrets"))
        }
        [s, name, versions]
            if s.eq_ignore_ascii_case("secrets") && versions.eq_ignore_ascii_case("versions") =>
        {
            let page = match Page::from_query(q) {
                Ok(p) => p,
                Err(message) => {
                    return kv_error(StatusCode::BAD_REQUEST, "BadParameter", message, None);
                }
            };
            let Some(secret) = v.secrets.get(&name.to_ascii_lowercase()) else {
                return secret_not_found(name);
            };
            // Oldest first, as stored; each item's id carries its version.
            let items: Vec<serde_json::Value> = secret
                .versions
                .iter()
                .map(|ver| {
                    secret_item(
                        secret,
                        format!("{base}/secrets/{}/{}", secret.name, ver.id),
                        ver.created,
                    )
                })
                .collect();
            page.answer(items, &format!("{base}/secrets/{}/versions", secret.name))
        }
        [s, name, rest @ ..] if s.eq_ignore_ascii_case("secrets") && rest.len() <= 1 => {
            let not_found = || secret_not_found(name);
            let Some(secret) = v.secrets.get(&name.to_ascii_lowercase()) else {
                return not_found();
            };
            let version = match rest.first().filter(|r| !r.is_empty()) {
                Some(ver) => match secret
                    .versions
                    .iter()
                    .find(|v| v.id.eq_ignore_ascii_case(ver))
                {
                    Some(v) => v,
                    None => {
                        return kv_error(
                            StatusCode::NOT_FOUND,
                            "SecretNotFound",
                            &format!(
                                "A secret with (name/id) {name}/{ver} was not found in this key vault."
                            ),
                            None,
                        );
                    }
                },
                None => match secret.versions.last() {
                    Some(v) => v,
                    None => return not_found(),
                },
            };
            if !secret.enabled {
                return kv_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "Operation get is not allowed on a disabled secret.",
                    Some("SecretDisabled"),
                );
            }
            if secret.exp.is_some_and(|exp| exp <= now_unix()) {
                return kv_error(
                    StatusCode::FORBIDDEN,
                    "Forbidden",
                    "Operation get is not allowed on an expired secret.",
                    Some("SecretExpired"),
                );
            }
            let mut body = serde_json::json!({
                "value": version.value.expose(),
                "id": format!("{base}/secrets/{}/{}", secret.name, version.id),
                "attributes": attributes(secret, version.created),
                "tags": secret.tags,
            });
            if let Some(ct) = &secret.content_type {
                body["contentType"] = ct.clone().into();
            }
            json(StatusCode::OK, &body)
        }
        _ => kv_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "The requested operation is not emulated.",
            None,
        ),
    }
}

fn secret_not_found(name: &str) -> Response {
    kv_error(
        StatusCode::NOT_FOUND,
        "SecretNotFound",
        &format!(
            "A secret with (name/id) {name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
        ),
        None,
    )
}

/// A `SecretItem` (no value) as list and list-versions return it.
fn secret_item(secret: &Secret, id: String, created: i64) -> serde_json::Value {
    let mut item = serde_json::json!({
        "id": id,
        "attributes": attributes(secret, created),
        "tags": secret.tags,
    });
    if let Some(ct) = &secret.content_type {
        item["contentType"] = ct.clone().into();
    }
    item
}

/// One page of a `SecretListResult`: `maxresults` (1–25, default 25) and an opaque `$skiptoken`
/// that the `nextLink` carries, so clients follow the link verbatim.
struct Page {
    max: usize,
    skip: usize,
}

impl Page {
    /// The page a query asks for; `Err` is Key Vault's 400 `BadParameter` message.
    fn from_query(q: Option<&str>) -> Result<Self, &'static str> {
        let max = match query_param(q, "maxresults").map(|m| m.parse::<usize>()) {
            None => 25,
            Some(Ok(n)) if (1..=25).contains(&n) => n,
            Some(_) => {
                return Err("The value of the maxresults parameter must be between 1 and 25.");
            }
        };
        let skip = match query_param(q, "$skiptoken") {
            None => 0,
            Some(tok) => URL_SAFE_NO_PAD
                .decode(tok.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| {
                    s.strip_prefix("skip:")
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .ok_or("The $skiptoken is invalid.")?,
        };
        Ok(Self { max, skip })
    }

    /// The page of `items` with a `nextLink` to `collection_url` while more remain.
    fn answer(&self, items: Vec<serde_json::Value>, collection_url: &str) -> Response {
        let total = items.len();
        let page: Vec<serde_json::Value> =
            items.into_iter().skip(self.skip).take(self.max).collect();
        let next = (self.skip + self.max < total).then(|| {
            let tok = URL_SAFE_NO_PAD.encode(format!("skip:{}", self.skip + self.max));
            format!(
                "{collection_url}?api-version=7.6&$skiptoken={tok}&maxresults={}",
                self.max
            )
        });
        json(
            StatusCode::OK,
            &serde_json::json!({"value": page, "nextLink": next}),
        )
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}
