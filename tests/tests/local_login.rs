//! On a workstation, with no service connection, the binary signs in with the developer's Azure CLI
//! login, as docs/authentication.md says: it asks `az account get-access-token` for the chosen cloud's ARM
//! scope and uses that token. The `az` here is a stand-in on `PATH` that hands out a token the emulator
//! issued, and records how it was asked; in a pipeline the binary never falls back to it.

use std::os::unix::fs::PermissionsExt;

use slot_release_tests::World;

/// A token for the emulator's ARM, by the client-credentials flow of the world's service principal.
async fn arm_token(world: &World) -> String {
    let get = |suffix: &str| {
        world
            .cli_env()
            .into_iter()
            .find(|(k, _)| k.starts_with("ENDPOINT_AUTH_PARAMETER_") && k.ends_with(suffix))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {suffix} in the service connection"))
    };
    let authority = world.emulator.endpoints().authority;
    let response: serde_json::Value = world
        .http()
        .post(format!(
            "{authority}/{}/oauth2/v2.0/token",
            get("_TENANTID")
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", get("_SERVICEPRINCIPALID")),
            ("client_secret", get("_SERVICEPRINCIPALKEY")),
            (
                "scope",
                "https://management.emulator.test/.default".to_owned(),
            ),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["access_token"].as_str().unwrap().to_owned()
}

fn form(pairs: &[(&str, String)]) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_service_connection_plan_uses_the_azure_cli_login() {
    let world = World::released(|t| t).await;
    let token = arm_token(&world).await;
    let bin = world.dir.path().join("fake-az");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = world.dir.path().join("az-args.txt");
    let az = bin.join("az");
    std::fs::write(
        &az,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\ncase \"$*\" in\n  *'account get-access-token'*'--scope https://management.emulator.test/.default'*)\n    echo '{{\"accessToken\": \"{token}\", \"expires_on\": 4102444800, \"tokenType\": \"Bearer\"}}' ;;\n  *) echo 'ERROR: unexpected arguments' >&2; exit 1 ;;\nesac\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ca = world.emulator.ca_path().display().to_string();
    let port = world.emulator.port().to_string();
    let subscription = world
        .cli_env()
        .into_iter()
        .find(|(k, _)| k.starts_with("ENDPOINT_DATA_") && k.ends_with("_SUBSCRIPTIONID"))
        .map(|(_, v)| v)
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |pipeline: bool| {
        let mut cmd = std::process::Command::new(&world.binary);
        cmd.env_clear()
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env("SLOT_RELEASE_CLOUD", format!("emulator:{port}"))
            .env("AZURE_SUBSCRIPTION_ID", &subscription)
            .env("AGENT_CAINFO", &ca)
            .args(["plan", "--stage", "staging", "--config"])
            .arg(world.config());
        if pipeline {
            cmd.env("TF_BUILD", "True");
        }
        cmd.output().unwrap()
    };
    let out = tokio::task::block_in_place(|| run(false));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Plan for staging of contoso-web"), "{text}");
    let args = std::fs::read_to_string(&asked).unwrap();
    assert!(args.contains("account get-access-token"), "{args}");
    assert!(!text.contains(&token), "the token is never shown");

    // In a pipeline a job must name its service connection: no fallback to a login on the agent.
    std::fs::remove_file(&asked).unwrap();
    let out = tokio::task::block_in_place(|| run(true));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no service connection"), "{text}");
    assert!(!asked.exists(), "az was not asked");
}
