//! How the agent reads a task's output (AGENT `Command.cs`): line splitting and `##vso[` parsing, used by
//! this crate's tests and by the end-to-end harness, which must read our output exactly as the agent does;
//! and how it cancels a task (`CancelTiming`), which bounds how long a stopping run may write.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::escape::unescape;

/// A logging command as the agent understands it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCommand {
    /// `area.event`, e.g. `task.setvariable`.
    pub name: String,
    /// Properties with lower-cased keys (the agent compares keys case-insensitively) and unescaped values.
    pub properties: BTreeMap<String, String>,
    /// The unescaped data after `]`.
    pub data: String,
}

impl AgentCommand {
    /// A property by (case-insensitive) key.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A signal the agent sends to cancel a step: SIGINT first (Windows: Ctrl-C), then SIGTERM (Ctrl-Break)
/// if the task still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelSignal {
    /// SIGINT, or Ctrl-C on Windows.
    Interrupt,
    /// SIGTERM, or Ctrl-Break on Windows.
    Terminate,
}

/// How the agent cancels a step (AGENT `ProcessInvoker`, `AgentKnobs`; a job cancel or a step timeout):
/// SIGINT to the task's process, SIGTERM `sigint_timeout` later, a kill `sigterm_timeout` after that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelTiming {
    /// From SIGINT to SIGTERM (`PROCESS_SIGINT_TIMEOUT`).
    pub sigint_timeout: Duration,
    /// From SIGTERM to the kill (`PROCESS_SIGTERM_TIMEOUT`).
    pub sigterm_timeout: Duration,
}

impl CancelTiming {
    /// The agent's defaults: 7.5 s, then 2.5 s.
    pub const AGENT: CancelTiming = CancelTiming {
        sigint_timeout: Duration::from_millis(7500),
        sigterm_timeout: Duration::from_millis(2500),
    };

    /// How long the agent waits after `signal` before its next, harsher step.
    pub fn next_step_after(self, signal: CancelSignal) -> Duration {
        match signal {
            CancelSignal::Interrupt => self.sigint_timeout,
            CancelSignal::Terminate => self.sigterm_timeout,
        }
    }
}

/// Splits process output into lines the way the agent's reader does: at CR, LF or CR LF.
pub fn agent_lines(output: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = output;
    while let Some(pos) = rest.find(['\r', '\n']) {
        lines.push(&rest[..pos]);
        let skip = if rest[pos..].starts_with("\r\n") {
            2
        } else {
            1
        };
        rest = &rest[pos + skip..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// Parses one line: `##vso[` anywhere, the header up to the first `]`, the name up to the first space
/// (it must be `area.event`), properties split on `;` and then on the first `=`, data after `]`.
pub fn parse_command(line: &str) -> Option<AgentCommand> {
    const PREFIX: &str = "##vso[";
    let start = line.find(PREFIX)? + PREFIX.len();
    let end = start + line[start..].find(']')?;
    let header = &line[start..end];
    let (name, props) = header.split_once(' ').unwrap_or((header, ""));
    let mut parts = name.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(area), Some(event), None) if !area.is_empty() && !event.is_empty() => {}
        _ => return None,
    }
    let properties = props
        .split(';')
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| entry.split_once('='))
        .map(|(key, value)| (key.trim().to_ascii_lowercase(), unescape(value)))
        .collect();
    Some(AgentCommand {
        name: name.to_owned(),
        properties,
        data: unescape(&line[end + 1..]),
    })
}

/// Whether the agent's log formatter would treat the line as a formatting line (`##[group]` and so on).
pub fn is_formatting_line(line: &str) -> bool {
    line.contains("##[")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_agent() {
        let cmd =
            parse_command("x ##vso[task.setvariable variable=A%3BB;IsOutput=true;junk;]v%0Aw]z");
        let cmd = cmd.as_ref();
        assert_eq!(cmd.map(|c| c.name.as_str()), Some("task.setvariable"));
        assert_eq!(cmd.and_then(|c| c.property("variable")), Some("A;B"));
        assert_eq!(cmd.and_then(|c| c.property("isoutput")), Some("true"));
        assert_eq!(cmd.map(|c| c.data.as_str()), Some("v\nw]z"));
        assert_eq!(parse_command("##vso[nodot]x"), None);
        assert_eq!(parse_command("##vso[task.complete"), None);
        assert_eq!(agent_lines("a\r\nb\rc\n\nd"), ["a", "b", "c", "", "d"]);
    }
}
