//! The fan-out template (pipelines/templates/fan-out.yml) run as Azure Pipelines runs it: each wave's plan
//! job sets `Matrix`, which feeds the release job's `strategy.matrix`, expanded into one job per target
//! with its variables (`$(target)` reaches the task's `target` input), each in its own work directory and
//! process. Wave 1 starts only when wave 0 succeeded.
#![cfg(unix)]

use serde_json::{Value, json};
use slot_release_emulator::Fault;
use slot_release_tests::pipeline::{Outcome, Pipelines, Run, RunRecord};
use slot_release_tests::{World, paths};

const TARGETS: &str = "
targets:
  - {name: westeurope, app: contoso-web, resourceGroup: contoso-rg, region: westeurope, wave: 0}
  - {name: eastus, app: contoso-web-us, resourceGroup: contoso-rg, region: eastus, wave: 1}
  - {name: japaneast, app: contoso-web-jp, resourceGroup: contoso-rg, region: japaneast, wave: 1}
";

const APPS: [&str; 3] = ["contoso-web", "contoso-web-us", "contoso-web-jp"];

fn run(build_id: u32, number: &str) -> Run {
    Run {
        build_id,
        definition: 7,
        number: number.to_owned(),
        reason: "IndividualCI".to_owned(),
    }
}

fn release_version(world: &World, app: &str) -> Option<String> {
    world
        .emulator
        .snapshot()
        .slot(app, "production")
        .and_then(|s| s.app_settings.get("RELEASE_VERSION").cloned())
}

fn jobs(record: &RunRecord) -> Vec<(String, String, Outcome)> {
    record
        .jobs
        .iter()
        .map(|j| (j.stage.clone(), j.job.clone(), j.outcome))
        .collect()
}

fn expected(rows: &[(&str, &str, Outcome)]) -> Vec<(String, String, Outcome)> {
    rows.iter()
        .map(|(s, j, o)| ((*s).to_owned(), (*j).to_owned(), *o))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_matrix_output_fans_the_release_out_wave_by_wave() {
    let world = World::builder()
        .quick()
        .edit(|t| format!("{t}{TARGETS}"))
        .app_copies(&["contoso-web-us", "contoso-web-jp"])
        .start()
        .await
        .unwrap();
    let pipelines = Pipelines::new(&world, &world.sources);
    let template = paths::workspace().join("pipelines/templates/fan-out.yml");
    let params: Vec<(&str, Value)> = vec![
        ("serviceConnection", json!(world.connection_id)),
        ("maxParallel", json!(2)),
    ];
    tokio::task::block_in_place(|| {
        let record = pipelines
            .run(&template, &params, &run(401, "20261205.1"))
            .unwrap();
        assert_eq!(
            jobs(&record),
            expected(&[
                ("build", "build", Outcome::Succeeded),
                ("wave0", "plan", Outcome::Succeeded),
                ("wave0", "release.westeurope", Outcome::Succeeded),
                ("wave1", "plan", Outcome::Succeeded),
                ("wave1", "release.eastus", Outcome::Succeeded),
                ("wave1", "release.japaneast", Outcome::Succeeded),
            ]),
            "{}",
            record.transcript()
        );
        for app in APPS {
            assert_eq!(
                release_version(&world, app).as_deref(),
                Some("20261205.1"),
                "{app}: {}",
                record.transcript()
            );
        }

        // Wave 0's target turns unhealthy in production: its job rolls it back and fails, and wave 1
        // never starts, so its targets keep the release before.
        world.emulator.inject(Fault::AppUnhealthyAfterSwap {
            app: "contoso-web".into(),
        });
        let record = pipelines
            .run(&template, &params, &run(402, "20261205.2"))
            .unwrap();
        assert_eq!(
            jobs(&record),
            expected(&[
                ("build", "build", Outcome::Succeeded),
                ("wave0", "plan", Outcome::Succeeded),
                ("wave0", "release.westeurope", Outcome::Failed),
            ]),
            "{}",
            record.transcript()
        );
        for app in APPS {
            assert_eq!(
                release_version(&world, app).as_deref(),
                Some("20261205.1"),
                "{app} runs the release before: {}",
                record.transcript()
            );
        }
    });
}
