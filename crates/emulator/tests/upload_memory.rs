//! A large Kudu upload is streamed to disk: the process's resident memory stays flat while
//! hundreds of MiB go through (set `EMULATOR_UPLOAD_MIB=1024` to measure a 1 GiB upload). It is
//! its own test binary so no other test's memory blurs the measurement.

mod common;

use std::time::Duration;

use common::*;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_upload_keeps_resident_memory_flat() {
    let mib: u64 = std::env::var("EMULATOR_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let f = start().await;
    let token = f.arm_token().await;
    let client = f
        .emu
        .client_builder()
        .expect("builder")
        .build()
        .expect("client");
    let baseline = rss_kib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(baseline));
    let sampled = peak.clone();
    let sampler = tokio::spawn(async move {
        loop {
            sampled.fetch_max(rss_kib(), std::sync::atomic::Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let chunk = bytes::Bytes::from(vec![7u8; 1024 * 1024]);
    let stream =
        futures::stream::iter((0..mib).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let started = std::time::Instant::now();
    let r = client
        .post(f.scm("staging", "/api/publish?type=zip&async=true"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 202);
    let elapsed = started.elapsed();
    let location = r.headers()["location"].to_str().expect("ascii").to_owned();
    let record = f.poll_deployment(&location, &token).await;
    // Not a zip: the deployment fails, but only after the whole body was received and written.
    assert_eq!(record["status"], 3);
    sampler.abort();
    let peak = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(rss_kib());
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    println!(
        "uploaded {mib} MiB in {:.1} s; RSS baseline {} MiB, after {} MiB, growth {growth_mib} MiB",
        elapsed.as_secs_f64(),
        baseline / 1024,
        peak / 1024
    );
    assert!(
        growth_mib < 64,
        "RSS grew by {growth_mib} MiB for a {mib} MiB upload"
    );
}
