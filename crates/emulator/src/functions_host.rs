//! The Azure Functions host of a function app's slot, as far as a release sees it: it starts a custom
//! handler (`host.json` `customHandler.description`) with `FUNCTIONS_CUSTOMHANDLER_PORT`, answers its
//! root with the host's own page, and forwards a request to `/<routePrefix>/<function>` to the handler
//! when an HTTP-triggered `function.json` names it and the request carries the key its `authLevel`
//! asks for. Language workers (Python, Node, .NET …) are not run: a slot whose `FUNCTIONS_WORKER_RUNTIME`
//! is not `custom` starts a process that says so and exits, so a gate sees a crash, not a default page.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::platform::HostKeys;
use crate::stack::Startup;

/// `host.json` larger than this is not read (no real one is).
const JSON_LIMIT: u64 = 256 * 1024;

fn read_json(path: &Path) -> Option<serde_json::Value> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.len() > JSON_LIMIT {
        return None;
    }
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command that runs the slot's functions (`sh -c`), or none when the package has no `host.json`:
/// the host then runs with no function and serves only its root page.
pub(crate) fn startup(dir: &Path, settings: &BTreeMap<String, String>) -> Startup {
    let mut s = Startup::default();
    let Some(host) = read_json(&dir.join("host.json")) else {
        s.lines
            .push("No job functions found: the site has no host.json at its root.".into());
        return s;
    };
    let runtime = settings
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("FUNCTIONS_WORKER_RUNTIME"))
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let handler = &host["customHandler"];
    let fail = |why: String| Some(format!("echo {} >&2; exit 1", sh_quote(&why)));
    if runtime != "custom" {
        s.command = fail(format!(
            "The emulator's Functions host runs custom handlers only; FUNCTIONS_WORKER_RUNTIME is '{runtime}'."
        ));
        return s;
    }
    let Some(exe) = handler["description"]["defaultExecutablePath"]
        .as_str()
        .filter(|e| !e.trim().is_empty())
    else {
        s.command = fail(
            "A host error has occurred: customHandler.description.defaultExecutablePath is required when FUNCTIONS_WORKER_RUNTIME is 'custom'.".into(),
        );
        return s;
    };
    if handler["enableForwardingHttpRequest"].as_bool() != Some(true) {
        s.command = fail(
            "The emulator's Functions host forwards HTTP requests only (customHandler.enableForwardingHttpRequest: true); invocation payloads are not emulated.".into(),
        );
        return s;
    }
    let working = handler["description"]["workingDirectory"]
        .as_str()
        .filter(|w| !w.is_empty())
        .map_or_else(|| dir.to_path_buf(), |w| dir.join(w));
    // The host looks for the executable in the working folder first, then on PATH.
    let local: PathBuf = working.join(exe);
    let exe = if local.is_file() {
        local.display().to_string()
    } else {
        exe.to_owned()
    };
    let args: Vec<String> = handler["description"]["arguments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str())
        .map(sh_quote)
        .collect();
    s.lines.push(format!(
        "Starting the custom handler: {exe} (FUNCTIONS_CUSTOMHANDLER_PORT)"
    ));
    s.command = Some(format!(
        "cd {} && FUNCTIONS_CUSTOMHANDLER_PORT=\"$PORT\" exec {} {}",
        sh_quote(&working.display().to_string()),
        sh_quote(&exe),
        args.join(" ")
    ));
    s
}

/// What the host does with a request.
pub(crate) enum Routed {
    /// Forward it to the handler, as it came.
    Forward,
    /// Answer it here.
    Answer(Response),
}

/// One HTTP-triggered function of the package.
struct HttpFunction {
    name: String,
    route: Option<String>,
    auth_level: String,
    methods: Vec<String>,
}

fn functions(dir: &Path) -> Vec<HttpFunction> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(json) = read_json(&entry.path().join("function.json")) else {
            continue;
        };
        let trigger = json["bindings"].as_array().into_iter().flatten().find(|b| {
            b["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case("httpTrigger"))
        });
        if let Some(t) = trigger {
            out.push(HttpFunction {
                name,
                route: t["route"].as_str().map(|r| r.trim_matches('/').to_owned()),
                auth_level: t["authLevel"]
                    .as_str()
                    .unwrap_or("function")
                    .to_ascii_lowercase(),
                methods: t["methods"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str())
                    .map(str::to_ascii_uppercase)
                    .collect(),
            });
        }
    }
    out
}

/// A route template's segments against a path's: `{name}` matches any one segment.
fn route_matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t.eq_ignore_ascii_case(p)
        })
}

/// The key a request carries: `code` in the query, else the `x-functions-key` header.
fn key_of<'a>(query: Option<&'a str>, headers: &'a HeaderMap) -> Option<String> {
    query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .or_else(|| {
            headers
                .get("x-functions-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
}

/// Routes a request to the slot whose site folder is `dir`, as the Functions host would.
pub(crate) fn route(
    dir: &Path,
    keys: Option<&HostKeys>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Routed {
    if path == "/" || path.is_empty() {
        return Routed::Answer(root_page());
    }
    let prefix = read_json(&dir.join("host.json"))
        .and_then(|h| {
            h["extensions"]["http"]["routePrefix"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "api".to_owned());
    let prefix = prefix.trim_matches('/');
    let rest = path.trim_start_matches('/');
    let rest = if prefix.is_empty() {
        Some(rest)
    } else {
        // Routes compare without regard to case, as ASP.NET's routing does.
        rest.get(..prefix.len())
            .filter(|head| head.eq_ignore_ascii_case(prefix))
            .map(|_| &rest[prefix.len()..])
            .and_then(|r| r.strip_prefix('/').or(r.is_empty().then_some(r)))
    };
    let not_found = || Routed::Answer(StatusCode::NOT_FOUND.into_response());
    let Some(rest) = rest.map(|r| r.trim_end_matches('/')) else {
        return not_found();
    };
    let found = functions(dir).into_iter().find(|f| {
        let template = f.route.as_deref().unwrap_or(&f.name);
        route_matches(template, rest)
            && (f.methods.is_empty() || f.methods.iter().any(|m| m == method.as_str()))
    });
    let Some(function) = found else {
        return not_found();
    };
    let given = key_of(query, headers);
    let matches = |k: &crate::seed::SecretString| given.as_deref() == Some(k.expose());
    let allowed = match function.auth_level.as_str() {
        "anonymous" => true,
        "admin" => keys.is_some_and(|k| matches(&k.master)),
        _ => keys.is_some_and(|k| matches(&k.master) || matches(&k.default)),
    };
    if allowed {
        Routed::Forward
    } else {
        Routed::Answer(StatusCode::UNAUTHORIZED.into_response())
    }
}

/// What the host answers at its root.
fn root_page() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!DOCTYPE html><html><head><title>Your Functions 4.0 app is up and running</title></head><body><h1>Your Functions 4.0 app is up and running</h1><p>Azure Functions is an event-based serverless compute experience to accelerate your development.</p></body></html>",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(host: &str, functions: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("host.json"), host).expect("host.json");
        for (name, json) in functions {
            std::fs::create_dir(dir.path().join(name)).expect("function dir");
            std::fs::write(dir.path().join(name).join("function.json"), json).expect("json");
        }
        dir
    }

    const HANDLER: &str = r#"{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"python3","arguments":["handler.py"]},"enableForwardingHttpRequest":true}}"#;
    const ANON: &str =
        r#"{"bindings":[{"type":"httpTrigger","authLevel":"anonymous","methods":["get"]}]}"#;
    const KEYED: &str = r#"{"bindings":[{"type":"httpTrigger","authLevel":"function"}]}"#;
    const ROUTED: &str =
        r#"{"bindings":[{"type":"HttpTrigger","authLevel":"anonymous","route":"items/{id}"}]}"#;

    fn custom() -> BTreeMap<String, String> {
        [("FUNCTIONS_WORKER_RUNTIME".to_owned(), "custom".to_owned())].into()
    }

    #[test]
    fn a_custom_handler_is_started_on_the_handler_port() {
        let dir = site(HANDLER, &[]);
        let cmd = startup(dir.path(), &custom()).command.expect("a command");
        assert!(
            cmd.contains("FUNCTIONS_CUSTOMHANDLER_PORT=\"$PORT\" exec 'python3' 'handler.py'"),
            "{cmd}"
        );
        // Another worker runtime: a process that says why and exits.
        let python = [("FUNCTIONS_WORKER_RUNTIME".to_owned(), "python".to_owned())].into();
        let cmd = startup(dir.path(), &python).command.expect("a command");
        assert!(
            cmd.contains("custom handlers only") && cmd.ends_with("exit 1"),
            "{cmd}"
        );
        // No host.json: no process, and the host has no function.
        let empty = tempfile::tempdir().expect("temp dir");
        assert!(startup(empty.path(), &custom()).command.is_none());
    }

    #[test]
    fn requests_are_routed_by_function_json_and_keyed_by_auth_level() {
        let dir = site(
            HANDLER,
            &[("health", ANON), ("hello", KEYED), ("items", ROUTED)],
        );
        let keys = HostKeys::generate();
        let get = |path: &str, query: Option<&str>| {
            route(
                dir.path(),
                Some(&keys),
                &Method::GET,
                path,
                query,
                &HeaderMap::new(),
            )
        };
        let status = |r: Routed| match r {
            Routed::Forward => None,
            Routed::Answer(resp) => Some(resp.status()),
        };
        assert_eq!(status(get("/api/health", None)), None);
        assert_eq!(status(get("/API/Health/", None)), None);
        assert_eq!(status(get("/", None)), Some(StatusCode::OK));
        assert_eq!(status(get("/health", None)), Some(StatusCode::NOT_FOUND));
        assert_eq!(
            status(get("/api/nothing", None)),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(status(get("/api/items/7", None)), None);
        assert_eq!(
            status(route(
                dir.path(),
                Some(&keys),
                &Method::POST,
                "/api/health",
                None,
                &HeaderMap::new()
            )),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            status(get("/api/hello", None)),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(
            status(get("/api/hello", Some("code=wrong"))),
            Some(StatusCode::UNAUTHORIZED)
        );
        let code = format!("code={}", keys.default.expose());
        assert_eq!(status(get("/api/hello", Some(&code))), None);
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-functions-key",
            keys.master.expose().parse().expect("header"),
        );
        assert!(matches!(
            route(
                dir.path(),
                Some(&keys),
                &Method::GET,
                "/api/hello",
                None,
                &headers
            ),
            Routed::Forward
        ));
    }
}
