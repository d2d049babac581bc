//! Measurement 6: a whole rehearsal of the Python example (`slot-release rehearse`), its wall time split
//! into CPU time (the task, with its embedded emulator and the app processes it starts) and time spent
//! waiting (on emulated Azure operations, polls, the app starting and the health gates).

use std::process::Command;

use anyhow::{Context as _, bail};

use super::report::{RatioKind, Row, Section, Target, Unit};
use super::{Ctx, timed};

pub(crate) fn measure(ctx: &Ctx) -> anyhow::Result<Section> {
    if !ctx.sizes.rehearsal {
        return Ok(Section {
            title: "6. Whole rehearsal".into(),
            rows: vec![],
            notes: vec![
                "Not run with `--quick` (it takes tens of seconds by design: health gates).".into(),
            ],
        });
    }
    // A copy, so the rehearsal's files never land in the repository.
    let app = ctx.scratch.join("rehearsal-app");
    std::fs::create_dir_all(&app)?;
    let example = ctx.root.join("examples/python-webapp");
    for entry in std::fs::read_dir(&example)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), app.join(entry.file_name()))?;
        }
    }
    let record = ctx.scratch.join("rehearsal-record.json");
    let runs = ctx.sizes.rehearsal_runs.max(1);
    let (mut walls, mut cpus, mut waits, mut rss) = (vec![], vec![], vec![], vec![]);
    let mut results = vec![];
    for run in 0..runs {
        let mut c = Command::new(&ctx.binary);
        c.current_dir(&app)
            .env("NO_COLOR", "1")
            .args(["rehearse", "--config"])
            .arg(app.join("release.yml"))
            .arg("--record")
            .arg(&record)
            .arg("--work-dir")
            .arg(ctx.scratch.join(format!("rehearsal-work-{run}")));
        let t = timed(c, &ctx.scratch)?;
        if !t.success {
            bail!("the rehearsal failed");
        }
        let rec: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(&record).context("the rehearsal wrote no record")?,
        )?;
        results.push(rec["result"].as_str().unwrap_or("unknown").to_owned());
        walls.push(t.wall);
        cpus.push(t.cpu);
        waits.push((t.wall - t.cpu).max(0.0));
        rss.push(t.rss_mib);
        // Each run's emulator and app folders go once it is measured (a few MB each).
        let _ = std::fs::remove_dir_all(ctx.scratch.join(format!("rehearsal-work-{run}")));
    }
    results.sort();
    results.dedup();
    let result = results.join(", ");
    Ok(Section {
        title: "6. Whole rehearsal of examples/python-webapp".into(),
        rows: vec![
            Row::alone_runs("wall time", &walls, Unit::S, Target::None),
            Row::from_runs(
                "waiting (wall − CPU)",
                &waits,
                Unit::S,
                "wall",
                &walls,
                RatioKind::Share,
                Target::None,
            ),
            Row::from_runs(
                "CPU: task + embedded emulator + app processes",
                &cpus,
                Unit::S,
                "wall",
                &walls,
                RatioKind::Share,
                Target::None,
            ),
            Row::alone_runs("peak RSS (largest process)", &rss, Unit::MiB, Target::None),
        ],
        notes: vec![
            format!(
                "`slot-release rehearse --config examples/python-webapp/release.yml` (a copy), \
                 {runs} runs one after another (result `{result}`), under /usr/bin/time; each \
                 figure is the median of the runs, with the fastest and slowest beside it. CPU is user + system time of the process \
                 and the children it waited for; it includes the embedded emulator and the Python \
                 app, so it is an upper bound on the time spent in the task itself, and \
                 wall − CPU a lower bound on the time spent waiting."
            ),
            "Most of the waiting is by design: the example's health gates watch the staging and \
             production slots for a fixed duration before going on."
                .into(),
        ],
    })
}
