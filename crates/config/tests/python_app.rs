//! The example Python web app really works: real `python3` processes, a real SQLite database,
//! real HTTP on loopback. Python 3 is a prerequisite of the project (see README).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn app_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python-webapp")
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

fn migrate(home: &Path, direction: &str) -> String {
    let output = Command::new("python3")
        .arg("migrate.py")
        .arg(direction)
        .current_dir(app_dir())
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
    let port = free_port();
    let app = App(Command::new("python3")
        .arg("app.py")
        .current_dir(app_dir())
        .env("HOME", home.path())
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .env("DATABASE_PATH", "data/app.db")
        .env("RELEASE_VERSION", "20261122.7")
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

    let up = migrate(home.path(), "up");
    assert!(up.contains("schema version 0 -> 2"), "{up}");
    assert!(
        home.path().join("data/app.db").exists(),
        "relative DATABASE_PATH resolves against HOME"
    );
    assert_eq!(
        get(port, "/health").expect("health"),
        (200, "ok\n".to_string())
    );
    let again = migrate(home.path(), "up");
    assert!(
        again.contains("schema version 2 -> 2"),
        "up is idempotent: {again}"
    );

    let (status, page) = get(port, "/").expect("page");
    assert_eq!(status, 200);
    assert!(page.contains("<b id=release>20261122.7</b>"), "{page}");
    assert!(page.contains("<b id=environment>staging</b>"), "{page}");
    assert_eq!(get(port, "/nope").expect("404").0, 404);

    let down = migrate(home.path(), "down");
    assert!(down.contains("schema version 2 -> 1"), "{down}");
    let (status, body) = get(port, "/health").expect("health after down");
    assert_eq!(status, 503);
    assert_eq!(body, "database schema version 1, need 2\n");
    let again = migrate(home.path(), "down");
    assert!(
        again.contains("schema version 1 -> 1"),
        "down is idempotent: {again}"
    );
    drop(app);
}
