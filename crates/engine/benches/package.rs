//! Packaging benchmark: generates a tree and compares `build_package` with `zip -r`, `tar | gzip` and a
//! plain read (`cat > /dev/null`), printing wall time, archive size and peak RSS of each.
//!
//! `cargo bench -p slot-release-engine --bench package -- [FILES] [TOTAL_MIB]` (defaults: 5000 files,
//! 200 MiB). Half of the bytes are compressible text, half random. Needs `zip`, `tar`, `gzip` and
//! `/usr/bin/time` on the machine. Each contender runs as its own process under `/usr/bin/time`, so peak
//! RSS is that process's alone; our build runs as this binary again in `--child` mode, where
//! `BENCH_WINDOW_KIB` and `BENCH_CHUNK_KIB` override the buffer budget and the chunk size.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use slot_release_engine::package::{BuildInfo, BuildOptions, PackageSpec, build_package};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().map(String::as_str) == Some("--child") {
        child(&args[1..]);
        return;
    }
    let numbers: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let files = numbers.first().copied().unwrap_or(5000).max(1);
    let total_mib = numbers.get(1).copied().unwrap_or(200).max(1);

    let work = tempfile::tempdir().expect("temporary directory");
    let root = work.path().join("tree");
    let out = work.path().join("out");
    fs::create_dir_all(&out).expect("output directory");
    let started = Instant::now();
    let bytes = generate(&root, files, total_mib << 20);
    println!(
        "tree: {files} files, {:.1} MiB (half text, half random), generated in {:.1} s; {} CPUs",
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );

    let exe = std::env::current_exe().expect("own path");
    let root_s = root.to_string_lossy().into_owned();
    let contenders: Vec<(&str, Vec<String>, Option<PathBuf>)> = vec![
        (
            "cat > /dev/null (read only)",
            sh(&format!(
                "cd '{root_s}' && find . -type f -print0 | xargs -0 cat > /dev/null"
            )),
            None,
        ),
        (
            "zip -r -q (Info-ZIP, level 6)",
            sh(&format!(
                "cd '{root_s}' && zip -r -q '{}' .",
                out.join("info.zip").display()
            )),
            Some(out.join("info.zip")),
        ),
        (
            "tar | gzip -6",
            sh(&format!(
                "cd '{root_s}' && tar -cf - . | gzip -6 > '{}'",
                out.join("tree.tar.gz").display()
            )),
            Some(out.join("tree.tar.gz")),
        ),
        (
            "slot-release, 1 thread",
            vec![
                exe.to_string_lossy().into_owned(),
                "--child".into(),
                root_s.clone(),
                out.join("one").to_string_lossy().into_owned(),
                "1".into(),
            ],
            Some(out.join("one/package.zip")),
        ),
        (
            "slot-release, all threads",
            vec![
                exe.to_string_lossy().into_owned(),
                "--child".into(),
                root_s.clone(),
                out.join("all").to_string_lossy().into_owned(),
                "0".into(),
            ],
            Some(out.join("all/package.zip")),
        ),
    ];

    println!(
        "{:<32} {:>9} {:>12} {:>13}",
        "contender", "time (s)", "size (MiB)", "peak RSS (MB)"
    );
    for (name, command, output) in contenders {
        let (seconds, rss_kb) = timed(&command, &work.path().join("time.txt"));
        let size = output.and_then(|p| fs::metadata(p).ok()).map_or_else(
            || "-".to_owned(),
            |m| format!("{:.1}", m.len() as f64 / 1048576.0),
        );
        println!(
            "{name:<32} {seconds:>9.2} {size:>12} {:>13.1}",
            rss_kb as f64 / 1000.0
        );
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Runs `command` under `/usr/bin/time` and returns (wall seconds, max RSS in KB).
fn timed(command: &[String], report: &Path) -> (f64, u64) {
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(report)
        .args(command)
        .status()
        .expect("/usr/bin/time runs");
    assert!(status.success(), "{command:?} failed");
    let text = fs::read_to_string(report).expect("time report");
    let mut parts = text.split_whitespace();
    let seconds = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN);
    let rss = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (seconds, rss)
}

/// `--child ROOT OUT THREADS`: one package build, in its own process so its peak RSS is measured alone.
fn child(args: &[String]) {
    let [root, out, threads] = args else {
        panic!("usage: --child ROOT OUT THREADS");
    };
    let threads: usize = threads.parse().expect("thread count");
    // Knobs for exploring the memory/speed trade-off without rebuilding.
    let knob = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let defaults = BuildOptions::default();
    let opts = BuildOptions {
        threads: std::num::NonZeroUsize::new(threads),
        window_bytes: knob("BENCH_WINDOW_KIB").map_or(defaults.window_bytes, |k| k << 10),
        chunk_bytes: knob("BENCH_CHUNK_KIB")
            .and_then(|k| usize::try_from(k << 10).ok())
            .unwrap_or(defaults.chunk_bytes),
        ..defaults
    };
    let info = BuildInfo {
        version: "0.0.0-bench".into(),
        commit: None,
        build_id: "bench".into(),
        created_from: "benchmark".into(),
    };
    let built = build_package(&PackageSpec::new(root), &info, Path::new(out), &opts)
        .expect("package builds");
    assert!(built.size > 0);
}

/// Writes `files` files totalling about `total` bytes in nested folders; even files are text, odd random.
fn generate(root: &Path, files: u64, total: u64) -> u64 {
    let per_file = (total / files).max(1);
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut written = 0;
    for i in 0..files {
        let dir = root.join(format!("d{:02}/e{:02}", i % 37, i % 11));
        fs::create_dir_all(&dir).expect("folder");
        // Sizes vary from half to one and a half times the mean.
        let size = per_file / 2 + next() % per_file.max(1);
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        if i % 2 == 0 {
            let words = [
                "release", "slot", "swap", "health", "package", "journal", "deploy", "\n",
            ];
            while (data.len() as u64) < size {
                data.extend_from_slice(words[(next() % 8) as usize].as_bytes());
                data.push(b' ');
            }
            data.truncate(usize::try_from(size).unwrap_or(0));
        } else {
            while (data.len() as u64) < size {
                data.extend_from_slice(&next().to_le_bytes());
            }
            data.truncate(usize::try_from(size).unwrap_or(0));
        }
        let mut f = fs::File::create(dir.join(format!("f{i:06}.dat"))).expect("file");
        f.write_all(&data).expect("write");
        written += data.len() as u64;
    }
    written
}
