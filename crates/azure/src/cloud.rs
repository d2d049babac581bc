//! The cloud table: every endpoint and audience of every supported Azure cloud. This is the only file
//! that names public Azure host names; everything else derives URLs from a [`Cloud`].

use crate::error::{AzureError, Result};
use url::Url;

/// Host names the emulator serves under (see docs/architecture.md, "Emulator addressing").
pub const EMULATOR_DOMAIN: &str = "emulator.test";

/// Endpoints and token audiences of one Azure cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// Display name (`AzureCloud`, `AzureChinaCloud`, `AzureUSGovernment`, `Emulator`, or a custom name).
    pub name: String,
    /// Azure Resource Manager base URL, e.g. `https://management.azure.com/`.
    pub arm_endpoint: Url,
    /// Entra ID authority host, e.g. `https://login.microsoftonline.com/`.
    pub authority_host: Url,
    /// Token audience for ARM (the scope is this plus `.default`), also used for Kudu.
    pub arm_audience: String,
    /// DNS suffix of Key Vaults, e.g. `vault.azure.net`.
    pub keyvault_dns_suffix: String,
    /// Token audience for Key Vault (used when the vault's challenge does not name one).
    pub keyvault_audience: String,
    /// DNS suffix of classic App Service hosts, e.g. `azurewebsites.net`. Informational only: every
    /// app and SCM host is read from ARM, never built from this suffix.
    pub appservice_dns_suffix: String,
    /// Port of every data-plane URL (only the emulator uses a non-default port).
    pub port: Option<u16>,
    /// The Log Analytics query API, e.g. `https://api.loganalytics.io/`, and its token audience;
    /// `None` for a custom cloud, which names none.
    pub log_analytics: Option<(Url, String)>,
}

fn url(s: &str) -> Url {
    // Only called with the literal, well-formed URLs of the table below, so parsing cannot fail;
    // a failure would be a typo caught by the unit tests.
    Url::parse(s).unwrap_or_else(|_| unreachable!("cloud table URL {s} is well formed"))
}

impl Cloud {
    /// Azure public cloud (`AzureCloud`).
    pub fn azure_public() -> Self {
        Self {
            name: "AzureCloud".into(),
            arm_endpoint: url("https://management.azure.com/"),
            authority_host: url("https://login.microsoftonline.com/"),
            arm_audience: "https://management.azure.com/".into(),
            keyvault_dns_suffix: "vault.azure.net".into(),
            keyvault_audience: "https://vault.azure.net".into(),
            appservice_dns_suffix: "azurewebsites.net".into(),
            port: None,
            log_analytics: Some((
                url("https://api.loganalytics.io/"),
                "https://api.loganalytics.io".into(),
            )),
        }
    }

    /// Azure operated by 21Vianet (`AzureChinaCloud`).
    pub fn azure_china() -> Self {
        Self {
            name: "AzureChinaCloud".into(),
            arm_endpoint: url("https://management.chinacloudapi.cn/"),
            authority_host: url("https://login.chinacloudapi.cn/"),
            arm_audience: "https://management.chinacloudapi.cn/".into(),
            keyvault_dns_suffix: "vault.azure.cn".into(),
            keyvault_audience: "https://vault.azure.cn".into(),
            appservice_dns_suffix: "chinacloudsites.cn".into(),
            port: None,
            log_analytics: Some((
                url("https://api.loganalytics.azure.cn/"),
                "https://api.loganalytics.azure.cn".into(),
            )),
        }
    }

    /// Azure Government (`AzureUSGovernment`).
    pub fn azure_us_government() -> Self {
        Self {
            name: "AzureUSGovernment".into(),
            arm_endpoint: url("https://management.usgovcloudapi.net/"),
            authority_host: url("https://login.microsoftonline.us/"),
            arm_audience: "https://management.usgovcloudapi.net/".into(),
            keyvault_dns_suffix: "vault.usgovcloudapi.net".into(),
            keyvault_audience: "https://vault.usgovcloudapi.net".into(),
            appservice_dns_suffix: "azurewebsites.us".into(),
            port: None,
            log_analytics: Some((
                url("https://api.loganalytics.us/"),
                "https://api.loganalytics.us".into(),
            )),
        }
    }

    /// The local emulator listening on `127.0.0.1:port` (host names under `emulator.test`).
    pub fn emulator(port: u16) -> Self {
        Self {
            name: "Emulator".into(),
            arm_endpoint: url(&format!("https://management.{EMULATOR_DOMAIN}:{port}/")),
            authority_host: url(&format!("https://login.{EMULATOR_DOMAIN}:{port}/")),
            arm_audience: format!("https://management.{EMULATOR_DOMAIN}/"),
            keyvault_dns_suffix: format!("vault.{EMULATOR_DOMAIN}"),
            keyvault_audience: format!("https://vault.{EMULATOR_DOMAIN}"),
            appservice_dns_suffix: format!("azurewebsites.{EMULATOR_DOMAIN}"),
            port: Some(port),
            log_analytics: Some((
                url(&format!(
                    "https://api.loganalytics.{EMULATOR_DOMAIN}:{port}/"
                )),
                format!("https://api.loganalytics.{EMULATOR_DOMAIN}"),
            )),
        }
    }

    /// A custom cloud (Azure Stack Hub and similar) from explicit endpoint data.
    pub fn custom(endpoints: CustomCloud) -> Result<Self> {
        let CustomCloud {
            name,
            arm_endpoint,
            authority_host,
            arm_audience,
            keyvault_dns_suffix,
            keyvault_audience,
            appservice_dns_suffix,
        } = endpoints;
        let parse = |what: &'static str, v: &str| -> Result<Url> {
            let u = Url::parse(v).map_err(|e| AzureError::invalid(what, v, e.to_string()))?;
            if u.scheme() != "https" {
                return Err(AzureError::invalid(what, v, "must be an https URL"));
            }
            Ok(u)
        };
        let arm_endpoint = parse("ARM endpoint", &arm_endpoint)?;
        let authority_host = parse("authority host", &authority_host)?;
        let arm_audience = arm_audience.unwrap_or_else(|| arm_endpoint.to_string());
        let keyvault_dns_suffix = keyvault_dns_suffix.trim_start_matches('.').to_owned();
        let keyvault_audience =
            keyvault_audience.unwrap_or_else(|| format!("https://{keyvault_dns_suffix}"));
        Ok(Self {
            name,
            arm_endpoint,
            authority_host,
            arm_audience,
            keyvault_dns_suffix,
            keyvault_audience: keyvault_audience.trim_end_matches('/').to_owned(),
            appservice_dns_suffix: appservice_dns_suffix.trim_start_matches('.').to_owned(),
            port: None,
            log_analytics: None,
        })
    }

    /// The well-known cloud for an agent `environment` value, case-insensitively
    /// (`AzureCloud`, `AzureChinaCloud`, `AzureUSGovernment`). Others (`AzureStack`) need endpoint data.
    pub fn from_environment_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "azurecloud" | "azurepubliccloud" | "public" => Some(Self::azure_public()),
            "azurechinacloud" | "china" => Some(Self::azure_china()),
            "azureusgovernment" | "azureusgovernmentcloud" | "usgov" => {
                Some(Self::azure_us_government())
            }
            _ => None,
        }
    }

    /// True for the local emulator: the HTTP client then maps `*.emulator.test` to loopback.
    pub fn is_emulator(&self) -> bool {
        self.arm_endpoint
            .host_str()
            .is_some_and(|h| h == EMULATOR_DOMAIN || h.ends_with(&format!(".{EMULATOR_DOMAIN}")))
    }

    /// The OAuth scope for ARM.
    pub fn arm_scope(&self) -> String {
        scope_for(&self.arm_audience)
    }

    /// The Log Analytics query endpoint and the OAuth scope of its tokens.
    pub fn log_analytics(&self) -> Result<(Url, String)> {
        let (endpoint, audience) = self.log_analytics.as_ref().ok_or_else(|| {
            AzureError::invalid(
                "cloud",
                self.name.clone(),
                "this cloud names no Log Analytics query endpoint",
            )
        })?;
        Ok((endpoint.clone(), scope_for(audience)))
    }

    /// The OAuth scope for Key Vault when the vault's challenge does not say.
    pub fn keyvault_scope(&self) -> String {
        scope_for(&self.keyvault_audience)
    }

    /// The data-plane URL of a vault, e.g. `https://myvault.vault.azure.net/`.
    pub fn vault_url(&self, vault: &str) -> Result<Url> {
        self.host_url(&format!("{vault}.{}", self.keyvault_dns_suffix))
    }

    /// `https://host[:port]/` for a data-plane host of this cloud.
    pub fn host_url(&self, host: &str) -> Result<Url> {
        // Host names read from ARM may already carry the port (the emulator's do).
        let has_port = host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.chars().all(|c| c.is_ascii_digit()));
        let s = match self.port {
            Some(p) if !has_port => format!("https://{host}:{p}/"),
            _ => format!("https://{host}/"),
        };
        Url::parse(&s).map_err(|e| AzureError::invalid("host name", host, e.to_string()))
    }
}

/// Endpoint data of a custom cloud, as an Azure Stack service connection carries it.
#[derive(Debug, Clone, Default)]
pub struct CustomCloud {
    /// Display name.
    pub name: String,
    /// ARM endpoint (https).
    pub arm_endpoint: String,
    /// Entra ID / AD FS authority host (https).
    pub authority_host: String,
    /// ARM token audience; defaults to the ARM endpoint.
    pub arm_audience: Option<String>,
    /// Key Vault DNS suffix.
    pub keyvault_dns_suffix: String,
    /// Key Vault audience; defaults to `https://<suffix>`.
    pub keyvault_audience: Option<String>,
    /// App Service DNS suffix.
    pub appservice_dns_suffix: String,
}

fn scope_for(audience: &str) -> String {
    // Entra ID wants "<resource>/.default"; a resource with a trailing slash keeps it ("…//.default"
    // is what ARR sends for "https://management.azure.com/" and is accepted by Entra).
    if audience.ends_with('/') {
        format!("{audience}.default")
    } else {
        format!("{audience}/.default")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_clouds() {
        for (name, arm) in [
            ("AzureCloud", "management.azure.com"),
            ("azurechinacloud", "management.chinacloudapi.cn"),
            ("AzureUSGovernment", "management.usgovcloudapi.net"),
        ] {
            let c = Cloud::from_environment_name(name).expect("known cloud");
            assert_eq!(c.arm_endpoint.host_str(), Some(arm));
            assert!(!c.is_emulator());
            assert_eq!(c.arm_scope(), format!("https://{arm}/.default"));
        }
        assert!(Cloud::from_environment_name("AzureStack").is_none());
        assert_eq!(
            Cloud::azure_public().keyvault_scope(),
            "https://vault.azure.net/.default"
        );
        assert_eq!(
            Cloud::azure_us_government()
                .vault_url("kv1")
                .expect("url")
                .as_str(),
            "https://kv1.vault.usgovcloudapi.net/"
        );
    }

    #[test]
    fn emulator_cloud_uses_port_and_test_domain() {
        let c = Cloud::emulator(8443);
        assert!(c.is_emulator());
        assert_eq!(
            c.arm_endpoint.as_str(),
            "https://management.emulator.test:8443/"
        );
        assert_eq!(c.arm_scope(), "https://management.emulator.test/.default");
        assert_eq!(
            c.vault_url("kv").expect("url").as_str(),
            "https://kv.vault.emulator.test:8443/"
        );
        assert_eq!(c.keyvault_scope(), "https://vault.emulator.test/.default");
        assert_eq!(
            c.host_url("a.scm.x:8443").expect("url").as_str(),
            "https://a.scm.x:8443/"
        );
    }

    #[test]
    fn custom_cloud_defaults_and_validation() {
        let c = Cloud::custom(CustomCloud {
            name: "Stack".into(),
            arm_endpoint: "https://management.local.azurestack.external/".into(),
            authority_host: "https://adfs.local.azurestack.external/adfs/".into(),
            keyvault_dns_suffix: ".vault.local.azurestack.external".into(),
            appservice_dns_suffix: "appservice.local.azurestack.external".into(),
            ..Default::default()
        })
        .expect("valid");
        assert_eq!(
            c.arm_audience,
            "https://management.local.azurestack.external/"
        );
        assert_eq!(
            c.keyvault_audience,
            "https://vault.local.azurestack.external"
        );
        assert_eq!(
            c.vault_url("v").expect("url").host_str(),
            Some("v.vault.local.azurestack.external")
        );
        let err = Cloud::custom(CustomCloud {
            arm_endpoint: "http://insecure/".into(),
            authority_host: "https://a/".into(),
            ..Default::default()
        })
        .expect_err("http rejected");
        assert!(err.to_string().contains("https"), "{err}");
    }
}
