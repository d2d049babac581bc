//! Releases as Azure Pipelines runs them: each stage a separate job (its own process and work directory)
//! with the agent's variables for its run: default-format build numbers (`20261204.1`), build ids, pipeline
//! definitions, a build number two pipelines share, and two jobs running at once.

use std::collections::BTreeMap;
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use slot_release_emulator::{Fault, RouteMatch};
use slot_release_tests::prober::release_in_page;
use slot_release_tests::{World, printed, stdout};

const COLLECTION: &str = "6a1f0c3e-0000-4000-8000-00000000c011";

/// The agent's variables for one run of one pipeline.
#[derive(Debug, Clone)]
struct PipelineRun {
    build_id: u32,
    definition: u32,
    number: &'static str,
}

impl PipelineRun {
    fn identity(&self) -> String {
        format!(
            "build-{}.def-{}.{COLLECTION}",
            self.build_id, self.definition
        )
    }

    fn vars(&self, stage: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("BUILD_BUILDID".into(), self.build_id.to_string()),
            ("BUILD_BUILDNUMBER".into(), self.number.to_owned()),
            ("SYSTEM_DEFINITIONID".into(), self.definition.to_string()),
            ("SYSTEM_COLLECTIONID".into(), COLLECTION.into()),
            (
                "BUILD_DEFINITIONNAME".into(),
                format!("web-{}", self.definition),
            ),
            ("SYSTEM_STAGENAME".into(), stage.into()),
            (
                "AGENT_NAME".into(),
                format!("Hosted Agent {}", self.build_id),
            ),
        ])
    }
}

static JOBS: AtomicU32 = AtomicU32::new(0);

/// Runs one stage as its own pipeline job: a new process, a fresh work directory, the run's variables.
async fn job(world: &World, run: &PipelineRun, stage: &str) -> Output {
    let work = world
        .dir
        .path()
        .join(format!("job-{}", JOBS.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(&work).unwrap();
    let out = world
        .cli_command(&[stage])
        .envs(run.vars(stage))
        .arg("--work-dir")
        .arg(&work)
        .output()
        .await
        .unwrap();
    eprintln!(
        "$ [{} {}] slot-release {stage}\n{}{}",
        run.number,
        run.identity(),
        stdout(&out),
        printed(&out)
    );
    out
}

fn production_release_version(world: &World) -> Option<String> {
    world
        .slot("production")
        .app_settings
        .get("RELEASE_VERSION")
        .cloned()
}

/// Steps that change the app, as the log reports them once done.
fn changes_done(out: &Output) -> Vec<String> {
    stdout(out)
        .lines()
        .filter(|l| l.starts_with("[done]"))
        .filter(|l| !l.contains("pull ") && !l.contains("health gate") && !l.contains("watch"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_build_numbers_release_stage_by_stage_in_separate_jobs() {
    let world = World::released(|t| t).await;
    let prober = world.watch_production();
    for run in [
        PipelineRun {
            build_id: 101,
            definition: 7,
            number: "20261204.1",
        },
        PipelineRun {
            build_id: 112,
            definition: 7,
            number: "20261204.12",
        },
    ] {
        let out = job(&world, &run, "staging").await;
        assert!(out.status.success(), "{}: {}", run.number, printed(&out));
        let out = job(&world, &run, "production").await;
        assert!(out.status.success(), "{}: {}", run.number, printed(&out));
        assert_eq!(
            world.tag("slotrelease.release"),
            Some(run.identity()),
            "the journal keys the release by its identity"
        );
        assert_eq!(world.tag("slotrelease.lastKnownGood"), Some(run.identity()));
        assert_eq!(
            production_release_version(&world).as_deref(),
            Some(run.number)
        );
        let (status, body) = world.get("production", "/").await.unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains(&format!("<b id=release>{}</b>", run.number)),
            "production serves {}: {body}",
            run.number
        );
        assert_eq!(world.lock_claims(), Vec::<String>::new());
    }
    prober.assert_always_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pipelines_sharing_a_build_number_are_two_releases() {
    let world = World::released(|t| t).await;
    let a = PipelineRun {
        build_id: 201,
        definition: 7,
        number: "20261125.1",
    };
    let b = PipelineRun {
        build_id: 301,
        definition: 9,
        number: "20261125.1",
    };
    let out = job(&world, &a, "staging").await;
    assert!(out.status.success(), "{}", printed(&out));
    // Pipeline B stages its own release over A's, under the same build number.
    let out = job(&world, &b, "staging").await;
    assert!(out.status.success(), "{}", printed(&out));
    let before = world.slot("production");

    // A's production job must not swap B's release in under A's name (it used to "resume" it).
    let out = job(&world, &a, "production").await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let after = world.slot("production");
    assert_eq!(
        after.content_digest, before.content_digest,
        "production untouched"
    );
    assert_eq!(
        after.app_settings, before.app_settings,
        "production untouched"
    );
    assert!(changes_done(&out).is_empty(), "{:?}", changes_done(&out));

    let out = job(&world, &b, "production").await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(world.tag("slotrelease.release"), Some(b.identity()));
    assert_eq!(world.tag("slotrelease.lastKnownGood"), Some(b.identity()));
    assert_eq!(
        production_release_version(&world).as_deref(),
        Some("20261125.1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_job_and_a_production_job_at_once_one_is_refused_and_changes_nothing() {
    let world = World::released(|t| t).await;
    let first = PipelineRun {
        build_id: 401,
        definition: 7,
        number: "20261204.3",
    };
    let second = PipelineRun {
        build_id: 402,
        definition: 7,
        number: "20261204.4",
    };
    let out = job(&world, &first, "staging").await;
    assert!(out.status.success(), "{}", printed(&out));
    // Real ARM round trips take 100–500 ms; 1.5 s on every write widens every window a lock could lose.
    for method in ["PATCH", "PUT", "POST"] {
        world.emulator.inject(Fault::Latency {
            route: RouteMatch {
                host: Some("management.*".into()),
                method: Some(method.into()),
                path: None,
                body_contains: None,
            },
            millis: 1_500,
            count: None,
        });
    }
    let (production, staging) = tokio::join!(job(&world, &first, "production"), async {
        // The offset between the two jobs is the scenario, not a wait for anything: the staging job
        // starts while the production job's first writes are still in flight, so their claims race.
        tokio::time::sleep(Duration::from_millis(200)).await;
        job(&world, &second, "staging").await
    });
    let refused = |out: &Output| {
        let err = printed(out);
        err.contains("holds the release lock") || err.contains("at the same moment")
    };
    let outcomes = [
        (production.status.success(), refused(&production)),
        (staging.status.success(), refused(&staging)),
    ];
    assert!(
        outcomes == [(true, false), (false, true)] || outcomes == [(false, true), (true, false)],
        "exactly one job ran and the other was refused by the lock: {outcomes:?}\nproduction: {}\nstaging: {}",
        printed(&production),
        printed(&staging)
    );
    let (winner, loser) = if outcomes[0].0 {
        (&first, &staging)
    } else {
        (&second, &production)
    };
    assert!(
        changes_done(loser).is_empty(),
        "the refused job changed nothing: {:?}",
        changes_done(loser)
    );
    assert_eq!(world.tag("slotrelease.release"), Some(winner.identity()));
    assert_eq!(world.lock_claims(), Vec::<String>::new());
}

/// Runs a stage as a job of `run`, with extra arguments.
async fn job_with(world: &World, run: &PipelineRun, stage: &str, extra: &[&str]) -> Output {
    let mut args = vec![stage];
    args.extend_from_slice(extra);
    let out = world
        .cli_command(&args)
        .envs(run.vars(stage))
        .output()
        .await
        .unwrap();
    eprintln!(
        "$ [{} {}] slot-release {}\n{}{}",
        run.number,
        run.identity(),
        args.join(" "),
        stdout(&out),
        printed(&out)
    );
    out
}

/// Releases 20261204.1, .2 and .3 of pipeline `definition` (runs `first + 1` …), each as a staging job and a
/// production job.
async fn release_three(world: &World, definition: u32, first: u32) -> Vec<PipelineRun> {
    let runs: Vec<PipelineRun> = ["20261204.1", "20261204.2", "20261204.3"]
        .into_iter()
        .zip(first + 1..)
        .map(|(number, build_id)| PipelineRun {
            build_id,
            definition,
            number,
        })
        .collect();
    for run in &runs {
        // Build once, deploy many, as the template does: the build job writes the run's artifact (package
        // and build record) into its own folder, and the staging job deploys that artifact.
        let artifact = artifact_dir(world, run);
        std::fs::create_dir_all(&artifact).unwrap();
        let out = job_with(
            world,
            run,
            "build",
            &["--out", &artifact.display().to_string()],
        )
        .await;
        assert!(
            out.status.success(),
            "{} build: {}",
            run.number,
            printed(&out)
        );
        let package = artifact.join("*.zip").display().to_string();
        let out = job_with(world, run, "staging", &["--package", &package]).await;
        assert!(
            out.status.success(),
            "{} staging: {}",
            run.number,
            printed(&out)
        );
        let out = job(world, run, "production").await;
        assert!(
            out.status.success(),
            "{} production: {}",
            run.number,
            printed(&out)
        );
    }
    runs
}

/// Where a run's staging job left its artifact: the package and its build record.
fn artifact_dir(world: &World, run: &PipelineRun) -> std::path::PathBuf {
    world.dir.path().join(format!("artifact-{}", run.build_id))
}

/// The release production's page names.
async fn served(world: &World) -> String {
    let (status, body) = world.get("production", "/").await.unwrap();
    assert_eq!(status, 200);
    release_in_page(&body).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_reverts_a_code_release_that_passed_its_watch() {
    let world = World::released(|t| t).await;
    let runs = release_three(&world, 7, 500).await;
    assert_eq!(served(&world).await, "20261204.3");

    // v3 passed its watch and turned out bad later: the rollback stage returns to v2.
    let out = job_with(&world, &runs[2], "rollback", &[]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(served(&world).await, "20261204.2");
    assert_eq!(
        world.tag("slotrelease.lastKnownGood"),
        Some(runs[1].identity())
    );
    // The history keeps v3, marked, so a plain rollback after the next release never returns to it; each
    // entry names the artifact its package can be downloaded from again.
    let history =
        slot_release_engine::journal::JournalTags::from_tags(&world.slot("production").tags)
            .unwrap_or_else(|e| panic!("the journal reads back: {e}"))
            .history;
    let outcomes: Vec<_> = history
        .iter()
        .map(|e| (e.name.as_str(), e.outcome))
        .collect();
    use slot_release_engine::history::Outcome;
    assert_eq!(
        outcomes,
        [
            ("20261204.1", Outcome::Released),
            ("20261204.2", Outcome::Released),
            ("20261204.3", Outcome::RolledBack)
        ]
    );
    assert_eq!(
        history[0].artifact.as_ref().map(|a| a.run.as_str()),
        Some("501")
    );
    // A second rollback changes nothing: production already runs the release before the current one.
    let swaps = world.emulator.requests().len();
    let out = job_with(&world, &runs[2], "rollback", &[]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(
        world.emulator.requests()[swaps..]
            .iter()
            .filter(|r| r.path.ends_with("/slotsswap"))
            .count(),
        0
    );
    assert_eq!(served(&world).await, "20261204.2");

    // v1 is in no slot any more: a code app's package stays with the run that built it, so the refusal
    // names the release and the artifact to download, before any change.
    let before = world.slot("production");
    let out = job_with(&world, &runs[2], "rollback", &["--to", "20261204.1"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = printed(&out);
    assert!(err.contains("20261204.1"), "{err}");
    assert!(
        err.contains("artifact slot-release-package of run 501 (pipeline 7)"),
        "{err}"
    );
    // The history keeps the package's digest, so the artifact can be checked when it comes back.
    assert!(err.contains("sha256 "), "{err}");
    // The plan a pipeline's rollback job runs first names that artifact in output variables, for the
    // DownloadPipelineArtifact@2 step before the rollback (pipelines/templates/rollback.yml).
    let mut plan = world.cli_command(&["plan", "--stage", "rollback", "--to", "20261204.1"]);
    let out = plan
        .envs(runs[2].vars("rollback"))
        .env("TF_BUILD", "True")
        .output()
        .await
        .unwrap();
    let text = stdout(&out);
    for (name, value) in [
        ("RollbackArtifactRunId", "501"),
        ("RollbackArtifactPipelineId", "7"),
        ("RollbackArtifactName", "slot-release-package"),
    ] {
        assert!(
            text.contains(&format!(
                "##vso[task.setvariable variable={name};isoutput=true;]{value}\n"
            )),
            "{name}: {text}"
        );
    }
    assert!(text.contains("result=Succeeded"), "{text}");
    assert_eq!(
        world.slot("production").content_digest,
        before.content_digest
    );
    // With that run's artifact downloaded (DownloadPipelineArtifact@2 in a pipeline), the rollback deploys
    // it to the staging slot, verified against the history's digest, gates it and swaps it in.
    let wrong = artifact_dir(&world, &runs[1]).join("package.zip");
    let out = job_with(
        &world,
        &runs[2],
        "rollback",
        &[
            "--to",
            "20261204.1",
            "--package",
            &wrong.display().to_string(),
        ],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "another release's package is refused"
    );
    assert!(
        printed(&out).contains("is not release"),
        "{}",
        printed(&out)
    );
    assert_eq!(
        world.slot("production").content_digest,
        before.content_digest
    );
    let v1 = artifact_dir(&world, &runs[0]).join("*.zip");
    let out = job_with(
        &world,
        &runs[2],
        "rollback",
        &["--to", "20261204.1", "--package", &v1.display().to_string()],
    )
    .await;
    assert!(out.status.success(), "{}", printed(&out));
    // v1 runs with the settings it was released with: `RELEASE_VERSION: $(Build.BuildNumber)` is rendered
    // from its build record, not from the rollback run (whose build number is v3's).
    assert_eq!(served(&world).await, "20261204.1");
    assert_eq!(
        production_release_version(&world).as_deref(),
        Some("20261204.1")
    );
    // Production runs exactly the bytes run 501 built.
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifact_dir(&world, &runs[0]).join("slot-release-build.json"))
            .unwrap(),
    )
    .unwrap();
    let v1_sha = record["sha256"].as_str().unwrap().to_owned();
    let production = world.slot("production");
    let newest = production
        .deployments
        .iter()
        .filter_map(|d| d.received_sha256.clone())
        .next_back();
    assert_eq!(newest, Some(v1_sha), "{:#?}", production.deployments);
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(
        status, 200,
        "production is healthy on the redeployed release"
    );
    assert_eq!(
        world.tag("slotrelease.lastKnownGood"),
        Some(runs[0].identity())
    );
    // A release the history does not know is refused with the ones it does.
    let out = job_with(&world, &runs[2], "rollback", &["--to", "20250101.9"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        printed(&out).contains("not in the app's release history"),
        "{}",
        printed(&out)
    );
    // `plan --stage rollback --to` shows what that run would do: v2, swapped out by the redeploy, is in
    // the staging slot, so a swap.
    let out = job_with(
        &world,
        &runs[2],
        "plan",
        &["--stage", "rollback", "--to", "20261204.2"],
    )
    .await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        stdout(&out).contains("swap staging into production"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_reverts_a_container_release_to_the_previous_and_to_a_named_image() {
    let world = World::released_container(|t| t).await;
    let image = |w: &World| {
        w.emulator
            .snapshot()
            .slot("contoso-api", "production")
            .and_then(|s| s.image.clone())
            .unwrap_or_default()
    };
    let runs = release_three(&world, 8, 600).await;
    assert_eq!(image(&world), "contoso.azurecr.io/contoso/app:603");
    let out = job_with(&world, &runs[2], "rollback", &[]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(image(&world), "contoso.azurecr.io/contoso/app:602");
    // v1 is in no slot: its image goes to the staging slot, passes the gate there, and is swapped in, so
    // production is never touched before it answers; v2 ends in the staging slot.
    let out = job_with(
        &world,
        &runs[2],
        "plan",
        &["--stage", "rollback", "--to", "20261204.1"],
    )
    .await;
    assert!(out.status.success(), "{}", printed(&out));
    let plan = stdout(&out);
    let set = plan.find("its image goes to slot staging").expect(&plan);
    let swap = plan.find("swap staging into production").expect(&plan);
    assert!(set < swap, "{plan}");
    let out = job_with(&world, &runs[2], "rollback", &["--to", "20261204.1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(image(&world), "contoso.azurecr.io/contoso/app:601");
    let staging = world
        .emulator
        .snapshot()
        .slot("contoso-api", "staging")
        .and_then(|s| s.image.clone());
    assert_eq!(
        staging.as_deref(),
        Some("contoso.azurecr.io/contoso/app:602")
    );
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(status, 200, "production is healthy on v1");
    assert_eq!(
        world.tag("slotrelease.lastKnownGood"),
        Some(runs[0].identity())
    );
}
