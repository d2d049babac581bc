//! Code apps without `appCommandLine` start as App Service's images start them: Oryx's Python and
//! Node detection, `java -jar`, or the platform's default page, with the image's lines in the log.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use reqwest::Method;
use serde_json::json;

/// A stand-in for the `gunicorn` App Service's Python image carries: it reads `GUNICORN_CMD_ARGS`
/// (`--bind`, `--chdir`) and serves `module[:object]` (default `application`) with wsgiref, on
/// loopback only.
const GUNICORN: &str = r#"
import importlib, os, shlex, sys, wsgiref.simple_server
bind, chdir = "127.0.0.1:8000", None
for a in shlex.split(os.environ.get("GUNICORN_CMD_ARGS", "")):
    if a.startswith("--bind="): bind = a.split("=", 1)[1]
    if a.startswith("--chdir="): chdir = a.split("=", 1)[1]
if chdir:
    os.chdir(chdir)
    sys.path.insert(0, chdir)
module, _, obj = sys.argv[1].partition(":")
app = getattr(importlib.import_module(module), obj or "application")
print("[INFO] Starting gunicorn stand-in for " + sys.argv[1], flush=True)
class Quiet(wsgiref.simple_server.WSGIRequestHandler):
    def log_message(self, *a): pass
wsgiref.simple_server.make_server("127.0.0.1", int(bind.rsplit(":", 1)[1]), app, handler_class=Quiet).serve_forever()
"#;

/// A WSGI app named `app`, Flask-style, that answers its own text and a module's greeting if any.
pub const WSGI_APP: &str = r#"
import os
def app(environ, start_response):
    try:
        import greeting
        body = greeting.hello()
    except ImportError:
        body = "flask-style " + os.environ.get("WEBSITE_SITE_NAME", "")
    if environ.get("PATH_INFO") == "/venv":
        body = os.environ.get("VIRTUAL_ENV", "<unset>")
    if environ.get("PATH_INFO") == "/path":
        body = os.environ.get("PATH", "")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body.encode()]
"#;

pub struct Stacked {
    pub f: Fixture,
    pub tools: tempfile::TempDir,
}

/// The shared emulator with `contoso-web/staging` on `fx` without `appCommandLine`, the
/// gunicorn stand-in on the image's PATH, and `tweak` applied last.
pub async fn stacked(
    fx: &str,
    tweak: impl FnOnce(&mut slot_release_emulator::EmulatorOptions, &Path),
) -> Stacked {
    let tools = tempfile::tempdir().expect("tempdir");
    let bin = tools.path().join("bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let gunicorn = bin.join("gunicorn");
    std::fs::write(&gunicorn, format!("#!{}\n{GUNICORN}", python())).expect("write gunicorn");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&gunicorn, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let fx = fx.to_owned();
    let root = tools.path().to_owned();
    let f = start_with(move |o| {
        o.runtime_path.push(bin);
        let app = &mut o.seed.subscriptions[0].resource_groups[0].apps[0];
        let staging = app
            .slots
            .iter_mut()
            .find(|s| s.name == "staging")
            .expect("staging");
        staging
            .site_config
            .insert("appCommandLine".into(), "".into());
        staging
            .site_config
            .insert("linuxFxVersion".into(), fx.into());
        // An empty site: what a new slot has before its first deployment.
        staging.content_dir = None;
        tweak(o, &root);
    })
    .await;
    Stacked { f, tools }
}

/// The app's log of the staging slot (`…_default_docker.log`), through Kudu's VFS.
pub async fn app_log(f: &Fixture) -> String {
    let token = f.arm_token().await;
    let list: Vec<serde_json::Value> = f
        .http
        .get(f.scm("staging", "/api/logs/docker"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logs")
        .json()
        .await
        .expect("json");
    let mut out = String::new();
    for entry in list {
        let href = entry["href"].as_str().expect("href");
        if href.ends_with("_default_docker.log") {
            out += &f
                .http
                .get(href)
                .bearer_auth(&token)
                .send()
                .await
                .expect("log")
                .text()
                .await
                .expect("text");
        }
    }
    out
}

async fn eventually_contains(f: &Fixture, url: &str, needle: &str) -> String {
    let mut last = (0, String::new());
    for _ in 0..300 {
        last = f.get_text(url).await;
        if last.0 == 200 && last.1.contains(needle) {
            return last.1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered 200 with '{needle}', last: {last:?}");
}

#[tokio::test]
async fn python_apps_start_as_oryx_detects_them_or_serve_the_default_site() {
    let s = stacked("PYTHON|3.12", |_, _| {}).await;
    let f = &s.f;
    let url = f.emu.app_url(APP, "staging");
    // Nothing deployed yet: the platform's default site, as the Python image serves it.
    let (status, body) = f.get_text(&url).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<title>Microsoft Azure App Service - Welcome</title>"),
        "{body}"
    );
    assert!(body.contains("Hey, Python developers!"), "{body}");
    assert!(
        app_log(f)
            .await
            .contains("No framework detected; using default app from /opt/defaultsite")
    );

    // A Flask-style `app` in app.py: `gunicorn app:app`.
    let d = f.one_deploy("staging", zip(&[("app.py", WSGI_APP)])).await;
    assert_eq!(d["status"], 4, "{d}");
    eventually_contains(f, &url, "flask-style contoso-web").await;
    let log = app_log(f).await;
    assert!(log.contains("Detected an app based on Flask"), "{log}");
    assert!(
        log.contains("Generating `gunicorn` command for 'app:app'"),
        "{log}"
    );

    // A Django project (a folder with wsgi.py) wins over app.py: `gunicorn <folder>.wsgi`.
    let wsgi = "def application(environ, start_response):\n    start_response('200 OK', [])\n    return [b'django-style']\n";
    let d = f
        .one_deploy(
            "staging",
            zip(&[
                ("app.py", WSGI_APP),
                ("mysite/wsgi.py", wsgi),
                ("mysite/__init__.py", ""),
            ]),
        )
        .await;
    assert_eq!(d["status"], 4, "{d}");
    eventually_contains(f, &url, "django-style").await;
    assert!(
        app_log(f)
            .await
            .contains("Generating `gunicorn` command for 'mysite.wsgi'")
    );

    // An appCommandLine still wins over detection.
    let r = f
        .arm_call(
            Method::PATCH,
            &f.site("/slots/staging/config/web?api-version=2018-02-01"),
            Some(json!({"properties": {"appCommandLine": start_command()}})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let d = f.one_deploy("staging", app_zip("v9")).await;
    assert_eq!(d["status"], 4);
    eventually_body(f, &url, "v9").await;
}

#[tokio::test]
async fn node_apps_run_npm_start_or_a_candidate_file_or_serve_the_default_site() {
    let s = stacked("NODE|20-lts", |_, _| {}).await;
    let f = &s.f;
    let url = f.emu.app_url(APP, "staging");
    let (status, body) = f.get_text(&url).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("<title>Microsoft Azure App Service - Welcome</title>"),
        "{body}"
    );
    assert!(body.contains("Hey, Node.js developers!"), "{body}");

    let server = |text: &str| {
        format!(
            "require('http').createServer((q, r) => r.end('{text} ' + process.env.npm_lifecycle_event)).listen(process.env.PORT, '127.0.0.1');"
        )
    };
    // No package.json: the first candidate file (server.js before app.js).
    let d = f
        .one_deploy(
            "staging",
            zip(&[("server.js", &server("server")), ("app.js", &server("app"))]),
        )
        .await;
    assert_eq!(d["status"], 4, "{d}");
    eventually_contains(f, &url, "server undefined").await;

    // A start script: `npm start` (npm sets npm_lifecycle_event=start for the script).
    let package = r#"{"name":"web","version":"1.0.0","scripts":{"start":"node app.js"}}"#;
    let d = f
        .one_deploy(
            "staging",
            zip(&[
                ("package.json", package),
                ("server.js", &server("server")),
                ("app.js", &server("app")),
            ]),
        )
        .await;
    assert_eq!(d["status"], 4, "{d}");
    eventually_contains(f, &url, "app start").await;
    assert!(
        app_log(f)
            .await
            .contains("Generated startup command: npm start")
    );
}

#[tokio::test]
async fn a_java_app_runs_its_jar_on_the_port_the_platform_passes() {
    let s = stacked("JAVA|17-java17", |_, _| {}).await;
    let f = &s.f;
    let url = f.emu.app_url(APP, "staging");
    let (status, body) = f.get_text(&url).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("Your web app is running and waiting for your content"),
        "{body}"
    );

    // A real jar: compiled and packed here, its server reading -Dserver.port as Spring Boot does.
    let src = s.tools.path().join("java");
    std::fs::create_dir_all(src.join("out")).expect("mkdir");
    std::fs::write(
        src.join("Server.java"),
        r#"
import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;
public class Server {
    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(System.getProperty("server.port"));
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
        s.createContext("/", x -> {
            byte[] b = ("java on " + System.getenv("SERVER_PORT")).getBytes();
            x.sendResponseHeaders(200, b.length);
            x.getResponseBody().write(b);
            x.close();
        });
        s.start();
    }
}
"#,
    )
    .expect("write source");
    let ok = std::process::Command::new("javac")
        .args(["-d", "out", "Server.java"])
        .current_dir(&src)
        .status()
        .expect("javac")
        .success();
    assert!(ok, "javac");
    let ok = std::process::Command::new("jar")
        .args([
            "--create",
            "--file",
            "app.jar",
            "--main-class",
            "Server",
            "-C",
            "out",
            ".",
        ])
        .current_dir(&src)
        .status()
        .expect("jar")
        .success();
    assert!(ok, "jar");
    let jar = std::fs::read(src.join("app.jar")).expect("read jar");
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(&mut buf);
        w.start_file("app.jar", zip::write::SimpleFileOptions::default())
            .expect("entry");
        w.write_all(&jar).expect("write");
        w.finish().expect("finish");
    }
    let d = f.one_deploy("staging", buf.into_inner()).await;
    assert_eq!(d["status"], 4, "{d}");
    let body = eventually_contains(f, &url, "java on ").await;
    let port: u16 = body["java on ".len()..].parse().expect("a port");
    let snap = f.emu.snapshot();
    assert_eq!(
        snap.slot(APP, "staging").expect("slot").running,
        slot_release_emulator::RunState::Running { port }
    );
}
