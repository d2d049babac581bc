//! The pure half of the benchmark suite: measured rows, their ratios and targets, and the rendering of
//! `docs/performance.md` and `docs/performance.json`. Nothing here measures, so it is unit-tested.

use serde::{Deserialize, Serialize};

/// The unit of a figure, which also says how to print it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// Mebibytes (sizes and peak RSS).
    MiB,
    /// Mebibytes per second.
    MiBps,
    /// 1 for yes, 0 for no.
    YesNo,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Ms => format!("{value:.1} ms"),
            Unit::S => format!("{value:.2} s"),
            Unit::MiB => format!("{value:.1} MiB"),
            Unit::MiBps => format!("{value:.0} MiB/s"),
            Unit::YesNo => (if value >= 0.5 { "yes" } else { "no" }).to_owned(),
        }
    }
}

/// How the ratio of a row is formed, so that "bigger is better" reads the same in every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RatioKind {
    /// `baseline / figure`: how many times faster (or smaller) than the baseline.
    Speedup,
    /// `figure / baseline`: how many times the baseline (throughput shares, distance from a limit).
    Share,
}

/// What a row must reach to be met.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "kebab-case")]
pub enum Target {
    /// No target: the row is for context.
    None,
    /// The ratio must be at least this.
    RatioAtLeast {
        /// Bound.
        value: f64,
    },
    /// The ratio must be at most this.
    RatioAtMost {
        /// Bound.
        value: f64,
    },
    /// The figure itself must be at most this (in the row's unit).
    FigureAtMost {
        /// Bound.
        value: f64,
    },
    /// The figure itself must be at least this (in the row's unit).
    FigureAtLeast {
        /// Bound.
        value: f64,
    },
}

/// How far repeated runs of one figure spread: the figure is their median, this is their range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Runs measured.
    pub runs: usize,
    /// Smallest run.
    pub min: f64,
    /// Largest run.
    pub max: f64,
}

impl Spread {
    /// The spread of some samples (NaNs left out); `None` when there are none.
    pub fn of(samples: &[f64]) -> Option<Spread> {
        let v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
        let min = v.iter().copied().reduce(f64::min)?;
        let max = v.iter().copied().reduce(f64::max)?;
        Some(Spread {
            runs: v.len(),
            min,
            max,
        })
    }

    /// `median of 5, 18.2–24.0 ms`, in the row's unit.
    fn text(&self, unit: Unit) -> String {
        if self.runs < 2 {
            return "1 run".to_owned();
        }
        let (lo, hi) = (unit.format(self.min), unit.format(self.max));
        // "18.2 ms–24.0 ms" reads worse than "18.2–24.0 ms": the unit once, at the end.
        let lo = lo.split(' ').next().unwrap_or(&lo).to_owned();
        format!("median of {}, {lo}–{hi}", self.runs)
    }
}

/// One measured line of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What was measured, e.g. "first Azure request via task/index.js".
    pub what: String,
    /// The figure, in `unit`.
    pub figure: f64,
    /// Unit of `figure` and `baseline`.
    pub unit: Unit,
    /// What the figure is compared with; empty when there is no baseline.
    pub baseline_name: String,
    /// The baseline's figure, in `unit`.
    pub baseline: Option<f64>,
    /// How the ratio is formed.
    pub ratio_kind: RatioKind,
    /// The target.
    pub target: Target,
    /// The runs behind `figure` (its median), when it was measured more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<Spread>,
    /// The runs behind `baseline`, likewise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_spread: Option<Spread>,
}

impl Row {
    /// A row whose figure and baseline are the medians of repeated runs, with their spreads.
    #[allow(clippy::too_many_arguments)]
    pub fn from_runs(
        what: impl Into<String>,
        figure: &[f64],
        unit: Unit,
        baseline_name: impl Into<String>,
        baseline: &[f64],
        ratio_kind: RatioKind,
        target: Target,
    ) -> Row {
        Row {
            spread: Spread::of(figure),
            baseline_spread: Spread::of(baseline),
            ..Row::compared(
                what,
                median(figure),
                unit,
                baseline_name,
                median(baseline),
                ratio_kind,
                target,
            )
        }
    }

    /// A row with no baseline whose figure is the median of repeated runs, with their spread.
    pub fn alone_runs(what: impl Into<String>, figure: &[f64], unit: Unit, target: Target) -> Row {
        Row {
            spread: Spread::of(figure),
            ..Row::alone(what, median(figure), unit, target)
        }
    }

    /// A row compared with a baseline.
    pub fn compared(
        what: impl Into<String>,
        figure: f64,
        unit: Unit,
        baseline_name: impl Into<String>,
        baseline: f64,
        ratio_kind: RatioKind,
        target: Target,
    ) -> Row {
        Row {
            what: what.into(),
            figure,
            unit,
            baseline_name: baseline_name.into(),
            baseline: Some(baseline),
            ratio_kind,
            target,
            spread: None,
            baseline_spread: None,
        }
    }

    /// A row with no baseline (peak RSS against a ceiling, a yes/no property).
    pub fn alone(what: impl Into<String>, figure: f64, unit: Unit, target: Target) -> Row {
        Row {
            what: what.into(),
            figure,
            unit,
            baseline_name: String::new(),
            baseline: None,
            ratio_kind: RatioKind::Share,
            target,
            spread: None,
            baseline_spread: None,
        }
    }

    /// The figure cell: the figure, and the spread of its runs when there were several.
    fn figure_text(&self) -> String {
        with_spread(self.unit.format(self.figure), self.spread, self.unit)
    }

    /// The baseline cell, likewise.
    fn baseline_text(&self) -> String {
        match self.baseline {
            Some(b) => with_spread(
                format!("{}: {}", self.baseline_name, self.unit.format(b)),
                self.baseline_spread,
                self.unit,
            ),
            None => "—".to_owned(),
        }
    }

    /// The ratio, when there is a baseline and neither side is zero or not a number.
    pub fn ratio(&self) -> Option<f64> {
        let b = self.baseline?;
        let (num, den) = match self.ratio_kind {
            RatioKind::Speedup => (b, self.figure),
            RatioKind::Share => (self.figure, b),
        };
        let r = num / den;
        (r.is_finite() && den != 0.0).then_some(r)
    }

    /// Whether the target is met; `None` when the row has no target or its ratio cannot be formed.
    pub fn met(&self) -> Option<bool> {
        match self.target {
            Target::None => None,
            Target::RatioAtLeast { value } => self.ratio().map(|r| r >= value),
            Target::RatioAtMost { value } => self.ratio().map(|r| r <= value),
            Target::FigureAtMost { value } => {
                self.figure.is_finite().then_some(self.figure <= value)
            }
            Target::FigureAtLeast { value } => {
                self.figure.is_finite().then_some(self.figure >= value)
            }
        }
    }

    fn target_text(&self) -> String {
        match self.target {
            Target::None => "—".to_owned(),
            Target::RatioAtLeast { value } => format!("≥ {value}×"),
            Target::RatioAtMost { value } => format!("≤ {value}×"),
            Target::FigureAtMost { value } => format!("≤ {}", self.unit.format(value)),
            Target::FigureAtLeast { value } => format!("≥ {}", self.unit.format(value)),
        }
    }
}

/// One table: a measurement of the issue with its rows and a note (method, limits, what would help).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Heading, e.g. "1. Start-up to first Azure request".
    pub title: String,
    /// Rows.
    pub rows: Vec<Row>,
    /// Method, sizes, and for every missed target what limits it and what would reach it.
    pub notes: Vec<String>,
}

/// Where and how the suite ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// `nproc`.
    pub cpus: usize,
    /// Total memory in MiB.
    pub memory_mib: u64,
    /// Kernel and OS, from `uname -sr`.
    pub os: String,
    /// Node version used for both entry points.
    pub node: String,
    /// 1-minute load average at the start and at the end of the run (other work sharing the CPUs
    /// moves the figures); absent in reports written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<(f64, f64)>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// UTC date and time of the run (RFC 3339).
    pub date: String,
    /// The command that produced it.
    pub command: String,
    /// Whether `--quick` sizes were used.
    pub quick: bool,
    /// The machine.
    pub machine: Machine,
    /// The measurements.
    pub sections: Vec<Section>,
    /// How long each measurement ran, in seconds, in the order run (`--only` runs fewer), so the
    /// page says what a full run costs.
    #[serde(default)]
    pub timings: Vec<(String, f64)>,
}

/// Counts of targets met and missed over the whole report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Targets met.
    pub met: usize,
    /// Targets missed.
    pub missed: usize,
}

impl Report {
    /// Targets met and missed.
    pub fn tally(&self) -> Tally {
        let mut t = Tally { met: 0, missed: 0 };
        for row in self.sections.iter().flat_map(|s| &s.rows) {
            match row.met() {
                Some(true) => t.met += 1,
                Some(false) => t.missed += 1,
                None => {}
            }
        }
        t
    }

    /// The JSON document: the report with each row's ratio and verdict spelled out.
    pub fn to_json(&self) -> serde_json::Value {
        let mut doc = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        // Ratios and verdicts are derived, so they are added here rather than stored twice.
        if let Some(sections) = doc.get_mut("sections").and_then(|s| s.as_array_mut()) {
            for (json, section) in sections.iter_mut().zip(&self.sections) {
                if let Some(rows) = json.get_mut("rows").and_then(|r| r.as_array_mut()) {
                    for (jr, row) in rows.iter_mut().zip(&section.rows) {
                        if let Some(obj) = jr.as_object_mut() {
                            obj.insert("ratio".into(), serde_json::json!(row.ratio()));
                            obj.insert("met".into(), serde_json::json!(row.met()));
                        }
                    }
                }
            }
        }
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("tally".into(), serde_json::json!(self.tally()));
        }
        doc
    }

    /// The Markdown page.
    pub fn to_markdown(&self) -> String {
        let m = &self.machine;
        let t = self.tally();
        let mut out = String::new();
        out.push_str("# Performance\n\n");
        out.push_str(
            "Generated by the benchmark suite; do not edit by hand. Every ratio below was measured in \
             one run on one machine, so the ratios carry over to other machines better than the \
             absolute figures do.\n\n",
        );
        out.push_str(&format!("- **Command:** `{}`\n", self.command));
        out.push_str(&format!("- **Date:** {}\n", self.date));
        out.push_str(&format!(
            "- **Machine:** {} × {}, {} MiB memory, {}; node {}\n",
            m.cpus, m.cpu, m.memory_mib, m.os, m.node
        ));
        if let Some((start, end)) = m.load {
            out.push_str(&format!(
                "- **Machine state:** 1-minute load average {start:.2} at the start, {end:.2} at \
                 the end (a load near or above the CPU count means other work shared the CPUs)\n"
            ));
            if noisy(start.max(end), m.cpus) {
                out.push_str(
                    "- **⚠ Noisy run:** the load reached the CPU count, so other work shared the CPUs \
                     during the measurements; the ratios are less reliable than usual. Re-run on an \
                     idle machine before drawing conclusions.\n",
                );
            }
        }
        if self.quick {
            out.push_str(
                "- **Sizes:** `--quick` (small sizes; the figures show the method works, not the \
                 product's performance)\n",
            );
        }
        if !self.timings.is_empty() {
            let total: f64 = self.timings.iter().map(|(_, s)| s).sum();
            let each: Vec<String> = self
                .timings
                .iter()
                .map(|(name, s)| format!("{name} {}", duration_text(*s)))
                .collect();
            out.push_str(&format!(
                "- **Run time:** {} ({})\n",
                duration_text(total),
                each.join(", ")
            ));
        }
        out.push_str(&format!(
            "- **Targets:** {} met, {} missed\n\n",
            t.met, t.missed
        ));
        out.push_str(
            "Ratio: for times and sizes, baseline ÷ figure (how many times faster or smaller); for \
             throughput and for distances from a limit, figure ÷ baseline.\n\n",
        );
        for s in &self.sections {
            out.push_str(&format!("## {}\n\n", s.title));
            out.push_str("| Measurement | Figure | Baseline | Ratio | Target | Met |\n");
            out.push_str("| --- | ---: | --- | ---: | ---: | :---: |\n");
            for r in &s.rows {
                let baseline = r.baseline_text();
                let ratio = r
                    .ratio()
                    .map_or_else(|| "—".to_owned(), |x| format!("{x:.2}×"));
                let met = match r.met() {
                    Some(true) => "✅",
                    Some(false) => "❌",
                    None => "—",
                };
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {} |\n",
                    escape(&r.what),
                    r.figure_text(),
                    escape(&baseline),
                    ratio,
                    r.target_text(),
                    met
                ));
            }
            out.push('\n');
            for n in &s.notes {
                out.push_str(&format!("- {n}\n"));
            }
            if !s.notes.is_empty() {
                out.push('\n');
            }
        }
        out
    }
}

/// `42 s`, or `12 min 5 s` from a minute on.
fn duration_text(seconds: f64) -> String {
    let whole = seconds.max(0.0).round() as u64;
    if whole < 60 {
        format!("{whole} s")
    } else {
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// A cell's text with the spread of its runs after it, when there were several.
fn with_spread(text: String, spread: Option<Spread>, unit: Unit) -> String {
    match spread {
        Some(s) if s.runs > 1 => format!("{text} ({})", s.text(unit)),
        _ => text,
    }
}

/// Keeps a cell's text from breaking the table.
fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The median of some samples (the mean of the middle two for an even count); NaN when empty.
pub fn median(samples: &[f64]) -> f64 {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Round trips the peer's documented Key Vault strategy needs: pages of 25 one after another (list
/// mode only), then waves of 20 parallel reads, each wave waiting for its slowest.
pub fn peer_round_trips(secrets: usize, list_mode: bool) -> usize {
    let pages = if list_mode { secrets.div_ceil(25) } else { 0 };
    pages + secrets.div_ceil(20)
}

/// Round trips the data itself needs: Key Vault's largest page is 25, so listing takes one sequential
/// round trip per 25 names; reads are independent, so at the vault's throttle (4,000 reads per 10 s per
/// vault, far above these counts) they fit in one wave of `ceil(secrets / per_wave)` with `per_wave`
/// the throttle's budget.
pub fn limit_round_trips(secrets: usize, list_mode: bool, per_wave: usize) -> usize {
    let pages = if list_mode { secrets.div_ceil(25) } else { 0 };
    pages + secrets.div_ceil(per_wave.max(1))
}

/// The expected reaction time of a client that polls at a fixed interval: the end falls uniformly
/// within an interval, so it is noticed half an interval later on average (and at the median).
pub fn fixed_poll_reaction(interval_secs: f64) -> f64 {
    interval_secs / 2.0
}

/// Whether a run shared its CPUs with other work: the 1-minute load reached the CPU count.
pub(crate) fn noisy(load: f64, cpus: usize) -> bool {
    cpus > 0 && load >= cpus as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            date: "2026-11-22T09:00:00Z".into(),
            command: "cargo xtask bench --quick".into(),
            quick: true,
            machine: Machine {
                cpu: "Test CPU".into(),
                cpus: 2,
                memory_mib: 1024,
                os: "Linux 6".into(),
                node: "v20".into(),
                load: Some((0.5, 1.25)),
            },
            sections: vec![Section {
                title: "1. Start-up".into(),
                rows: vec![
                    Row::compared(
                        "first request",
                        50.0,
                        Unit::Ms,
                        "task-lib",
                        400.0,
                        RatioKind::Speedup,
                        Target::RatioAtLeast { value: 4.0 },
                    ),
                    Row::compared(
                        "upload | throughput",
                        80.0,
                        Unit::MiBps,
                        "curl",
                        100.0,
                        RatioKind::Share,
                        Target::RatioAtLeast { value: 0.9 },
                    ),
                    Row::alone(
                        "peak RSS",
                        12.5,
                        Unit::MiB,
                        Target::FigureAtMost { value: 64.0 },
                    ),
                    Row::alone("deterministic", 1.0, Unit::YesNo, Target::None),
                ],
                notes: vec!["A note.".into()],
            }],
            timings: vec![],
        }
    }

    #[test]
    fn a_run_at_or_above_the_cpu_count_is_marked_noisy() {
        assert!(!sample().to_markdown().contains("Noisy run"));
        let mut busy = sample();
        busy.machine.load = Some((0.5, 2.0));
        assert!(busy.to_markdown().contains("**⚠ Noisy run:**"));
        assert!(!noisy(1.99, 2) && noisy(2.0, 2) && !noisy(9.0, 0));
    }

    #[test]
    fn ratios_follow_the_kind() {
        let r = &sample().sections[0].rows;
        assert_eq!(r[0].ratio(), Some(8.0));
        assert_eq!(r[1].ratio(), Some(0.8));
        assert_eq!(r[2].ratio(), None);
    }

    #[test]
    fn verdicts_follow_the_target() {
        let r = &sample().sections[0].rows;
        assert_eq!(r[0].met(), Some(true));
        assert_eq!(r[1].met(), Some(false));
        assert_eq!(r[2].met(), Some(true));
        assert_eq!(r[3].met(), None);
        let mut over = r[2].clone();
        over.figure = 64.5;
        assert_eq!(over.met(), Some(false));
        let mut at_most = r[0].clone();
        at_most.target = Target::RatioAtMost { value: 1.5 };
        assert_eq!(at_most.met(), Some(false));
        assert_eq!(sample().tally(), Tally { met: 2, missed: 1 });
    }

    #[test]
    fn a_zero_or_missing_figure_gives_no_ratio_and_no_verdict() {
        let mut r = sample().sections[0].rows[0].clone();
        r.figure = 0.0;
        assert_eq!(r.ratio(), None);
        assert_eq!(r.met(), None);
        r.figure = f64::NAN;
        assert_eq!(r.met(), None);
    }

    #[test]
    fn markdown_has_the_header_and_one_line_per_row() {
        let md = sample().to_markdown();
        assert!(md.contains("- **Command:** `cargo xtask bench --quick`\n"));
        assert!(md.contains("- **Machine:** 2 × Test CPU, 1024 MiB memory, Linux 6; node v20\n"));
        assert!(md.contains(
            "- **Machine state:** 1-minute load average 0.50 at the start, 1.25 at the end"
        ));
        assert!(md.contains("- **Targets:** 2 met, 1 missed\n"));
        assert!(
            md.contains("| first request | 50.0 ms | task-lib: 400.0 ms | 8.00× | ≥ 4× | ✅ |\n")
        );
        // A pipe in a name is escaped so the table keeps its columns.
        assert!(md.contains(
            "| upload \\| throughput | 80 MiB/s | curl: 100 MiB/s | 0.80× | ≥ 0.9× | ❌ |\n"
        ));
        assert!(md.contains("| peak RSS | 12.5 MiB | — | — | ≤ 64.0 MiB | ✅ |\n"));
        assert!(md.contains("| deterministic | yes | — | — | — | — |\n"));
        assert!(md.contains("- A note.\n"));
    }

    #[test]
    fn json_spells_out_ratio_met_and_tally() {
        let j = sample().to_json();
        let rows = &j["sections"][0]["rows"];
        assert_eq!(rows[0]["ratio"], serde_json::json!(8.0));
        assert_eq!(rows[0]["met"], serde_json::json!(true));
        assert_eq!(rows[1]["met"], serde_json::json!(false));
        assert_eq!(rows[3]["met"], serde_json::Value::Null);
        assert_eq!(rows[0]["target"]["on"], "ratio-at-least");
        assert_eq!(j["tally"]["missed"], 1);
        assert_eq!(j["machine"]["cpus"], 2);
    }

    #[test]
    fn the_json_reads_back_as_the_same_report() {
        let back: Report = serde_json::from_value(sample().to_json()).unwrap();
        assert_eq!(back, sample());
    }

    #[test]
    fn the_page_states_how_long_each_measurement_ran() {
        let mut report = sample();
        assert!(!report.to_markdown().contains("Run time"));
        report.timings = vec![("startup".into(), 41.6), ("packaging".into(), 725.0)];
        let md = report.to_markdown();
        assert!(
            md.contains("- **Run time:** 12 min 47 s (startup 42 s, packaging 12 min 5 s)\n"),
            "{md}"
        );
        let back: Report = serde_json::from_value(report.to_json()).unwrap();
        assert_eq!(back, report);
        let row = Row::alone_runs("wall", &[3.0, 1.0, 2.0], Unit::S, Target::None);
        assert_eq!(row.figure, 2.0);
        assert_eq!(
            row.spread.map(|s| (s.runs, s.min, s.max)),
            Some((3, 1.0, 3.0))
        );
    }

    #[test]
    fn rows_from_runs_show_their_median_and_spread() {
        let row = Row::from_runs(
            "200 secrets, named",
            &[24.0, 21.0, 22.0, 30.0, 23.0],
            Unit::Ms,
            "limit (1 round trip)",
            &[20.0, 20.5, 21.0, 20.2, 20.1],
            RatioKind::Share,
            Target::RatioAtMost { value: 1.5 },
        );
        assert_eq!(row.figure, 23.0);
        assert_eq!(row.baseline, Some(20.2));
        assert_eq!(
            row.spread,
            Some(Spread {
                runs: 5,
                min: 21.0,
                max: 30.0
            })
        );
        assert_eq!(row.met(), Some(true));
        let mut report = sample();
        report.sections[0].rows = vec![row];
        let md = report.to_markdown();
        assert!(
            md.contains(
                "| 200 secrets, named | 23.0 ms (median of 5, 21.0–30.0 ms) \
                 | limit (1 round trip): 20.2 ms (median of 5, 20.0–21.0 ms) | 1.14× | ≤ 1.5× | ✅ |"
            ),
            "{md}"
        );
        let j = report.to_json();
        assert_eq!(j["sections"][0]["rows"][0]["spread"]["max"], 30.0);
        assert_eq!(j["sections"][0]["rows"][0]["baseline_spread"]["runs"], 5);
        let back: Report = serde_json::from_value(j).unwrap();
        assert_eq!(back, report);
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN, 2.0]).map(|s| s.runs), Some(1));
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn round_trip_models() {
        // 200 named secrets: the peer needs 10 waves of 20; the data needs one wave.
        assert_eq!(peer_round_trips(200, false), 10);
        assert_eq!(peer_round_trips(200, true), 8 + 10);
        assert_eq!(peer_round_trips(50, true), 2 + 3);
        assert_eq!(limit_round_trips(200, false, 4000), 1);
        assert_eq!(limit_round_trips(1000, true, 4000), 40 + 1);
        assert_eq!(limit_round_trips(1000, false, 50), 20);
        assert_eq!(fixed_poll_reaction(5.0), 2.5);
    }
}
