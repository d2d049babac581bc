//! App Service stacks: what a `linuxFxVersion` (or a Windows app's stack settings) names, and what the
//! platform runs when no startup command is set.
//!
//! The rule table is the one App Service's images follow (learn.microsoft.com, "Configure a Linux Python
//! app", "Configure a Node.js app", "Configure a Java app"): Python's image detects a Django or Flask app
//! and runs it with gunicorn, Node's runs `npm start` or a well-known entry file, .NET, Java and PHP
//! hosts run the deployed app themselves, and a container's entry point runs (a startup command is passed
//! to it). Anything else is served the platform's default page, which answers 200: that is why a blank
//! startup command is a silent outage and is refused before any change.

use std::fmt;

/// The operating system an app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Os {
    /// Linux: the stack is `linuxFxVersion`.
    Linux,
    /// Windows: the stack is `netFrameworkVersion`, `javaVersion`, `phpVersion`, … or `windowsFxVersion`
    /// for a Windows container.
    Windows,
}

/// The runtime of a stack, as App Service spells it in `linuxFxVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// `PYTHON|3.12`.
    Python,
    /// `NODE|20-lts`.
    Node,
    /// `DOTNETCORE|8.0` (and `DOTNET` on Windows).
    DotNet,
    /// `JAVA|17-java17`: a JAR run with Java SE.
    Java,
    /// `TOMCAT|10.1-java17`: a WAR run by Tomcat.
    Tomcat,
    /// `JBOSSEAP|8-java17`: a WAR or EAR run by JBoss EAP.
    JBossEap,
    /// `PHP|8.3`.
    Php,
    /// `DOCKER|image:tag`: a custom container.
    Docker,
    /// `SITECONTAINERS`: a main container with sidecars, configured through the sitecontainers API.
    SiteContainers,
    /// `COMPOSE|<base64>`: Docker Compose, retired on 2027-03-31.
    Compose,
}

impl Runtime {
    /// Every runtime with its `linuxFxVersion` prefix.
    pub const ALL: &'static [(Runtime, &'static str)] = &[
        (Runtime::Python, "PYTHON"),
        (Runtime::Node, "NODE"),
        (Runtime::DotNet, "DOTNETCORE"),
        (Runtime::Java, "JAVA"),
        (Runtime::Tomcat, "TOMCAT"),
        (Runtime::JBossEap, "JBOSSEAP"),
        (Runtime::Php, "PHP"),
        (Runtime::Docker, "DOCKER"),
        (Runtime::SiteContainers, "SITECONTAINERS"),
        (Runtime::Compose, "COMPOSE"),
    ];

    /// The `linuxFxVersion` prefix, e.g. `PYTHON`.
    pub fn prefix(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(r, _)| *r == self)
            .map_or("", |(_, p)| p)
    }

    fn from_prefix(text: &str) -> Option<Runtime> {
        let upper = text.to_ascii_uppercase();
        // Windows spells .NET `DOTNET`; the Linux images take `DOTNETCORE`.
        if upper == "DOTNET" {
            return Some(Runtime::DotNet);
        }
        Self::ALL.iter().find(|(_, p)| *p == upper).map(|(r, _)| *r)
    }

    /// Whether the runtime is a container (the image's entry point runs the app).
    pub fn is_container(self) -> bool {
        matches!(
            self,
            Runtime::Docker | Runtime::SiteContainers | Runtime::Compose
        )
    }

    /// What the platform runs when the slot's startup command is blank.
    pub fn startup(self) -> StartupRule {
        match self {
            Runtime::Python => StartupRule::Detect(PYTHON_DETECTION),
            Runtime::Node => StartupRule::Detect(NODE_DETECTION),
            Runtime::DotNet
            | Runtime::Java
            | Runtime::Tomcat
            | Runtime::JBossEap
            | Runtime::Php => StartupRule::NotNeeded,
            Runtime::Docker | Runtime::SiteContainers | Runtime::Compose => StartupRule::Container,
        }
    }
}

/// A stack: a runtime and its version (or image) on an OS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stack {
    /// The OS.
    pub os: Os,
    /// The runtime.
    pub runtime: Runtime,
    /// The version as written after the `|` (`3.12`, `20-lts`, an image reference); empty for
    /// `SITECONTAINERS`.
    pub version: String,
}

/// Why a stack text is not one App Service knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackError {
    /// The text as given.
    pub text: String,
    /// What is wrong, in words.
    pub problem: String,
    /// The closest known runtime, when there is one.
    pub suggestion: Option<&'static str>,
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an App Service stack: {}",
            self.text, self.problem
        )?;
        if let Some(s) = self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl Stack {
    /// Parses a `linuxFxVersion`, e.g. `PYTHON|3.12`, `NODE|20-lts`, `DOCKER|repo:tag`, `SITECONTAINERS`.
    pub fn parse_linux(text: &str) -> Result<Stack, StackError> {
        let trimmed = text.trim();
        let (prefix, version) = match trimmed.split_once('|') {
            Some((p, v)) => (p, v),
            None => (trimmed, ""),
        };
        let error = |problem: String, suggestion| StackError {
            text: text.to_owned(),
            problem,
            suggestion,
        };
        let runtime = Runtime::from_prefix(prefix).ok_or_else(|| {
            let names: Vec<&str> = Runtime::ALL.iter().map(|(_, p)| *p).collect();
            error(
                format!(
                    "the runtime `{prefix}` is unknown; App Service's Linux runtimes are {}",
                    names.join(", ")
                ),
                crate::validate::did_you_mean(prefix, &names),
            )
        })?;
        match runtime {
            Runtime::SiteContainers if !version.is_empty() => {
                return Err(error(
                    "`SITECONTAINERS` takes no version: the containers are set through the sitecontainers API".into(),
                    None,
                ));
            }
            Runtime::SiteContainers => {}
            _ if version.trim().is_empty() => {
                return Err(error(
                    format!("a version is needed after `{}|`", runtime.prefix()),
                    None,
                ));
            }
            Runtime::Docker | Runtime::Compose => {}
            _ if !version
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')) =>
            {
                return Err(error(
                    format!("the version `{version}` has characters no runtime version has"),
                    None,
                ));
            }
            _ => {}
        }
        Ok(Stack {
            os: Os::Linux,
            runtime,
            version: version.to_owned(),
        })
    }

    /// The stack of a Windows app from its site config: `windowsFxVersion` for a Windows container, else
    /// `metadata.CURRENT_STACK` with the runtime's version field (`netFrameworkVersion`, `javaVersion`,
    /// `phpVersion`, `nodeVersion`, `pythonVersion`). `None` when the fields name no stack.
    pub fn from_windows(fields: &WindowsStackFields<'_>) -> Option<Stack> {
        fn present(v: Option<&str>) -> Option<&str> {
            v.map(str::trim).filter(|v| !v.is_empty())
        }
        if let Some(fx) = present(fields.windows_fx_version) {
            let (prefix, version) = fx.split_once('|').unwrap_or((fx, ""));
            if prefix.eq_ignore_ascii_case("DOCKER") {
                return Some(Stack {
                    os: Os::Windows,
                    runtime: Runtime::Docker,
                    version: version.to_owned(),
                });
            }
        }
        let (runtime, version) = match present(fields.current_stack)?.to_ascii_lowercase().as_str()
        {
            "dotnet" | "dotnetcore" => (Runtime::DotNet, fields.net_framework_version),
            "java" => (Runtime::Java, fields.java_version),
            "php" => (Runtime::Php, fields.php_version),
            "node" => (Runtime::Node, fields.node_version),
            "python" => (Runtime::Python, fields.python_version),
            _ => return None,
        };
        Some(Stack {
            os: Os::Windows,
            runtime,
            version: present(version).unwrap_or_default().to_owned(),
        })
    }

    /// What the platform runs when the startup command is blank. On Windows, IIS hosts every code
    /// runtime (through the package's or Kudu's `web.config`), so none needs a startup command.
    pub fn startup(&self) -> StartupRule {
        match self.os {
            Os::Windows if !self.runtime.is_container() => StartupRule::NotNeeded,
            _ => self.runtime.startup(),
        }
    }
}

impl fmt::Display for Stack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.os, self.runtime) {
            (Os::Linux, Runtime::SiteContainers) => f.write_str("SITECONTAINERS"),
            (Os::Linux, r) => write!(f, "{}|{}", r.prefix(), self.version),
            (Os::Windows, r) => write!(f, "{} {} (Windows)", r.prefix(), self.version),
        }
    }
}

/// The site config fields that name a Windows app's stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct WindowsStackFields<'a> {
    /// `windowsFxVersion` (Windows containers: `DOCKER|image`).
    pub windows_fx_version: Option<&'a str>,
    /// `metadata.CURRENT_STACK` (`dotnet`, `java`, `php`, `node`, `python`).
    pub current_stack: Option<&'a str>,
    /// `netFrameworkVersion`, e.g. `v8.0`.
    pub net_framework_version: Option<&'a str>,
    /// `javaVersion`.
    pub java_version: Option<&'a str>,
    /// `phpVersion`.
    pub php_version: Option<&'a str>,
    /// `nodeVersion`.
    pub node_version: Option<&'a str>,
    /// `pythonVersion`.
    pub python_version: Option<&'a str>,
}

/// What the platform runs when a slot's startup command is blank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupRule {
    /// The image looks for these, in order, and runs the first found; with none found it serves the
    /// platform's default page.
    Detect(&'static [Detection]),
    /// The runtime's host runs the deployed app; no command is needed.
    NotNeeded,
    /// The image's entry point runs; a startup command, when set, is passed to the container.
    Container,
}

/// One layout a stack's default startup recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detection {
    /// What is looked for, e.g. `app.py`, `*/wsgi.py`, or `package.json#scripts.start`.
    pub pattern: &'static str,
    /// What the image runs when it finds it.
    pub runs: &'static str,
}

/// Python's image (Oryx): a Django project's `wsgi.py` one folder down, else the first of the Flask
/// entry files at the root (`application.py`, `app.py`, `run.py`, `index.py`, `server.py`).
pub const PYTHON_DETECTION: &[Detection] = &[
    Detection {
        pattern: "*/wsgi.py",
        runs: "gunicorn <folder>.wsgi",
    },
    Detection {
        pattern: "application.py",
        runs: "gunicorn application:app",
    },
    Detection {
        pattern: "app.py",
        runs: "gunicorn app:app",
    },
    Detection {
        pattern: "run.py",
        runs: "gunicorn run:app",
    },
    Detection {
        pattern: "index.py",
        runs: "gunicorn index:app",
    },
    Detection {
        pattern: "server.py",
        runs: "gunicorn server:app",
    },
];

/// Node's image: `npm start` when package.json has a start script, else package.json's `main`, else the
/// first well-known entry file.
pub const NODE_DETECTION: &[Detection] = &[
    Detection {
        pattern: "package.json#scripts.start",
        runs: "npm start",
    },
    Detection {
        pattern: "package.json#main",
        runs: "node <main>",
    },
    Detection {
        pattern: "bin/www",
        runs: "node bin/www",
    },
    Detection {
        pattern: "server.js",
        runs: "node server.js",
    },
    Detection {
        pattern: "app.js",
        runs: "node app.js",
    },
    Detection {
        pattern: "index.js",
        runs: "node index.js",
    },
];

/// What a package offers a stack's default startup: its file paths (`/`-separated, relative to the
/// package root) and what its `package.json` says.
pub trait PackageLayout {
    /// Whether the package holds this file.
    fn has_file(&self, path: &str) -> bool;
    /// The paths of files named `name` exactly one folder below the root.
    fn one_folder_down(&self, name: &str) -> Vec<String>;
    /// Whether `package.json` at the root has `scripts.start`.
    fn has_start_script(&self) -> bool;
    /// `package.json`'s `main`, when it names a file the package holds.
    fn main_entry(&self) -> Option<String>;
}

impl Detection {
    /// Whether the package has what this detection looks for; returns what would run.
    pub fn matches(&self, package: &dyn PackageLayout) -> Option<String> {
        if self.pattern == "package.json#scripts.start" {
            return package.has_start_script().then(|| self.runs.to_owned());
        }
        if self.pattern == "package.json#main" {
            return package
                .main_entry()
                .map(|main| self.runs.replace("<main>", &main));
        }
        if let Some(name) = self.pattern.strip_prefix("*/") {
            let mut found = package.one_folder_down(name);
            found.sort();
            return found.first().map(|path| {
                let folder = path.split('/').next().unwrap_or_default();
                self.runs.replace("<folder>", folder)
            });
        }
        package.has_file(self.pattern).then(|| self.runs.to_owned())
    }
}

impl StartupRule {
    /// What the platform would run for this package with a blank startup command: `Ok(Some(command))`
    /// for a detected layout, `Ok(None)` when nothing is needed (the host or the image runs the app), and
    /// `Err(looked_for)` when the platform's default page would be served instead of the app.
    pub fn blank_command_runs(
        &self,
        package: Option<&dyn PackageLayout>,
    ) -> Result<Option<String>, Vec<&'static str>> {
        match self {
            StartupRule::NotNeeded | StartupRule::Container => Ok(None),
            StartupRule::Detect(detections) => {
                let looked_for = || detections.iter().map(|d| d.pattern).collect();
                let Some(package) = package else {
                    return Err(looked_for());
                };
                detections
                    .iter()
                    .find_map(|d| d.matches(package))
                    .map(Some)
                    .ok_or_else(looked_for)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(&'static [&'static str], bool);

    impl Files {
        fn main(&self) -> Option<String> {
            self.0
                .iter()
                .find_map(|p| p.strip_prefix("main="))
                .map(str::to_owned)
        }
    }

    impl PackageLayout for Files {
        fn has_file(&self, path: &str) -> bool {
            self.0.contains(&path)
        }
        fn one_folder_down(&self, name: &str) -> Vec<String> {
            self.0
                .iter()
                .filter(|p| {
                    let parts: Vec<&str> = p.split('/').collect();
                    parts.len() == 2 && parts[1] == name
                })
                .map(|p| p.to_string())
                .collect()
        }
        fn has_start_script(&self) -> bool {
            self.1
        }
        fn main_entry(&self) -> Option<String> {
            self.main()
        }
    }

    #[test]
    fn linux_stacks_parse_case_insensitively_and_unknown_runtimes_get_a_suggestion() {
        let s = Stack::parse_linux("python|3.12").unwrap();
        assert_eq!((s.runtime, s.version.as_str()), (Runtime::Python, "3.12"));
        assert_eq!(s.to_string(), "PYTHON|3.12");
        assert_eq!(
            Stack::parse_linux("DOCKER|contoso.azurecr.io/app:1")
                .unwrap()
                .runtime,
            Runtime::Docker
        );
        assert_eq!(
            Stack::parse_linux("SITECONTAINERS").unwrap().to_string(),
            "SITECONTAINERS"
        );
        let e = Stack::parse_linux("PYTON|3.11").unwrap_err();
        assert_eq!(e.suggestion, Some("PYTHON"));
        assert!(e.to_string().contains("`PYTON` is unknown"), "{e}");
        assert!(Stack::parse_linux("PYTHON|").is_err());
        assert!(Stack::parse_linux("PYTHON").is_err());
        assert!(Stack::parse_linux("NODE|20 lts;rm").is_err());
        assert!(Stack::parse_linux("SITECONTAINERS|x").is_err());
    }

    #[test]
    fn the_rule_table_per_runtime() {
        let table = [
            ("PYTHON|3.12", "detect"),
            ("NODE|20-lts", "detect"),
            ("DOTNETCORE|8.0", "none"),
            ("JAVA|17-java17", "none"),
            ("TOMCAT|10.1-java17", "none"),
            ("JBOSSEAP|8-java17", "none"),
            ("PHP|8.3", "none"),
            ("DOCKER|nginx", "container"),
            ("SITECONTAINERS", "container"),
            ("COMPOSE|eA==", "container"),
        ];
        for (text, want) in table {
            let got = match Stack::parse_linux(text).unwrap().startup() {
                StartupRule::Detect(_) => "detect",
                StartupRule::NotNeeded => "none",
                StartupRule::Container => "container",
            };
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn python_detects_django_then_flask_and_otherwise_names_what_it_looked_for() {
        let rule = Runtime::Python.startup();
        let django = Files(&["manage.py", "mysite/wsgi.py", "app.py"], false);
        assert_eq!(
            rule.blank_command_runs(Some(&django)),
            Ok(Some("gunicorn mysite.wsgi".into()))
        );
        let flask = Files(&["application/single_app/app.py", "server.py"], false);
        assert_eq!(
            rule.blank_command_runs(Some(&flask)),
            Ok(Some("gunicorn server:app".into()))
        );
        let order = Files(&["index.py", "run.py"], false);
        assert_eq!(
            rule.blank_command_runs(Some(&order)),
            Ok(Some("gunicorn run:app".into()))
        );
        let nested = Files(&["application/single_app/app.py"], false);
        let looked = rule.blank_command_runs(Some(&nested)).unwrap_err();
        assert!(looked.contains(&"app.py") && looked.contains(&"*/wsgi.py"));
        assert!(rule.blank_command_runs(None).is_err());
    }

    #[test]
    fn node_runs_npm_start_or_an_entry_file() {
        let rule = Runtime::Node.startup();
        assert_eq!(
            rule.blank_command_runs(Some(&Files(&["package.json", "server.js"], true))),
            Ok(Some("npm start".into()))
        );
        assert_eq!(
            rule.blank_command_runs(Some(&Files(&["package.json", "index.js"], false))),
            Ok(Some("node index.js".into()))
        );
        assert_eq!(
            rule.blank_command_runs(Some(&Files(
                &["package.json", "main=lib/start.js", "index.js"],
                false
            ))),
            Ok(Some("node lib/start.js".into()))
        );
        assert!(
            rule.blank_command_runs(Some(&Files(&["package.json", "main.js"], false)))
                .is_err()
        );
    }

    #[test]
    fn windows_stacks_come_from_current_stack_and_need_no_command() {
        let s = Stack::from_windows(&WindowsStackFields {
            current_stack: Some("dotnet"),
            net_framework_version: Some("v8.0"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            (s.os, s.runtime, s.version.as_str()),
            (Os::Windows, Runtime::DotNet, "v8.0")
        );
        assert_eq!(s.startup(), StartupRule::NotNeeded);
        let node = Stack::from_windows(&WindowsStackFields {
            current_stack: Some("node"),
            node_version: Some("~20"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(node.startup(), StartupRule::NotNeeded);
        let container = Stack::from_windows(&WindowsStackFields {
            windows_fx_version: Some("DOCKER|mcr.microsoft.com/dotnet/framework/aspnet:4.8"),
            current_stack: Some("dotnet"),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(container.startup(), StartupRule::Container);
        assert_eq!(Stack::from_windows(&WindowsStackFields::default()), None);
    }
}
