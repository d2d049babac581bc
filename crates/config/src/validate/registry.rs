//! Checks on an environment's `registry:`: a container app only, one way to pull (identity or
//! credentials), a password only from Key Vault, the image's own registry, and the
//! `DOCKER_REGISTRY_SERVER_*` settings not also written by hand.

use super::Checker;
use crate::model::{AppKind, ReleaseConfig};
use crate::registry::{REGISTRY_PASSWORD_SETTING, REGISTRY_URL_SETTING, REGISTRY_USERNAME_SETTING};
use crate::source::join_key;

/// Checks every environment's registry.
pub(crate) fn check_registries(config: &ReleaseConfig, c: &mut Checker<'_>) {
    for (name, environment) in &config.environments {
        let Some(registry) = &environment.registry else {
            continue;
        };
        let env_base = join_key("environments", name.as_str());
        let base = format!("{env_base}.registry");
        if config.app.kind != AppKind::Container {
            c.error(
                &base,
                "registry-on-code-app",
                "`registry` is for a `container` app: a code app runs on App Service's own stack \
                 images"
                    .into(),
                "remove `registry`, or set `app.kind: container` with an `image`".into(),
            );
        }
        let server = registry.server.trim();
        if server.is_empty() || server.contains("://") || server.contains('/') {
            c.error(
                &format!("{base}.server"),
                "registry-server-not-host",
                format!("`{}` is not a registry host", registry.server),
                "write the host only, as the image reference starts with it, e.g. \
                 `contoso.azurecr.io`"
                    .into(),
            );
        }
        match (&registry.identity, &registry.credentials) {
            (Some(_), Some(_)) => c.error(
                &format!("{base}.credentials"),
                "registry-identity-and-credentials",
                "`registry` has both `identity` and `credentials`; App Service pulls with the \
                 managed identity when `acrUseManagedIdentityCreds` is on and ignores the \
                 credentials"
                    .into(),
                "keep `identity` or `credentials`, not both".into(),
            ),
            (None, None) => c.error_key(
                &base,
                "registry-without-auth",
                format!("registry `{server}` says neither how to pull nor with what"),
                "add `identity: system` (or `{userAssigned: <client id>}`) to pull with the app's \
                 managed identity, or `credentials: {username: ..., passwordSecret: <secret>}`"
                    .into(),
            ),
            _ => {}
        }
        if let Some(credentials) = &registry.credentials {
            if credentials.password.is_some() {
                c.error_key_hiding_value(
                    &format!("{base}.credentials.password"),
                    "registry-password-in-clear",
                    "a registry password written in release.yml would sit in the repository and \
                     in every log that prints the config"
                        .into(),
                    "keep the password in the environment's Key Vault and name its secret: \
                     `passwordSecret: <secret-name>`"
                        .into(),
                );
            }
            if environment.secrets.is_none() {
                c.error(
                    &format!("{base}.credentials.passwordSecret"),
                    "registry-secret-without-vault",
                    format!(
                        "the registry password is secret `{}`, but environment `{name}` names no \
                         Key Vault",
                        credentials.password_secret
                    ),
                    "add `secrets: {vault: <vault-name>}` to the environment".into(),
                );
            }
            let written = [
                REGISTRY_URL_SETTING,
                REGISTRY_USERNAME_SETTING,
                REGISTRY_PASSWORD_SETTING,
            ];
            for setting in written {
                let in_settings = environment.settings.keys().any(|k| k.as_str() == setting);
                let in_secrets = environment
                    .secrets
                    .as_ref()
                    .is_some_and(|s| s.map.keys().any(|k| k.as_str() == setting));
                if in_settings || in_secrets {
                    let block = if in_settings {
                        "settings"
                    } else {
                        "secrets.map"
                    };
                    c.error_key(
                        &join_key(&format!("{env_base}.{block}"), setting),
                        "registry-setting-twice",
                        format!(
                            "`{setting}` is written by `registry.credentials` and by `{block}`"
                        ),
                        format!("remove `{setting}` from `{block}`"),
                    );
                }
            }
        }
        if let Some(image) = &config.image
            && !image.repository.contains("$(")
            && image
                .registry()
                .is_none_or(|host| !host.eq_ignore_ascii_case(server))
        {
            c.error(
                &format!("{base}.server"),
                "registry-other-server",
                format!(
                    "the image `{}` is not pulled from `{server}`: App Service pulls it from {} \
                     and uses this registry's identity or credentials only for `{server}`, so \
                     the pull would fail or go out unauthenticated",
                    image.repository,
                    image
                        .registry()
                        .map_or_else(|| "Docker Hub".to_owned(), |h| format!("`{h}`")),
                ),
                format!(
                    "set `image.repository` to `{server}/<repository>`, or `server` to the \
                     image's registry"
                ),
            );
        }
    }
}
