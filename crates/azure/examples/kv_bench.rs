//! Benchmark: read 200 named Key Vault secrets from the emulator with 20 ms of injected latency per
//! request, and report the wall time in round trips. Run with
//! `cargo run --release -p slot-release-azure --example kv_bench`.

use slot_release_azure::{Azure, CancellationToken, HttpOptions, SecretRef, ServiceConnection};
use slot_release_emulator::{
    ConnectionKind, Emulator, EmulatorOptions, Fault, RouteMatch, SecretString, Seed, SeedSecret,
};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const LATENCY: Duration = Duration::from_millis(20);
const SECRETS: usize = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut seed = Seed::sample();
    seed.subscriptions[0].resource_groups[0].vaults[0].secrets = (0..SECRETS)
        .map(|i| SeedSecret {
            name: format!("secret-{i:03}"),
            value: SecretString::new(format!("value-{i}")),
            previous_values: vec![],
            enabled: true,
            exp: None,
            nbf: None,
            content_type: None,
            tags: BTreeMap::new(),
        })
        .collect();
    let em = Emulator::start(EmulatorOptions::new(seed, dir.path())).await?;
    let vars: HashMap<String, String> = em
        .service_connection_env(&ConnectionKind::ServicePrincipal)
        .into_iter()
        .collect();
    let id = vars
        .keys()
        .find_map(|k| k.strip_prefix("ENDPOINT_URL_"))
        .ok_or("no connection")?
        .to_owned();
    let (cred, cloud) =
        ServiceConnection::from_agent_env(&id, &|k| vars.get(k).cloned())?.into_parts();
    let az = Azure::new(cred, cloud, HttpOptions::emulator(em.ca_pem()))?;
    em.inject(Fault::Latency {
        route: RouteMatch {
            host: Some("*.vault.*".into()),
            method: None,
            path: None,
            body_contains: None,
        },
        millis: LATENCY.as_millis() as u64,
        count: None,
    });
    let refs: Vec<SecretRef> = (0..SECRETS)
        .map(|i| SecretRef::parse(&format!("secret-{i:03}")))
        .collect::<Result<_, _>>()?;
    let kv = az.key_vault("contoso-kv")?;
    // Cold: the vault's 401 challenge and its token are part of the measurement.
    // Warm: the same handle again, with the challenge scope and token cached.
    for run in [
        "cold (challenge + vault token + reads)",
        "warm (reads only)",
    ] {
        let started = Instant::now();
        let got = kv.get_secrets(&refs, &CancellationToken::new()).await?;
        let took = started.elapsed();
        assert_eq!(got.len(), SECRETS);
        println!(
            "{run}: {SECRETS} secrets in {took:?} = {:.1} round trips of {LATENCY:?}",
            took.as_secs_f64() / LATENCY.as_secs_f64()
        );
    }
    Ok(())
}
