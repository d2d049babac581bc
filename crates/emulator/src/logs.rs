//! Azure Monitor's Log Analytics query API (`POST /v1/workspaces/{id}/query`, and its `GET` with
//! `?query=`), answering from what the apps actually served: every request a slot's front end
//! answered is a row of `AppRequests`, Application Insights' workspace table, with `TimeGenerated`,
//! `Name` (`GET /path`), `Success` (status below 400, or 401), `ResultCode`, `DurationMs` and
//! `AppRoleName` (the app's name for production, `<app>-<slot>` for a slot, the role name App
//! Service's Application Insights agent derives from the slot's host name). Every workspace ID holds
//! every app's requests: the emulator stands for one workspace all its apps send to.
//!
//! The query runs in the KQL subset of `crate::kql`; a query outside it is refused with Log
//! Analytics' error shape (400 `BadArgumentError` whose `innererror` says `SyntaxError` or
//! `SemanticError`), never answered approximately. The token must be one Entra issued for the
//! API's audience (`crate::LOGS_AUDIENCE`).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::Response;

use crate::entra::{AuthFailure, check_bearer};
use crate::kql::{self, Table, Value};
use crate::server::{json, query_param};
use crate::state::PRODUCTION;
use crate::{LOGS_AUDIENCE, Shared, lock};

/// The largest request body read (a query and its time span).
const BODY_LIMIT: usize = 64 * 1024;

/// Log Analytics' error: `{"error": {"message", "code", "correlationId", "innererror"?}}`.
fn error(
    status: StatusCode,
    code: &str,
    message: &str,
    inner: Option<&kql::QueryError>,
) -> Response {
    let mut body = serde_json::json!({
        "message": message,
        "code": code,
        "correlationId": uuid::Uuid::new_v4().to_string(),
    });
    if let Some(inner) = inner {
        body["innererror"] = serde_json::json!({"code": inner.code, "message": inner.message});
    }
    json(status, &serde_json::json!({ "error": body }))
}

fn is_guid(text: &str) -> bool {
    uuid::Uuid::try_parse(text).is_ok()
}

/// The role name Application Insights gives a slot's requests.
pub(crate) fn role_name(app: &str, slot: &str) -> String {
    if slot == PRODUCTION {
        app.to_owned()
    } else {
        format!("{app}-{slot}")
    }
}

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response {
    if let Err(failure) = check_bearer(&shared, req.headers(), LOGS_AUDIENCE) {
        let message = match failure {
            AuthFailure::Missing => "Valid authentication was not provided".to_owned(),
            AuthFailure::Expired { .. } => "The provided authentication has expired".to_owned(),
            AuthFailure::WrongAudience { aud } => {
                format!(
                    "The audience of the token is '{aud}'; this API takes tokens for {LOGS_AUDIENCE}"
                )
            }
            AuthFailure::Invalid => "The provided authentication is not valid".to_owned(),
        };
        return error(
            StatusCode::UNAUTHORIZED,
            "AuthorizationRequiredError",
            &message,
            None,
        );
    }
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let Some(workspace) = path
        .strip_prefix("/v1/workspaces/")
        .and_then(|rest| rest.strip_suffix("/query"))
        .map(str::to_owned)
    else {
        return error(
            StatusCode::NOT_FOUND,
            "PathNotFoundError",
            &format!("The requested path '{path}' does not exist"),
            None,
        );
    };
    if !is_guid(&workspace) {
        return error(
            StatusCode::BAD_REQUEST,
            "BadArgumentError",
            &format!("The workspace ID '{workspace}' is not a GUID"),
            None,
        );
    }
    let (query, timespan) = match *req.method() {
        Method::GET => {
            let q = req.uri().query();
            (query_param(q, "query"), query_param(q, "timespan"))
        }
        Method::POST => {
            let Ok(bytes) = axum::body::to_bytes(req.into_body(), BODY_LIMIT).await else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadArgumentError",
                    "The request body could not be read",
                    None,
                );
            };
            let Ok(body) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "BadArgumentError",
                    "The request body is not JSON",
                    None,
                );
            };
            (
                body["query"].as_str().map(str::to_owned),
                body["timespan"].as_str().map(str::to_owned),
            )
        }
        _ => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowedError",
                "Use GET or POST",
                None,
            );
        }
    };
    let Some(query) = query.filter(|q| !q.trim().is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadArgumentError",
            "The request had some invalid properties: a query is required",
            None,
        );
    };
    let now = time::OffsetDateTime::now_utc();
    let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
    // A span without one covers everything kept; one that ends now holds this second's requests.
    let (from_ms, to_ms) = match timespan {
        None => (i64::MIN, i64::MAX),
        Some(span) => match crate::arm::metrics::timespan(Some(&span), now.unix_timestamp() + 1) {
            Ok((from, to)) => (from * 1000, to * 1000),
            Err(message) => {
                return error(StatusCode::BAD_REQUEST, "BadArgumentError", &message, None);
            }
        },
    };
    let served = lock(&shared.metrics).served(from_ms, to_ms);
    let source = Table {
        columns: vec![
            ("TimeGenerated".into(), "datetime"),
            ("Name".into(), "string"),
            ("Success".into(), "bool"),
            ("ResultCode".into(), "string"),
            ("DurationMs".into(), "real"),
            ("AppRoleName".into(), "string"),
        ],
        rows: served
            .into_iter()
            .map(|s| {
                vec![
                    Value::Time(s.at_ms),
                    Value::Str(s.name),
                    Value::Bool(s.status < 400 || s.status == 401),
                    Value::Str(s.status.to_string()),
                    Value::Num(s.elapsed.as_secs_f64() * 1000.0),
                    Value::Str(role_name(&s.app, &s.slot)),
                ]
            })
            .collect(),
    };
    match kql::run(&query, source, now_ms) {
        Ok(table) => json(
            StatusCode::OK,
            &serde_json::json!({
                "tables": [{
                    "name": "PrimaryResult",
                    "columns": table.columns.iter().map(|(name, kind)| serde_json::json!({"name": name, "type": kind})).collect::<Vec<_>>(),
                    "rows": table.rows.iter().map(|r| r.iter().map(Value::to_json).collect::<Vec<_>>()).collect::<Vec<_>>(),
                }]
            }),
        ),
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            "BadArgumentError",
            "The request had some invalid properties",
            Some(&e),
        ),
    }
}
