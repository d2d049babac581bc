//! The Windows host: what IIS runs for a Windows code app, chosen by the handler its own `web.config`
//! names (never one the emulator writes), and `app_offline.htm`, which IIS answers every request
//! with (503) while it is in `wwwroot`, and which Kudu puts there for the length of a deployment.
//!
//! Handlers modelled: iisnode (`<add modules="iisnode" path="server.js"/>`: `node server.js`, the
//! port in `PORT` as iisnode passes its pipe), HttpPlatformHandler (`<httpPlatform processPath
//! arguments>`, the port in `HTTP_PLATFORM_PORT`) and the ASP.NET Core Module (`<aspNetCore
//! processPath arguments>`, the port in `ASPNETCORE_PORT`). A Windows path in `processPath` runs the
//! program of that name found on the emulator's `PATH` (`python.exe` → `python3`). Without a
//! `web.config` naming one of them, IIS serves the site's files: the emulator serves the platform's
//! default page.

use std::path::{Path, PathBuf};

use crate::stack::Startup;

/// The file IIS answers with while it is in the site's root.
pub(crate) const APP_OFFLINE: &str = "app_offline.htm";

/// The page Kudu writes when it takes a site offline for a deployment.
const KUDU_OFFLINE_PAGE: &str = "<!DOCTYPE html><html><head><title>Site under deployment</title></head><body><h1>This site is being deployed</h1><p>Please try again in a moment.</p><!-- created by Kudu for a deployment --></body></html>";

/// Whether Kudu takes the site offline while it deploys: unless `SCM_CREATE_APP_OFFLINE` is `0`.
pub(crate) fn app_offline_wanted(settings: &std::collections::BTreeMap<String, String>) -> bool {
    !settings
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("SCM_CREATE_APP_OFFLINE") && v.trim() == "0")
}

/// Puts Kudu's `app_offline.htm` into `dir`, unless the site already has one (then Kudu neither
/// writes nor later removes it). Returns the file to remove when the deployment ends.
pub(crate) fn take_offline(dir: &Path) -> Option<PathBuf> {
    let path = dir.join(APP_OFFLINE);
    if offline_file(dir).is_some() {
        return None;
    }
    std::fs::write(&path, KUDU_OFFLINE_PAGE).ok()?;
    Some(path)
}

/// `app_offline.htm` in `dir`, in any case of its name (IIS reads names case-insensitively).
fn offline_file(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .eq_ignore_ascii_case(APP_OFFLINE)
        })
        .map(|e| e.path())
}

/// The page IIS answers with while the site is offline.
pub(crate) fn offline_page(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(offline_file(dir)?).ok()
}

/// One start tag of an XML document: its name and attributes (entities decoded).
#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn decode(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The start tags of `xml`, skipping comments, declarations and end tags: enough to read the
/// handler elements of a `web.config`.
fn start_tags(xml: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        if let Some(after) = rest.strip_prefix("!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r);
            continue;
        }
        let Some(close) = rest.find('>') else { break };
        let body = rest[..close].trim_end_matches('/');
        rest = &rest[close + 1..];
        if body.starts_with(['?', '!', '/']) {
            continue;
        }
        let (name, mut attrs_text) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
        let mut attrs = Vec::new();
        while let Some((key, after)) = attrs_text.split_once('=') {
            let after = after.trim_start();
            let Some(quote) = after.chars().next().filter(|c| matches!(c, '"' | '\'')) else {
                break;
            };
            let Some((value, tail)) = after[1..].split_once(quote) else {
                break;
            };
            attrs.push((key.trim().to_owned(), decode(value)));
            attrs_text = tail;
        }
        tags.push(Tag {
            name: name.to_owned(),
            attrs,
        });
    }
    tags
}

/// The program a Windows `processPath` names, as found on the emulator: its file name without
/// `.exe`, and `python` as `python3`.
fn program(process_path: &str) -> String {
    let name = process_path
        .rsplit(['\\', '/'])
        .next()
        .unwrap_or(process_path);
    let name = name
        .strip_suffix(".exe")
        .or_else(|| name.strip_suffix(".EXE"))
        .unwrap_or(name);
    if name.eq_ignore_ascii_case("python") {
        "python3".to_owned()
    } else {
        name.to_owned()
    }
}

/// Windows spellings in a handler's `arguments` made to run under `sh`: `%VAR%` as `$VAR`, the
/// port variables as the instance's port, and `\` path separators as `/`.
fn arguments(text: &str) -> String {
    let mut out = String::new();
    let mut parts = text.split('%');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut in_var = true;
    for part in parts {
        if in_var && !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            out.push('$');
            out.push_str(part);
        } else {
            if in_var {
                out.push('%');
            }
            out.push_str(part);
        }
        in_var = !in_var;
    }
    out.replace('\\', "/")
}

/// What IIS starts for a Windows code app whose site folder is `dir`.
pub(crate) fn startup(dir: &Path) -> Startup {
    let mut s = Startup::default();
    let Ok(text) = std::fs::read_to_string(dir.join("web.config")) else {
        s.lines
            .push("No web.config in wwwroot: IIS serves the site's files (hostingstart).".into());
        return s;
    };
    let tags = start_tags(&text);
    let iisnode = tags.iter().find(|t| {
        t.name == "add"
            && t.attr("modules")
                .is_some_and(|m| m.eq_ignore_ascii_case("iisnode"))
    });
    if let Some(entry) = iisnode.and_then(|t| t.attr("path")) {
        let entry = entry.replace('\\', "/");
        s.lines
            .push(format!("web.config: iisnode handler for {entry}"));
        s.command = Some(format!("exec node {}", sh_quote(&entry)));
        return s;
    }
    let platform = tags
        .iter()
        .find(|t| t.name == "httpPlatform" || t.name == "aspNetCore");
    if let Some(tag) = platform
        && let Some(path) = tag.attr("processPath")
    {
        let args = tag.attr("arguments").map(arguments).unwrap_or_default();
        s.lines.push(format!(
            "web.config: {} handler runs {path} {}",
            tag.name,
            tag.attr("arguments").unwrap_or_default()
        ));
        s.command = Some(format!(
            "export HTTP_PLATFORM_PORT=$PORT ASPNETCORE_PORT=$PORT; exec {} {args}",
            sh_quote(&program(path))
        ));
        return s;
    }
    s.lines.push(
        "web.config names no iisnode, httpPlatform or aspNetCore handler: IIS serves the site's files."
            .into(),
    );
    s
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_config(xml: &str) -> (tempfile::TempDir, Startup) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("web.config"), xml).expect("write");
        let s = startup(dir.path());
        (dir, s)
    }

    #[test]
    fn iisnode_runs_the_entry_its_handler_names() {
        let (_d, s) = with_config(
            r#"<?xml version="1.0"?><configuration><system.webServer><!-- <add modules="iisnode" path="old.js"/> --><handlers><add name="iisnode" path="src\server.js" verb="*" modules="iisnode"/></handlers></system.webServer></configuration>"#,
        );
        assert_eq!(s.command.as_deref(), Some("exec node 'src/server.js'"));
    }

    #[test]
    fn http_platform_runs_its_process_with_the_port() {
        let (_d, s) = with_config(
            r#"<configuration><system.webServer><httpPlatform processPath="D:\home\python311x64\python.exe" arguments="app.py --port %HTTP_PLATFORM_PORT% --name &quot;x&quot;"/></system.webServer></configuration>"#,
        );
        assert_eq!(
            s.command.as_deref(),
            Some(
                "export HTTP_PLATFORM_PORT=$PORT ASPNETCORE_PORT=$PORT; exec 'python3' app.py --port $HTTP_PLATFORM_PORT --name \"x\""
            )
        );
    }

    #[test]
    fn no_handler_serves_files() {
        let (_d, s) = with_config("<configuration><system.webServer/></configuration>");
        assert_eq!(s.command, None);
        let empty = tempfile::tempdir().expect("tempdir");
        assert_eq!(startup(empty.path()).command, None);
    }

    #[test]
    fn kudu_takes_a_site_offline_once_and_leaves_the_sites_own_page_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = take_offline(dir.path()).expect("written");
        assert!(offline_page(dir.path()).is_some());
        std::fs::remove_file(file).expect("remove");
        assert_eq!(offline_page(dir.path()), None);
        std::fs::write(dir.path().join("App_Offline.htm"), "mine").expect("write");
        assert_eq!(take_offline(dir.path()), None);
        assert_eq!(offline_page(dir.path()).as_deref(), Some(&b"mine"[..]));
        let off = [("SCM_CREATE_APP_OFFLINE".to_owned(), "0".to_owned())].into();
        assert!(!app_offline_wanted(&off));
        assert!(app_offline_wanted(&Default::default()));
    }
}
