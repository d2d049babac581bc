//! The end-to-end harness shared by the binary's test files: an emulator seeded from a copy of an example
//! config, the environment a pipeline step gets, and helpers that run the real binary and read the result.

// Each test file uses part of the harness.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use slot_release_emulator::{Emulator, EmulatorOptions};
use slot_release_engine::port::{self, Port};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_pipelines::{Log, OutputMode};
use slot_release_rehearse as rehearse;
use tokio_util::sync::CancellationToken;

pub const CONNECTION: &str = "5a7c3f10-0000-0000-0000-00000000e0e0";
pub const APP: &str = "contoso-web";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running emulator with the example app, and the environment a pipeline step would get.
pub struct World {
    pub emulator: Emulator,
    pub env: BTreeMap<String, String>,
    pub config: PathBuf,
    pub _dir: tempfile::TempDir,
    pub port: Arc<dyn Port>,
    /// The app the config releases.
    pub app: String,
}

/// Copies the python example with faster timings, so each test runs in seconds.
pub fn python_example(dir: &Path, edit: impl Fn(String) -> String) -> PathBuf {
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    for entry in std::fs::read_dir(root().join("examples/python-webapp")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), app.join(entry.file_name())).unwrap();
        }
    }
    let config = app.join("release.yml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("duration: 10s", "duration: 3s")
        // Room for a loaded two-core CI machine (a python start, a migration, three probes 1s apart).
        .replace("timeout: 30s", "timeout: 15s");
    std::fs::write(&config, edit(text)).unwrap();
    config
}

impl World {
    pub async fn start(config: PathBuf, dir: tempfile::TempDir) -> World {
        Self::start_with(config, dir, |_| {}).await
    }

    /// [`World::start`] with the emulator's options changed before it starts (host name style,
    /// timeouts).
    pub async fn start_with(
        config: PathBuf,
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut EmulatorOptions),
    ) -> World {
        let request = LoadRequest {
            release_id: Some("r0".into()),
            ..LoadRequest::default()
        };
        let loaded = release::load(&config, &request).unwrap();
        let previous = dir.path().join("previous");
        let code = matches!(
            loaded.spec.app.kind,
            slot_release_engine::spec::AppKind::Code { .. }
        );
        if code {
            let slot_release_engine::spec::AppKind::Code { root, .. } = &loaded.spec.app.kind
            else {
                unreachable!()
            };
            rehearse::prepare_previous(root, &previous).unwrap();
        }
        let mut seed = rehearse::seed(&loaded.spec, code.then_some(previous.as_path()));
        seed.service_connections[0].id = CONNECTION.to_owned();
        let mut opts = EmulatorOptions::new(seed, dir.path().join("emulator"));
        opts.deployment_step_delay = Duration::from_millis(20);
        opts.images.push(slot_release_emulator::ImageMapping {
            pattern: "contoso.azurecr.io/contoso/app:*".into(),
            command: "python3 -c \"import http.server,os\nclass H(http.server.BaseHTTPRequestHandler):\n def do_GET(s):\n  s.send_response(200);s.end_headers();s.wfile.write(b'ok')\nhttp.server.HTTPServer(('127.0.0.1',int(os.environ['PORT'])),H).serve_forever()\"".into(),
            dir: dir.path().to_path_buf(),
        });
        tweak(&mut opts);
        let emulator = Emulator::start(opts).await.unwrap();
        let mut env: BTreeMap<String, String> = emulator
            .service_connection_env_for(CONNECTION)
            .into_iter()
            .collect();
        env.insert(
            "AGENT_CAINFO".into(),
            emulator.ca_path().display().to_string(),
        );
        let lookup = |n: &str| env.get(n).cloned();
        let port: Arc<dyn Port> =
            Arc::new(port::connect(CONNECTION, &lookup, &loaded.spec.app).unwrap());
        let log = Log::new(OutputMode::Plain, Box::new(std::io::sink()));
        rehearse::prepare_shared_state(
            &loaded.spec,
            port.as_ref(),
            config.parent().unwrap(),
            &log,
            &CancellationToken::new(),
        )
        .await;
        World {
            emulator,
            env,
            config,
            _dir: dir,
            port,
            app: loaded.spec.app.name.clone(),
        }
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_slot-release"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            // Packages and summaries go to this test's own folder.
            .env("TMPDIR", self._dir.path())
            // Every job's first attempt, as the agent says; `retry` runs the next one.
            .env("SYSTEM_JOBATTEMPT", "1")
            .envs(&self.env)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .args(["--service-connection", CONNECTION])
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[]).await
    }

    /// Runs the binary with extra environment variables, echoing the command and its output for the
    /// test's log.
    pub async fn run_with(&self, args: &[&str], env: &[(&str, String)]) -> Output {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let out = cmd.output().await.unwrap();
        let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        eprintln!(
            "$ {}slot-release {}\n{}{}",
            shown.concat(),
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    pub fn slot(&self, slot: &str) -> slot_release_emulator::SlotSnapshot {
        self.emulator
            .snapshot()
            .slot(&self.app, slot)
            .cloned()
            .unwrap()
    }

    /// An HTTP client that trusts the emulator and reaches its host names.
    pub fn http(&self) -> reqwest::Client {
        self.emulator.client_builder().unwrap().build().unwrap()
    }

    /// Replaces the site's tags (as a site PATCH would), for tests that start from a given tag set.
    pub async fn replace_tags(&self, tags: &BTreeMap<String, String>) {
        let live = self.port.tags(&CancellationToken::new()).await.unwrap();
        let gone: BTreeMap<String, String> = live
            .keys()
            .filter(|k| !tags.contains_key(*k))
            .map(|k| (k.clone(), String::new()))
            .collect();
        if !gone.is_empty() {
            self.port
                .delete_tags(&gone, &CancellationToken::new())
                .await
                .unwrap();
        }
        if !tags.is_empty() {
            self.port
                .merge_tags(tags, &CancellationToken::new())
                .await
                .unwrap();
        }
    }

    /// The release lock's claim tags on the site (none once every run gave the lock back).
    pub fn lock_claims(&self) -> Vec<String> {
        self.slot("production")
            .tags
            .keys()
            .filter(|k| k.starts_with("slotrelease.claim."))
            .cloned()
            .collect()
    }

    /// Runs again as the agent retries a failed or killed job: the same run, the next job attempt.
    pub async fn retry(&self, args: &[&str], attempt: u32) -> Output {
        self.run_with(args, &[("SYSTEM_JOBATTEMPT", attempt.to_string())])
            .await
    }

    pub fn tag(&self, name: &str) -> Option<String> {
        self.slot("production").tags.get(name).cloned()
    }

    pub async fn get(&self, slot: &str, path: &str) -> Option<(u16, String)> {
        let url = self
            .port
            .slot_url(slot, &CancellationToken::new())
            .await
            .ok()?
            .join(path)
            .ok()?;
        let rsp = self.http().get(url).send().await.ok()?;
        let status = rsp.status().as_u16();
        Some((status, rsp.text().await.unwrap_or_default()))
    }

    /// Probes production until stopped; counts answers that were not healthy.
    pub fn watch_production(&self) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let bad = Arc::new(AtomicU32::new(0));
        let total = Arc::new(AtomicU32::new(0));
        let unanswered = Arc::new(AtomicU32::new(0));
        // The production host as ARM names it (the emulator's one app).
        let app = self.emulator.snapshot().apps[0].name.clone();
        let url = format!("{}/health", self.emulator.app_url(&app, "production"));
        let client = self.http();
        let (s, b, t, u) = (stop.clone(), bad.clone(), total.clone(), unanswered.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let probe = client
                    .get(url.clone())
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                let ok = match probe {
                    Ok(r) if r.status().is_success() => true,
                    Ok(r) => {
                        eprintln!("production probe: {}", r.status());
                        false
                    }
                    // The emulator restarts both slots' processes during a swap, so a request in that
                    // instant can find no listener; App Service swaps without that gap. Such a probe is
                    // counted apart, and only a few are tolerated: production that stops answering
                    // altogether is as down as one answering 500.
                    Err(e) => {
                        eprintln!("production probe (no answer): {e}");
                        u.fetch_add(1, Ordering::SeqCst);
                        true
                    }
                };
                t.fetch_add(1, Ordering::SeqCst);
                if !ok {
                    b.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        Prober {
            stop,
            bad,
            total,
            unanswered,
            task,
        }
    }
}

pub struct Prober {
    pub stop: Arc<AtomicBool>,
    pub bad: Arc<AtomicU32>,
    pub total: Arc<AtomicU32>,
    /// Probes that got no answer at all (no listener, a reset connection).
    pub unanswered: Arc<AtomicU32>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Prober {
    /// Stops probing and asserts production answered healthy every time.
    pub async fn assert_always_healthy(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        let total = self.total.load(Ordering::SeqCst);
        assert!(total > 0, "production was never probed");
        assert_eq!(
            self.bad.load(Ordering::SeqCst),
            0,
            "production was unhealthy in some of {total} probes"
        );
        // A swap's instant without a listener, at most once or twice per swap; never production gone.
        let unanswered = self.unanswered.load(Ordering::SeqCst);
        assert!(
            unanswered <= (total / 5).max(3),
            "production did not answer {unanswered} of {total} probes"
        );
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Everything the run printed (the log goes to stdout outside a pipeline, errors to stderr).
pub fn stderr(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Copies the container example with faster timings and a hook that needs no network.
pub fn container_example(dir: &Path) -> PathBuf {
    let app = dir.join("container");
    std::fs::create_dir_all(&app).unwrap();
    let config = app.join("release.yml");
    let text = std::fs::read_to_string(root().join("examples/container-app/release.yml"))
        .unwrap()
        .replace(
            "run: curl --fail --silent \"$(Staging.Url)/health\"",
            "run: echo smoke ok",
        )
        .replace("duration: 2m", "duration: 3s")
        .replace("interval: 5s", "interval: 1s");
    std::fs::write(&config, text).unwrap();
    config
}

pub async fn python_world(edit: impl Fn(String) -> String) -> World {
    let dir = tempfile::tempdir().unwrap();
    let config = python_example(dir.path(), edit);
    World::start(config, dir).await
}
