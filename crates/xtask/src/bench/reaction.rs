//! Measurement 5: reaction time. From a Kudu deployment finishing in the emulator to the product's
//! client noticing it, versus the peers' fixed 5 s poll; and for a swap, whether polling stays within
//! the `Retry-After` the emulator sends, versus the peers' fixed 15 s poll.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use slot_release_azure::{
    AppRef, CancellationToken, ClientSettings, DeployOptions, LroOptions, SlotName, SwapOptions,
};
use slot_release_emulator::{Emulator, EmulatorOptions, Seed};

use super::report::{RatioKind, Row, Section, Target, Unit, fixed_poll_reaction};
use super::{Ctx, azure_client, parse_time};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000000a1";
const GROUP: &str = "contoso-rg";
const APP: &str = "contoso-web";
/// The peers' fixed intervals: Kudu deployment status and swap.
const PEER_KUDU_POLL: f64 = 5.0;
const PEER_SWAP_POLL: f64 = 15.0;

pub(crate) async fn measure(ctx: &Ctx) -> anyhow::Result<Section> {
    let dir = ctx.scratch.join("reaction");
    std::fs::create_dir_all(&dir)?;
    let package = dir.join("small.zip");
    write_small_package(&package)?;

    let mut reactions = vec![];
    let mut deploy_gaps = vec![];
    for (i, &step) in ctx.sizes.step_delays_ms.iter().enumerate() {
        let mut opts = EmulatorOptions::new(Seed::sample(), dir.join(format!("emulator-{i}")));
        // A different deployment length each time, so the end falls at a different phase of the
        // client's polling.
        opts.deployment_step_delay = Duration::from_millis(step);
        let em = Emulator::start(opts).await?;
        let az = azure_client(&em, ClientSettings::default())?;
        let app = AppRef::new(SUBSCRIPTION, GROUP, APP)?;
        let kudu = az.web_app(&app).kudu(&SlotName::new("staging")?);
        em.clear_requests();
        let d = kudu.deploy_zip(&package, &DeployOptions::default()).await?;
        let noticed = time::OffsetDateTime::now_utc();
        let snapshot = em.snapshot();
        let record = snapshot
            .slot(APP, "staging")
            .and_then(|s| s.deployments.iter().find(|r| r.id == d.id))
            .context("the deployment is not in the emulator's state")?;
        let ended = parse_time(record.end_time.as_deref().context("no end time")?)?;
        reactions.push((noticed - ended).as_seconds_f64());
        deploy_gaps.extend(poll_gaps(&em, |p| {
            p.contains("/api/deployments/") || p.ends_with("/api/publish")
        })?);
        em.shutdown().await;
    }

    // One swap; the emulator sends Retry-After with the operation.
    let opts = EmulatorOptions::new(Seed::sample(), dir.join("emulator-swap"));
    let retry_after = opts.lro_retry_after.as_secs_f64().ceil().max(1.0);
    let em = Emulator::start(opts).await?;
    let az = azure_client(&em, ClientSettings::default())?;
    let web = az.web_app(&AppRef::new(SUBSCRIPTION, GROUP, APP)?);
    // Warm the token and the app lookup so the swap timing is the swap's.
    web.get_slot(&SlotName::production(), &CancellationToken::new())
        .await?;
    // Each swap exchanges the slots again, so the same call repeats.
    let (mut swap_walls, mut swap_gaps) = (vec![], vec![]);
    for _ in 0..ctx.sizes.swap_runs.max(1) {
        em.clear_requests();
        let started = Instant::now();
        web.swap(
            &SlotName::new("staging")?,
            &SlotName::production(),
            &SwapOptions {
                preserve_vnet: None,
                wait: LroOptions::default(),
            },
        )
        .await?;
        swap_walls.push(started.elapsed().as_secs_f64());
        swap_gaps.extend(poll_gaps(&em, |p| {
            p.to_ascii_lowercase().contains("/operationresults/") || p.ends_with("/slotsswap")
        })?);
    }
    em.shutdown().await;
    let min_swap_gap = swap_gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let min_deploy_gap = deploy_gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let worst = reactions.iter().copied().fold(0.0, f64::max);

    Ok(Section {
        title: "5. Reaction time".into(),
        rows: vec![
            Row::from_runs(
                "deployment finished → client noticed",
                &reactions,
                Unit::S,
                "peer's fixed 5 s poll (expected median)",
                &[fixed_poll_reaction(PEER_KUDU_POLL)],
                RatioKind::Speedup,
                Target::FigureAtMost { value: 1.0 },
            ),
            Row::alone(
                "deployment finished → client noticed (worst)",
                worst,
                Unit::S,
                Target::None,
            ),
            Row::alone(
                "shortest gap between deployment requests (upload, polls)",
                if min_deploy_gap.is_finite() {
                    min_deploy_gap
                } else {
                    f64::NAN
                },
                Unit::S,
                Target::None,
            ),
            Row::from_runs(
                "swap: POST → client returned",
                &swap_walls,
                Unit::S,
                "peer's fixed 15 s poll (first poll)",
                &[PEER_SWAP_POLL],
                RatioKind::Speedup,
                Target::None,
            ),
            Row::compared(
                "swap: shortest gap between polls",
                if min_swap_gap.is_finite() {
                    min_swap_gap
                } else {
                    f64::NAN
                },
                Unit::S,
                "Retry-After",
                retry_after,
                RatioKind::Share,
                Target::RatioAtLeast { value: 0.98 },
            ),
        ],
        notes: vec![
            format!(
                "{} deployments of a small package, each to a fresh emulator whose deployment \
                 steps take {:?} ms (so the end falls at different phases of the polling). \
                 Reaction = the time `deploy_zip` returned minus the deployment's end time in the \
                 emulator (same clock). The emulator's Kudu sends no `Retry-After` on deployment \
                 status, so the client's own schedule applies (500 ms, growing by half up to 10 s).",
                reactions.len(),
                ctx.sizes.step_delays_ms
            ),
            format!(
                "Swap: {} swaps staging ⇄ production, one after another; the emulator answers the LRO with \
                 `Retry-After: {retry_after:.0}`, and the gaps between the client's requests to the \
                 operation (POST included) are taken from the emulator's request log; 0.98× leaves \
                 2% for timer granularity. The swap is noticed at the first poll the server allows, \
                 so its reaction time is bounded by `Retry-After`, not by the client.",
                swap_walls.len()
            ),
        ],
    })
}

/// Gaps in seconds between consecutive logged requests whose path matches.
fn poll_gaps(em: &Emulator, matches: impl Fn(&str) -> bool) -> anyhow::Result<Vec<f64>> {
    let times = em
        .requests()
        .iter()
        .filter(|r| matches(&r.path))
        .map(|r| parse_time(&r.time))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if times.is_empty() {
        bail!("no matching request in the emulator's log");
    }
    Ok(times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_seconds_f64())
        .collect())
}

fn write_small_package(path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut z = zip::ZipWriter::new(std::fs::File::create(path)?);
    z.start_file("index.html", zip::write::SimpleFileOptions::default())?;
    z.write_all(b"reaction benchmark\n")?;
    z.finish()?;
    Ok(())
}
