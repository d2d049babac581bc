//! Key Vault secret writes: `PUT /secrets/{name}` (SetSecret, as azure-keyvault-secrets'
//! `set_secret` sends it) adds a new current version, creating the secret if it is new.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use crate::seed::SecretString;
use crate::server::{json, read_json};
use crate::state::{Secret, SecretVersion, new_id, now_unix};
use crate::{Shared, lock};

/// Key Vault's own rule for secret names: 1–127 characters of `0-9`, `a-z`, `A-Z` and `-`.
fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn bad(message: &str) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({"error": {"code": "BadParameter", "message": message}}),
    )
}

/// `PUT /secrets/{name}` with `{"value", "contentType"?, "attributes"?: {enabled, exp, nbf}, "tags"?}`:
/// answers the new version's `SecretBundle`.
pub(crate) async fn set_secret(shared: &Shared, vault: &str, name: &str, body: Body) -> Response {
    if !valid_name(name) {
        return bad(&format!(
            "The request URI contains an invalid name: {name}. Secret names must be 1-127 characters of 0-9, a-z, A-Z and -."
        ));
    }
    let body = match read_json(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(value) = body.get("value").and_then(|v| v.as_str()) else {
        return bad("The request body must contain 'value', a string.");
    };
    let attributes = body.get("attributes");
    let flag = |key: &str| attributes.and_then(|a| a.get(key));
    let created = now_unix();
    let version = new_id();
    let mut state = lock(&shared.state);
    let Some(v) = state.vaults.get_mut(vault) else {
        return bad("The vault does not exist.");
    };
    let secret = v
        .secrets
        .entry(name.to_ascii_lowercase())
        .or_insert_with(|| Secret {
            name: name.to_owned(),
            versions: Vec::new(),
            enabled: true,
            exp: None,
            nbf: None,
            content_type: None,
            tags: std::collections::BTreeMap::new(),
        });
    // The emulator keeps attributes per secret, not per version: a write sets them for the secret.
    secret.enabled = flag("enabled")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true);
    secret.exp = flag("exp").and_then(serde_json::Value::as_i64);
    secret.nbf = flag("nbf").and_then(serde_json::Value::as_i64);
    secret.content_type = body
        .get("contentType")
        .and_then(|c| c.as_str())
        .map(str::to_owned);
    if let Some(tags) = body.get("tags").and_then(|t| t.as_object()) {
        secret.tags = tags
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
            .collect();
    }
    secret.versions.push(SecretVersion {
        id: version.clone(),
        value: SecretString::new(value.to_owned()),
        created,
    });
    let mut answer = serde_json::json!({
        "value": value,
        "id": format!("{}/secrets/{}/{version}", shared.url(&format!("{vault}.vault")), secret.name),
        "attributes": crate::keyvault::attributes(secret, created),
        "tags": secret.tags,
    });
    if let Some(ct) = &secret.content_type {
        answer["contentType"] = ct.clone().into();
    }
    json(StatusCode::OK, &answer)
}
