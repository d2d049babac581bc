//! Each pipeline template runs end to end as Azure Pipelines runs it (see `slot_release_tests::pipeline`):
//! every job in its own work directory with a fresh checkout and the agent's variables for its run, the
//! real binary through the real entry point, artifacts published and downloaded between jobs and runs,
//! against the emulator. Default-format build numbers throughout.
#![cfg(unix)]

use serde_json::{Value, json};
use slot_release_emulator::Fault;
use slot_release_tests::pipeline::{Outcome, Pipelines, Run, RunRecord};
use slot_release_tests::{World, paths};

fn run(build_id: u32, number: &str, reason: &str) -> Run {
    Run {
        build_id,
        definition: 7,
        number: number.to_owned(),
        reason: reason.to_owned(),
    }
}

fn template(name: &str) -> std::path::PathBuf {
    paths::workspace().join("pipelines/templates").join(name)
}

fn assert_jobs(record: &RunRecord, expected: &[(&str, &str, Outcome)]) {
    for (stage, job, outcome) in expected {
        assert_eq!(
            record.outcome(stage, job),
            *outcome,
            "{stage}/{job}\n{}",
            record.transcript()
        );
    }
}

fn production_release_version(world: &World) -> Option<String> {
    world
        .emulator
        .snapshot()
        .slot("contoso-web", "production")
        .and_then(|s| s.app_settings.get("RELEASE_VERSION").cloned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_stage_releases_and_the_rollback_template_brings_back_an_earlier_runs_artifact() {
    let world = World::start().await.unwrap();
    let pipelines = Pipelines::new(&world, &world.sources);
    let params: Vec<(&str, Value)> = vec![
        ("app", json!("contoso-web")),
        ("serviceConnection", json!(world.connection_id)),
    ];
    tokio::task::block_in_place(|| {
        for (id, number) in [
            (101, "20261204.1"),
            (102, "20261204.2"),
            (103, "20261204.12"),
        ] {
            let record = pipelines
                .run(
                    &template("multi-stage.yml"),
                    &params,
                    &run(id, number, "IndividualCI"),
                )
                .unwrap();
            assert_jobs(
                &record,
                &[
                    ("build", "build", Outcome::Succeeded),
                    ("staging", "staging", Outcome::Succeeded),
                    ("production", "production", Outcome::Succeeded),
                    // Production succeeded: the rollback stage does not run.
                    ("rollback", "plan", Outcome::Skipped),
                    ("rollback", "rollback", Outcome::Skipped),
                ],
            );
            assert_eq!(production_release_version(&world).as_deref(), Some(number));
        }

        // 20261204.12 passed its watch and turned out bad: the rollback template, run by hand, returns to
        // 20261204.1, which is in no slot. Its plan names run 101's artifact; the job downloads it.
        let mut by_hand = params.clone();
        by_hand.push(("to", json!("20261204.1")));
        let record = pipelines
            .run(
                &template("rollback.yml"),
                &by_hand,
                &run(120, "20261205.1", "Manual"),
            )
            .unwrap();
        assert_jobs(
            &record,
            &[
                ("rollback", "plan", Outcome::Succeeded),
                ("rollback", "rollback", Outcome::SucceededWithIssues),
            ],
        );
        let plan = record.jobs.iter().find(|j| j.job == "plan").unwrap();
        assert_eq!(
            plan.outputs
                .get("rollbackPlan.RollbackArtifactRunId")
                .map(String::as_str),
            Some("101"),
            "{}",
            record.transcript()
        );
        let job = record.jobs.iter().find(|j| j.job == "rollback").unwrap();
        let ran: Vec<(&str, Outcome)> = job.steps.iter().map(|(n, o)| (n.as_str(), *o)).collect();
        assert!(
            ran.contains(&(
                "Download the package of the release brought back",
                Outcome::Succeeded
            )),
            "{ran:?}"
        );
        assert!(ran.contains(&("Roll back", Outcome::Skipped)), "{ran:?}");
        assert_eq!(
            production_release_version(&world).as_deref(),
            Some("20261204.1")
        );

        // Production runs the oldest release of the history now: a plain rollback changes nothing, downloads
        // nothing, and succeeds without issues.
        let record = pipelines
            .run(
                &template("rollback.yml"),
                &params,
                &run(121, "20261205.2", "Manual"),
            )
            .unwrap();
        let job = record.jobs.iter().find(|j| j.job == "rollback").unwrap();
        assert!(
            job.steps.iter().any(
                |(n, o)| n == "Download the package of the release brought back"
                    && *o == Outcome::Skipped
            ),
            "{}",
            record.transcript()
        );
        assert_eq!(job.outcome, Outcome::Succeeded, "{}", record.transcript());
        assert_eq!(
            production_release_version(&world).as_deref(),
            Some("20261204.1")
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_production_stage_runs_the_rollback_stage() {
    let world = World::start().await.unwrap();
    let pipelines = Pipelines::new(&world, &world.sources);
    let params: Vec<(&str, Value)> = vec![
        ("app", json!("contoso-web")),
        ("serviceConnection", json!(world.connection_id)),
    ];
    tokio::task::block_in_place(|| {
        let record = pipelines
            .run(
                &template("multi-stage.yml"),
                &params,
                &run(200, "20261204.1", "IndividualCI"),
            )
            .unwrap();
        assert_jobs(&record, &[("production", "production", Outcome::Succeeded)]);
        // The next release turns unhealthy in production during its watch.
        world.emulator.inject(Fault::AppUnhealthyAfterSwap {
            app: "contoso-web".into(),
        });
        let record = pipelines
            .run(
                &template("multi-stage.yml"),
                &params,
                &run(201, "20261204.2", "IndividualCI"),
            )
            .unwrap();
        assert_jobs(
            &record,
            &[
                ("build", "build", Outcome::Succeeded),
                ("staging", "staging", Outcome::Succeeded),
                ("production", "production", Outcome::Failed),
                ("rollback", "plan", Outcome::Succeeded),
                ("rollback", "rollback", Outcome::Succeeded),
            ],
        );
        // The production stage swapped back on its own; the rollback stage found nothing to do.
        assert_eq!(
            production_release_version(&world).as_deref(),
            Some("20261204.1")
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_validation_plans_each_stage_and_rehearses() {
    let world = World::start().await.unwrap();
    let pipelines = Pipelines::new(&world, &world.sources);
    let params: Vec<(&str, Value)> = vec![
        ("app", json!("contoso-web")),
        ("serviceConnection", json!(world.connection_id)),
    ];
    let before = world.emulator.snapshot();
    tokio::task::block_in_place(|| {
        let record = pipelines
            .run(
                &template("pr-validation.yml"),
                &params,
                &run(301, "20261204.3", "PullRequest"),
            )
            .unwrap();
        assert_jobs(
            &record,
            &[
                ("validate", "validate", Outcome::Succeeded),
                ("validate", "rehearse", Outcome::Succeeded),
            ],
        );
        let validate = record.jobs.iter().find(|j| j.job == "validate").unwrap();
        for step in ["planStaging", "planProduction"] {
            assert!(
                validate
                    .steps
                    .iter()
                    .any(|(n, o)| n == step && *o == Outcome::Succeeded),
                "{step}: {}",
                record.transcript()
            );
        }
    });
    // Read-only: the app is as it was.
    let after = world.emulator.snapshot();
    assert_eq!(
        after
            .slot("contoso-web", "production")
            .map(|s| &s.app_settings),
        before
            .slot("contoso-web", "production")
            .map(|s| &s.app_settings)
    );
    assert_eq!(
        after.slot("contoso-web", "production").map(|s| &s.tags),
        before.slot("contoso-web", "production").map(|s| &s.tags)
    );
}
