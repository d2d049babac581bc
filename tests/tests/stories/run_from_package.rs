//! Run from package (`WEBSITE_RUN_FROM_PACKAGE=1`): each release's zip is kept by Kudu under
//! `/home/data/SitePackages` and follows the content on a swap, so a rollback to a release that is in
//! no slot any more points the staging slot back at its kept zip, gates it and swaps it in, without
//! its artifact and without a rebuild.

use std::path::PathBuf;

use slot_release_tests::{World, printed, stdout};

/// The kept zips and `packagename.txt` of a slot, read where the emulator keeps `/home/data`.
fn site_packages(world: &World, slot: &str) -> (Vec<String>, Option<String>) {
    let content = world.slot(slot).content_dir;
    let dir: PathBuf = content
        .ancestors()
        .nth(2)
        .expect("the app's folder (content/<id> below it)")
        .join("slot-home")
        .join(slot)
        .join("data")
        .join("SitePackages");
    let mut zips: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".zip"))
                .collect()
        })
        .unwrap_or_default();
    zips.sort();
    let active = std::fs::read_to_string(dir.join("packagename.txt"))
        .ok()
        .map(|n| n.trim().to_owned());
    (zips, active)
}

/// Gives the sources another version, so each release's package differs.
fn version(world: &World, v: &str) {
    std::fs::write(world.sources.join("VERSION"), v).expect("write VERSION");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_run_from_its_package_rolls_back_to_the_package_kudu_kept() {
    let world = World::released(|t| {
        t.replace(
            "      APP_ENV: staging\n",
            "      APP_ENV: staging\n      WEBSITE_RUN_FROM_PACKAGE: \"1\"\n",
        )
        .replace(
            "      APP_ENV: production\n",
            "      APP_ENV: production\n      WEBSITE_RUN_FROM_PACKAGE: \"1\"\n",
        )
    })
    .await;
    let plan = world
        .cli(&["plan", "--stage", "staging", "--release-id", "r1"])
        .await;
    assert!(plan.status.success(), "{}", printed(&plan));
    assert!(
        stdout(&plan).contains("runs from its package (WEBSITE_RUN_FROM_PACKAGE=1)"),
        "{}",
        stdout(&plan)
    );

    version(&world, "1");
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let r1 = world.slot("production").content_digest;
    let (zips, active) = site_packages(&world, "production");
    assert_eq!(zips.len(), 1, "{zips:?}");
    assert_eq!(active.as_ref(), zips.first(), "production runs r1's zip");
    let r1_zip = zips[0].clone();

    version(&world, "2");
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_ne!(world.slot("production").content_digest, r1);
    // r1 waits in staging with its zip; staging r3 over it leaves r1 in no slot, its zip still kept.
    version(&world, "3");
    let out = world.cli(&["staging", "--release-id", "r3"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let (zips, active) = site_packages(&world, "staging");
    assert!(zips.contains(&r1_zip), "{zips:?}");
    assert_ne!(active.as_ref(), Some(&r1_zip));

    let requests = world.emulator.requests().len();
    let out = world
        .cli(&["rollback", "--release-id", "rb", "--to", "r1"])
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        stdout(&out).contains("runs its kept package"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        world.slot("production").content_digest,
        r1,
        "production runs r1's package again"
    );
    assert_eq!(site_packages(&world, "production").1, Some(r1_zip));
    let made = &world.emulator.requests()[requests..];
    assert!(
        !made.iter().any(|r| r.path.ends_with("/api/publish")),
        "no package was uploaded: {:?}",
        made.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert_eq!(
        world.tag("slotrelease.lastKnownGood").as_deref(),
        Some("r1")
    );
}
