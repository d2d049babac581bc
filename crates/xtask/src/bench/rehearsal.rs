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
    let mut c = Command::new(&ctx.binary);
    c.current_dir(&app)
        .env("NO_COLOR", "1")
        .args(["rehearse", "--config"])
        .arg(app.join("release.yml"))
        .arg("--record")
        .arg(&record)
        .arg("--work-dir")
        .arg(ctx.scratch.join("rehearsal-work"));
    let t = timed(c, &ctx.scratch)?;
    if !t.success {
        bail!("the rehearsal failed");
    }
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&record).context("the rehearsal wrote no record")?,
    )?;
    let result = rec["result"].as_str().unwrap_or("unknown").to_owned();
    let waiting = (t.wall - t.cpu).max(0.0);
    Ok(Section {
        title: "6. Whole rehearsal of examples/python-webapp".into(),
        rows: vec![
            Row::alone("wall time", t.wall, Unit::S, Target::None),
            Row::compared(
                "waiting (wall − CPU)",
                waiting,
                Unit::S,
                "wall",
                t.wall,
                RatioKind::Share,
                Target::None,
            ),
            Row::compared(
                "CPU: task + embedded emulator + app processes",
                t.cpu,
                Unit::S,
                "wall",
                t.wall,
                RatioKind::Share,
                Target::None,
            ),
            Row::alone(
                "peak RSS (largest process)",
                t.rss_mib,
                Unit::MiB,
                Target::None,
            ),
        ],
        notes: vec![
            format!(
                "`slot-release rehearse --config examples/python-webapp/release.yml` (a copy), \
                 result `{result}`, under /usr/bin/time. CPU is user + system time of the process \
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
