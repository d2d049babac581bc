//! Measurement 2: packaging. Reuses the engine's packaging benchmark (`cargo bench -p
//! slot-release-engine --bench package`, which times `build_package`, `zip -r`, `tar | gzip` and a plain
//! read of the same tree, each in its own process under `/usr/bin/time`) and adds a determinism check.

use std::path::Path;
use std::process::Command;

use anyhow::{Context as _, bail};
use slot_release_engine::package::{BuildInfo, BuildOptions, PackageSpec, build_package};

use super::report::{RatioKind, Row, Section, Target, Unit};
use super::{Ctx, Noise};

/// One line of the engine benchmark's table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Contender {
    name: String,
    seconds: f64,
    size_mib: Option<f64>,
    rss_mib: f64,
}

pub(crate) fn measure(ctx: &Ctx) -> anyhow::Result<Section> {
    let s = &ctx.sizes;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&ctx.root)
        .env("TMPDIR", &ctx.scratch)
        .args([
            "bench",
            "-p",
            "slot-release-engine",
            "--bench",
            "package",
            "--",
        ])
        .arg(s.files.to_string())
        .arg(s.tree_mib.to_string())
        .output()
        .context("cannot run cargo bench")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "the engine's packaging benchmark failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let table = parse(&text);
    let find = |prefix: &str| {
        table
            .iter()
            .find(|c| c.name.starts_with(prefix))
            .cloned()
            .with_context(|| format!("no `{prefix}` line in the benchmark's output:\n{text}"))
    };
    let read = find("cat")?;
    let zip = find("zip -r")?;
    let targz = find("tar")?;
    let one = find("slot-release, 1 thread")?;
    let all = find("slot-release, all threads")?;
    let size = |c: &Contender| c.size_mib.unwrap_or(f64::NAN);
    let deterministic = deterministic(&ctx.scratch.join("determinism"))?;
    let tree_line = text
        .lines()
        .find(|l| l.starts_with("tree:"))
        .unwrap_or_default()
        .to_owned();

    Ok(Section {
        title: "2. Packaging (`build` stage)".into(),
        rows: vec![
            Row::compared(
                "build_package, all threads",
                all.seconds,
                Unit::S,
                "`zip -r -q` (Info-ZIP)",
                zip.seconds,
                RatioKind::Speedup,
                Target::RatioAtLeast { value: 2.0 },
            ),
            Row::compared(
                "archive size",
                size(&all),
                Unit::MiB,
                "`zip -r -q`",
                size(&zip),
                RatioKind::Speedup,
                Target::RatioAtLeast { value: 1.0 },
            ),
            Row::compared(
                "build_package, all threads",
                all.seconds,
                Unit::S,
                "`tar | gzip -6`",
                targz.seconds,
                RatioKind::Speedup,
                Target::None,
            ),
            Row::compared(
                "archive size",
                size(&all),
                Unit::MiB,
                "`tar | gzip -6`",
                size(&targz),
                RatioKind::Speedup,
                Target::None,
            ),
            Row::compared(
                "build_package, all threads",
                all.seconds,
                Unit::S,
                "limit: `cat` every file > /dev/null",
                read.seconds,
                RatioKind::Share,
                Target::None,
            ),
            Row::compared(
                "build_package, 1 thread",
                one.seconds,
                Unit::S,
                "`zip -r -q`",
                zip.seconds,
                RatioKind::Speedup,
                Target::None,
            ),
            Row::alone(
                "peak RSS, all threads",
                all.rss_mib,
                Unit::MiB,
                Target::FigureAtMost { value: 64.0 },
            ),
            Row::alone(
                "peak RSS, 1 thread",
                one.rss_mib,
                Unit::MiB,
                Target::FigureAtMost { value: 64.0 },
            ),
            Row::compared(
                "peak RSS, all threads",
                all.rss_mib,
                Unit::MiB,
                "`zip -r -q`",
                zip.rss_mib,
                RatioKind::Speedup,
                Target::None,
            ),
            Row::alone(
                "deterministic (1 thread and all threads give identical bytes)",
                if deterministic { 1.0 } else { 0.0 },
                Unit::YesNo,
                Target::FigureAtLeast { value: 1.0 },
            ),
        ],
        notes: vec![
            format!(
                "Engine benchmark `cargo bench -p slot-release-engine --bench package -- {} {}`; {}. \
                 Every contender is its own process under /usr/bin/time, one run each, the tree in \
                 the page cache (the read-only pass runs first).",
                s.files, s.tree_mib, tree_line
            ),
            "Comparable compression: Info-ZIP and gzip at their default level 6, build_package at \
             its default (deflate, stored for entries that do not shrink)."
                .into(),
            "Determinism: the same generated tree (1,000 files, 8 MiB) packaged twice with 1 and \
             with all threads, compared byte for byte."
                .into(),
        ],
    })
}

/// Parses the engine benchmark's table: a name, then time, size (or `-`) and peak RSS in MB (10^3 KiB).
pub(crate) fn parse(text: &str) -> Vec<Contender> {
    text.lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [.., t, size, rss] = parts[..] else {
                return None;
            };
            let seconds: f64 = t.parse().ok()?;
            let rss_mb: f64 = rss.parse().ok()?;
            let size_mib = size.parse::<f64>().ok();
            if size_mib.is_none() && size != "-" {
                return None;
            }
            let name = parts[..parts.len() - 3].join(" ");
            Some(Contender {
                name,
                seconds,
                size_mib,
                // The engine bench prints KiB / 1000; back to KiB, then MiB.
                rss_mib: rss_mb * 1000.0 / 1024.0,
            })
        })
        .collect()
}

/// Packages one generated tree with 1 thread and with all threads and compares the bytes.
fn deterministic(dir: &Path) -> anyhow::Result<bool> {
    let root = dir.join("tree");
    let mut noise = Noise::new(42);
    let mut buf = vec![0u8; 16 * 1024];
    for i in 0..1000u32 {
        let folder = root.join(format!("d{}", i % 17));
        std::fs::create_dir_all(&folder)?;
        let len = usize::try_from(noise.next_u64() % (buf.len() as u64)).unwrap_or(0);
        if i % 2 == 0 {
            noise.fill(&mut buf[..len]);
        } else {
            for (j, b) in buf[..len].iter_mut().enumerate() {
                *b = b"slot release package\n"[j % 21];
            }
        }
        std::fs::write(folder.join(format!("f{i}.dat")), &buf[..len])?;
    }
    let info = BuildInfo {
        version: "0.0.0-bench".into(),
        commit: None,
        build_id: "bench".into(),
        created_from: "benchmark".into(),
    };
    let mut packages = vec![];
    for threads in [1usize, 0] {
        let opts = BuildOptions {
            threads: std::num::NonZeroUsize::new(threads),
            ..BuildOptions::default()
        };
        let out = dir.join(format!("out-{threads}"));
        let built = build_package(&PackageSpec::new(&root), &info, &out, &opts)
            .context("build_package failed")?;
        packages.push(std::fs::read(&built.path)?);
    }
    Ok(packages[0] == packages[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_engine_benchmark_table() {
        let text = "tree: 5 files\n\
            contender                         time (s)   size (MiB) peak RSS (MB)\n\
            cat > /dev/null (read only)           0.50            -           2.0\n\
            zip -r -q (Info-ZIP, level 6)         4.00        120.5           3.1\n\
            slot-release, all threads             1.25        118.0          40.96\n";
        let t = parse(text);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].name, "cat > /dev/null (read only)");
        assert_eq!(t[0].size_mib, None);
        assert_eq!(t[1].seconds, 4.0);
        assert_eq!(t[1].size_mib, Some(120.5));
        assert_eq!(t[2].name, "slot-release, all threads");
        assert!((t[2].rss_mib - 40.0).abs() < 1e-9);
    }
}
