//! The example Python web app really works: real `python3` processes, a real SQLite database,
//! real HTTP on loopback. Python 3 is a prerequisite of the project (see README).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python-webapp")
}

/// Copies the app as a package would deploy it, with the manifest Slot Release writes into every
/// package, so the test never writes into the source tree.
fn deploy(to: &Path, version: &str) {
    for file in ["app.py", "migrate.py", "settings.py"] {
        std::fs::copy(example_dir().join(file), to.join(file)).expect("copy the app");
    }
    std::fs::create_dir_all(to.join(".slot-release")).expect("manifest folder");
    std::fs::write(
        to.join(".slot-release/manifest.json"),
        format!(r#"{{"format": 1, "version": "{version}", "files": []}}"#),
    )
    .expect("write the manifest");
}

/// Kills the app when the test ends, however it ends.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

fn migrate(app: &Path, home: &Path, direction: &str) -> String {
    let output = Command::new("python3")
        .arg("migrate.py")
        .arg(direction)
        .current_dir(app)
        .env("HOME", home)
        .env("DATABASE_PATH", "data/app.db")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs (Python 3 is a prerequisite)");
    assert!(
        output.status.success(),
        "migrate.py {direction}: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A minimal HTTP/1.0 GET: the status code and the body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[test]
fn app_serves_its_page_and_health_follows_the_migration() {
    let home = tempfile::tempdir().expect("temporary HOME");
    let site = tempfile::tempdir().expect("temporary site folder");
    deploy(site.path(), "20261122.7");
    let port = free_port();
    let app = App(Command::new("python3")
        .arg("app.py")
        .current_dir(site.path())
        .env("HOME", home.path())
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("DATABASE_PATH", "data/app.db")
        .env_remove("RELEASE_VERSION")
        .env("APP_ENV", "staging")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs (Python 3 is a prerequisite)"));

    // Wait for the listener; the database does not exist yet, so health is 503.
    let deadline = Instant::now() + Duration::from_secs(15);
    let first = loop {
        match get(port, "/health") {
            Ok(response) => break response,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(err) => panic!("app did not start on port {port}: {err}"),
        }
    };
    assert_eq!(first.0, 503, "{first:?}");
    assert!(
        !home.path().join("data/app.db").exists(),
        "a health probe must not create the database"
    );

    let up = migrate(site.path(), home.path(), "up");
    assert!(up.contains("schema version 0 -> 2"), "{up}");
    assert!(
        home.path().join("data/app.db").exists(),
        "relative DATABASE_PATH resolves against HOME"
    );
    assert_eq!(
        get(port, "/health").expect("health"),
        (200, "ok\n".to_string())
    );
    let again = migrate(site.path(), home.path(), "up");
    assert!(
        again.contains("schema version 2 -> 2"),
        "up is idempotent: {again}"
    );

    let (status, page) = get(port, "/").expect("page");
    assert_eq!(status, 200);
    assert!(page.contains("<b id=release>20261122.7</b>"), "{page}");
    assert!(page.contains("<b id=environment>staging</b>"), "{page}");
    assert_eq!(get(port, "/nope").expect("404").0, 404);

    let down = migrate(site.path(), home.path(), "down");
    assert!(down.contains("schema version 2 -> 1"), "{down}");
    let (status, body) = get(port, "/health").expect("health after down");
    assert_eq!(status, 503);
    assert_eq!(body, "database schema version 1, need 2\n");
    let again = migrate(site.path(), home.path(), "down");
    assert!(
        again.contains("schema version 1 -> 1"),
        "down is idempotent: {again}"
    );
    drop(app);
}

#[test]
fn release_version_setting_overrides_the_manifest() {
    let site = tempfile::tempdir().expect("temporary site folder");
    deploy(site.path(), "from-manifest");
    let version = |env: Option<&str>| {
        let mut command = Command::new("python3");
        command
            .args(["-c", "import settings; print(settings.release_version())"])
            .current_dir(site.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("RELEASE_VERSION");
        if let Some(value) = env {
            command.env("RELEASE_VERSION", value);
        }
        let output = command.output().expect("python3 runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    };
    assert_eq!(version(None), "from-manifest");
    assert_eq!(version(Some("20261122.9")), "20261122.9");
}
