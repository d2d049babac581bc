//! What App Service's built-in images start when a code app has no `appCommandLine`: Oryx's
//! detection for Python (Django's `wsgi.py`, then a Flask-style `app` in `application.py`/`app.py`/
//! `run.py`/`index.py`/`server.py`, then the default site), Node (`npm start`, `main`, the candidate
//! files, then the default site), Java SE (`java -jar` the deployed jar), and the environment the
//! images give the app (the virtual environment `antenv`, else the vendored `__oryx_packages__`, as
//! Oryx's Python script generator does when App Service launches it with `-virtualEnvName antenv`).
//! The lines the images print go to the app's log, so a reader learns what was detected as on App
//! Service.

use std::path::{Path, PathBuf};

/// The language stack of a code app, from `linuxFxVersion` (`PYTHON|3.12`, `NODE|20-lts`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stack {
    Python,
    Node,
    Java,
    /// A stack whose image is not emulated (PHP, .NET, …): only `appCommandLine` runs.
    Other,
}

pub(crate) fn stack_of(site_config: &serde_json::Map<String, serde_json::Value>) -> Stack {
    let fx = site_config
        .get("linuxFxVersion")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let name = fx.split('|').next().unwrap_or_default();
    match name.to_ascii_uppercase().as_str() {
        "PYTHON" => Stack::Python,
        "NODE" => Stack::Node,
        "JAVA" => Stack::Java,
        _ => Stack::Other,
    }
}

/// Where App Service's Python image keeps its default site (reported in the log as Oryx does).
const PYTHON_DEFAULT_SITE: &str = "/opt/defaultsite";
/// The virtual environment an Oryx build creates, and the one the Python image looks for.
pub(crate) const VENV: &str = "antenv";
/// The package folder Oryx's Python startup uses when the site has no virtual environment.
pub(crate) const PACKAGE_DIR: &str = "__oryx_packages__";

/// How a code app's instance starts.
#[derive(Debug, Default)]
pub(crate) struct Startup {
    /// The command (`sh -c`), or none for the platform's default site.
    pub(crate) command: Option<String>,
    /// Variables the image sets for the app (added after the app settings).
    pub(crate) env: Vec<(String, String)>,
    /// Folders the image puts in front of `PATH`.
    pub(crate) path: Vec<PathBuf>,
    /// What the image prints before the app's own output.
    pub(crate) lines: Vec<String>,
}

/// The startup of a code app of `stack` whose site folder is `dir`; `user` is `appCommandLine`.
pub(crate) fn startup(stack: Stack, dir: &Path, user: Option<&str>) -> Startup {
    let mut s = Startup::default();
    match stack {
        Stack::Python => python(&mut s, dir, user),
        Stack::Node => node(&mut s, dir, user),
        Stack::Java => java(&mut s, dir, user),
        Stack::Other => s.command = user.map(str::to_owned),
    }
    s
}

fn site_packages(venv: &Path) -> Option<PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
}

fn python(s: &mut Startup, dir: &Path, user: Option<&str>) {
    // Oryx's run script sets up the packages before any command, the user's included.
    let venv = dir.join(VENV);
    let mut pythonpath = Vec::new();
    if venv.is_dir() {
        s.lines.push(format!(
            "Using packages from virtual environment {VENV} located at {}.",
            venv.display()
        ));
        if let Some(sp) = site_packages(&venv) {
            pythonpath.push(sp.display().to_string());
        }
        s.env
            .push(("VIRTUAL_ENV".into(), venv.display().to_string()));
        s.path.push(venv.join("bin"));
    } else {
        s.lines.push(format!(
            "WARNING: Could not find virtual environment directory '{}'.",
            venv.display()
        ));
        // Without a virtual environment Oryx falls back to its package folder: it names the folder in a
        // `.pth` file of the user site (so the folder itself is on `sys.path`) and puts its `bin` first
        // on `PATH`. `PYTHONPATH` stands in for the `.pth` file here.
        let packages = dir.join(PACKAGE_DIR);
        if packages.is_dir() {
            s.lines
                .push(format!("Using package directory '{}'", packages.display()));
            pythonpath.push(packages.display().to_string());
            s.path.push(packages.join("bin"));
            s.lines.push(format!(
                "Updated PATH to include '{}'",
                packages.join("bin").display()
            ));
        } else {
            s.lines.push(format!(
                "WARNING: Could not find package directory '{}'.",
                packages.display()
            ));
        }
    }
    if !pythonpath.is_empty() {
        let joined = pythonpath.join(":");
        s.lines.push(format!("Updated PYTHONPATH to '{joined}'"));
        s.env.push(("PYTHONPATH".into(), joined));
    }
    if let Some(cmd) = user {
        s.lines.push(format!("Site's appCommandLine: {cmd}"));
        s.command = Some(cmd.to_owned());
        return;
    }
    let module = django_module(dir, VENV)
        .inspect(|_| s.lines.push("Detected an app based on Django".into()))
        .or_else(|| {
            flask_file(dir).map(|file| {
                s.lines.push("Detected an app based on Flask".into());
                format!("{}:app", file.trim_end_matches(".py"))
            })
        });
    match module {
        Some(module) => {
            s.lines
                .push(format!("Generating `gunicorn` command for '{module}'"));
            s.command = Some(format!(
                "GUNICORN_CMD_ARGS=\"--timeout 600 --access-logfile '-' --error-logfile '-' --bind=0.0.0.0:$PORT --chdir={}\" gunicorn {module}",
                dir.display()
            ));
        }
        None => {
            s.lines.push(format!(
                "No framework detected; using default app from {PYTHON_DEFAULT_SITE}"
            ));
        }
    }
}

/// Oryx's Django detection: a folder of the site (not the virtual environment) holding `wsgi.py`.
fn django_module(dir: &Path, venv: &str) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != venv)
        .collect();
    names.sort();
    names
        .into_iter()
        .find(|n| dir.join(n).join("wsgi.py").is_file())
        .map(|n| format!("{n}.wsgi"))
}

/// Oryx's Flask detection: the first of its candidate main files in the site's root.
fn flask_file(dir: &Path) -> Option<&'static str> {
    [
        "application.py",
        "app.py",
        "run.py",
        "index.py",
        "server.py",
    ]
    .into_iter()
    .find(|f| dir.join(f).is_file())
}

fn node(s: &mut Startup, dir: &Path, user: Option<&str>) {
    if let Some(cmd) = user {
        s.lines.push(format!("Site's appCommandLine: {cmd}"));
        s.command = Some(cmd.to_owned());
        return;
    }
    let package: Option<serde_json::Value> = std::fs::read(dir.join("package.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let start = package
        .as_ref()
        .and_then(|p| p.pointer("/scripts/start"))
        .and_then(|v| v.as_str())
        .filter(|v| !v.trim().is_empty());
    let main = package
        .as_ref()
        .and_then(|p| p.get("main"))
        .and_then(|v| v.as_str())
        .filter(|v| !v.trim().is_empty());
    let command = if start.is_some() {
        Some("npm start".to_owned())
    } else if let Some(main) = main {
        Some(format!("node {main}"))
    } else {
        [
            "bin/www",
            "server.js",
            "app.js",
            "index.js",
            "hostingstart.js",
        ]
        .into_iter()
        .find(|f| dir.join(f).is_file())
        .map(|f| format!("node {f}"))
    };
    match command {
        Some(cmd) => {
            s.lines.push(format!("Generated startup command: {cmd}"));
            s.command = Some(cmd);
        }
        None => s
            .lines
            .push("No startup command found; using the default app (hostingstart).".into()),
    }
}

fn java(s: &mut Startup, dir: &Path, user: Option<&str>) {
    if let Some(cmd) = user {
        s.command = Some(cmd.to_owned());
        return;
    }
    // OneDeploy's `type=jar` names the jar `app.jar`; a zip may carry another single jar.
    let jar = if dir.join("app.jar").is_file() {
        Some("app.jar".to_owned())
    } else {
        let mut jars: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".jar"))
            .collect();
        jars.sort();
        jars.into_iter().next()
    };
    if let Some(jar) = jar {
        // Spring Boot reads SERVER_PORT (or `server.port`); other servers read PORT, which every
        // app gets.
        s.lines.push(format!("Running the jar {jar}"));
        s.command = Some(format!(
            "export SERVER_PORT=$PORT; exec /usr/bin/java -Dserver.port=$PORT -jar {}",
            dir.join(&jar).display()
        ));
    } else {
        s.lines
            .push("No jar found in /home/site/wwwroot; using the default app.".into());
    }
}

/// The platform's default site: the page App Service's images serve before an app is deployed
/// (title and text as the real page has them, so a product can recognise it).
pub(crate) fn default_page(stack: Stack) -> String {
    let (heading, text) = match stack {
        Stack::Python => (
            "Hey, Python developers!",
            "Your app service is up and running. Time to take the next step and deploy your code.",
        ),
        Stack::Node => (
            "Hey, Node.js developers!",
            "Your app service is up and running. Time to take the next step and deploy your code.",
        ),
        Stack::Java | Stack::Other => (
            "Your web app is running and waiting for your content",
            "Your web app is live, but we don't have your content yet. Time to take the next step and deploy your code.",
        ),
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"/><title>Microsoft Azure App Service - Welcome</title></head><body><h1>{heading}</h1><p>{text}</p></body></html>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_detection_follows_oryx_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert_eq!(startup(Stack::Python, d, None).command, None);
        std::fs::write(d.join("server.py"), "").expect("write");
        std::fs::write(d.join("app.py"), "").expect("write");
        let s = startup(Stack::Python, d, None);
        assert!(s.command.expect("cmd").ends_with("gunicorn app:app"));
        std::fs::create_dir_all(d.join("mysite")).expect("mkdir");
        std::fs::write(d.join("mysite").join("wsgi.py"), "").expect("write");
        let s = startup(Stack::Python, d, None);
        assert!(s.command.expect("cmd").ends_with("gunicorn mysite.wsgi"));
        let s = startup(Stack::Python, d, Some("python3 x.py"));
        assert_eq!(s.command.as_deref(), Some("python3 x.py"));
    }

    #[test]
    fn node_detection_prefers_the_start_script() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        assert_eq!(startup(Stack::Node, d, None).command, None);
        std::fs::write(d.join("index.js"), "").expect("write");
        std::fs::write(d.join("server.js"), "").expect("write");
        assert_eq!(
            startup(Stack::Node, d, None).command.as_deref(),
            Some("node server.js")
        );
        std::fs::write(
            d.join("package.json"),
            r#"{"scripts":{"start":"node index.js"}}"#,
        )
        .expect("write");
        assert_eq!(
            startup(Stack::Node, d, None).command.as_deref(),
            Some("npm start")
        );
    }
}
