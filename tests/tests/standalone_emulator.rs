//! The container story stage by stage against a standalone emulator: `slot-release emulator --seed`
//! runs in its own process with an image mapping from the seed, and separate `slot-release`
//! processes run the staging stage, then the production stage, with the environment the emulator
//! printed for its service connection — as a user trying the story on a laptop would.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use slot_release_tests::{Example, paths};

const CONNECTION: &str = "5a7c3f10-0000-0000-0000-0000000000c1";
const IMAGE: &str = "contoso.azurecr.io/contoso/app";

const SEED: &str = r#"
tenantId: 72f988bf-0000-0000-0000-000000000001
clients:
  - clientId: 11111111-1111-1111-1111-111111111111
    secret: standalone-client-secret
serviceConnections:
  - id: 5a7c3f10-0000-0000-0000-0000000000c1
    name: contoso-spn
    kind: servicePrincipal
    clientId: 11111111-1111-1111-1111-111111111111
    subscriptionId: 00000000-0000-0000-0000-0000000000a1
subscriptions:
  - id: 00000000-0000-0000-0000-0000000000a1
    name: Contoso
    resourceGroups:
      - name: contoso-rg
        apps:
          - name: contoso-api
            kind: container
            slots:
              - name: production
                siteConfig: { linuxFxVersion: "DOCKER|contoso.azurecr.io/contoso/app:previous" }
              - name: staging
        vaults:
          - name: contoso-kv
            secrets:
              - { name: api-db-connection, value: "Server=db;Password=standalone-db-secret" }
images:
  - pattern: "contoso.azurecr.io/contoso/app:*"
    command: python3 server.py
    dir: image
"#;

/// The stand-in for the image: answers `/health` and everything else with 200.
const SERVER: &str = r#"
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The emulator process; SIGTERM on drop, so its apps go with it.
struct Standalone {
    child: Child,
    port: u16,
    ca: String,
    env: BTreeMap<String, String>,
    /// The image mappings it printed, in the order it tries them.
    images: Vec<String>,
    /// `<slot>  https://<host>:<port>  https://<scm host>:<port>` for each slot it printed.
    apps: Vec<String>,
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Starts `slot-release emulator --seed` (with `extra` options) and reads what it prints: the
/// port, the CA file and the environment of the seeded service connection.
fn start(dir: &Path, extra: &[&str]) -> Standalone {
    let mut child = Command::new(paths::slot_release_binary().unwrap())
        .args(["emulator", "--seed"])
        .arg(dir.join("seed.yml"))
        .args(extra)
        .arg("--work-dir")
        .arg(dir.join("emulator"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut port = 0;
    let mut ca = String::new();
    let mut env = BTreeMap::new();
    let mut in_env = false;
    let mut printed = String::new();
    let mut images = Vec::new();
    let mut apps = Vec::new();
    // The environment block ends with the job's access token for a service principal connection.
    while !env.contains_key("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN") {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("the emulator printed no environment ({e}): {printed}"));
        printed.push_str(&line);
        printed.push('\n');
        if let Some(p) = line.strip_prefix("Slot Release emulator listening on 127.0.0.1:") {
            port = p.trim().parse().unwrap();
        } else if let Some(path) = line.strip_prefix("CA certificate: ") {
            ca = path.trim().to_owned();
        } else if let Some(rest) = line.strip_prefix("  contoso-api/") {
            apps.push(rest.to_owned());
        } else if line.contains(" -> ") && line.starts_with("  ") {
            images.push(line.trim().to_owned());
        } else if line.starts_with("Environment for a ServicePrincipal service connection:") {
            in_env = true;
        } else if in_env && let Some((k, v)) = line.trim_start().split_once('=') {
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    Standalone {
        child,
        port,
        ca,
        env,
        images,
        apps,
    }
}

fn run(emu: &Standalone, dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(paths::slot_release_binary().unwrap())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("TMPDIR", dir)
        .env("SYSTEM_JOBATTEMPT", "1")
        .env("AGENT_CAINFO", &emu.ca)
        .envs(&emu.env)
        .args(args)
        .arg("--config")
        .arg(dir.join("container/release.yml"))
        .args(["--service-connection", CONNECTION])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ slot-release {}\n{text}", args.join(" "));
    (out.status.success(), text)
}

/// What the emulator's admin API says about a slot.
async fn slot(emu: &Standalone, name: &str) -> serde_json::Value {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&emu.ca).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_merge([ca])
        .dns_resolver(std::sync::Arc::new(slot_release_emulator::LoopbackResolver))
        .no_proxy()
        .build()
        .unwrap();
    let state: serde_json::Value = http
        .get(format!("https://admin.emulator.test:{}/state", emu.port))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["apps"][0]["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_story_runs_stage_by_stage_against_a_standalone_emulator() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.yml"), SEED).unwrap();
    std::fs::create_dir_all(dir.path().join("image")).unwrap();
    std::fs::write(dir.path().join("image/server.py"), SERVER).unwrap();
    let config = Example::Container
        .checkout(&dir.path().join("container"))
        .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, Example::Container.quick(&text).unwrap()).unwrap();
    let emu = start(dir.path(), &[]);
    assert_eq!(
        emu.images,
        vec![format!(
            "{IMAGE}:* -> python3 server.py (in {})",
            dir.path().join("image").display()
        )]
    );

    let (ok, text) = run(&emu, dir.path(), &["staging", "--release-id", "r1"]);
    assert!(ok, "{text}");
    let staging = slot(&emu, "staging").await;
    // It printed the hosts ARM names (unique by default), the ones the product probed.
    let host = staging["hostName"].as_str().unwrap_or_default();
    assert!(host.starts_with("contoso-api-staging-"), "{staging}");
    assert!(
        emu.apps
            .iter()
            .any(|a| a.starts_with(&format!("staging  https://{host}:{}", emu.port))),
        "{:?}",
        emu.apps
    );
    assert!(
        text.contains(&format!("https://{host}:{}/health", emu.port)),
        "{text}"
    );
    assert_eq!(staging["image"], format!("{IMAGE}:r1"), "{staging}");
    assert_eq!(staging["running"]["state"], "running", "{staging}");
    assert_eq!(
        slot(&emu, "production").await["image"],
        format!("{IMAGE}:previous")
    );

    let (ok, text) = run(&emu, dir.path(), &["production", "--release-id", "r1"]);
    assert!(ok, "{text}");
    let production = slot(&emu, "production").await;
    assert_eq!(production["image"], format!("{IMAGE}:r1"), "{production}");
    assert_eq!(
        production["tags"]["slotrelease.previousImage"],
        format!("{IMAGE}:previous"),
        "{production}"
    );
    assert_eq!(production["running"]["state"], "running", "{production}");
    assert!(!text.contains("standalone-db-secret"), "{text}");

    // The printed environment names the CA too, and its saved copy runs the binary through `env` (a shell
    // cannot export the agent's names, which hold the connection's GUID).
    assert_eq!(emu.env.get("AGENT_CAINFO"), Some(&emu.ca));
    let file = Path::new(&emu.ca).with_file_name("ServicePrincipal.env");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "env -i PATH=\"$PATH\" $(cat '{}') '{}' plan --stage production --service-connection {CONNECTION} --config '{}'",
            file.display(),
            paths::slot_release_binary().unwrap().display(),
            dir.path().join("container/release.yml").display()
        ))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Plan for production of contoso-api"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn image_options_come_before_the_seeds_and_a_bad_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("seed.yml"), SEED).unwrap();
    let emu = start(
        dir.path(),
        &["--image", "contoso/*=./run.sh", "--image-dir", "/srv/app"],
    );
    assert_eq!(emu.images[0], "contoso/* -> ./run.sh (in /srv/app)");
    assert!(emu.images[1].starts_with(&format!("{IMAGE}:* -> python3 server.py")));
    drop(emu);

    let out = Command::new(paths::slot_release_binary().unwrap())
        .args(["emulator", "--image", "contoso/app:1"])
        .arg("--work-dir")
        .arg(dir.path().join("refused"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    // Outside a pipeline the log, errors included, goes to stdout.
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("--image \"contoso/app:1\" is not PATTERN=COMMAND"),
        "{text}"
    );
}

#[test]
fn a_signal_right_after_the_endpoints_are_printed_stops_the_emulator_cleanly() {
    for signal in ["INT", "TERM"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("seed.yml"), SEED).unwrap();
        let mut emu = start(dir.path(), &[]);
        // Whoever read the endpoints may signal at once: the signal is heard (not the default
        // disposition, which kills) and the emulator shuts down and exits 0.
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &emu.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let started = std::time::Instant::now();
        let status = loop {
            if let Some(status) = emu.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                // Killed, so the drop's SIGTERM and wait cannot hang on an emulator deaf to signals.
                let _ = emu.child.kill();
                panic!("SIG{signal}: the emulator did not stop");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "SIG{signal}: exit {status:?}");
    }
}
