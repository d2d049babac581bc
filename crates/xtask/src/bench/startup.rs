//! Measurement 1: start-up to the first Azure request through the Node entry point, versus a Node task
//! built on azure-pipelines-task-lib and azure-pipelines-tasks-azure-arm-rest, versus the floor (a bare
//! `node -e 0` plus the binary's own start).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use slot_release_emulator::{Emulator, EmulatorOptions, Seed};

use super::report::{RatioKind, Row, Section, Target, Unit, median};
use super::{Ctx, parse_time, spn_env, timed};

/// The Node baseline's folder, relative to the workspace root.
const BASELINE_DIR: &str = "bench/node-baseline";

pub(crate) async fn measure(ctx: &Ctx) -> anyhow::Result<Section> {
    install_baseline(&ctx.root)?;
    let em = Emulator::start(EmulatorOptions::new(
        Seed::sample(),
        ctx.scratch.join("startup-emulator"),
    ))
    .await?;
    let (id, env) = spn_env(&em)?;
    let config = ctx.root.join("examples/python-webapp/release.yml");
    let agent_temp = ctx.scratch.join("agent-temp");
    std::fs::create_dir_all(&agent_temp)?;

    let ours = |em: &Emulator| {
        let mut c = Command::new("node");
        c.arg(ctx.root.join("task/index.js"))
            .args(["plan", "--stage", "staging", "--config"])
            .arg(&config)
            .args(["--service-connection", &id]);
        agent_env(&mut c, &env, em, &agent_temp);
        c.env("SLOT_RELEASE_BINARY", &ctx.binary);
        c
    };
    let peer = |em: &Emulator| {
        let mut c = Command::new("node");
        c.arg(ctx.root.join(BASELINE_DIR).join("first-request.js"))
            .current_dir(ctx.root.join(BASELINE_DIR));
        agent_env(&mut c, &env, em, &agent_temp);
        c.env("INPUT_AZURESUBSCRIPTION", &id)
            .env("NODE_EXTRA_CA_CERTS", em.ca_path());
        c
    };

    let runs = ctx.sizes.startup_runs;
    let (mut ours_ms, mut ours_rss, mut peer_ms, mut peer_rss) = (vec![], vec![], vec![], vec![]);
    // Interleaved, so a slow patch of the shared machine hits both sides alike.
    for _ in 0..runs {
        let (ms, rss) = first_request(&em, ours(&em), &ctx.scratch).await?;
        ours_ms.push(ms);
        ours_rss.push(rss);
        let (ms, rss) = first_request(&em, peer(&em), &ctx.scratch).await?;
        peer_ms.push(ms);
        peer_rss.push(rss);
    }
    let (mut node_ms, mut bin_ms) = (vec![], vec![]);
    for _ in 0..runs {
        let mut c = Command::new("node");
        c.args(["-e", "0"]);
        node_ms.push(timed(c, &ctx.scratch)?.wall * 1000.0);
        let mut c = Command::new(&ctx.binary);
        c.arg("--version");
        bin_ms.push(timed(c, &ctx.scratch)?.wall * 1000.0);
    }
    em.shutdown().await;

    // One floor per run (node's start and the binary's, measured side by side), so the floor's
    // spread is that of what a run could have cost.
    let floor: Vec<f64> = node_ms.iter().zip(&bin_ms).map(|(n, b)| n + b).collect();
    Ok(Section {
        title: "1. Start-up to the first Azure request".into(),
        rows: vec![
            Row::from_runs(
                "`node task/index.js plan` → first request at the emulator",
                &ours_ms,
                Unit::Ms,
                "task-lib + azure-arm-rest",
                &peer_ms,
                RatioKind::Speedup,
                Target::RatioAtLeast { value: 4.0 },
            ),
            Row::from_runs(
                "same, against the floor",
                &ours_ms,
                Unit::Ms,
                "`node -e 0` + `slot-release --version`",
                &floor,
                RatioKind::Share,
                Target::RatioAtMost { value: 1.2 },
            ),
            Row::from_runs(
                "peak RSS (largest process: node or the binary)",
                &ours_rss,
                Unit::MiB,
                "task-lib + azure-arm-rest",
                &peer_rss,
                RatioKind::Speedup,
                Target::None,
            ),
        ],
        notes: vec![
            format!(
                "Median of {runs} runs each, interleaved, with the fastest and slowest beside it. Time from spawning `node` to the emulator \
                 receiving the first request (its arrival time in the emulator's request log, same \
                 clock). Ours runs the real entry point with the release binary \
                 (`SLOT_RELEASE_BINARY`); the baseline (`{BASELINE_DIR}/first-request.js`, packages \
                 pinned in its package-lock.json and installed with `npm ci`) loads both libraries, \
                 reads the same service connection and asks for a token (its default ADAL path: a POST to \
                 `/{{tenant}}/oauth2/token`, which the emulator answers 404 — only the time to that \
                 first request counts; its MSAL path first asks the public cloud for instance \
                 metadata, which a loopback-only run cannot reach)."
            ),
            format!(
                "Floor: `node -e 0` {:.1} ms + `slot-release --version` {:.1} ms (medians, wall \
                 time under /usr/bin/time). Peak RSS by `/usr/bin/time -f %M`, which reports the \
                 largest single process of the tree, not their sum.",
                median(&node_ms),
                median(&bin_ms)
            ),
        ],
    })
}

/// The agent environment of a step using the emulator's service connection.
fn agent_env(c: &mut Command, env: &BTreeMap<String, String>, em: &Emulator, temp: &Path) {
    c.env_clear()
        .env("AGENT_TEMPDIRECTORY", temp)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(env)
        .env("AGENT_CAINFO", em.ca_path());
}

/// Runs one process to its end and returns (ms from spawn to the emulator's first request, peak RSS).
async fn first_request(em: &Emulator, cmd: Command, scratch: &Path) -> anyhow::Result<(f64, f64)> {
    em.clear_requests();
    let scratch = scratch.to_path_buf();
    let spawned = time::OffsetDateTime::now_utc();
    let t = tokio::task::spawn_blocking(move || timed(cmd, &scratch)).await??;
    let first = em
        .requests()
        .iter()
        .map(|r| parse_time(&r.time))
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .min()
        .context("the process made no request to the emulator")?;
    let ms = (first - spawned).as_seconds_f64() * 1000.0;
    if ms <= 0.0 {
        bail!("the first request predates the spawn ({ms:.1} ms)");
    }
    Ok((ms, t.rss_mib))
}

/// `npm ci` of the baseline's pinned packages, once.
fn install_baseline(root: &Path) -> anyhow::Result<()> {
    let dir = root.join(BASELINE_DIR);
    if dir
        .join("node_modules/azure-pipelines-tasks-azure-arm-rest/package.json")
        .is_file()
    {
        return Ok(());
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .status()
        .context("cannot run npm ci")?;
    if !status.success() {
        bail!("npm ci --prefix {} failed ({status})", dir.display());
    }
    Ok(())
}
