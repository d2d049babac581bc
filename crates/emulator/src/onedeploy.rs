//! OneDeploy's `type=`: which artifact types the emulator accepts, the stack each needs (Kudu's
//! `WEBSITE_STACK` check, with Kudu's own 400 texts), and where a single-file artifact lands in the
//! site folder (`app.war`, `app.jar`), as KuduLite's `PushDeploymentController.OneDeploy` does.

use crate::seed::AppOs;

/// An artifact type the emulator deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Artifact {
    /// Unzipped into `wwwroot` (clean by default).
    Zip,
    /// Written as `wwwroot/app.war`: App Service's Tomcat serves `app.war` at the root context.
    War,
    /// Written as `wwwroot/app.jar`: the Java SE image runs it with `java -jar`.
    Jar,
}

impl Artifact {
    /// The file a single-file artifact becomes in `wwwroot`; `None` for a zip, which is extracted.
    pub(crate) fn target_file(self) -> Option<&'static str> {
        match self {
            Artifact::Zip => None,
            Artifact::War => Some("app.war"),
            Artifact::Jar => Some("app.jar"),
        }
    }
}

/// Kudu's `WEBSITE_STACK` for a slot: the `linuxFxVersion` runtime on Linux (`TOMCAT`, `JAVA`,
/// `PYTHON`, …); on Windows, `javaContainer` when Java is configured (`TOMCAT`, `JAVA`), else the
/// `CURRENT_STACK` metadata upper-cased (`DOTNET`, `NODE`, …).
pub(crate) fn website_stack(
    os: AppOs,
    site_config: &serde_json::Map<String, serde_json::Value>,
    metadata: &std::collections::BTreeMap<String, String>,
) -> String {
    let text = |k: &str| {
        site_config
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    match os {
        AppOs::Linux => text("linuxFxVersion")
            .and_then(|fx| fx.split('|').next())
            .unwrap_or_default()
            .to_ascii_uppercase(),
        AppOs::Windows => match (text("javaVersion"), text("javaContainer")) {
            (Some(_), Some(container)) => container.to_ascii_uppercase(),
            _ => metadata
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("CURRENT_STACK"))
                .map(|(_, v)| v.trim().to_ascii_uppercase())
                .unwrap_or_default(),
        },
    }
}

/// Reads `type=` and checks it against the slot's stack: the artifact, or Kudu's 400 text.
pub(crate) fn artifact(kind: Option<&str>, stack: &str) -> Result<Artifact, String> {
    let Some(kind) = kind.map(str::trim).filter(|k| !k.is_empty()) else {
        return Err("Artifact type '' not supported".into());
    };
    let artifact = match kind.to_ascii_lowercase().as_str() {
        "zip" => Artifact::Zip,
        "war" => Artifact::War,
        "jar" => Artifact::Jar,
        // Types Kudu knows that the emulator does not deploy.
        "ear" | "lib" | "startup" | "static" | "script" => {
            return Err(format!(
                "Artifact type '{kind}' not supported by the emulator"
            ));
        }
        _ => return Err(format!("type='{kind}' not recognized")),
    };
    let (files, expected) = match artifact {
        Artifact::Zip => return Ok(artifact),
        Artifact::War => ("WAR", "TOMCAT"),
        Artifact::Jar => ("JAR", "JAVA"),
    };
    if stack.eq_ignore_ascii_case(expected) {
        Ok(artifact)
    } else {
        Err(format!(
            "{files} files cannot be deployed to stack='{stack}'. Expected stack='{expected}'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> serde_json::Map<String, serde_json::Value> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect()
    }

    #[test]
    fn each_type_needs_its_stack_and_gets_kudus_answer_otherwise() {
        assert_eq!(artifact(Some("zip"), "PYTHON"), Ok(Artifact::Zip));
        assert_eq!(artifact(Some("WAR"), "TOMCAT"), Ok(Artifact::War));
        assert_eq!(artifact(Some("jar"), "JAVA"), Ok(Artifact::Jar));
        assert_eq!(
            artifact(Some("jar"), "TOMCAT").unwrap_err(),
            "JAR files cannot be deployed to stack='TOMCAT'. Expected stack='JAVA'"
        );
        assert_eq!(
            artifact(Some("war"), "NODE").unwrap_err(),
            "WAR files cannot be deployed to stack='NODE'. Expected stack='TOMCAT'"
        );
        assert_eq!(
            artifact(Some("zap"), "JAVA").unwrap_err(),
            "type='zap' not recognized"
        );
        assert_eq!(
            artifact(None, "JAVA").unwrap_err(),
            "Artifact type '' not supported"
        );
        assert_eq!(Artifact::War.target_file(), Some("app.war"));
        assert_eq!(Artifact::Jar.target_file(), Some("app.jar"));
        assert_eq!(Artifact::Zip.target_file(), None);
    }

    #[test]
    fn the_stack_comes_from_linux_fx_or_windows_java_fields_or_current_stack() {
        let none = std::collections::BTreeMap::new();
        let linux = config(&[("linuxFxVersion", "TOMCAT|10.1-java17")]);
        assert_eq!(website_stack(AppOs::Linux, &linux, &none), "TOMCAT");
        let java = config(&[("javaVersion", "17"), ("javaContainer", "JAVA")]);
        assert_eq!(website_stack(AppOs::Windows, &java, &none), "JAVA");
        let meta = [("CURRENT_STACK".to_owned(), "dotnet".to_owned())].into();
        assert_eq!(website_stack(AppOs::Windows, &config(&[]), &meta), "DOTNET");
    }
}
