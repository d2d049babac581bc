//! The examples a world's sources are copied from, and the one copy of a folder every part of the harness
//! uses (a world's sources, another job's checkout, a pipeline artifact).

use std::path::{Path, PathBuf};

use crate::paths;

/// An example of `examples/`, as a checkout of the repository holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Example {
    /// `examples/python-webapp`: a code app with a migration hook.
    Python,
    /// `examples/container-app`: a container app swapped with preview.
    Container,
    /// `tests/fixtures/simplechat`: a SimpleChat-shaped Flask app whose dependencies come from
    /// `requirements.txt` (see [`crate::wheelhouse`]).
    SimpleChat,
    /// `tests/fixtures/node-http`: a Node app on plain `http` with `scripts.start` and no startup command.
    NodeHttp,
    /// `examples/functions-app`: an Azure Functions app whose custom handler serves `/api/health`.
    Functions,
    /// `tests/fixtures/windows-node`: a Node app for App Service on Windows, run by IIS through the
    /// iisnode handler its own `web.config` names.
    WindowsNode,
    /// `tests/fixtures/java-jar`: a Java SE app whose build makes an executable JAR (`javac`, `jar`).
    JavaJar,
}

impl Example {
    /// The example's folder in the workspace.
    pub fn dir(self) -> PathBuf {
        match self {
            Example::Python => paths::workspace().join("examples/python-webapp"),
            Example::Container => paths::workspace().join("examples/container-app"),
            Example::SimpleChat => paths::workspace().join("tests/fixtures/simplechat"),
            Example::NodeHttp => paths::workspace().join("tests/fixtures/node-http"),
            Example::Functions => paths::workspace().join("examples/functions-app"),
            Example::WindowsNode => paths::workspace().join("tests/fixtures/windows-node"),
            Example::JavaJar => paths::workspace().join("tests/fixtures/java-jar"),
        }
    }

    /// `text` (the example's `release.yml`) with its waits shortened so a test runs in seconds, and for the
    /// container a smoke hook that needs no network. Fails when the example no longer says what is
    /// replaced, so a changed example cannot silently make every test slow.
    pub fn quick(self, text: &str) -> Result<String, String> {
        let replacements: &[(&str, &str)] = match self {
            Example::Python => &[
                ("duration: 10s", "duration: 3s"),
                // Room for a loaded two-core CI machine (a python start, a migration, three probes 1s
                // apart).
                ("timeout: 30s", "timeout: 15s"),
            ],
            Example::Container => &[
                // The smoke test would need curl and the agent's network.
                (
                    "run: curl --fail --silent \"$(Staging.Url)/health\"",
                    "run: echo smoke ok",
                ),
                ("duration: 2m", "duration: 3s"),
                ("interval: 5s", "interval: 1s"),
            ],
            // These are written with short waits already.
            Example::SimpleChat
            | Example::NodeHttp
            | Example::Functions
            | Example::WindowsNode
            | Example::JavaJar => &[],
        };
        let mut text = text.to_owned();
        for (from, to) in replacements {
            if !text.contains(from) {
                return Err(format!(
                    "{}/release.yml no longer says {from:?}: update the harness's shortened waits",
                    self.dir().display()
                ));
            }
            text = text.replace(from, to);
        }
        Ok(text)
    }

    /// Copies the example to `to` as a checkout of the repository would hold it, and returns its
    /// `release.yml`.
    pub fn checkout(self, to: &Path) -> Result<PathBuf, String> {
        copy_dir(&self.dir(), to).map_err(|e| format!("copy {}: {e}", self.dir().display()))?;
        Ok(to.join("release.yml"))
    }
}

/// Copies the folder `from` into `to`, subfolders included, but for an agent's `_temp` folder: what a run
/// left there is no part of a checkout or an artifact.
pub fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "_temp" {
                copy_dir(&entry.path(), &dest)?;
            }
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}
