//! `release` with a package made by another tool: the folder is zipped once, the build stage does not build
//! again, and production ends up serving exactly that folder's content.

use slot_release_tests::{World, printed};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_deploys_a_folder_built_by_another_tool_without_building() {
    let world = World::released(|t| t).await;
    // What `npm run build` or `dotnet publish -o dist` would leave: the app plus a file only it made.
    let dist = world.dir.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    for name in ["app.py", "migrate.py", "settings.py"] {
        std::fs::copy(world.sources.join(name), dist.join(name)).unwrap();
    }
    std::fs::write(dist.join("BUILT_BY_OTHER_TOOL.txt"), "dist\n").unwrap();

    let out = world
        .cli(&[
            "release",
            "--release-id",
            "r1",
            "--package",
            dist.to_str().unwrap(),
        ])
        .await;
    let text = printed(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Package folder"), "{text}");
    assert!(
        text.contains("prepared before the stage: not built again"),
        "{text}"
    );
    assert!(!text.contains("No package given"), "{text}");
    assert!(!text.contains("Building the package"), "{text}");

    let production = world.slot("production");
    assert!(
        production
            .content_dir
            .join("BUILT_BY_OTHER_TOOL.txt")
            .is_file(),
        "production does not serve the given folder: {}",
        production.content_dir.display()
    );
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(status, 200);
}
