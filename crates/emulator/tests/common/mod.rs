//! Shared test fixtures: a seed with a real Python app, an emulator per test, an HTTPS client that
//! trusts its CA and resolves `*.emulator.test` to loopback, and token/zip helpers.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use slot_release_emulator::{
    AppKind, Emulator, EmulatorOptions, SecretString, Seed, SeedApp, SeedSecret, SeedSlot,
    SeedVault, SlotConfigNames, Throttle,
};

pub const APP: &str = "contoso-web";
pub const SUB: &str = "00000000-0000-0000-0000-0000000000a1";
pub const RG: &str = "contoso-rg";
pub const CLIENT: &str = "11111111-1111-1111-1111-111111111111";
pub const SECRET: &str = "emulator-client-secret";

/// A tiny HTTP app: `/` answers the content of VERSION, `/env/NAME` the variable, `/health` 200,
/// `/status/N` answers N.
pub const APP_PY: &str = r#"
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code, body = 200, b""
        if self.path.startswith("/env/"):
            body = os.environ.get(self.path[5:], "<unset>").encode()
        elif self.path.startswith("/status/"):
            code = int(self.path[8:])
        elif self.path == "/health":
            body = b"ok"
        else:
            try:
                body = open("VERSION", "rb").read().strip()
            except OSError:
                body = b"no-version"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// The absolute path of the Python interpreter (pyenv shims need the real HOME, which apps don't get).
pub fn python() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is installed");
    String::from_utf8(out.stdout)
        .expect("utf-8 path")
        .trim()
        .to_owned()
}

pub fn write_app(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir).expect("create app dir");
    std::fs::write(dir.join("app.py"), APP_PY).expect("write app.py");
    std::fs::write(dir.join("VERSION"), version).expect("write VERSION");
}

pub fn start_command() -> String {
    format!("{} app.py", python())
}

fn slot(name: &str, content: Option<PathBuf>, settings: &[(&str, &str)]) -> SeedSlot {
    let mut site_config = serde_json::Map::new();
    site_config.insert("appCommandLine".into(), start_command().into());
    SeedSlot {
        name: name.into(),
        app_settings: settings
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        site_config,
        stopped: false,
        tags: BTreeMap::new(),
        content_dir: content,
        ..SeedSlot::default()
    }
}

/// The sample seed with a Python app in both slots (production v1, staging v2), a sticky
/// setting, and a vault with enabled, disabled and expired secrets.
pub fn seed(dir: &Path) -> Seed {
    let v1 = dir.join("seed-v1");
    let v2 = dir.join("seed-v2");
    write_app(&v1, "v1");
    write_app(&v2, "v2");
    let mut seed = Seed::sample();
    let rg = &mut seed.subscriptions[0].resource_groups[0];
    rg.apps = vec![
        SeedApp {
            name: APP.into(),
            kind: AppKind::Code,
            location: "East US".into(),
            basic_auth: true,
            slot_config_names: SlotConfigNames {
                app_setting_names: vec!["SLOT_NAME".into()],
                ..SlotConfigNames::default()
            },
            slots: vec![
                slot(
                    "production",
                    Some(v1),
                    &[
                        ("SLOT_NAME", "prod"),
                        ("GREETING", "hello-v1"),
                        (
                            "DB",
                            "@Microsoft.KeyVault(VaultName=contoso-kv;SecretName=db-password)",
                        ),
                    ],
                ),
                slot(
                    "staging",
                    Some(v2),
                    &[("SLOT_NAME", "stage"), ("GREETING", "hello-v2")],
                ),
            ],
            ..SeedApp::default()
        },
        SeedApp {
            name: "contoso-api".into(),
            kind: AppKind::Container,
            location: "East US".into(),
            basic_auth: false,
            slot_config_names: SlotConfigNames::default(),
            slots: vec![
                container_slot("production", "contoso/app:1.0"),
                container_slot("staging", "other/unknown:2.0"),
            ],
            ..SeedApp::default()
        },
    ];
    let secret = |name: &str, value: &str, enabled: bool, exp: Option<i64>| SeedSecret {
        name: name.into(),
        value: SecretString::new(value),
        previous_values: vec![SecretString::new(format!("{value}-old"))],
        enabled,
        exp,
        nbf: None,
        content_type: Some("text/plain".into()),
        tags: BTreeMap::new(),
    };
    rg.vaults = vec![
        SeedVault {
            name: "contoso-kv".into(),
            throttle: None,
            secrets: vec![
                secret("db-password", "s3cr3t", true, None),
                secret("api-key", "k3y", true, None),
                secret("disabled-one", "x", false, None),
                secret("expired-one", "y", true, Some(1_000_000)),
            ],
        },
        SeedVault {
            name: "tiny-kv".into(),
            throttle: Some(Throttle {
                limit: 3,
                window_seconds: 30,
            }),
            secrets: vec![secret("one", "1", true, None)],
        },
    ];
    seed
}

fn container_slot(name: &str, image: &str) -> SeedSlot {
    let mut site_config = serde_json::Map::new();
    site_config.insert("linuxFxVersion".into(), format!("DOCKER|{image}").into());
    SeedSlot {
        name: name.into(),
        app_settings: BTreeMap::new(),
        site_config,
        stopped: false,
        tags: BTreeMap::new(),
        content_dir: None,
        ..SeedSlot::default()
    }
}

pub struct Fixture {
    pub emu: Emulator,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

pub async fn start() -> Fixture {
    start_with(|_| {}).await
}

pub async fn start_with(tweak: impl FnOnce(&mut EmulatorOptions)) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let image_dir = dir.path().join("image");
    write_app(&image_dir, "container-1.0");
    let mut opts = EmulatorOptions::new(seed(dir.path()), dir.path().join("work"));
    opts.app_start_timeout = Duration::from_secs(10);
    opts.deployment_step_delay = Duration::from_millis(50);
    opts.images.push(slot_release_emulator::ImageMapping {
        pattern: "contoso/app:*".into(),
        command: start_command(),
        dir: image_dir,
        private: None,
    });
    tweak(&mut opts);
    let emu = Emulator::start(opts).await.expect("emulator starts");
    let http = emu
        .client_builder()
        .expect("client builder")
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    Fixture { emu, http, dir }
}

impl Fixture {
    pub fn arm(&self, path: &str) -> String {
        format!("{}{path}", self.emu.endpoints().arm)
    }
    pub fn site(&self, rest: &str) -> String {
        self.arm(&format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Web/sites/{APP}{rest}"
        ))
    }

    pub async fn token(&self, scope: &str) -> String {
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.emu.endpoints().authority,
            self.emu.seed().tenant_id
        );
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT),
                ("client_secret", SECRET),
                ("scope", scope),
            ]))
            .send()
            .await
            .expect("token request");
        assert_eq!(resp.status(), 200);
        let v: serde_json::Value = resp.json().await.expect("token json");
        v["access_token"].as_str().expect("access_token").to_owned()
    }

    pub async fn arm_token(&self) -> String {
        self.token("https://management.emulator.test/.default")
            .await
    }

    /// Sends an ARM request with a fresh token.
    pub async fn arm_call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let token = self.arm_token().await;
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("arm request")
    }

    /// Follows an ARM long-running operation's Location to its final response.
    pub async fn wait_lro(&self, resp: reqwest::Response) -> reqwest::Response {
        assert_eq!(resp.status(), 202, "LRO must start with 202");
        let mut location = resp
            .headers()
            .get("location")
            .expect("Location header")
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(resp.headers().contains_key("azure-asyncoperation"));
        assert!(resp.headers().contains_key("retry-after"));
        let token = self.arm_token().await;
        for _ in 0..600 {
            let r = self
                .http
                .get(&location)
                .bearer_auth(&token)
                .send()
                .await
                .expect("poll");
            if r.status() != 202 {
                return r;
            }
            if let Some(l) = r.headers().get("location") {
                location = l.to_str().expect("ascii").to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("LRO did not finish");
    }

    pub async fn get_text(&self, url: &str) -> (u16, String) {
        let r = self.http.get(url).send().await.expect("app request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    pub fn scm(&self, slot: &str, path: &str) -> String {
        format!("{}{path}", self.emu.scm_url(APP, slot))
    }

    /// Deploys a zip with OneDeploy (async) and waits for the final status.
    pub async fn one_deploy(&self, slot: &str, zip: Vec<u8>) -> serde_json::Value {
        let token = self.arm_token().await;
        let r = self
            .http
            .post(self.scm(slot, "/api/publish?type=zip&async=true"))
            .bearer_auth(&token)
            .body(zip)
            .send()
            .await
            .expect("publish");
        assert_eq!(r.status(), 202);
        let location = r.headers()["location"].to_str().expect("ascii").to_owned();
        assert!(location.contains("/api/deployments/latest"));
        self.poll_deployment(&location, &token).await
    }

    pub async fn poll_deployment(&self, location: &str, token: &str) -> serde_json::Value {
        for _ in 0..600 {
            let v: serde_json::Value = self
                .http
                .get(location)
                .bearer_auth(token)
                .send()
                .await
                .expect("poll")
                .json()
                .await
                .expect("json");
            if v["complete"] == true {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("deployment did not finish");
    }
}

/// `application/x-www-form-urlencoded` text for the pairs.
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Builds a zip in memory from (name, content) pairs.
pub fn zip(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, content) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("zip entry");
            w.write_all(content.as_bytes()).expect("zip write");
        }
        w.finish().expect("zip finish");
    }
    buf.into_inner()
}

pub fn app_zip(version: &str) -> Vec<u8> {
    zip(&[("app.py", APP_PY), ("VERSION", version)])
}

/// Waits until the URL answers 200 with the given body (apps restart asynchronously), for at most the
/// emulator's own app start timeout: a Python process started while the whole suite runs on two cores can
/// take more than the 10 s this once allowed.
pub async fn eventually_body(f: &Fixture, url: &str, expected: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = (0, String::new());
    while std::time::Instant::now() < deadline {
        last = f.get_text(url).await;
        if last.0 == 200 && last.1 == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never answered 200 '{expected}' within 30 s, last: {last:?}");
}
