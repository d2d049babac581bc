//! Identity: the Entra ID token endpoints (v2 with `scope`, v1 with `resource`; client secret and
//! client assertion) with the discovery documents MSAL reads first (`crate::discovery`), the Azure
//! Pipelines OIDC endpoint, the App Service–style managed identity endpoint, and the bearer-token
//! check the other services use.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use axum::response::Response;

use crate::cert::AssertionRejection;
use crate::seed::ConnectionKind;
use crate::server::{json, query_param};
use crate::state::{new_id, now_unix};
use crate::token::{Claims, CredentialKind, same_audience};
use crate::{ARM_AUDIENCE, LOGS_AUDIENCE, Shared, VAULT_AUDIENCE, lock};

/// Audience of client assertions issued by the Pipelines OIDC endpoint.
const EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

fn oidc_issuer(shared: &Shared) -> String {
    format!("{}/{}", shared.url("pipelines"), shared.seed.organization)
}

pub(crate) fn authority(shared: &Shared) -> String {
    shared.url("login")
}

/// Maps a requested resource to the audience the emulator issues tokens for. Key Vault's challenge
/// names `https://vault.emulator.test:<port>` (so the SDKs' challenge check, which compares host and
/// port, passes); a token for it is a Key Vault token like one for the port-less audience.
fn known_audience(shared: &Shared, resource: &str) -> Option<&'static str> {
    [ARM_AUDIENCE, VAULT_AUDIENCE, LOGS_AUDIENCE]
        .into_iter()
        .find(|a| {
            same_audience(a, resource)
                || same_audience(
                    &format!("{}:{}", a.trim_end_matches('/'), shared.port),
                    resource,
                )
        })
}

/// Which token endpoint a request came to: v2 takes `scope`, v1 takes `resource` and answers with
/// v1's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenVersion {
    V1,
    V2,
}

fn issue(shared: &Shared, aud: &str, appid: &str) -> (String, i64) {
    let lifetime = lock(&shared.token_lifetime).as_secs();
    let lifetime = i64::try_from(lifetime).unwrap_or(i64::MAX / 2);
    let now = now_unix();
    let claims = Claims {
        aud: aud.to_owned(),
        iss: format!("{}/{}/v2.0", authority(shared), shared.seed.tenant_id),
        sub: appid.to_owned(),
        tid: Some(shared.seed.tenant_id.clone()),
        appid: Some(appid.to_owned()),
        iat: now,
        nbf: now,
        exp: now + lifetime,
        scid: None,
    };
    (
        shared.key.issue(&claims, CredentialKind::AccessToken),
        lifetime,
    )
}

/// Entra's error body for the token endpoint.
fn aad_error(
    shared: &Shared,
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
) -> Response {
    let ts = time::OffsetDateTime::now_utc();
    let timestamp = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        ts.year(),
        u8::from(ts.month()),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second()
    );
    let trace = uuid::Uuid::new_v4().to_string();
    let correlation = uuid::Uuid::new_v4().to_string();
    json(
        status,
        &serde_json::json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("{}/error?code={code}", authority(shared)),
        }),
    )
}

/// Everything served on the login host: the token endpoints and the discovery documents.
pub(crate) async fn token_endpoint(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let segs: Vec<String> = req
        .uri()
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let version = match segs.as_slice() {
        [_, "oauth2", "v2.0", "token"] => TokenVersion::V2,
        [_, "oauth2", "token"] => TokenVersion::V1,
        _ => {
            if req.method() == Method::GET
                && let Some(resp) = crate::discovery::handle(&shared, &segs, req.uri().query())
            {
                return resp;
            }
            return aad_error(
                &shared,
                StatusCode::NOT_FOUND,
                "invalid_request",
                900_023,
                "The requested endpoint does not exist in the emulator.",
            );
        }
    };
    if req.method() != Method::POST {
        return aad_error(
            &shared,
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            900_561,
            "The endpoint only accepts POST requests.",
        );
    }
    let tenant = segs[0].to_owned();
    token(shared, req, tenant, version).await
}

async fn token(
    shared: Arc<Shared>,
    req: Request<Body>,
    tenant: String,
    version: TokenVersion,
) -> Response {
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), 1024 * 1024).await else {
        return aad_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body could not be read.",
        );
    };
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&bytes).into_owned().collect();
    if !tenant.eq_ignore_ascii_case(&shared.seed.tenant_id) {
        return aad_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return aad_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            "The app requested an unsupported grant type. Only 'client_credentials' is emulated.",
        );
    }
    let Some(client_id) = form.get("client_id").filter(|c| !c.is_empty()) else {
        return aad_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            "The request body must contain the following parameter: 'client_id'.",
        );
    };
    let wanted = match version {
        TokenVersion::V2 => "scope",
        TokenVersion::V1 => "resource",
    };
    let Some(requested) = form.get(wanted).filter(|s| !s.is_empty()) else {
        return aad_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            &format!("The request body must contain the following parameter: '{wanted}'."),
        );
    };
    let resource = match version {
        TokenVersion::V2 => requested
            .split_whitespace()
            .find_map(|s| s.strip_suffix("/.default"))
            .unwrap_or(requested.as_str()),
        TokenVersion::V1 => requested.as_str(),
    };
    let Some(aud) = known_audience(&shared, resource) else {
        return aad_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500_011,
            &format!(
                "The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                shared.seed.tenant_id
            ),
        );
    };
    let Some(client) = shared
        .seed
        .clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
    else {
        return aad_error(
            &shared,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                shared.seed.tenant_id
            ),
        );
    };
    if let Some(secret) = form.get("client_secret") {
        let ok = client.secret.as_ref().is_some_and(|s| s.expose() == secret);
        if !ok {
            return aad_error(
                &shared,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
                ),
            );
        }
    } else if let Some(assertion) = form.get("client_assertion")
        && crate::cert::is_certificate_signed(assertion)
    {
        if let Some(refusal) = check_certificate_assertion(&shared, client_id, assertion) {
            return refusal;
        }
    } else if let Some(assertion) = form.get("client_assertion") {
        let Ok(claims) = shared.key.verify(assertion) else {
            return aad_error(
                &shared,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                50_027,
                "JWT token is invalid or malformed.",
            );
        };
        if claims.iss != oidc_issuer(&shared) || !same_audience(&claims.aud, EXCHANGE_AUDIENCE) {
            return aad_error(
                &shared,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700_211,
                &format!(
                    "No matching federated identity record found for presented assertion issuer '{}'.",
                    claims.iss
                ),
            );
        }
        if claims.exp <= now_unix() {
            return aad_error(
                &shared,
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                700_024,
                "Client assertion is not within its valid time range.",
            );
        }
        let matches = shared.seed.service_connections.iter().any(|sc| {
            sc.kind == ConnectionKind::WorkloadIdentityFederation
                && sc.client_id.eq_ignore_ascii_case(client_id)
                && claims.scid.as_deref() == Some(sc.id.as_str())
        });
        if !matches {
            return aad_error(
                &shared,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                700_213,
                &format!(
                    "No matching federated identity record found for presented assertion subject '{}'.",
                    claims.sub
                ),
            );
        }
    } else {
        return aad_error(
            &shared,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        );
    }
    let (token, lifetime) = issue(&shared, aud, &client.client_id);
    let body = match version {
        TokenVersion::V2 => serde_json::json!({
            "token_type": "Bearer",
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": token,
        }),
        // v1 answers with strings, the absolute expiry and the resource as asked.
        TokenVersion::V1 => {
            let now = now_unix();
            serde_json::json!({
                "token_type": "Bearer",
                "expires_in": lifetime.to_string(),
                "ext_expires_in": lifetime.to_string(),
                "expires_on": (now + lifetime).to_string(),
                "not_before": now.to_string(),
                "resource": resource,
                "access_token": token,
            })
        }
    };
    json(StatusCode::OK, &body)
}

/// Checks an assertion signed with a client's certificate; `Some` is Entra's answer to a bad one.
fn check_certificate_assertion(
    shared: &Shared,
    client_id: &str,
    assertion: &str,
) -> Option<Response> {
    // Entra accepts an assertion addressed to either token endpoint of the tenant.
    let endpoints = [TokenVersion::V2, TokenVersion::V1].map(|v| token_url(shared, v));
    let token_endpoint = &endpoints[0];
    let want = crate::cert::Expectation {
        client_id,
        token_endpoints: &endpoints,
        now: now_unix(),
    };
    let rejection = crate::cert::verify(&shared.client_certificates, assertion, &want).err()?;
    let unauthorized = |code: u32, description: &str| {
        aad_error(
            shared,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            description,
        )
    };
    Some(match rejection {
        AssertionRejection::Malformed => unauthorized(50_027, "JWT token is invalid or malformed."),
        AssertionRejection::UnknownKey { thumbprint } => unauthorized(
            700_027,
            &format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}', Configured keys for app Id '{client_id}' are listed under Certificates & secrets.]"
            ),
        ),
        AssertionRejection::BadSignature => {
            unauthorized(700_027, "Client assertion failed signature validation.")
        }
        AssertionRejection::WrongAudience { aud } => unauthorized(
            50_013,
            &format!(
                "Assertion audience claim does not match the required value. The audience in the assertion was '{aud}' and the expected audience is '{token_endpoint}'."
            ),
        ),
        AssertionRejection::WrongSubject => unauthorized(
            50_027,
            &format!(
                "JWT token is invalid or malformed: the 'iss' and 'sub' claims of a client assertion must both be the client ID '{client_id}'."
            ),
        ),
        AssertionRejection::OutsideValidity { nbf, exp } => unauthorized(
            700_024,
            &format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                fmt_unix(now_unix()),
                fmt_unix(nbf),
                fmt_unix(exp)
            ),
        ),
    })
}

fn ado_error(status: StatusCode, message: &str) -> Response {
    json(
        status,
        &serde_json::json!({
            "$id": "1",
            "innerException": null,
            "message": message,
            "typeName": "Microsoft.TeamFoundation.DistributedTask.WebApi.TaskOrchestrationPlanSecurityException, Microsoft.TeamFoundation.DistributedTask.WebApi",
            "typeKey": "TaskOrchestrationPlanSecurityException",
            "errorCode": 0,
            "eventId": 3000
        }),
    )
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The Azure DevOps location ID of the job OIDC token resource (`createOidcToken`).
const OIDC_TOKEN_LOCATION: &str = "69a319f4-28c1-4bfd-93e6-ea0ff5c6f1a2";

/// `OPTIONS {collection}/_apis[/distributedtask]`: the resource locations azure-devops-node-api
/// looks up before it builds a request URL (azure-arm-rest's workload identity path). Only the job
/// OIDC token resource is emulated, so it is the only location listed.
fn locations() -> Response {
    json(
        StatusCode::OK,
        &serde_json::json!({
            "count": 1,
            "value": [{
                "id": OIDC_TOKEN_LOCATION,
                "area": "distributedtask",
                "resourceName": "oidctoken",
                "routeTemplate": "{scopeIdentifier}/_apis/distributedtask/hubs/{hubName}/plans/{planId}/jobs/{jobId}/{resource}",
                "resourceVersion": 1,
                "minVersion": "7.1",
                "maxVersion": "7.2",
                "releasedVersion": "0.0",
            }],
        }),
    )
}

pub(crate) async fn oidc_endpoint(shared: Arc<Shared>, req: Request<Body>) -> Response {
    if req.method() == Method::OPTIONS {
        let path = req.uri().path().to_ascii_lowercase();
        let path = path.trim_end_matches('/');
        if path.ends_with("/_apis") || path.ends_with("/_apis/distributedtask") {
            return locations();
        }
    }
    if !req
        .uri()
        .path()
        .to_ascii_lowercase()
        .trim_end_matches('/')
        .ends_with("/oidctoken")
    {
        return ado_error(
            StatusCode::NOT_FOUND,
            "The requested resource does not exist.",
        );
    }
    if req.method() != Method::POST {
        return ado_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "The requested resource does not support this HTTP method.",
        );
    }
    let token_ok =
        bearer(req.headers()).is_some_and(|t| t == shared.seed.system_access_token.expose());
    if !token_ok {
        return ado_error(
            StatusCode::UNAUTHORIZED,
            "TF400813: The user is not authorized to access this resource.",
        );
    }
    // Azure DevOps takes the api-version from the query or, as azure-devops-node-api sends it, from
    // the Accept header (`application/json;api-version=7.2-preview.1`).
    let version_in_accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("api-version="));
    if query_param(req.uri().query(), "api-version").is_none() && !version_in_accept {
        return ado_error(
            StatusCode::BAD_REQUEST,
            "No api-version was supplied for the POST request. Supply an api-version, for example 7.1.",
        );
    }
    let Some(sc_id) = query_param(req.uri().query(), "serviceConnectionId") else {
        return ado_error(
            StatusCode::BAD_REQUEST,
            "The serviceConnectionId parameter is required.",
        );
    };
    let Some(sc) = shared
        .seed
        .service_connections
        .iter()
        .find(|sc| sc.id.eq_ignore_ascii_case(&sc_id))
    else {
        return ado_error(
            StatusCode::NOT_FOUND,
            &format!(
                "Service connection {sc_id} was not found or is not authorized for this pipeline."
            ),
        );
    };
    if sc.kind != ConnectionKind::WorkloadIdentityFederation {
        return ado_error(
            StatusCode::BAD_REQUEST,
            &format!("Service connection {sc_id} does not use workload identity federation."),
        );
    }
    let lifetime = i64::try_from(lock(&shared.oidc_token_lifetime).as_secs()).unwrap_or(600);
    let now = now_unix();
    let claims = Claims {
        aud: EXCHANGE_AUDIENCE.to_owned(),
        iss: oidc_issuer(&shared),
        sub: format!(
            "sc://{}/{}/{}",
            shared.seed.organization, shared.seed.project, sc.name
        ),
        tid: None,
        appid: None,
        iat: now,
        nbf: now,
        exp: now + lifetime,
        scid: Some(sc.id.clone()),
    };
    json(
        StatusCode::OK,
        &serde_json::json!({"oidcToken": shared.key.issue(&claims, CredentialKind::OidcToken)}),
    )
}

pub(crate) async fn identity_endpoint(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let err = |status: StatusCode, message: &str| {
        json(
            status,
            &serde_json::json!({"statusCode": status.as_u16(), "message": message, "correlationId": new_id()}),
        )
    };
    if !req.uri().path().eq_ignore_ascii_case("/msi/token") {
        return err(StatusCode::NOT_FOUND, "Not found.");
    }
    let header_ok = req
        .headers()
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == shared.identity_header.expose());
    if !header_ok {
        return err(
            StatusCode::UNAUTHORIZED,
            "The X-IDENTITY-HEADER header is missing or wrong.",
        );
    }
    let q = req.uri().query();
    if query_param(q, "api-version").is_none() {
        return err(StatusCode::BAD_REQUEST, "api-version is required.");
    }
    let Some(resource) = query_param(q, "resource") else {
        return err(StatusCode::BAD_REQUEST, "resource is required.");
    };
    let Some(aud) = known_audience(&shared, &resource) else {
        return err(
            StatusCode::BAD_REQUEST,
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant."
            ),
        );
    };
    let wanted = query_param(q, "client_id");
    let identity = match &wanted {
        Some(id) => shared
            .seed
            .managed_identities
            .iter()
            .find(|m| m.client_id.eq_ignore_ascii_case(id)),
        None => shared.seed.managed_identities.first(),
    };
    let Some(identity) = identity else {
        return err(
            StatusCode::BAD_REQUEST,
            "No managed identity matches the request.",
        );
    };
    let (token, lifetime) = issue(&shared, aud, &identity.client_id);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "access_token": token,
            "expires_on": (now_unix() + lifetime).to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }),
    )
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    Invalid,
    Expired { exp: i64 },
    WrongAudience { aud: String },
}

/// Checks the `Authorization: Bearer` token: signature, tenant, expiry and audience.
pub(crate) fn check_bearer(
    shared: &Shared,
    headers: &HeaderMap,
    audience: &str,
) -> Result<Claims, AuthFailure> {
    let token = bearer(headers).ok_or(AuthFailure::Missing)?;
    let claims = shared
        .key
        .verify(&token)
        .map_err(|_| AuthFailure::Invalid)?;
    if claims.tid.as_deref() != Some(shared.seed.tenant_id.as_str()) {
        return Err(AuthFailure::Invalid);
    }
    if claims.exp <= now_unix() {
        return Err(AuthFailure::Expired { exp: claims.exp });
    }
    if !same_audience(&claims.aud, audience) {
        return Err(AuthFailure::WrongAudience { aud: claims.aud });
    }
    Ok(claims)
}

/// The tenant's token endpoint of one version.
pub(crate) fn token_url(shared: &Shared, version: TokenVersion) -> String {
    let path = match version {
        TokenVersion::V2 => "oauth2/v2.0/token",
        TokenVersion::V1 => "oauth2/token",
    };
    format!("{}/{}/{path}", authority(shared), shared.seed.tenant_id)
}

/// The `authorization_uri`/`authorization` value of challenges: the tenant's authority.
pub(crate) fn tenant_authority(shared: &Shared) -> String {
    format!("{}/{}", authority(shared), shared.seed.tenant_id)
}

pub(crate) fn fmt_unix(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
