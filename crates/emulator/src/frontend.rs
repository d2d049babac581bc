//! The apps' front end: a request to a slot's host is routed (on the production host: the routing
//! query, the routing cookie, then `rampUpRules` by their `actionHostName`), answered by App Service's own pages when the slot
//! is stopped, failed or unhealthy, and otherwise proxied to the slot's process.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;

use crate::runtime::InstanceStatus;
use crate::state::{App, PRODUCTION, State};
use crate::{Shared, lock};

fn html(status: StatusCode, title: &str, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p></body></html>"),
    )
        .into_response()
}

const ROUTING_COOKIE: &str = "x-ms-routing-name";

/// Picks the slot a request to the production host goes to: the query parameter forces a side,
/// then the routing cookie, then `rampUpRules` by chance. Returns the slot and whether to set the
/// cookie.
fn route(
    state: &State,
    app: &App,
    query: Option<&str>,
    headers: &HeaderMap,
) -> (String, Option<String>) {
    let forced = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case(ROUTING_COOKIE))
            .map(|(_, v)| v.to_ascii_lowercase())
    });
    let to_slot = |name: &str| -> Option<String> {
        if name == "self" || name == PRODUCTION {
            Some(PRODUCTION.to_owned())
        } else {
            app.slot(name).map(|s| s.name.clone())
        }
    };
    if let Some(name) = forced
        && let Some(slot) = to_slot(&name)
    {
        return (slot, Some(name));
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| k.eq_ignore_ascii_case(ROUTING_COOKIE))
        .map(|(_, v)| v.to_ascii_lowercase());
    if let Some(name) = cookie
        && let Some(slot) = to_slot(&name)
    {
        return (slot, None);
    }
    let _ = state;
    let rules = app
        .slot(PRODUCTION)
        .and_then(|p| p.site_config.get("experiments"))
        .and_then(|e| e.get("rampUpRules"))
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    if rules.is_empty() {
        return (PRODUCTION.to_owned(), None);
    }
    let mut draw = rand::random::<f64>() * 100.0;
    for rule in &rules {
        let pct = rule
            .get("reroutePercentage")
            .and_then(|p| p.as_f64())
            .unwrap_or(0.0);
        // App Service sends the share to the host the rule names (the slot's host as ARM gives it, with or
        // without the port); a rule whose host is no slot of the app routes nothing, whatever its `name`.
        let name = rule
            .get("actionHostName")
            .and_then(|h| h.as_str())
            .map(str::to_ascii_lowercase)
            .and_then(|host| {
                let host = host.split(':').next()?.to_owned();
                app.slots.keys().find(|s| app.hosts(s).app == host).cloned()
            });
        if draw < pct
            && let Some(slot) = name.as_deref().and_then(to_slot)
        {
            return (slot.clone(), Some(slot));
        }
        draw -= pct;
    }
    (PRODUCTION.to_owned(), Some("self".to_owned()))
}

/// Serves a request to an app host by proxying it to the slot's process.
pub(crate) async fn proxy(
    shared: Arc<Shared>,
    app_name: String,
    host_slot: String,
    req: Request<Body>,
) -> Response {
    let started = std::time::Instant::now();
    let name = format!("{} {}", req.method(), req.uri().path());
    let (served_by, resp) = serve(&shared, &app_name, host_slot, req).await;
    // Azure Monitor counts a request for the slot that answered it, routed there or not; a host with
    // no slot behind it answers for no resource.
    if let Some(slot) = served_by {
        let now = time::OffsetDateTime::now_utc();
        let mut metrics = lock(&shared.metrics);
        metrics.record(
            &app_name,
            &slot,
            resp.status().as_u16(),
            started.elapsed(),
            now.unix_timestamp(),
        );
        metrics.keep(crate::metrics::Served {
            app: app_name.clone(),
            slot,
            name,
            status: resp.status().as_u16(),
            elapsed: started.elapsed(),
            at_ms: i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
        });
    }
    resp
}

/// Answers a request to an app host; returns the slot that answered it, if any.
async fn serve(
    shared: &Arc<Shared>,
    app_name: &str,
    host_slot: String,
    req: Request<Body>,
) -> (Option<String>, Response) {
    let (slot_name, set_cookie, instance, unhealthy, stack, functions) = {
        let mut state = lock(&shared.state);
        let (slot_name, set_cookie) = match state.apps.get(app_name) {
            Some(app) if host_slot == PRODUCTION => {
                route(&state, app, req.uri().query(), req.headers())
            }
            _ => (host_slot.clone(), None),
        };
        let (function_app, windows) = state.apps.get(app_name).map_or((false, false), |a| {
            (a.function_app, a.os == crate::seed::AppOs::Windows)
        });
        let Some(slot) = state
            .apps
            .get_mut(app_name)
            .and_then(|a| a.slot_mut(&slot_name))
        else {
            return (
                None,
                html(
                    StatusCode::NOT_FOUND,
                    "404 Web Site not found",
                    "The web app you have attempted to reach is not available.",
                ),
            );
        };
        if slot.stopped {
            return (
                Some(slot_name),
                html(
                    StatusCode::FORBIDDEN,
                    "Error 403 - This web app is stopped.",
                    "The web app you have attempted to reach is currently stopped and does not accept any requests.",
                ),
            );
        }
        // IIS answers every request with the site's app_offline.htm while it is there (Kudu puts
        // one up for the length of a deployment).
        if windows && let Some(page) = crate::iis::offline_page(&slot.content_dir) {
            return (
                Some(slot_name),
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [(header::CONTENT_TYPE, "text/html")],
                    page,
                )
                    .into_response(),
            );
        }
        slot.requests_served += 1;
        let unhealthy = slot.forced_unhealthy
            | lock(&shared.faults).app_request_unhealthy(app_name, &slot_name, req.uri().path());
        let stack = crate::stack::stack_of(&slot.site_config);
        let content = slot.content_dir.clone();
        let keys = slot.host_keys.clone();
        let functions = function_app.then_some((content, keys));
        (
            slot_name,
            set_cookie,
            slot.instance.clone(),
            unhealthy,
            stack,
            functions,
        )
    };
    let resp = if unhealthy {
        html(
            StatusCode::INTERNAL_SERVER_ERROR,
            "500 Internal Server Error",
            "The app is unhealthy (injected fault).",
        )
    } else {
        match instance {
            None => html(
                StatusCode::SERVICE_UNAVAILABLE,
                ":( Application Error",
                "The app is not running.",
            ),
            Some(instance) => match instance.wait_started(shared.app_start_timeout).await {
                // A function app's requests pass the Functions host first: its root page, the
                // functions' routes and their keys.
                status @ (InstanceStatus::Ready | InstanceStatus::DefaultPage)
                    if let Some((content, keys)) = &functions =>
                {
                    match crate::functions_host::route(
                        content,
                        keys.as_ref(),
                        req.method(),
                        req.uri().path(),
                        req.uri().query(),
                        req.headers(),
                    ) {
                        crate::functions_host::Routed::Answer(resp) => resp,
                        crate::functions_host::Routed::Forward
                            if status == InstanceStatus::Ready =>
                        {
                            forward(shared, instance.port, req).await
                        }
                        crate::functions_host::Routed::Forward => {
                            StatusCode::NOT_FOUND.into_response()
                        }
                    }
                }
                InstanceStatus::Ready => forward(shared, instance.port, req).await,
                InstanceStatus::DefaultPage => (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    crate::stack::default_page(stack),
                )
                    .into_response(),
                InstanceStatus::Starting | InstanceStatus::Failed(_) => html(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ":( Application Error",
                    "If you are the application administrator, you can access the diagnostic resources.",
                ),
            },
        }
    };
    (Some(slot_name), with_cookie(resp, set_cookie))
}

fn with_cookie(mut resp: Response, set_cookie: Option<String>) -> Response {
    if let Some(value) = set_cookie
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{ROUTING_COOKIE}={value}; Path=/; Max-Age=3600; HttpOnly"
        ))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

const HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
];

async fn forward(shared: &Shared, port: u16, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let url = format!("http://127.0.0.1:{port}{path}");
    let mut builder = shared.http.request(parts.method.clone(), &url);
    for (k, v) in &parts.headers {
        if !HOP_HEADERS.contains(&k.as_str()) {
            builder = builder.header(k, v);
        }
    }
    if let Some(h) = parts.headers.get(header::HOST) {
        builder = builder.header("x-forwarded-host", h);
    }
    builder = builder.header("x-forwarded-proto", "https");
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    builder = match length {
        Some(0) => builder,
        // Small bodies are sent with a length, because simple app servers (Python's http.server)
        // do not read chunked request bodies.
        Some(n) if n <= 16 * 1024 * 1024 => {
            match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
                Ok(bytes) => builder.body(bytes),
                Err(_) => {
                    return html(
                        StatusCode::BAD_REQUEST,
                        "400 Bad Request",
                        "The request body could not be read.",
                    );
                }
            }
        }
        _ if parts.headers.contains_key(header::TRANSFER_ENCODING) || length.is_some() => {
            builder.body(reqwest::Body::wrap_stream(body.into_data_stream()))
        }
        _ => builder,
    };
    match builder.send().await {
        Ok(resp) => {
            let mut out = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                if !HOP_HEADERS.contains(&k.as_str()) || k == header::CONTENT_LENGTH {
                    out = out.header(k, v);
                }
            }
            let stream = resp.bytes_stream().map_err(std::io::Error::other);
            out.body(Body::from_stream(stream)).unwrap_or_else(|_| {
                html(
                    StatusCode::BAD_GATEWAY,
                    "502 Bad Gateway",
                    "Invalid response from the app.",
                )
            })
        }
        Err(_) => html(
            StatusCode::BAD_GATEWAY,
            "502 - Web server received an invalid response while acting as a gateway or proxy server.",
            "The app did not answer.",
        ),
    }
}
