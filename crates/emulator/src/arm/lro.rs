//! ARM long-running operations as App Service runs them: which calls answer at once (200) and which
//! answer 202 with a status resource, and the one status resource both polling headers point at.
//!
//! Azure's swap answers 202 with `Location` and `Azure-AsyncOperation` naming the same status resource
//! under the swapped slot, `<slot resource>/operationresults/{id}` (as azure-arm-rest's logs of real
//! swaps show; the subscription-level `…/sites/{site}/operationResults/{id}` of the spec's
//! `CreateOrUpdateWebAppSlot.json` example answers too). That resource answers 202 `{"status":"InProgress"}` while
//! the operation runs, 200 `{"status":"Succeeded"}` when it is done, and, when it failed, the failure's
//! own HTTP status with `{"status":"Failed","error":{…}}`. Both of Microsoft's pollers then see a
//! failure as one: azure-arm-rest keeps polling on 202 and requires a final 200, azure-core's ARM
//! poller reads `status` and also fails on an error status.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::extract::{Path, State};

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::server::{error_json, json};
use crate::state::{OpStatus, Operation, new_id, now_rfc3339};
use crate::{Shared, lock};

/// A failed long-running operation: the status and error its poll answers with.
#[derive(Debug, Clone)]
pub(crate) struct OpError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
}

impl OpError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
        }
    }

    fn response(&self) -> Response {
        error_json(
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &self.code,
            &self.message,
        )
    }
}

/// The status resource of operation `id` on a slot of `app`: both `Location` and
/// `Azure-AsyncOperation` name `<the slot's resource>/operationresults/{id}`, the shape Azure's swap
/// answers with (azure-arm-rest's debug log of a real swap polls
/// `…/resourceGroups/{rg}/providers/Microsoft.Web/sites/{site}/slots/staging/operationresults/{id}`).
fn status_url(shared: &Shared, app: &str, slot: &str, id: &str, api_version: &str) -> String {
    let resource = lock(&shared.state)
        .apps
        .get(app)
        .map(|a| super::resource_id(a, slot))
        .unwrap_or_default();
    format!(
        "{}{resource}/operationresults/{id}?api-version={api_version}",
        shared.url("management")
    )
}

fn retry_after_secs(shared: &Shared) -> String {
    let d = shared.lro_retry_after;
    // Retry-After carries whole seconds; round up so a sub-second setting still means "soon".
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.to_string()
}

fn insert(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// `Location`, `Azure-AsyncOperation` (the same URL) and `Retry-After` on a 201/202.
pub(crate) fn add_lro_headers(
    shared: &Shared,
    resp: &mut Response,
    (app, slot): (&str, &str),
    id: &str,
    api_version: &str,
) {
    let url = status_url(shared, app, slot, id, api_version);
    insert(resp, header::LOCATION, &url);
    insert(
        resp,
        header::HeaderName::from_static("azure-asyncoperation"),
        &url,
    );
    insert(resp, header::RETRY_AFTER, &retry_after_secs(shared));
}

/// Records an operation that finished at once (a created slot) so its status resource answers.
pub(crate) fn record_done(shared: &Shared, app: &str, op_name: &str) -> String {
    let id = new_id();
    lock(&shared.state).operations.insert(
        id.clone(),
        Operation {
            app: app.to_owned(),
            name: op_name.to_owned(),
            status: OpStatus::Succeeded,
            started: now_rfc3339(),
        },
    );
    id
}

fn conflict(busy_id: &str, busy_name: &str) -> Response {
    error_json(
        StatusCode::CONFLICT,
        "Conflict",
        &format!(
            "Cannot modify this site because another operation is in progress. Details: Id: {busy_id}, OperationName: {busy_name}, CreatedTime: {}, WorkerName: emulator",
            now_rfc3339()
        ),
    )
}

/// The task running an operation's work, with its outcome.
type OpTask = tokio::task::JoinHandle<Result<(), OpError>>;

/// Marks the app busy with a new operation and runs `work` in its own task (so a client hanging up
/// does not abandon it half done, as in Azure). 409 `Conflict` if another operation runs.
fn spawn_operation<F>(
    shared: &Arc<Shared>,
    app: &str,
    op_name: &str,
    work: F,
) -> Result<(String, OpTask), Box<Response>>
where
    F: Future<Output = Result<(), OpError>> + Send + 'static,
{
    let id = new_id();
    {
        let mut state = lock(&shared.state);
        let Some(a) = state.apps.get_mut(app) else {
            return Err(Box::new(error_json(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                &format!("The Resource 'Microsoft.Web/sites/{app}' was not found."),
            )));
        };
        if let Some((busy_id, busy_name)) = &a.busy {
            return Err(Box::new(conflict(busy_id, busy_name)));
        }
        a.busy = Some((id.clone(), op_name.to_owned()));
        state.operations.insert(
            id.clone(),
            Operation {
                app: app.to_owned(),
                name: op_name.to_owned(),
                status: OpStatus::InProgress,
                started: now_rfc3339(),
            },
        );
    }
    let (s2, app2, id2) = (shared.clone(), app.to_owned(), id.clone());
    let task = tokio::spawn(async move {
        let result = work.await;
        let mut state = lock(&s2.state);
        if let Some(op) = state.operations.get_mut(&id2) {
            op.status = match &result {
                Ok(()) => OpStatus::Succeeded,
                Err(e) => OpStatus::Failed {
                    status: e.status,
                    code: e.code.clone(),
                    message: e.message.clone(),
                },
            };
        }
        if let Some(a) = state.apps.get_mut(&app2)
            && a.busy.as_ref().is_some_and(|(b, _)| *b == id2)
        {
            a.busy = None;
        }
        result
    });
    Ok((id, task))
}

/// A long-running operation (swap): 202 with the status resource in `Location` and
/// `Azure-AsyncOperation`, and `Retry-After`; 409 if another operation runs.
pub(crate) fn start_operation<F>(
    shared: &Arc<Shared>,
    api_version: &str,
    (app, slot): (&str, &str),
    op_name: &str,
    work: F,
) -> Response
where
    F: Future<Output = Result<(), OpError>> + Send + 'static,
{
    match spawn_operation(shared, app, op_name, work) {
        Ok((id, _task)) => {
            let mut resp = StatusCode::ACCEPTED.into_response();
            add_lro_headers(shared, &mut resp, (app, slot), &id, api_version);
            resp
        }
        Err(refused) => *refused,
    }
}

/// An operation App Service finishes before it answers (restart, start, stop, applySlotConfig,
/// resetSlotConfig): 200 with an empty body when done, its error status and body when it failed,
/// 409 if another operation runs.
pub(crate) async fn run_operation<F>(
    shared: &Arc<Shared>,
    app: &str,
    op_name: &str,
    work: F,
) -> Response
where
    F: Future<Output = Result<(), OpError>> + Send + 'static,
{
    let task = match spawn_operation(shared, app, op_name, work) {
        Ok((_, task)) => task,
        Err(refused) => return *refused,
    };
    match task.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => e.response(),
        Err(e) => OpError::new(
            500,
            "InternalServerError",
            format!("the operation panicked: {e}"),
        )
        .response(),
    }
}

/// `GET …/sites/{app}/operationResults/{id}`: 202 + `InProgress` while running, 200 + `Succeeded`,
/// or the failure's HTTP status + `Failed` and `error`.
fn operation_status(shared: &Shared, app: &str, id: &str) -> Response {
    let op = lock(&shared.state).operations.get(id).cloned();
    let Some(op) = op.filter(|o| o.app.eq_ignore_ascii_case(app)) else {
        return error_json(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("Operation {id} was not found."),
        );
    };
    let mut body = serde_json::json!({
        "id": id, "name": id, "startTime": op.started, "operationName": op.name,
    });
    let status = match &op.status {
        OpStatus::InProgress => {
            body["status"] = "InProgress".into();
            StatusCode::ACCEPTED
        }
        OpStatus::Succeeded => {
            body["status"] = "Succeeded".into();
            StatusCode::OK
        }
        OpStatus::Failed {
            status,
            code,
            message,
        } => {
            body["status"] = "Failed".into();
            body["error"] = serde_json::json!({"code": code, "message": message});
            StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
    };
    let mut resp = json(status, &body);
    if matches!(op.status, OpStatus::InProgress) {
        insert(&mut resp, header::RETRY_AFTER, &retry_after_secs(shared));
    }
    resp
}

/// Route: `GET <site or slot>/operationresults/{id}`.
pub(super) async fn status_of_resource(ctx: super::route::Ctx) -> Response {
    operation_status(&ctx.shared, &ctx.name, &ctx.param("id"))
}

/// Route: `GET /subscriptions/{sub}/providers/Microsoft.Web/sites/{name}/operationResults/{id}`, the
/// shape of the spec's `CreateOrUpdateWebAppSlot.json` example.
pub(super) async fn status_route(
    State(shared): State<Arc<Shared>>,
    Path(params): Path<HashMap<String, String>>,
) -> Response {
    let param = |k: &str| params.get(k).map_or("", String::as_str);
    operation_status(&shared, &param("name").to_ascii_lowercase(), param("id"))
}
