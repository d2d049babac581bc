//! The ARM route table: every emulated operation as one axum route, the site and slot variants of
//! each registered together, and the request context (`Ctx`) the routes' handlers receive once the
//! subscription, resource group, app and slot in the path are known to exist.
//!
//! ARM paths are case-insensitive and clients send trailing or doubled slashes, so the path is put in
//! canonical form before routing: empty segments dropped, the fixed words of the API (`resourceGroups`,
//! `Microsoft.Web`, `slotsswap`, …) lowercased, names kept as sent.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use tower::ServiceExt;

use super::{config, functions, lro, metrics, plans, publishing, sites, subscriptions, swap};
use crate::server::{error_json, read_json};
use crate::state::PRODUCTION;
use crate::{Shared, lock};

/// The fixed words of the routes below: lowercased in a request path before routing.
const WORDS: &[&str] = &[
    "subscriptions",
    "resourcegroups",
    "providers",
    "microsoft.web",
    "microsoft.resources",
    "microsoft.insights",
    "metrics",
    "sites",
    "slots",
    "operationresults",
    "tags",
    "default",
    "config",
    "appsettings",
    "connectionstrings",
    "sitecontainers",
    "host",
    "listkeys",
    "serverfarms",
    "list",
    "slotconfignames",
    "web",
    "metadata",
    "publishingcredentials",
    "basicpublishingcredentialspolicies",
    "publishxml",
    "slotsswap",
    "applyslotconfig",
    "resetslotconfig",
    "slotsdiffs",
    "restart",
    "start",
    "stop",
    "deployments",
    "log",
    "deploymentstatus",
];

/// `/…/sites/{name}`: the production site; every site route also exists under `/slots/{slot}`.
const SITE: &str = "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.web/sites/{name}";

/// The canonical form of an ARM path (see the module comment).
pub(super) fn canonical_path(path: &str) -> String {
    let segments: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let low = s.to_ascii_lowercase();
            if WORDS.contains(&low.as_str()) {
                low
            } else {
                s.to_owned()
            }
        })
        .collect();
    format!("/{}", segments.join("/"))
}

/// Routes a request whose token and api-version were checked.
pub(super) async fn dispatch(shared: Arc<Shared>, mut req: Request) -> Response {
    let path = canonical_path(req.uri().path());
    let uri = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    if let Ok(uri) = uri.parse::<Uri>() {
        *req.uri_mut() = uri;
    }
    let router = ROUTES.clone().with_state(shared);
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

static ROUTES: LazyLock<Router<Arc<Shared>>> = LazyLock::new(routes);

fn routes() -> Router<Arc<Shared>> {
    let mut r = Router::new()
        .route("/subscriptions", get(subscriptions::list_route))
        .route("/subscriptions/{sub}", get(subscriptions::get_route))
        .route(
            "/subscriptions/{sub}/providers/microsoft.web/sites",
            get(subscriptions::sites_route),
        )
        .route(
            "/subscriptions/{sub}/providers/microsoft.web/sites/{name}/operationresults/{id}",
            get(lro::status_route),
        )
        .route(
            "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.web/sites",
            get(sites::list_in_group),
        )
        .route(&format!("{SITE}/slots"), get(sites::list_slots))
        .route(
            "/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.web/serverfarms/{plan}",
            get(plans::get_plan),
        )
        .route(
            SITE,
            get(sites::get_site)
                .put(sites::patch_site)
                .patch(sites::patch_site),
        )
        .route(
            &format!("{SITE}/slots/{{slot}}"),
            get(sites::get_site)
                .put(sites::create_slot)
                .patch(sites::patch_site)
                .delete(sites::delete_slot),
        );
    for prefix in [SITE.to_owned(), format!("{SITE}/slots/{{slot}}")] {
        let at = |rest: &str| format!("{prefix}{rest}");
        r = r
            .route(
                &at("/providers/microsoft.resources/tags/default"),
                get(sites::tags)
                    .put(sites::tags)
                    .patch(sites::tags)
                    .delete(sites::tags),
            )
            .route(
                &at("/providers/microsoft.insights/metrics"),
                get(metrics::list),
            )
            .route(&at("/restart"), post(sites::restart))
            .route(&at("/start"), post(sites::start))
            .route(&at("/stop"), post(sites::stop))
            .route(
                &at("/config/appsettings/list"),
                post(config::list_app_settings),
            )
            .route(
                &at("/config/appsettings"),
                axum::routing::put(config::put_app_settings),
            )
            .route(
                &at("/config/connectionstrings/list"),
                post(config::list_connection_strings),
            )
            .route(
                &at("/config/connectionstrings"),
                axum::routing::put(config::put_connection_strings),
            )
            .route(&at("/sitecontainers"), get(functions::list_containers))
            .route(
                &at("/sitecontainers/{container}"),
                get(functions::container)
                    .put(functions::container)
                    .delete(functions::container),
            )
            .route(
                &at("/host/default/listkeys"),
                post(functions::list_host_keys),
            )
            .route(
                &at("/config/slotconfignames"),
                get(config::slot_config_names).put(config::slot_config_names),
            )
            .route(
                &at("/config/web"),
                get(config::config_web)
                    .put(config::config_web)
                    .patch(config::config_web),
            )
            .route(&at("/config/metadata/list"), post(config::metadata))
            .route(
                &at("/config/metadata"),
                axum::routing::put(config::metadata),
            )
            .route(
                &at("/config/publishingcredentials/list"),
                post(publishing::publishing_credentials),
            )
            .route(
                &at("/basicpublishingcredentialspolicies/{which}"),
                get(publishing::basic_policies).put(publishing::basic_policies),
            )
            .route(&at("/publishxml"), post(publishing::publish_xml))
            .route(&at("/deployments"), get(publishing::deployments))
            .route(
                &at("/deployments/{id}"),
                get(publishing::deployment).put(publishing::deployment),
            )
            .route(
                &at("/deployments/{id}/log"),
                get(publishing::deployment_log),
            )
            .route(
                &at("/deploymentstatus"),
                get(publishing::deployment_statuses),
            )
            .route(
                &at("/deploymentstatus/{id}"),
                get(publishing::deployment_status_one),
            )
            .route(&at("/operationresults/{id}"), get(lro::status_of_resource))
            .route(&at("/slotsswap"), post(swap::slotsswap))
            .route(&at("/applyslotconfig"), post(swap::apply_slot_config))
            .route(&at("/resetslotconfig"), post(swap::reset_slot_config))
            .route(&at("/slotsdiffs"), post(swap::slots_diffs));
    }
    r.fallback(not_emulated)
        .method_not_allowed_fallback(method_not_allowed)
}

async fn not_emulated(req: Request) -> Response {
    error_json(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!(
            "No HTTP resource was found that matches the request URI {} {} (not emulated).",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn method_not_allowed(req: Request) -> Response {
    error_json(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!(
            "The requested resource does not support http method '{}'.",
            req.method()
        ),
    )
}

/// One request to a site or slot route, its app and slot known to exist (a slot PUT may name a
/// slot still to be created), with the JSON body read leniently (empty is `null`).
#[derive(Debug)]
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) method: Method,
    pub(crate) api_version: String,
    /// The app's name, lowercase (the state's key).
    pub(crate) name: String,
    /// The resource group as the path names it.
    pub(crate) rg: String,
    /// The slot, lowercase; `production` on site routes.
    pub(crate) slot: String,
    pub(crate) body: serde_json::Value,
    params: HashMap<String, String>,
}

impl Ctx {
    /// A path parameter of the route (`id`, `which`), empty when the route has none.
    pub(crate) fn param(&self, key: &str) -> String {
        self.params.get(key).cloned().unwrap_or_default()
    }
}

impl FromRequest<Arc<Shared>> for Ctx {
    type Rejection = Response;

    async fn from_request(req: Request, shared: &Arc<Shared>) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Path(mut params) =
            Path::<HashMap<String, String>>::from_request_parts(&mut parts, shared)
                .await
                .map_err(|e| error_json(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()))?;
        let sub = params.remove("sub").unwrap_or_default();
        let rg = params.remove("rg").unwrap_or_default();
        let raw_name = params.remove("name").unwrap_or_default();
        let name = raw_name.to_ascii_lowercase();
        let slot = params
            .remove("slot")
            .map_or_else(|| PRODUCTION.to_owned(), |s| s.to_ascii_lowercase());
        super::check_scope(shared, &sub, &rg).map_err(|r| *r)?;
        let (app_ok, slot_ok) = {
            let state = lock(&shared.state);
            let app = state.apps.get(&name).filter(|a| {
                a.subscription_id.eq_ignore_ascii_case(&sub)
                    && a.resource_group.eq_ignore_ascii_case(&rg)
            });
            (app.is_some(), app.is_some_and(|a| a.slot(&slot).is_some()))
        };
        if !app_ok {
            return Err(super::not_found("Microsoft.Web/sites", &raw_name, &rg));
        }
        // A PUT of a slot creates it; every other route needs the slot to exist.
        let creating = parts.method == Method::PUT
            && parts
                .extensions
                .get::<MatchedPath>()
                .is_some_and(|m| m.as_str().ends_with("/slots/{slot}"));
        if !slot_ok && !creating {
            return Err(super::not_found(
                "Microsoft.Web/sites/slots",
                &format!("{name}/{slot}"),
                &rg,
            ));
        }
        let body = read_json(Body::new(body)).await?;
        let api_version =
            crate::server::query_param(parts.uri.query(), "api-version").unwrap_or_default();
        Ok(Self {
            shared: shared.clone(),
            method: parts.method,
            api_version,
            name,
            rg,
            slot,
            body,
            params,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn paths_are_routed_in_canonical_form() {
        assert_eq!(
            canonical_path(
                "//subscriptions/S/resourceGroups/My-RG/providers/Microsoft.Web/sites/App/slots/Stage/applySlotConfig/"
            ),
            "/subscriptions/S/resourcegroups/My-RG/providers/microsoft.web/sites/App/slots/Stage/applyslotconfig"
        );
        assert_eq!(canonical_path("/"), "/");
    }
}
