//! What Microsoft's clients read before and while they sign in: the OpenID configuration and
//! instance-discovery documents, the v1 token endpoint, ARM's anonymous cloud metadata and the
//! subscriptions.

use crate::common::*;

async fn get_json(f: &Fixture, url: &str) -> (u16, serde_json::Value) {
    let r = f.http.get(url).send().await.expect("get");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn openid_configuration_points_at_the_emulators_own_token_endpoints() {
    let f = start().await;
    let (authority, tenant) = (f.emu.endpoints().authority, f.emu.seed().tenant_id.clone());
    let (status, v2) = get_json(
        &f,
        &format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(
        v2["token_endpoint"],
        format!("{authority}/{tenant}/oauth2/v2.0/token")
    );
    assert_eq!(v2["issuer"], format!("{authority}/{tenant}/v2.0"));
    assert_eq!(
        v2["authorization_endpoint"],
        format!("{authority}/{tenant}/oauth2/v2.0/authorize")
    );
    let (status, keys) = get_json(&f, v2["jwks_uri"].as_str().expect("jwks_uri")).await;
    assert_eq!((status, keys["keys"].is_array()), (200, true));

    let (status, v1) = get_json(
        &f,
        &format!("{authority}/{tenant}/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(
        v1["token_endpoint"],
        format!("{authority}/{tenant}/oauth2/token")
    );

    let (status, unknown) = get_json(
        &f,
        &format!("{authority}/not-a-tenant/v2.0/.well-known/openid-configuration"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(unknown["error"], "invalid_tenant");
}

#[tokio::test]
async fn instance_discovery_knows_only_the_emulators_authority() {
    let f = start().await;
    let (authority, tenant) = (f.emu.endpoints().authority, f.emu.seed().tenant_id.clone());
    let ask = |endpoint: String| {
        let url = format!(
            "{authority}/common/discovery/instance?api-version=1.1&authorization_endpoint={}",
            url::form_urlencoded::byte_serialize(endpoint.as_bytes()).collect::<String>()
        );
        let f = &f;
        async move { get_json(f, &url).await }
    };
    let (status, v) = ask(format!("{authority}/{tenant}/oauth2/v2.0/authorize")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["tenant_discovery_endpoint"],
        format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration")
    );
    let host = format!("login.emulator.test:{}", f.emu.port());
    assert_eq!(v["metadata"][0]["aliases"][0], host.as_str());

    let (status, v) = ask(format!(
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
    ))
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"], "invalid_instance");
}

#[tokio::test]
async fn the_v1_token_endpoint_takes_a_resource_and_answers_v1_fields() {
    let f = start().await;
    // azure-arm-rest's ADAL path posts to `{authority}{tenant}/oauth2/token/`, trailing slash included.
    let url = format!(
        "{}/{}/oauth2/token/",
        f.emu.endpoints().authority,
        f.emu.seed().tenant_id
    );
    let r = f
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("resource", "https://management.emulator.test/"),
        ]))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["resource"], "https://management.emulator.test/");
    let expires_on: i64 = v["expires_on"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("expires_on is a string of seconds");
    assert!(expires_on > 1_700_000_000);
    let token = v["access_token"].as_str().expect("access_token");
    let r = f
        .http
        .get(f.site("?api-version=2016-08-01"))
        .bearer_auth(token)
        .send()
        .await
        .expect("arm");
    assert_eq!(r.status(), 200, "the v1 token is an ARM token");

    // A v1 request without `resource` is refused as Entra refuses it.
    let r = f
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
        ]))
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("'resource'")),
        "{v}"
    );
}

#[tokio::test]
async fn arm_metadata_is_served_without_a_token_in_both_shapes() {
    let f = start().await;
    let arm = f.emu.endpoints().arm;
    let (status, cloud) = get_json(
        &f,
        &format!("{arm}/metadata/endpoints?api-version=2022-09-01"),
    )
    .await;
    assert_eq!(status, 200, "{cloud}");
    assert_eq!(
        cloud["name"], "SlotReleaseEmulator",
        "one cloud object: {cloud}"
    );
    assert_eq!(cloud["resourceManager"], format!("{arm}/"));
    assert_eq!(
        cloud["authentication"]["loginEndpoint"],
        format!("{}/", f.emu.endpoints().authority)
    );
    assert_eq!(
        cloud["authentication"]["audiences"][0],
        "https://management.emulator.test/"
    );
    assert_eq!(
        cloud["suffixes"]["keyVaultDns"],
        format!("vault.emulator.test:{}", f.emu.port())
    );
    let (status, clouds) = get_json(
        &f,
        &format!("{arm}/metadata/endpoints?api-version=2019-05-01"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        clouds[0]["resourceManager"],
        format!("{arm}/"),
        "a list: {clouds}"
    );
    // `az cloud register --endpoint-resource-manager <arm>/` asks with a doubled slash.
    let (status, _) = get_json(
        &f,
        &format!("{arm}//metadata/endpoints?api-version=2022-09-01"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, old) = get_json(&f, &format!("{arm}/metadata/endpoints?api-version=1.0")).await;
    assert_eq!(status, 200);
    assert_eq!(
        old["authentication"]["loginEndpoint"],
        format!("{}/", f.emu.endpoints().authority)
    );
    // Everything else on ARM still needs a token.
    let r = f
        .http
        .get(format!("{arm}/subscriptions?api-version=2022-12-01"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn subscriptions_and_the_subscription_wide_site_list() {
    let f = start().await;
    let arm = f.emu.endpoints().arm;
    let r = f
        .arm_call(
            reqwest::Method::GET,
            &format!("{arm}/subscriptions?api-version=2022-12-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["value"][0]["subscriptionId"], SUB);
    assert_eq!(v["value"][0]["state"], "Enabled");
    assert_eq!(v["value"][0]["tenantId"], f.emu.seed().tenant_id.as_str());
    let r = f
        .arm_call(
            reqwest::Method::GET,
            &format!("{arm}/subscriptions/{SUB}?api-version=2022-12-01"),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["id"], format!("/subscriptions/{SUB}"));
    let r = f
        .arm_call(
            reqwest::Method::GET,
            &format!(
                "{arm}/subscriptions/00000000-0000-0000-0000-00000000dead?api-version=2022-12-01"
            ),
            None,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = f
        .arm_call(
            reqwest::Method::GET,
            &format!(
                "{arm}/subscriptions/{SUB}/providers/Microsoft.Web/sites?api-version=2024-04-01"
            ),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["value"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["name"] == APP)),
        "{v}"
    );
}
