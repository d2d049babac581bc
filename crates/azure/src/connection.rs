//! AzureRM service connections as the agent hands them to a task (environment variables), parsed into
//! a [`CredentialSource`] and a [`Cloud`] before any request is made.

use crate::cloud::{Cloud, CustomCloud};
use crate::error::{AzureError, Result};
pub use azure_core::credentials::Secret;
use url::Url;

/// Where tokens come from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// Workload identity federation: an OIDC token from Azure Pipelines exchanged as a client assertion.
    WorkloadIdentityFederation {
        /// Entra tenant.
        tenant_id: String,
        /// Service principal (app) id.
        client_id: String,
        /// The service connection's GUID (sent as `serviceConnectionId`).
        service_connection_id: String,
        /// `SYSTEM_OIDCREQUESTURI`.
        oidc_request_uri: Url,
        /// The job's access token (`System.AccessToken`).
        system_access_token: Secret,
        /// A late-bound OIDC token handed over by the agent (`ENDPOINT_AUTH_PARAMETER_<id>_IDTOKEN`),
        /// used for the first exchange only; later exchanges request a fresh one.
        id_token: Option<Secret>,
    },
    /// Service principal with a client secret.
    ServicePrincipalSecret {
        /// Entra tenant.
        tenant_id: String,
        /// Service principal (app) id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
    /// Service principal with a certificate (PEM holding the certificate and its private key).
    ServicePrincipalCertificate {
        /// Entra tenant.
        tenant_id: String,
        /// Service principal (app) id.
        client_id: String,
        /// PEM text: `CERTIFICATE` and `PRIVATE KEY` / `RSA PRIVATE KEY` blocks.
        certificate_pem: Secret,
    },
    /// Managed identity of the agent's host.
    ManagedIdentity {
        /// User-assigned identity client id; `None` for the system-assigned identity.
        client_id: Option<String>,
        /// Where the identity endpoint is.
        endpoint: ManagedIdentityEndpoint,
    },
    /// The developer's Azure CLI (`az`), then Azure Developer CLI (`azd`) login; for local runs only.
    DeveloperCli {
        /// Tenant to request tokens for, if not the CLI's default.
        tenant_id: Option<String>,
    },
    /// A fixed bearer token (tests and `rehearse` against the emulator). Never refreshed.
    StaticToken {
        /// The token.
        token: Secret,
    },
}

impl CredentialSource {
    /// Whether the credential built from this source keeps its tokens (azure_identity's client-secret
    /// and client-assertion credentials do; the managed identity and static token here do not, and
    /// the developer CLI's is never asked ahead).
    pub(crate) fn cached_by_identity(&self) -> bool {
        matches!(
            self,
            Self::WorkloadIdentityFederation { .. }
                | Self::ServicePrincipalSecret { .. }
                | Self::ServicePrincipalCertificate { .. }
        )
    }

    /// Short name of the credential kind, for messages (never includes secrets).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::WorkloadIdentityFederation { .. } => "workload identity federation",
            Self::ServicePrincipalSecret { .. } => "service principal (secret)",
            Self::ServicePrincipalCertificate { .. } => "service principal (certificate)",
            Self::ManagedIdentity { .. } => "managed identity",
            Self::DeveloperCli { .. } => "developer CLI",
            Self::StaticToken { .. } => "static token",
        }
    }
}

/// Where a managed identity's tokens are served.
#[derive(Debug, Clone)]
pub enum ManagedIdentityEndpoint {
    /// App Service style: `IDENTITY_ENDPOINT` with the `X-IDENTITY-HEADER` secret.
    AppService {
        /// `IDENTITY_ENDPOINT`.
        endpoint: Url,
        /// `IDENTITY_HEADER`.
        header: Secret,
    },
    /// The instance metadata service (`http://169.254.169.254/metadata/identity/oauth2/token`).
    Imds {
        /// The token URL.
        endpoint: Url,
    },
}

impl ManagedIdentityEndpoint {
    /// Pick the endpoint from the environment: App Service variables when present, IMDS otherwise.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        match (
            non_empty(env("IDENTITY_ENDPOINT")),
            non_empty(env("IDENTITY_HEADER")),
        ) {
            (Some(e), Some(h)) => Ok(Self::AppService {
                endpoint: Url::parse(&e)
                    .map_err(|err| AzureError::invalid("IDENTITY_ENDPOINT", e, err.to_string()))?,
                header: Secret::new(h),
            }),
            _ => {
                let base = non_empty(env("IMDS_ENDPOINT"))
                    .unwrap_or_else(|| "http://169.254.169.254".to_owned());
                let full = format!(
                    "{}/metadata/identity/oauth2/token",
                    base.trim_end_matches('/')
                );
                Ok(Self::Imds {
                    endpoint: Url::parse(&full).map_err(|err| {
                        AzureError::invalid("IMDS_ENDPOINT", base, err.to_string())
                    })?,
                })
            }
        }
    }
}

/// An AzureRM service connection read from the agent's environment.
#[derive(Debug, Clone)]
pub struct ServiceConnection {
    id: String,
    url: Url,
    credential: CredentialSource,
    subscription_id: Option<String>,
    subscription_name: Option<String>,
    cloud: Cloud,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl ServiceConnection {
    /// Read connection `id` from agent variables (`ENDPOINT_URL_<id>`, `ENDPOINT_AUTH_SCHEME_<id>`,
    /// `ENDPOINT_AUTH_PARAMETER_<id>_<KEY>`, `ENDPOINT_DATA_<id>_<KEY>`, falling back to the JSON in
    /// `ENDPOINT_AUTH_<id>`). The id is tried verbatim, then lowercased. Every missing field is named.
    pub fn from_agent_env(id: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let id = id.trim();
        if id.is_empty() {
            return Err(AzureError::config(
                "(empty)",
                "no service connection id given",
            ));
        }
        let lower = id.to_ascii_lowercase();
        let ids: Vec<&str> = if lower == id {
            vec![id]
        } else {
            vec![id, lower.as_str()]
        };
        let get = |prefix: &str, suffix: &str| -> Option<String> {
            ids.iter()
                .find_map(|i| non_empty(env(&format!("{prefix}{i}{suffix}"))))
        };
        let url_text = get("ENDPOINT_URL_", "").ok_or_else(|| {
            AzureError::config(id, format!("ENDPOINT_URL_{id} is not set: is '{id}' an AzureRM service connection the job can use?"))
        })?;
        let url = Url::parse(&url_text).map_err(|e| {
            AzureError::config(
                id,
                format!("ENDPOINT_URL_{id} '{url_text}' is not a URL: {e}"),
            )
        })?;

        // The agent also passes the whole authorization as JSON; use it for parameters that are not
        // present as separate variables (older agents, and hand-written test environments).
        let auth_json: Option<serde_json::Value> =
            get("ENDPOINT_AUTH_", "").and_then(|t| serde_json::from_str(&t).ok());
        let param = |key: &str| -> Option<String> {
            get(
                "ENDPOINT_AUTH_PARAMETER_",
                &format!("_{}", key.to_ascii_uppercase()),
            )
            .or_else(|| {
                let params = auth_json.as_ref()?.get("parameters")?.as_object()?;
                params
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .and_then(|(_, v)| v.as_str().map(str::to_owned))
                    .and_then(|s| non_empty(Some(s)))
            })
        };
        let data = |key: &str| get("ENDPOINT_DATA_", &format!("_{}", key.to_ascii_uppercase()));
        let scheme = get("ENDPOINT_AUTH_SCHEME_", "")
            .or_else(|| {
                auth_json
                    .as_ref()?
                    .get("scheme")?
                    .as_str()
                    .map(str::to_owned)
            })
            .ok_or_else(|| {
                AzureError::config(id, format!("ENDPOINT_AUTH_SCHEME_{id} is not set"))
            })?;
        let need = |key: &str, var: &str| -> Result<String> {
            param(key).ok_or_else(|| {
                AzureError::config(
                    id,
                    format!("scheme {scheme} needs {var} (ENDPOINT_AUTH_PARAMETER_{id}_{}), which is not set", key.to_ascii_uppercase()),
                )
            })
        };

        let credential = match scheme.to_ascii_lowercase().as_str() {
            "workloadidentityfederation" => {
                let tenant_id = need("tenantid", "the tenant id")?;
                let client_id = need("serviceprincipalid", "the service principal id")?;
                let uri = non_empty(env("SYSTEM_OIDCREQUESTURI")).ok_or_else(|| {
                    AzureError::config(id, "workload identity federation needs SYSTEM_OIDCREQUESTURI, which is not set (is this running in Azure Pipelines?)")
                })?;
                let oidc_request_uri = Url::parse(&uri).map_err(|e| {
                    AzureError::config(id, format!("SYSTEM_OIDCREQUESTURI is not a URL: {e}"))
                })?;
                let token = non_empty(env("ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN"))
                    .or_else(|| non_empty(env("SYSTEM_ACCESSTOKEN")))
                    .ok_or_else(|| {
                        AzureError::config(id, "workload identity federation needs the job access token (ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN or SYSTEM_ACCESSTOKEN), which is not set")
                    })?;
                CredentialSource::WorkloadIdentityFederation {
                    tenant_id,
                    client_id,
                    service_connection_id: id.to_owned(),
                    oidc_request_uri,
                    system_access_token: Secret::new(token),
                    id_token: param("idToken").map(Secret::new),
                }
            }
            "serviceprincipal" => {
                let tenant_id = need("tenantid", "the tenant id")?;
                let client_id = need("serviceprincipalid", "the service principal id")?;
                let auth_type = param("authenticationType").unwrap_or_else(|| "spnKey".to_owned());
                match auth_type.to_ascii_lowercase().as_str() {
                    "spnkey" => CredentialSource::ServicePrincipalSecret {
                        tenant_id,
                        client_id,
                        secret: Secret::new(need(
                            "serviceprincipalkey",
                            "the service principal key",
                        )?),
                    },
                    "spncertificate" => CredentialSource::ServicePrincipalCertificate {
                        tenant_id,
                        client_id,
                        certificate_pem: Secret::new(need(
                            "servicePrincipalCertificate",
                            "the service principal certificate (PEM)",
                        )?),
                    },
                    other => {
                        return Err(AzureError::config(
                            id,
                            format!(
                                "authenticationType '{other}' is not supported (expected spnKey or spnCertificate)"
                            ),
                        ));
                    }
                }
            }
            "managedserviceidentity" => CredentialSource::ManagedIdentity {
                client_id: data("msiclientId").or_else(|| param("msiclientId")),
                endpoint: ManagedIdentityEndpoint::from_env(env)?,
            },
            _ => {
                return Err(AzureError::config(
                    id,
                    format!(
                        "authorization scheme '{scheme}' is not supported (expected WorkloadIdentityFederation, ServicePrincipal or ManagedServiceIdentity)"
                    ),
                ));
            }
        };

        let cloud = cloud_from_data(id, &url, &data)?;
        Ok(Self {
            id: id.to_owned(),
            url,
            credential,
            subscription_id: data("subscriptionid"),
            subscription_name: data("subscriptionname"),
            cloud,
        })
    }

    /// No service connection: the developer's own login (`az login`, then `azd auth login`) on `cloud`,
    /// for a run on a workstation.
    pub fn developer(cloud: Cloud, subscription: Option<String>, tenant: Option<String>) -> Self {
        ServiceConnection {
            id: "az login".to_owned(),
            url: cloud.arm_endpoint.clone(),
            credential: CredentialSource::DeveloperCli { tenant_id: tenant },
            subscription_id: subscription,
            subscription_name: None,
            cloud,
        }
    }

    /// The connection id as given.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `ENDPOINT_URL_<id>` (the ARM endpoint of the connection's cloud).
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The subscription the connection is scoped to, if any (management-group connections have none).
    pub fn subscription_id(&self) -> Option<&str> {
        self.subscription_id.as_deref()
    }

    /// The subscription's display name, if given.
    pub fn subscription_name(&self) -> Option<&str> {
        self.subscription_name.as_deref()
    }

    /// The cloud the connection points at.
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The credential to request tokens with.
    pub fn credential(&self) -> &CredentialSource {
        &self.credential
    }

    /// Split into credential and cloud, for [`crate::Azure::new`].
    pub fn into_parts(self) -> (CredentialSource, Cloud) {
        (self.credential, self.cloud)
    }
}

fn cloud_from_data(id: &str, url: &Url, data: &dyn Fn(&str) -> Option<String>) -> Result<Cloud> {
    // The emulator is recognised by its ARM host, so a connection produced by
    // `Emulator::service_connection_env` needs no extra data.
    if url
        .host_str()
        .is_some_and(|h| h.ends_with(crate::cloud::EMULATOR_DOMAIN))
    {
        let port = url.port_or_known_default().unwrap_or(443);
        return Ok(Cloud::emulator(port));
    }
    let env_name = data("environment").unwrap_or_else(|| "AzureCloud".to_owned());
    if let Some(c) = Cloud::from_environment_name(&env_name) {
        return Ok(c);
    }
    // Azure Stack and other custom clouds: endpoints come from the connection's data.
    let authority = data("activeDirectoryAuthority")
        .or_else(|| data("environmentAuthorityUrl"))
        .ok_or_else(|| {
            AzureError::config(id, format!("environment '{env_name}' needs ENDPOINT_DATA_{id}_ACTIVEDIRECTORYAUTHORITY (or ENVIRONMENTAUTHORITYURL), which is not set"))
        })?;
    let kv_suffix = data("AzureKeyVaultDnsSuffix").ok_or_else(|| {
        AzureError::config(id, format!("environment '{env_name}' needs ENDPOINT_DATA_{id}_AZUREKEYVAULTDNSSUFFIX, which is not set"))
    })?;
    // App Service hosts are read from ARM (defaultHostName, the Repository host); this suffix is only
    // informational, derived from the ARM host when the connection does not carry one.
    let appservice = data("appServiceDnsSuffix").unwrap_or_else(|| {
        let host = url.host_str().unwrap_or_default();
        format!(
            "appservice.{}",
            host.split_once('.').map(|(_, rest)| rest).unwrap_or(host)
        )
    });
    Cloud::custom(CustomCloud {
        name: env_name,
        arm_endpoint: url.to_string(),
        authority_host: authority,
        arm_audience: data("activeDirectoryServiceEndpointResourceId"),
        keyvault_dns_suffix: kv_suffix,
        keyvault_audience: data("AzureKeyVaultServiceEndpointResourceId"),
        appservice_dns_suffix: appservice,
    })
    .map_err(|e| AzureError::config(id, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const ID: &str = "5A7C3F10-AAAA-0000-0000-000000000001";

    fn parse(vars: &[(&str, &str)]) -> Result<ServiceConnection> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ServiceConnection::from_agent_env(ID, &|k| map.get(k).cloned())
    }

    #[test]
    fn service_principal_secret_in_public_cloud() {
        let l = ID.to_ascii_lowercase();
        let mut all: Vec<(String, String)> = vec![(
            format!("ENDPOINT_URL_{l}"),
            "https://management.azure.com/".to_owned(),
        )];
        all.push((
            format!("ENDPOINT_AUTH_SCHEME_{l}"),
            "ServicePrincipal".into(),
        ));
        all.push((format!("ENDPOINT_AUTH_PARAMETER_{l}_TENANTID"), "t".into()));
        all.push((
            format!("ENDPOINT_AUTH_PARAMETER_{l}_SERVICEPRINCIPALID"),
            "c".into(),
        ));
        all.push((
            format!("ENDPOINT_AUTH_PARAMETER_{l}_SERVICEPRINCIPALKEY"),
            "k".into(),
        ));
        all.push((format!("ENDPOINT_DATA_{l}_SUBSCRIPTIONID"), "sub".into()));
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        // Variables keyed by the lowercased id are found when the input used upper case.
        let c = parse(&refs).expect("parses");
        assert_eq!(c.cloud().name, "AzureCloud");
        assert_eq!(c.subscription_id(), Some("sub"));
        assert!(
            matches!(c.credential(), CredentialSource::ServicePrincipalSecret { tenant_id, client_id, .. } if tenant_id == "t" && client_id == "c")
        );
        assert!(
            !format!("{c:?}").contains("\"k\""),
            "the key is redacted in Debug"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        let url = format!("ENDPOINT_URL_{ID}");
        let scheme = format!("ENDPOINT_AUTH_SCHEME_{ID}");
        let tenant = format!("ENDPOINT_AUTH_PARAMETER_{ID}_TENANTID");
        let err = parse(&[
            (&url, "https://management.azure.com/"),
            (&scheme, "ServicePrincipal"),
            (&tenant, "t"),
        ])
        .expect_err("no client id");
        assert!(err.to_string().contains("SERVICEPRINCIPALID"), "{err}");
        let err = parse(&[(&scheme, "ServicePrincipal")]).expect_err("no url");
        assert!(err.to_string().contains("ENDPOINT_URL_"), "{err}");
        let err = parse(&[
            (&url, "https://management.azure.com/"),
            (&scheme, "PublishProfile"),
        ])
        .expect_err("scheme");
        assert!(err.to_string().contains("PublishProfile"), "{err}");
        let err = parse(&[
            (&url, "https://management.azure.com/"),
            (&scheme, "WorkloadIdentityFederation"),
            (&tenant, "t"),
            (
                &format!("ENDPOINT_AUTH_PARAMETER_{ID}_SERVICEPRINCIPALID"),
                "c",
            ),
        ])
        .expect_err("no oidc uri");
        assert!(err.to_string().contains("SYSTEM_OIDCREQUESTURI"), "{err}");
    }

    #[test]
    fn auth_json_certificate_and_azure_stack_data() {
        let auth = serde_json::json!({"scheme":"ServicePrincipal","parameters":{"tenantid":"t","serviceprincipalid":"c",
            "authenticationType":"spnCertificate","servicePrincipalCertificate":"-----BEGIN CERTIFICATE-----"}}).to_string();
        let vars = [
            (
                format!("ENDPOINT_URL_{ID}"),
                "https://management.local.azurestack.external/".to_owned(),
            ),
            (format!("ENDPOINT_AUTH_{ID}"), auth),
            (
                format!("ENDPOINT_DATA_{ID}_ENVIRONMENT"),
                "AzureStack".to_owned(),
            ),
            (
                format!("ENDPOINT_DATA_{ID}_ACTIVEDIRECTORYAUTHORITY"),
                "https://login.local/".to_owned(),
            ),
            (
                format!("ENDPOINT_DATA_{ID}_AZUREKEYVAULTDNSSUFFIX"),
                "vault.local.azurestack.external".to_owned(),
            ),
        ];
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let c = parse(&refs).expect("parses");
        assert!(matches!(
            c.credential(),
            CredentialSource::ServicePrincipalCertificate { .. }
        ));
        assert_eq!(c.cloud().name, "AzureStack");
        assert_eq!(c.cloud().authority_host.as_str(), "https://login.local/");
        assert_eq!(
            c.cloud().vault_url("kv").expect("url").as_str(),
            "https://kv.vault.local.azurestack.external/"
        );
        assert_eq!(
            c.cloud().arm_audience,
            "https://management.local.azurestack.external/"
        );

        let no_suffix = &refs[..4];
        let err = parse(no_suffix).expect_err("suffix needed");
        assert!(err.to_string().contains("AZUREKEYVAULTDNSSUFFIX"), "{err}");
    }

    #[test]
    fn managed_identity_endpoint_selection() {
        let vars = HashMap::from([
            (
                "IDENTITY_ENDPOINT".to_owned(),
                "https://identity.local/msi/token".to_owned(),
            ),
            ("IDENTITY_HEADER".to_owned(), "h".to_owned()),
        ]);
        assert!(matches!(
            ManagedIdentityEndpoint::from_env(&|k| vars.get(k).cloned()).expect("ok"),
            ManagedIdentityEndpoint::AppService { .. }
        ));
        match ManagedIdentityEndpoint::from_env(&|_| None).expect("ok") {
            ManagedIdentityEndpoint::Imds { endpoint } => {
                assert_eq!(endpoint.host_str(), Some("169.254.169.254"))
            }
            other => panic!("expected IMDS, got {other:?}"),
        }
    }
}
