//! Publishing routes of a site or slot: publishing credentials, the SCM basic-auth policy, the publish
//! profile, and the deployment history (Kudu's records through ARM) with OneDeploy's status view.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::route::Ctx;
use super::{host_names, not_found, resource_id};
use crate::lock;
use crate::server::{error_json, json};
use crate::state::App;

/// `POST config/publishingcredentials/list`.
pub(super) async fn publishing_credentials(ctx: Ctx) -> Response {
    let Ctx {
        shared, name, slot, ..
    } = ctx;

    let state = lock(&shared.state);
    let app = &state.apps[&name];
    let user = app.publishing_user(&slot);
    let (_, scm) = host_names(&shared, app, &slot);
    json(
        StatusCode::OK,
        &serde_json::json!({
            "id": format!("{}/publishingcredentials/$", resource_id(app, &slot)),
            "name": app.name,
            "type": "Microsoft.Web/sites/publishingcredentials",
            "kind": "app",
            "properties": {
                "name": null,
                "publishingUserName": user,
                "publishingPassword": app.publishing_password.expose(),
                "scmUri": format!("https://{}:{}@{}", user, app.publishing_password.expose(), scm),
            }
        }),
    )
}

/// `GET`/`PUT basicPublishingCredentialsPolicies/{scm|ftp}`.
pub(super) async fn basic_policies(ctx: Ctx) -> Response {
    let which = ctx.param("which").to_ascii_lowercase();
    if which != "scm" && which != "ftp" {
        return not_found(
            "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
            &which,
            &ctx.rg,
        );
    }
    let Ctx {
        shared,
        method,
        name,
        rg,
        slot,
        body,
        ..
    } = ctx;

    let mut state = lock(&shared.state);
    let Some(app) = state.apps.get_mut(&name) else {
        return not_found("Microsoft.Web/sites", &name, &rg);
    };
    if method == Method::PUT && which.as_str() == "scm" {
        match body
            .pointer("/properties/allow")
            .and_then(serde_json::Value::as_bool)
        {
            Some(allow) => app.basic_auth = allow,
            None => {
                return error_json(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "properties.allow is required.",
                );
            }
        }
    }
    json(
        StatusCode::OK,
        &serde_json::json!({
            "id": format!("{}/basicPublishingCredentialsPolicies/{which}", resource_id(app, &slot)),
            "name": which,
            "type": "Microsoft.Web/sites/basicPublishingCredentialsPolicies",
            "properties": {"allow": app.basic_auth},
        }),
    )
}

/// `GET deployments`, newest first.
pub(super) async fn deployments(ctx: Ctx) -> Response {
    let Ctx {
        shared, name, slot, ..
    } = ctx;

    let state = lock(&shared.state);
    deployment_list(&state.apps[&name], &slot, arm_deployment)
}

/// `GET`/`PUT deployments/{id}`.
pub(super) async fn deployment(ctx: Ctx) -> Response {
    let id = ctx.param("id");
    let Ctx {
        shared,
        method,
        name,
        rg,
        slot,
        body,
        ..
    } = ctx;

    let id = id.clone();
    let mut state = lock(&shared.state);
    let Some(app) = state.apps.get_mut(&name) else {
        return not_found("Microsoft.Web/sites", &name, &rg);
    };
    if method == Method::PUT {
        let props = body.get("properties").cloned().unwrap_or_default();
        let site = app.name.clone();
        if let Some(s) = app.slot_mut(&slot) {
            crate::kudu::put_record(s, &site, &id, &props, None);
        }
    }
    let app = &state.apps[&name];
    match app
        .slot(&slot)
        .and_then(|s| s.deployments.iter().find(|d| d.id == id))
    {
        Some(d) => json(StatusCode::OK, &arm_deployment(app, &slot, d)),
        None => not_found("Microsoft.Web/sites/deployments", &id, &rg),
    }
}

/// `GET deploymentStatus`.
pub(super) async fn deployment_statuses(ctx: Ctx) -> Response {
    let Ctx {
        shared, name, slot, ..
    } = ctx;

    let state = lock(&shared.state);
    deployment_list(&state.apps[&name], &slot, deployment_status)
}

/// `GET deploymentStatus/{id}`: 202 while the deployment runs, 200 when complete.
pub(super) async fn deployment_status_one(ctx: Ctx) -> Response {
    let id = ctx.param("id");
    let Ctx {
        shared,
        name,
        rg,
        slot,
        ..
    } = ctx;

    let state = lock(&shared.state);
    let app = &state.apps[&name];
    match app.slot(&slot).and_then(|s| {
        s.deployments
            .iter()
            .find(|d| d.id.eq_ignore_ascii_case(&id))
    }) {
        Some(d) => json(
            if d.complete {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            },
            &deployment_status(app, &slot, d),
        ),
        None => not_found("Microsoft.Web/sites/deploymentStatus", &id, &rg),
    }
}

/// `GET deployments/{id}/log`.
pub(super) async fn deployment_log(ctx: Ctx) -> Response {
    let id = ctx.param("id");
    let Ctx {
        shared,
        name,
        rg,
        slot,
        ..
    } = ctx;

    let state = lock(&shared.state);
    let app = &state.apps[&name];
    match app
        .slot(&slot)
        .and_then(|s| s.deployments.iter().find(|d| d.id == id))
    {
        Some(d) => {
            let value: Vec<serde_json::Value> = d
                .log
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    serde_json::json!({
                        "id": format!("{}/deployments/{}/log/{i}", resource_id(app, &slot), d.id),
                        "name": i.to_string(),
                        "properties": {"message": m, "log_time": d.end_time, "type": 0}
                    })
                })
                .collect();
            json(
                StatusCode::OK,
                &serde_json::json!({"value": value, "nextLink": null}),
            )
        }
        None => not_found("Microsoft.Web/sites/deployments", &id, &rg),
    }
}

fn arm_deployment(app: &App, slot: &str, d: &crate::state::DeploymentRecord) -> serde_json::Value {
    serde_json::json!({
        "id": format!("{}/deployments/{}", resource_id(app, slot), d.id),
        "name": format!("{}/{}", app.name, d.id),
        "type": "Microsoft.Web/sites/deployments",
        "properties": {
            "status": d.status,
            "message": d.message,
            "author": d.author,
            "deployer": d.deployer,
            "author_email": d.author_email,
            "start_time": d.start_time,
            "end_time": d.end_time,
            "active": d.active,
            "details": d.details,
        }
    })
}

/// OneDeploy's `CsmDeploymentStatus` view of a Kudu deployment record.
fn deployment_status(
    app: &App,
    slot: &str,
    d: &crate::state::DeploymentRecord,
) -> serde_json::Value {
    let (status, in_progress, ok, failed) = match d.status {
        4 => ("RuntimeSuccessful", 0, 1, 0),
        3 => ("BuildFailed", 0, 0, 1),
        2 => ("RuntimeStarting", 1, 0, 0),
        1 => ("BuildInProgress", 1, 0, 0),
        _ => ("BuildRequestReceived", 1, 0, 0),
    };
    serde_json::json!({
        "id": format!("{}/deploymentStatus/{}", resource_id(app, slot), d.id),
        "name": d.id,
        "type": "Microsoft.Web/sites/deploymentStatus",
        "properties": {
            "deploymentId": d.id,
            "status": status,
            "numberOfInstancesInProgress": in_progress,
            "numberOfInstancesSuccessful": ok,
            "numberOfInstancesFailed": failed,
            "failedInstancesLogs": [],
            "errors": if d.status == 3 { serde_json::json!([{"extendedCode": "BuildFailed", "message": d.status_text}]) } else { serde_json::Value::Null },
        }
    })
}

/// A slot's deployments, newest first, as an ARM list (`{value, nextLink}`) in the shape `render` gives.
fn deployment_list(
    app: &App,
    slot: &str,
    render: fn(&App, &str, &crate::state::DeploymentRecord) -> serde_json::Value,
) -> Response {
    let value: Vec<serde_json::Value> = app
        .slot(slot)
        .map(|s| {
            s.deployments
                .iter()
                .rev()
                .map(|d| render(app, slot, d))
                .collect()
        })
        .unwrap_or_default();
    json(
        StatusCode::OK,
        &serde_json::json!({"value": value, "nextLink": null}),
    )
}

fn xml_attr(value: &str) -> String {
    value
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// `POST publishxml`: the slot's publish profile (Web Deploy, FTP and Zip Deploy entries, as App
/// Service lists them), with the publishing credentials.
pub(super) async fn publish_xml(ctx: Ctx) -> Response {
    let Ctx {
        shared, name, slot, ..
    } = ctx;
    let (name, slot) = (name.as_str(), slot.as_str());
    let shared = &*shared;
    let state = lock(&shared.state);
    let Some(app) = state.apps.get(name) else {
        return not_found("Microsoft.Web/sites", name, "");
    };
    let (host, scm) = host_names(shared, app, slot);
    let user = xml_attr(&app.publishing_user(slot));
    let password = xml_attr(app.publishing_password.expose());
    let site = xml_attr(&app.name);
    let label = if slot == crate::state::PRODUCTION {
        site.clone()
    } else {
        format!("{site}__{}", xml_attr(slot))
    };
    let profile = |title: &str, method: &str, url: &str, extra: &str| {
        format!(
            "<publishProfile profileName=\"{label} - {title}\" publishMethod=\"{method}\" publishUrl=\"{url}\"{extra} userName=\"{user}\" userPWD=\"{password}\" destinationAppUrl=\"https://{host}\" SQLServerDBConnectionString=\"\" mySQLDBConnectionString=\"\" hostingProviderForumLink=\"\" controlPanelLink=\"\" webSystem=\"WebSites\"><databases /></publishProfile>"
        )
    };
    let body = format!(
        "<publishData>{}{}{}</publishData>",
        profile(
            "Web Deploy",
            "MSDeploy",
            &scm,
            &format!(" msdeploySite=\"{label}\"")
        ),
        profile(
            "FTP",
            "FTP",
            &format!("ftps://{scm}/site/wwwroot"),
            " ftpPassiveMode=\"True\""
        ),
        profile("Zip Deploy", "ZipDeploy", &scm, ""),
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/xml")],
        body,
    )
        .into_response()
}
