//! Benchmark: peak RSS of this process while uploading a 1 GiB package with OneDeploy. The emulator
//! runs in a child process (this program re-executed with `serve`) so its memory is not counted.
//! Run with `cargo run --release -p slot-release-azure --example upload_rss [size-in-MiB]`.

use slot_release_azure::{AppRef, Azure, DeployOptions, HttpOptions, ServiceConnection, SlotName};
use slot_release_emulator::{ConnectionKind, Emulator, EmulatorOptions, Seed};
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")
                    .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
            })
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        return serve().await;
    }
    let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1024);
    let dir = tempfile::tempdir()?;

    // A stored (uncompressed) zip of pseudo-random bytes, so the upload really is `mib` MiB.
    let pkg = dir.path().join("package.zip");
    {
        let mut z = zip::ZipWriter::new(std::io::BufWriter::new(std::fs::File::create(&pkg)?));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(mib >= 4096);
        z.start_file("blob.bin", opts)?;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..mib {
            for b in chunk.chunks_mut(8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b.copy_from_slice(&state.to_le_bytes()[..b.len()]);
            }
            z.write_all(&chunk)?;
        }
        z.start_file("index.html", zip::write::SimpleFileOptions::default())?;
        z.write_all(b"big package")?;
        z.finish()?;
    }
    let size = std::fs::metadata(&pkg)?.len();

    let mut child = std::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .arg(dir.path().join("emulator"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
    let mut vars: HashMap<String, String> = HashMap::new();
    let mut ca = String::new();
    for line in lines.by_ref() {
        let line = line?;
        if line == "READY" {
            break;
        }
        if let Some(path) = line.strip_prefix("CA ") {
            ca = std::fs::read_to_string(path)?;
        } else if let Some((k, v)) = line.split_once('=') {
            vars.insert(k.to_owned(), v.to_owned());
        }
    }
    let id = vars
        .keys()
        .find_map(|k| k.strip_prefix("ENDPOINT_URL_"))
        .ok_or("no connection")?
        .to_owned();
    let (cred, cloud) =
        ServiceConnection::from_agent_env(&id, &|k| vars.get(k).cloned())?.into_parts();
    let az = Azure::new(cred, cloud, HttpOptions::emulator(ca))?;
    let app = AppRef::new(
        "00000000-0000-0000-0000-0000000000a1",
        "contoso-rg",
        "contoso-web",
    )?;
    let kudu = az.web_app(&app).kudu(&SlotName::new("staging")?);
    let before = vm_hwm_kib();
    let started = Instant::now();
    let d = kudu
        .deploy_zip(
            &pkg,
            &DeployOptions {
                timeout: Duration::from_secs(1800),
                ..DeployOptions::default()
            },
        )
        .await?;
    let took = started.elapsed();
    let after = vm_hwm_kib();
    println!(
        "uploaded {:.1} MiB in {took:?} (deployment {} {:?}); peak RSS before upload {:.1} MiB, after {:.1} MiB",
        size as f64 / 1048576.0,
        d.id,
        d.status,
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
    drop(child.stdin.take());
    let _ = child.wait();
    Ok(())
}

/// Child mode: run the emulator, print the service connection, wait for stdin to close.
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    let work = std::env::args().nth(2).ok_or("work dir")?;
    let mut opts = EmulatorOptions::new(Seed::sample(), &work);
    opts.deployment_step_delay = Duration::from_millis(10);
    let em = Emulator::start(opts).await?;
    let mut out = std::io::stdout().lock();
    for (k, v) in em.service_connection_env(&ConnectionKind::ServicePrincipal) {
        writeln!(out, "{k}={v}")?;
    }
    writeln!(out, "CA {}", em.ca_path().display())?;
    writeln!(out, "READY")?;
    out.flush()?;
    drop(out);
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
    })
    .await?;
    em.shutdown().await;
    Ok(())
}
