//! The admin API at `admin.emulator.test`: state inspection, the request log and fault injection,
//! so out-of-process tests and the standalone emulator have what `Emulator` offers in process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::fault::Fault;
use crate::server::{error_json, json, read_json};
use crate::{Shared, lock};

pub(crate) async fn handle(shared: Arc<Shared>, req: Request<Body>) -> Response {
    let path = req.uri().path().trim_end_matches('/').to_ascii_lowercase();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET, "/state") => {
            let snap = crate::state::snapshot(&shared);
            json(
                StatusCode::OK,
                &serde_json::to_value(snap).unwrap_or_default(),
            )
        }
        (Method::GET, "/requests") => {
            let reqs = lock(&shared.requests).to_vec();
            json(
                StatusCode::OK,
                &serde_json::to_value(reqs).unwrap_or_default(),
            )
        }
        (Method::DELETE, "/requests") => {
            lock(&shared.requests).clear();
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::GET, "/faults") => {
            let faults = lock(&shared.faults).list();
            json(
                StatusCode::OK,
                &serde_json::to_value(faults).unwrap_or_default(),
            )
        }
        (Method::POST, "/faults") => {
            let body = match read_json(req.into_body()).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let faults: Result<Vec<Fault>, _> = if body.is_array() {
                serde_json::from_value(body)
            } else {
                serde_json::from_value(body).map(|f| vec![f])
            };
            match faults {
                Ok(list) => {
                    let mut set = lock(&shared.faults);
                    for f in list {
                        set.add(f);
                    }
                    StatusCode::NO_CONTENT.into_response()
                }
                Err(e) => error_json(StatusCode::BAD_REQUEST, "InvalidFault", &e.to_string()),
            }
        }
        (Method::DELETE, "/faults") => {
            lock(&shared.faults).clear();
            StatusCode::NO_CONTENT.into_response()
        }
        (Method::PUT, "/token-lifetime") => {
            let body = match read_json(req.into_body()).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            match body.get("seconds").and_then(serde_json::Value::as_u64) {
                Some(secs) => {
                    *lock(&shared.token_lifetime) = std::time::Duration::from_secs(secs);
                    StatusCode::NO_CONTENT.into_response()
                }
                None => error_json(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequest",
                    "Expected {\"seconds\": n}.",
                ),
            }
        }
        _ => error_json(
            StatusCode::NOT_FOUND,
            "NotFound",
            "Admin routes: GET /state, GET|DELETE /requests, GET|POST|DELETE /faults, PUT /token-lifetime.",
        ),
    }
}
