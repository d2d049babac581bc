//! Measurement 2: packaging. Reuses the engine's packaging benchmark (`cargo bench -p
//! slot-release-engine --bench package`, which times `build_package`, `zip -r`, `tar | gzip` and a plain
//! read of the same tree, each in its own process under `/usr/bin/time`, runs interleaved), adds the
//! scaling rows (few, many and very many small files, one large file: `build_package` against `zip -r`
//! with peak RSS) and a determinism check.

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
    /// Median over the runs.
    seconds: f64,
    min: f64,
    max: f64,
    size_mib: Option<f64>,
    /// The largest over the runs.
    rss_mib: f64,
}

impl Contender {
    /// "0.71 s, 0.68–0.86 over 5 runs"-style spread, for the row's wording.
    fn spread(&self, runs: usize) -> String {
        if runs > 1 {
            format!("median of {runs}, {:.2}–{:.2} s", self.min, self.max)
        } else {
            "1 run".to_owned()
        }
    }
}

/// A tree shape of the scaling table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    /// How the rows name it, e.g. "20k small files".
    pub label: &'static str,
    /// Files (ignored for one file).
    pub files: u64,
    /// Size of the tree in MiB.
    pub mib: u64,
    /// One file of `mib` instead of `files` files.
    pub one_file: bool,
    /// Interleaved runs of each side.
    pub runs: usize,
    /// What `build_package` must reach against `zip -r` (times faster).
    pub target: f64,
}

/// The target peak RSS of a build, whatever the tree.
const RSS_TARGET_MIB: f64 = 32.0;

/// Runs the engine's benchmark with `args` and parses its table.
fn engine_bench(ctx: &Ctx, args: &[String]) -> anyhow::Result<(Vec<Contender>, String)> {
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
        .args(args)
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
    Ok((parse(&text), text))
}

fn find(table: &[Contender], text: &str, prefix: &str) -> anyhow::Result<Contender> {
    table
        .iter()
        .find(|c| c.name.starts_with(prefix))
        .cloned()
        .with_context(|| format!("no `{prefix}` line in the benchmark's output:\n{text}"))
}

fn tree_line(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("tree:"))
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn measure(ctx: &Ctx) -> anyhow::Result<Section> {
    let s = &ctx.sizes;
    let runs = s.packaging_runs;
    let (table, text) = engine_bench(
        ctx,
        &[
            "--runs".to_owned(),
            runs.to_string(),
            s.files.to_string(),
            s.tree_mib.to_string(),
        ],
    )?;
    let read = find(&table, &text, "cat")?;
    let zip = find(&table, &text, "zip -r")?;
    let targz = find(&table, &text, "tar")?;
    let one = find(&table, &text, "slot-release, 1 thread")?;
    let all = find(&table, &text, "slot-release, all threads")?;
    let size = |c: &Contender| c.size_mib.unwrap_or(f64::NAN);
    let deterministic = deterministic(&ctx.scratch.join("determinism"))?;
    let mut notes = vec![format!(
        "Engine benchmark `cargo bench -p slot-release-engine --bench package -- --runs {runs} {} {}`; \
         {}. Every contender is its own process under /usr/bin/time, the runs interleaved, the tree \
         in the page cache (the read-only pass runs first); times are medians.",
        s.files,
        s.tree_mib,
        tree_line(&text)
    )];

    let mut rows = vec![
        Row::compared(
            format!("build_package, all threads ({})", all.spread(runs)),
            all.seconds,
            Unit::S,
            format!("`zip -r -q` (Info-ZIP; {})", zip.spread(runs)),
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
            Target::FigureAtMost {
                value: RSS_TARGET_MIB,
            },
        ),
        Row::alone(
            "peak RSS, 1 thread",
            one.rss_mib,
            Unit::MiB,
            Target::FigureAtMost {
                value: RSS_TARGET_MIB,
            },
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
    ];

    for shape in &s.packaging_shapes {
        let mut args = vec![
            "--scaling".to_owned(),
            "--runs".to_owned(),
            shape.runs.to_string(),
        ];
        if shape.one_file {
            args.push("--one-file".to_owned());
        }
        args.extend([shape.files.to_string(), shape.mib.to_string()]);
        let (table, text) = engine_bench(ctx, &args)?;
        let zip = find(&table, &text, "zip -r")?;
        let all = find(&table, &text, "slot-release, all threads")?;
        rows.push(Row::compared(
            format!(
                "{}: build_package ({})",
                shape.label,
                all.spread(shape.runs)
            ),
            all.seconds,
            Unit::S,
            format!("`zip -r -q` ({})", zip.spread(shape.runs)),
            zip.seconds,
            RatioKind::Speedup,
            Target::RatioAtLeast {
                value: shape.target,
            },
        ));
        rows.push(Row::compared(
            format!("{}: peak RSS", shape.label),
            all.rss_mib,
            Unit::MiB,
            "`zip -r -q`",
            zip.rss_mib,
            RatioKind::Speedup,
            Target::FigureAtMost {
                value: RSS_TARGET_MIB,
            },
        ));
        notes.push(format!(
            "{}: `cargo bench -p slot-release-engine --bench package -- {}`; {}.",
            shape.label,
            args.join(" "),
            tree_line(&text)
        ));
    }

    notes.extend([
        "Comparable compression: Info-ZIP and gzip at their default level 6, build_package at \
         its default (deflate, stored for entries that do not shrink)."
            .to_owned(),
        "Determinism: the same generated tree (1,000 files, 8 MiB) packaged twice with 1 and \
         with all threads, compared byte for byte."
            .to_owned(),
    ]);
    Ok(Section {
        title: "2. Packaging (`build` stage)".into(),
        rows,
        notes,
    })
}

/// Parses the engine benchmark's table: a name, then the median, fastest and slowest time, the size (or
/// `-`) and peak RSS in MB (10^3 KiB).
pub(crate) fn parse(text: &str) -> Vec<Contender> {
    text.lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let [.., median, min, max, size, rss] = parts[..] else {
                return None;
            };
            let seconds: f64 = median.parse().ok()?;
            let rss_mb: f64 = rss.parse().ok()?;
            let size_mib = size.parse::<f64>().ok();
            if size_mib.is_none() && size != "-" {
                return None;
            }
            let name = parts[..parts.len() - 5].join(" ");
            Some(Contender {
                name,
                seconds,
                min: min.parse().ok()?,
                max: max.parse().ok()?,
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
            contender                        median(s)    min(s)    max(s)   size (MiB) peak RSS (MB)\n\
            cat > /dev/null (read only)          0.500     0.400     0.700            -           2.0\n\
            zip -r -q (Info-ZIP, level 6)        4.000     3.500     4.500        120.5           3.1\n\
            slot-release, all threads            1.250     1.000     1.900        118.0          40.96\n";
        let t = parse(text);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].name, "cat > /dev/null (read only)");
        assert_eq!(t[0].size_mib, None);
        assert_eq!(t[1].seconds, 4.0);
        assert_eq!((t[1].min, t[1].max), (3.5, 4.5));
        assert_eq!(t[1].size_mib, Some(120.5));
        assert_eq!(t[2].name, "slot-release, all threads");
        assert!((t[2].rss_mib - 40.0).abs() < 1e-9);
        assert_eq!(t[2].spread(5), "median of 5, 1.00–1.90 s");
    }
}
