//! Packaging benchmark: generates a tree and compares `build_package` with `zip -r`, `tar | gzip` and a
//! plain read (`cat > /dev/null`), printing wall time, archive size and peak RSS of each.
//!
//! `cargo bench -p slot-release-engine --bench package -- [--scaling] [--one-file] [--runs N] [FILES]
//! [TOTAL_MIB]` (defaults: 5000 files, 200 MiB). Half of the files are compressible text, half random.
//! `--scaling` compares only `build_package` (all threads) with `zip -r`, the rows of the scaling table;
//! `--one-file` makes the tree one file of TOTAL_MIB of text (FILES is ignored); `--runs N` runs the
//! contenders N times, interleaved, and prints the median with the fastest and slowest run. Needs `zip`,
//! `tar`, `gzip` and `/usr/bin/time` on the machine. Each contender runs as its own process under
//! `/usr/bin/time`, so peak RSS is that process's alone (the largest over the runs); our build runs as this
//! binary again in `--child` mode, where `BENCH_WINDOW_KIB` and `BENCH_CHUNK_KIB` override the buffer
//! budget and the chunk size.

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
    let scaling = args.iter().any(|a| a == "--scaling");
    let one_file = args.iter().any(|a| a == "--one-file");
    let runs = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let numbers: Vec<u64> = args
        .iter()
        .enumerate()
        .filter(|(i, _)| *i == 0 || args[i - 1] != "--runs")
        .filter_map(|(_, a)| a.parse().ok())
        .collect();
    let files = numbers.first().copied().unwrap_or(5000).max(1);
    let total_mib = numbers.get(1).copied().unwrap_or(200).max(1);

    let work = tempfile::tempdir().expect("temporary directory");
    let root = work.path().join("tree");
    let out = work.path().join("out");
    fs::create_dir_all(&out).expect("output directory");
    let started = Instant::now();
    let (files, bytes, kind) = if one_file {
        let bytes = generate_one(&root, total_mib << 20);
        (1, bytes, "text")
    } else {
        (
            files,
            generate(&root, files, total_mib << 20),
            "half text, half random",
        )
    };
    println!(
        "tree: {files} files, {:.1} MiB ({kind}), generated in {:.1} s; {} CPUs; {runs} runs",
        bytes as f64 / 1048576.0,
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(1, usize::from)
    );

    let exe = std::env::current_exe().expect("own path");
    let root_s = root.to_string_lossy().into_owned();
    let ours = |name: &'static str, dir: &str, threads: &str| {
        (
            name,
            vec![
                exe.to_string_lossy().into_owned(),
                "--child".into(),
                root_s.clone(),
                out.join(dir).to_string_lossy().into_owned(),
                threads.into(),
            ],
            Some(out.join(dir).join("package.zip")),
        )
    };
    let zip = (
        "zip -r -q (Info-ZIP, level 6)",
        sh(&format!(
            "cd '{root_s}' && zip -r -q '{}' .",
            out.join("info.zip").display()
        )),
        Some(out.join("info.zip")),
    );
    let contenders: Vec<(&str, Vec<String>, Option<PathBuf>)> = if scaling {
        vec![zip, ours("slot-release, all threads", "all", "0")]
    } else {
        vec![
            (
                "cat > /dev/null (read only)",
                sh(&format!(
                    "cd '{root_s}' && find . -type f -print0 | xargs -0 cat > /dev/null"
                )),
                None,
            ),
            zip,
            (
                "tar | gzip -6",
                sh(&format!(
                    "cd '{root_s}' && tar -cf - . | gzip -6 > '{}'",
                    out.join("tree.tar.gz").display()
                )),
                Some(out.join("tree.tar.gz")),
            ),
            ours("slot-release, 1 thread", "one", "1"),
            ours("slot-release, all threads", "all", "0"),
        ]
    };

    // Interleaved, so a change in the machine's load falls on every contender alike.
    let mut seconds = vec![Vec::new(); contenders.len()];
    let mut rss_kb = vec![0u64; contenders.len()];
    let mut sizes = vec![None; contenders.len()];
    for _ in 0..runs {
        for (k, (_, command, output)) in contenders.iter().enumerate() {
            if let Some(path) = output {
                // Each run writes a new archive, as the first did.
                let _ = fs::remove_file(path);
            }
            let (s, rss) = timed(command, &work.path().join("time.txt"));
            seconds[k].push(s);
            rss_kb[k] = rss_kb[k].max(rss);
            sizes[k] = output
                .as_ref()
                .and_then(|p| fs::metadata(p).ok())
                .map(|m| m.len());
        }
    }

    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>12} {:>13}",
        "contender", "median(s)", "min(s)", "max(s)", "size (MiB)", "peak RSS (MB)"
    );
    for (k, (name, _, _)) in contenders.iter().enumerate() {
        let mut s = seconds[k].clone();
        s.sort_by(f64::total_cmp);
        let size = sizes[k].map_or_else(
            || "-".to_owned(),
            |b| format!("{:.1}", b as f64 / 1048576.0),
        );
        println!(
            "{name:<32} {:>9.3} {:>9.3} {:>9.3} {size:>12} {:>13.1}",
            s[s.len() / 2],
            s[0],
            s[s.len() - 1],
            rss_kb[k] as f64 / 1000.0
        );
    }
}

fn sh(script: &str) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script.into()]
}

/// Runs `command` under `/usr/bin/time` and returns (wall seconds, max RSS in KB). The wall time is taken
/// here, finer than `time`'s hundredths: a small tree packages in a few of them.
fn timed(command: &[String], report: &Path) -> (f64, u64) {
    let started = Instant::now();
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(report)
        .args(command)
        .status()
        .expect("/usr/bin/time runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "{command:?} failed");
    let text = fs::read_to_string(report).expect("time report");
    let rss = text
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
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

/// Xorshift64: fast, deterministic, and deflate cannot shrink it.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self, data: &mut Vec<u8>, size: usize) {
        let words = [
            "release", "slot", "swap", "health", "package", "journal", "deploy", "\n",
        ];
        while data.len() < size {
            data.extend_from_slice(words[(self.next() % 8) as usize].as_bytes());
            data.push(b' ');
        }
        data.truncate(size);
    }

    fn random(&mut self, data: &mut Vec<u8>, size: usize) {
        while data.len() < size {
            data.extend_from_slice(&self.next().to_le_bytes());
        }
        data.truncate(size);
    }
}

/// Writes `files` files totalling about `total` bytes in nested folders; even files are text, odd random.
fn generate(root: &Path, files: u64, total: u64) -> u64 {
    let per_file = (total / files).max(1);
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    let mut written = 0;
    let mut data = Vec::new();
    for i in 0..files {
        let dir = root.join(format!("d{:02}/e{:02}", i % 37, i % 11));
        if i < 37 * 11 {
            fs::create_dir_all(&dir).expect("folder");
        }
        // Sizes vary from half to one and a half times the mean.
        let size = usize::try_from(per_file / 2 + noise.next() % per_file.max(1)).unwrap_or(0);
        data.clear();
        if i % 2 == 0 {
            noise.text(&mut data, size);
        } else {
            noise.random(&mut data, size);
        }
        let mut f = fs::File::create(dir.join(format!("f{i:06}.dat"))).expect("file");
        f.write_all(&data).expect("write");
        written += data.len() as u64;
    }
    written
}

/// Writes one text file of `total` bytes (a log, a bundle, a data dump), 1 MiB at a time.
fn generate_one(root: &Path, total: u64) -> u64 {
    fs::create_dir_all(root).expect("folder");
    let mut f = fs::File::create(root.join("large.txt")).expect("file");
    let mut noise = Noise(0x2545_F491_4F6C_DD1D);
    let mut data = Vec::with_capacity(1 << 20);
    let mut written = 0;
    while written < total {
        data.clear();
        let size = usize::try_from((total - written).min(1 << 20)).unwrap_or(1 << 20);
        noise.text(&mut data, size);
        f.write_all(&data).expect("write");
        written += data.len() as u64;
    }
    written
}
