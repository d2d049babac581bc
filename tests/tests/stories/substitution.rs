//! Variable substitution in the package's `appsettings.json` and `web.config`: the staging deploy sends a
//! copy carrying the staging environment's plain settings (the built artifact unchanged), the log and
//! the plan name files, keys and setting names but no value, secrets are never written into a file, and
//! the swap carries the files to production as they are (docs/substitution.md says why and what to do).

use slot_release_tests::{World, printed, stdout};

const APPSETTINGS: &str = r#"{
  // The app's defaults; the release substitutes per environment.
  "Logging": { "LogLevel": { "Default": "Warning" } },
  "Greeting": "hello from the build",
  "Port": 80,
  "API_KEY": "placeholder"
}
"#;

const WEB_CONFIG: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <appSettings>
    <add key="Greeting" value="hello from the build" />
  </appSettings>
</configuration>
"#;

fn configure(text: String) -> String {
    text.replace(
        "    createSlot: true\n",
        "    createSlot: true\n    substitute:\n      json: ['**/appsettings.json']\n      xml: true\n",
    )
    .replace(
        "      APP_ENV: staging\n",
        "      APP_ENV: staging\n      Greeting: hello from staging\n      Logging.LogLevel.Default: Debug\n      Port: 8081\n",
    )
    .replace(
        "      APP_ENV: production\n",
        "      APP_ENV: production\n      Greeting: hello from production\n      Logging.LogLevel.Default: Error\n      Port: 8081\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_deploys_a_substituted_copy_and_the_swap_carries_its_files_to_production() {
    let world = World::builder()
        .previous_release()
        .quick()
        .edit(configure)
        .prepare(|sources| {
            std::fs::write(sources.join("appsettings.json"), APPSETTINGS)
                .map_err(|e| e.to_string())?;
            std::fs::write(sources.join("web.config"), WEB_CONFIG).map_err(|e| e.to_string())
        })
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let plan = world.cli(&["plan", "--stage", "staging"]).await;
    let text = stdout(&plan);
    let deploy = text
        .lines()
        .find(|l| l.contains("deploy package to staging"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        deploy.contains(
            "its copy's **/appsettings.json, *.config substituted from staging's settings"
        ) && deploy.contains("Greeting, Logging.LogLevel.Default, Port"),
        "{deploy}"
    );
    assert!(
        !deploy.contains("hello"),
        "the step names settings, not values: {deploy}"
    );

    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let log = stdout(&out);
    assert!(
        log.contains(
            "Substituted in appsettings.json from staging's settings: Logging.LogLevel.Default, Greeting, Port"
        ),
        "{log}"
    );
    assert!(
        log.contains("Substituted in web.config from staging's settings: appSettings/Greeting"),
        "{log}"
    );

    let staging = world.slot("staging").content_dir;
    let deployed = std::fs::read_to_string(staging.join("appsettings.json")).unwrap();
    assert_eq!(
        deployed,
        APPSETTINGS
            .replace("\"Warning\"", "\"Debug\"")
            .replace("hello from the build", "hello from staging")
            .replace("80,", "8081,"),
        "only the values changed, typed as the file types them"
    );
    assert!(
        deployed.contains("\"API_KEY\": \"placeholder\""),
        "a Key Vault secret is never written into a file: {deployed}"
    );
    let web = std::fs::read_to_string(staging.join("web.config")).unwrap();
    assert_eq!(
        web,
        WEB_CONFIG.replace("hello from the build", "hello from staging")
    );
    assert!(
        log.lines()
            .filter(|l| l.contains("Substituted in"))
            .all(|l| !l.contains("hello") && !l.contains("Debug")),
        "the substitution's log lines carry keys, not values: {log}"
    );

    // The swap moves the content: production now serves the files staging's deploy wrote, while the
    // app settings (sticky where they differ) are production's.
    let plan = world
        .cli(&["plan", "--stage", "production", "--release-id", "r1"])
        .await;
    let text = stdout(&plan);
    assert!(
        text.contains("keep staging's values for any of these names they hold: APP_ENV, Greeting, Logging.LogLevel.Default;"),
        "the production plan says what the swap carries: {text}"
    );
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let production = world.slot("production");
    let served = std::fs::read_to_string(production.content_dir.join("appsettings.json")).unwrap();
    assert!(served.contains("hello from staging"), "{served}");
    assert_eq!(
        production.app_settings.get("Greeting").map(String::as_str),
        Some("hello from production")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_pattern_that_matches_no_file_fails_the_deploy_naming_it() {
    let world = World::builder()
        .previous_release()
        .quick()
        .edit(|t| configure(t).replace("**/appsettings.json", "**/appsetings.json"))
        .start()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let requests = world.emulator.requests().len();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let err = printed(&out);
    assert!(
        err.contains("**/appsetings.json") && err.contains("no file of the package matches"),
        "{err}"
    );
    let deploys = world.emulator.requests()[requests..]
        .iter()
        .filter(|r| r.path.ends_with("/api/publish"))
        .count();
    assert_eq!(deploys, 0, "nothing was deployed");
}
