//! Measurement 3: upload of a large package to the emulator's OneDeploy endpoint, by the product's Kudu
//! client (in its own process, so its peak RSS is its own) versus a raw `curl --data-binary` of the
//! same file to the same endpoint. Both throughputs come from the emulator's request log (arrival of
//! the request to its response), so both sides are timed by the same clock at the same place.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use slot_release_azure::{AppRef, DeployOptions, SlotName};
use slot_release_emulator::{Emulator, EmulatorOptions, RequestRecord, Seed};

use super::report::{RatioKind, Row, Section, Target, Unit, median};
use super::{Ctx, Noise, raw_token, spn_env, timed};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-0000000000a1";
const GROUP: &str = "contoso-rg";
const APP: &str = "contoso-web";
/// Environment of the child: the CA file and the service connection id.
const CA_VAR: &str = "SLOT_RELEASE_BENCH_CA";
const CONNECTION_VAR: &str = "SLOT_RELEASE_BENCH_CONNECTION";

pub(crate) async fn measure(ctx: &Ctx) -> anyhow::Result<Section> {
    let mib = ctx.sizes.upload_mib;
    let dir = ctx.scratch.join("upload");
    std::fs::create_dir_all(&dir)?;
    let package = dir.join("package.zip");
    write_package(&package, mib)?;
    let size_mib = std::fs::metadata(&package)?.len() as f64 / 1_048_576.0;

    let mut opts = EmulatorOptions::new(Seed::sample(), dir.join("emulator"));
    opts.deployment_step_delay = Duration::from_millis(10);
    let em = Emulator::start(opts).await?;
    let (id, env) = spn_env(&em)?;
    let http = em.client_builder()?.build()?;
    let token = raw_token(
        &em,
        &http,
        &format!("{}.default", em.endpoints().arm_audience),
    )
    .await?;
    let scm = em.scm_url(APP, "staging");
    let host_port = scm.trim_start_matches("https://").to_owned();
    let host = host_port.split(':').next().unwrap_or_default().to_owned();
    // The release xtask beside the binary (not current_exe: a rebuild may have replaced that file).
    let exe = ctx.binary.with_file_name("xtask");

    let runs = ctx.sizes.upload_runs.max(1);
    let (mut ours, mut curl, mut ours_rss, mut curl_rss, mut ours_wall) =
        (vec![], vec![], vec![], vec![], vec![]);
    // Interleaved, so a slow patch of the shared machine hits both sides alike.
    for _ in 0..runs {
        // Curl: the same endpoint and query, the bearer token of the same identity.
        let mut c = Command::new("curl");
        c.args(["-sS", "-o", "/dev/null", "--fail", "--cacert"])
            .arg(em.ca_path())
            .arg("--resolve")
            .arg(format!("{host}:{}:127.0.0.1", em.port()))
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(["-H", "Content-Type: application/octet-stream"]);
        // `--data-binary @file` loads the file into memory and refuses files over 1 GiB, so larger
        // packages are streamed with `-T` (same method, endpoint and body).
        if mib < 1000 {
            c.arg("--data-binary")
                .arg(format!("@{}", package.display()));
        } else {
            // No `Expect: 100-continue` round trip, as with `--data-binary`.
            c.args(["-H", "Expect:", "-X", "POST", "-T"]).arg(&package);
        }
        c.arg(format!(
            "{scm}/api/publish?type=zip&async=true&clean=true&restart=true"
        ));
        let t = run_blocking(c, &ctx.scratch).await?;
        if !t.success {
            bail!("curl's upload failed");
        }
        curl.push(publish_seconds(&em)?);
        curl_rss.push(t.rss_mib);
        wait_idle(&em).await;

        let mut c = Command::new(&exe);
        c.args(["bench", "--upload-child"])
            .arg(&package)
            .envs(&env)
            .env(CA_VAR, em.ca_path())
            .env(CONNECTION_VAR, &id);
        let t = run_blocking(c, &ctx.scratch).await?;
        if !t.success {
            bail!("the Kudu client's upload failed");
        }
        ours.push(publish_seconds(&em)?);
        ours_rss.push(t.rss_mib);
        ours_wall.push(t.wall);
        wait_idle(&em).await;
    }
    em.shutdown().await;
    let throughput = |seconds: &[f64]| seconds.iter().map(|s| size_mib / s).collect::<Vec<_>>();
    let curl_name = if mib < 1000 {
        "`curl --data-binary`"
    } else {
        "`curl -X POST -T` (streamed)"
    };
    Ok(Section {
        title: "3. Upload (OneDeploy)".into(),
        rows: vec![
            Row::from_runs(
                format!("Kudu client, {size_mib:.0} MiB package"),
                &throughput(&ours),
                Unit::MiBps,
                curl_name,
                &throughput(&curl),
                RatioKind::Share,
                Target::RatioAtLeast { value: 0.9 },
            ),
            Row::alone_runs(
                "peak RSS of the uploading process",
                &ours_rss,
                Unit::MiB,
                Target::FigureAtMost { value: 100.0 },
            ),
            Row::from_runs(
                "peak RSS of the uploading process",
                &ours_rss,
                Unit::MiB,
                curl_name,
                &curl_rss,
                RatioKind::Speedup,
                Target::None,
            ),
        ],
        notes: vec![
            format!(
                "Median of {runs} uploads each, interleaved (curl, ours, curl, ...), with the \
                 slowest and fastest beside it, of a {size_mib:.0} MiB stored zip of \
                 random bytes (served from the page cache) to \
                 `POST /api/publish?type=zip&async=true` of the staging slot. Throughput = size ÷ \
                 the POST's duration in the emulator's request log (headers in to response out)."
            ),
            format!(
                "The client's process is `cargo xtask bench --upload-child` (the product's \
                 `Kudu::deploy_zip`, streaming from disk, then polling until the deployment \
                 finished: {:.1} s wall in all, median). Curl's `--data-binary @file` reads the \
                 whole file into memory first and refuses files over 1 GiB (\"out of memory\"), so \
                 from 1,000 MiB on the baseline streams the same body with `-T`.",
                median(&ours_wall)
            ),
        ],
    })
}

async fn run_blocking(c: Command, scratch: &Path) -> anyhow::Result<super::Timed> {
    let scratch = scratch.to_path_buf();
    tokio::task::spawn_blocking(move || timed(c, &scratch)).await?
}

/// The duration of the latest OneDeploy POST in the emulator's log.
fn publish_seconds(em: &Emulator) -> anyhow::Result<f64> {
    let requests = em.requests();
    let post: &RequestRecord = requests
        .iter()
        .rev()
        .find(|r| r.method == "POST" && r.path.ends_with("/api/publish"))
        .context("the emulator saw no OneDeploy POST")?;
    if !(200..300).contains(&post.status) {
        bail!("the OneDeploy POST answered {}", post.status);
    }
    Ok((post.duration_ms.max(1)) as f64 / 1000.0)
}

/// Waits until the emulator has finished the last deployment, so the next upload is not a 409.
async fn wait_idle(em: &Emulator) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        let busy = em
            .snapshot()
            .slot(APP, "staging")
            .is_some_and(|s| s.deployments.iter().any(|d| !d.complete));
        if !busy {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stored (uncompressed) zip of `mib` MiB of random bytes plus an index page, so the upload is
/// really that big.
fn write_package(path: &Path, mib: u64) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut z = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let stored = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(mib >= 4000);
    z.start_file("blob.bin", stored)?;
    let mut noise = Noise::new(0x9E37_79B9_7F4A_7C15);
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        noise.fill(&mut chunk);
        z.write_all(&chunk)?;
    }
    z.start_file("index.html", stored)?;
    z.write_all(b"benchmark package\n")?;
    z.finish()?;
    Ok(())
}

/// `--upload-child PACKAGE`: one `deploy_zip` to the staging slot with the connection in the
/// environment; prints the wall seconds.
pub(crate) async fn child(package: &Path) -> anyhow::Result<()> {
    let id = std::env::var(CONNECTION_VAR).with_context(|| format!("{CONNECTION_VAR} unset"))?;
    let ca_path = std::env::var(CA_VAR).with_context(|| format!("{CA_VAR} unset"))?;
    let ca = std::fs::read_to_string(&ca_path)?;
    let (cred, cloud) =
        slot_release_azure::ServiceConnection::from_agent_env(&id, &|k| std::env::var(k).ok())?
            .into_parts();
    let az =
        slot_release_azure::Azure::new(cred, cloud, slot_release_azure::HttpOptions::emulator(ca))?;
    let app = AppRef::new(SUBSCRIPTION, GROUP, APP)?;
    let kudu = az.web_app(&app).kudu(&SlotName::new("staging")?);
    let started = Instant::now();
    let d = kudu.deploy_zip(package, &DeployOptions::default()).await?;
    println!(
        "{} {:?} {:.3}",
        d.id,
        d.status,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
