//! The documents Microsoft's sign-in libraries read before they ask for a token: the OpenID
//! configuration of the tenant (v2 `/{tenant}/v2.0/.well-known/openid-configuration`, v1
//! `/{tenant}/.well-known/openid-configuration`), the instance-discovery answer
//! (`/common/discovery/instance?api-version=1.1&authorization_endpoint=…`) and the signing keys
//! document they point at. Every URL in them is the emulator's own authority, so a client that
//! follows them never leaves the emulator.

use axum::http::StatusCode;
use axum::response::Response;

use crate::Shared;
use crate::entra::{TokenVersion, authority, token_url};
use crate::server::{json, query_param};

/// Answers a GET on the login host if it is one of the discovery documents.
pub(crate) fn handle(shared: &Shared, segs: &[&str], query: Option<&str>) -> Option<Response> {
    Some(match segs {
        ["common", "discovery", "instance"] => instance_discovery(shared, query),
        [tenant, "v2.0", ".well-known", "openid-configuration"] => {
            openid_configuration(shared, tenant, TokenVersion::V2)
        }
        [tenant, ".well-known", "openid-configuration"] => {
            openid_configuration(shared, tenant, TokenVersion::V1)
        }
        [tenant, "discovery", "v2.0", "keys"] | [tenant, "discovery", "keys"] => {
            match known_tenant(shared, tenant) {
                // The emulator's tokens are HMAC-signed with a key it never shares: no public keys.
                Ok(()) => json(StatusCode::OK, &serde_json::json!({"keys": []})),
                Err(r) => *r,
            }
        }
        _ => return None,
    })
}

/// The seeded tenant, or the multi-tenant aliases that resolve to it here.
fn known_tenant(shared: &Shared, tenant: &str) -> Result<(), Box<Response>> {
    if tenant.eq_ignore_ascii_case(&shared.seed.tenant_id)
        || ["common", "organizations"].contains(&tenant)
    {
        return Ok(());
    }
    Err(Box::new(json(
        StatusCode::BAD_REQUEST,
        &serde_json::json!({
            "error": "invalid_tenant",
            "error_description": format!("AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
            "error_codes": [90002],
            "error_uri": format!("{}/error?code=90002", authority(shared)),
        }),
    )))
}

fn openid_configuration(shared: &Shared, tenant: &str, version: TokenVersion) -> Response {
    if let Err(r) = known_tenant(shared, tenant) {
        return *r;
    }
    let base = format!("{}/{}", authority(shared), shared.seed.tenant_id);
    let (oauth, issuer, keys) = match version {
        TokenVersion::V2 => (
            format!("{base}/oauth2/v2.0"),
            format!("{base}/v2.0"),
            format!("{base}/discovery/v2.0/keys"),
        ),
        TokenVersion::V1 => (
            format!("{base}/oauth2"),
            format!("{base}/"),
            format!("{base}/discovery/keys"),
        ),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({
            "token_endpoint": token_url(shared, version),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": keys,
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": issuer,
            "request_uri_parameter_supported": false,
            "authorization_endpoint": format!("{oauth}/authorize"),
            "device_authorization_endpoint": format!("{oauth}/devicecode"),
            "end_session_endpoint": format!("{oauth}/logout"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "tenant_region_scope": "NA",
            "cloud_instance_name": crate::DOMAIN,
            "cloud_graph_host_name": format!("graph.{}", crate::DOMAIN),
            "msgraph_host": format!("graph.{}", crate::DOMAIN),
        }),
    )
}

/// MSAL's instance discovery: a known `authorization_endpoint` (on this login host) gets its tenant's
/// discovery document and the host's aliases; any other host is `invalid_instance`, as Entra answers.
fn instance_discovery(shared: &Shared, query: Option<&str>) -> Response {
    let login = authority(shared);
    let endpoint = query_param(query, "authorization_endpoint").unwrap_or_default();
    let tenant = url::Url::parse(&endpoint).ok().and_then(|u| {
        let same_host = u.host_str().is_some_and(|h| {
            h.eq_ignore_ascii_case(&format!("login.{}", crate::DOMAIN))
                && u.port_or_known_default() == Some(shared.port)
        });
        same_host
            .then(|| u.path_segments()?.next().map(str::to_owned))
            .flatten()
            .filter(|t| !t.is_empty())
    });
    let Some(tenant) = tenant else {
        return json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "error": "invalid_instance",
                "error_description": format!("AADSTS50049: Unknown or invalid instance. The authorization endpoint '{endpoint}' is not served by this emulator ({login})."),
                "error_codes": [50049],
                "error_uri": format!("{login}/error?code=50049"),
            }),
        );
    };
    let host = shared.host_with_port(&format!("login.{}", crate::DOMAIN));
    json(
        StatusCode::OK,
        &serde_json::json!({
            "tenant_discovery_endpoint": format!("{login}/{tenant}/v2.0/.well-known/openid-configuration"),
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": host,
                "preferred_cache": host,
                "aliases": [host],
            }],
        }),
    )
}
