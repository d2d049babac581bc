//! The production prober has teeth: every story that says production stayed healthy relies on it, so it
//! must see production answering 500 (and say nothing when production is fine).

use std::time::Duration;

use slot_release_emulator::Fault;
use slot_release_tests::World;
use slot_release_tests::prober::always_healthy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prober_sees_a_production_outage_and_only_that() {
    let world = World::released(|t| t).await;
    let prober = world.watch_production();
    prober
        .await_samples(5, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    prober.assert_always_healthy().await;

    let prober = world.watch_production();
    prober
        .await_samples(3, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // Production starts answering 500, as it would after a bad swap.
    world.emulator.inject(Fault::AppUnhealthyAfterRequests {
        app: world.app.clone(),
        slot: "production".into(),
        after_requests: 0,
    });
    prober
        .await_samples(3, Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let samples = prober.stop().await;
    assert!(
        samples.iter().any(|s| s.health_status == 500),
        "the outage was not sampled: {samples:?}"
    );
    let verdict = always_healthy(&samples);
    assert!(
        verdict
            .as_ref()
            .is_err_and(|e| e.contains("production was unhealthy")),
        "the prober missed the outage: {verdict:?}"
    );
}
