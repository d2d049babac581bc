//! The task's inputs as the binary reads them: one table from each input of task.json to the command-line
//! option it becomes and the commands that read it.
//!
//! `slot-release task-inputs` prints the table, so a test holds task.json to what the binary reads (an input
//! shown for a command that ignores it, or read by a command that hides it, fails that test).

use slot_release_pipelines::AgentEnv;

/// Every command the task runs.
pub const COMMANDS: &[&str] = &[
    "validate",
    "plan",
    "build",
    "staging",
    "production",
    "rollback",
    "release",
    "rehearse",
    "appStart",
    "appStop",
    "appRestart",
    "slotDelete",
];

const RUNS: &[&str] = &[
    "build",
    "staging",
    "production",
    "rollback",
    "release",
    "rehearse",
    "appStart",
    "appStop",
    "appRestart",
    "slotDelete",
];
const STAGES: &[&str] = &[
    "build",
    "staging",
    "production",
    "rollback",
    "release",
    "appStart",
    "appStop",
    "appRestart",
    "slotDelete",
];
const CHANGES: &[&str] = &[
    "staging",
    "production",
    "rollback",
    "release",
    "appStart",
    "appStop",
    "appRestart",
    "slotDelete",
];
const CONNECTED: &[&str] = &[
    "plan",
    "staging",
    "production",
    "rollback",
    "release",
    "appStart",
    "appStop",
    "appRestart",
    "slotDelete",
];
const GATED: &[&str] = &[
    "plan",
    "staging",
    "production",
    "rollback",
    "release",
    "rehearse",
    "appStart",
    "appRestart",
];
/// The app commands: the `command` input's value and the subcommand it stands for.
const APP_COMMANDS: &[(&str, &[&str])] = &[
    ("appStart", &["app", "start"]),
    ("appStop", &["app", "stop"]),
    ("appRestart", &["app", "restart"]),
    ("slotDelete", &["slot", "delete"]),
];

/// How an input reaches the binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Becomes this command-line option.
    Option(&'static str),
    /// A `filePath` input that becomes this option: the agent roots an empty path input at the sources
    /// folder, which means "not given", never "the whole checkout".
    PathOption(&'static str),
    /// A `boolean` input that becomes this flag when `true` (any case) and nothing when `false` or blank;
    /// any other value is handed to the flag, so the parser refuses it by name.
    Flag(&'static str),
    /// Read where it is used (the subcommand itself, the service connection's `env`, the log level).
    Direct,
}

/// One input of the task.
#[derive(Debug, Clone, Copy)]
pub struct Input {
    /// Its name in task.json.
    pub name: &'static str,
    /// How it reaches the binary.
    pub route: Route,
    /// The commands that read it.
    pub commands: &'static [&'static str],
}

/// Every input the binary reads, in task.json's order.
pub const INPUTS: &[Input] = &[
    Input {
        name: "command",
        route: Route::Direct,
        commands: COMMANDS,
    },
    Input {
        name: "planStage",
        route: Route::Option("--stage"),
        commands: &["plan"],
    },
    Input {
        name: "slot",
        route: Route::Option("--slot"),
        commands: &["appStart", "appStop", "appRestart", "slotDelete"],
    },
    Input {
        // The `Connection` arguments read INPUT_AZURESUBSCRIPTION through clap's `env`.
        name: "azureSubscription",
        route: Route::Direct,
        commands: CONNECTED,
    },
    Input {
        name: "configFile",
        route: Route::Option("--config"),
        commands: COMMANDS,
    },
    Input {
        name: "environment",
        route: Route::Option("--environment"),
        commands: COMMANDS,
    },
    Input {
        name: "releaseRecordPath",
        route: Route::Option("--record"),
        commands: RUNS,
    },
    Input {
        name: "package",
        route: Route::PathOption("--package"),
        commands: &["build", "staging", "rollback", "release"],
    },
    Input {
        name: "artifactName",
        route: Route::Option("--artifact-name"),
        commands: &["staging", "release"],
    },
    Input {
        name: "outputFolder",
        route: Route::PathOption("--out"),
        commands: &["build", "staging", "release"],
    },
    Input {
        name: "timeoutMinutes",
        route: Route::Option("--timeout-minutes"),
        commands: STAGES,
    },
    Input {
        name: "healthTimeoutSeconds",
        route: Route::Option("--health-timeout-seconds"),
        commands: GATED,
    },
    Input {
        name: "target",
        route: Route::Option("--targets"),
        commands: &["plan", "staging", "production", "rollback", "release"],
    },
    Input {
        name: "planWave",
        route: Route::Option("--wave"),
        commands: &["plan"],
    },
    Input {
        // Read by the tracing subscriber (`tracing_log.rs`).
        name: "logLevel",
        route: Route::Direct,
        commands: COMMANDS,
    },
    Input {
        name: "rollbackTo",
        route: Route::Option("--to"),
        commands: &["rollback", "plan"],
    },
    Input {
        name: "takeOverLock",
        route: Route::Option("--take-over-lock"),
        commands: CHANGES,
    },
    Input {
        name: "rehearseFailAt",
        route: Route::Option("--fail-at"),
        commands: &["rehearse"],
    },
    Input {
        name: "rehearseQuick",
        route: Route::Flag("--quick"),
        commands: &["rehearse"],
    },
];

/// The table as JSON, for `slot-release task-inputs`: each input's name, option and commands.
pub fn to_json() -> serde_json::Value {
    let inputs: Vec<serde_json::Value> = INPUTS
        .iter()
        .map(|i| {
            let option = match i.route {
                Route::Option(flag) | Route::PathOption(flag) | Route::Flag(flag) => Some(flag),
                Route::Direct => None,
            };
            serde_json::json!({ "name": i.name, "option": option, "commands": i.commands })
        })
        .collect();
    serde_json::json!({ "inputs": inputs })
}

/// The command line the task's inputs stand for, when the agent started the binary with no arguments:
/// `None` when no `command` input is set.
pub fn argv(agent: &AgentEnv) -> Option<Vec<String>> {
    let inputs = agent.inputs();
    let command = inputs.get("command")?.to_owned();
    let mut argv = vec!["slot-release".to_owned()];
    match APP_COMMANDS.iter().find(|(name, _)| *name == command) {
        Some((_, words)) => argv.extend(words.iter().map(|w| (*w).to_owned())),
        None => argv.push(command.clone()),
    }
    for input in INPUTS {
        if !input.commands.contains(&command.as_str()) {
            continue;
        }
        let Some(value) = inputs.get(input.name) else {
            continue;
        };
        match input.route {
            Route::Option(flag) => argv.extend([flag.to_owned(), value.to_owned()]),
            Route::PathOption(flag) => {
                if let Some(path) = supplied_path(value, agent) {
                    argv.extend([flag.to_owned(), path]);
                }
            }
            Route::Flag(flag) if value.eq_ignore_ascii_case("true") => argv.push(flag.to_owned()),
            Route::Flag(_) if value.eq_ignore_ascii_case("false") => {}
            Route::Flag(flag) => argv.push(format!("{flag}={value}")),
            Route::Direct => {}
        }
    }
    Some(argv)
}

/// A path input's value when the user gave one. The agent roots `filePath` inputs against the sources
/// folder, so an input left empty can arrive as the sources folder itself (what task-lib's
/// `filePathSupplied` guards against): that means "not given", never "deploy the whole checkout".
fn supplied_path(value: &str, agent: &AgentEnv) -> Option<String> {
    let trimmed = |p: &str| p.trim_end_matches(['/', '\\']).to_owned();
    let roots = ["BUILD_SOURCESDIRECTORY", "SYSTEM_DEFAULTWORKINGDIRECTORY"];
    let is_root = roots
        .iter()
        .filter_map(|name| agent.var(name))
        .any(|root| trimmed(root) == trimmed(value));
    (!is_root).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(vars: &[(&str, &str)]) -> AgentEnv {
        AgentEnv::from_vars(vars.iter().map(|(k, v)| (*k, *v)))
    }

    #[test]
    fn inputs_become_the_options_of_the_commands_that_read_them() {
        let env = agent(&[
            ("INPUT_COMMAND", "staging"),
            ("INPUT_CONFIGFILE", " app/release.yml "),
            ("INPUT_PACKAGE", "/s/out/app.zip"),
            ("INPUT_PLANSTAGE", "production"),
            ("INPUT_REHEARSEFAILAT", "health"),
            ("INPUT_TAKEOVERLOCK", "tok"),
            ("INPUT_TARGET", "westeurope"),
            ("INPUT_PLANWAVE", "1"),
            ("BUILD_SOURCESDIRECTORY", "/s"),
        ]);
        assert_eq!(
            argv(&env).unwrap(),
            [
                "slot-release",
                "staging",
                "--config",
                "app/release.yml",
                "--package",
                "/s/out/app.zip",
                "--targets",
                "westeurope",
                "--take-over-lock",
                "tok"
            ]
        );
    }

    #[test]
    fn a_boolean_input_is_its_flag_when_true_and_nothing_when_false() {
        let run = |value: &str| {
            argv(&agent(&[
                ("INPUT_COMMAND", "rehearse"),
                ("INPUT_REHEARSEQUICK", value),
            ]))
            .unwrap()
        };
        assert_eq!(run("True"), ["slot-release", "rehearse", "--quick"]);
        assert_eq!(run("false"), ["slot-release", "rehearse"]);
        // Anything else goes to the parser, which refuses it naming the flag.
        assert_eq!(run("yes"), ["slot-release", "rehearse", "--quick=yes"]);
        // Only `rehearse` reads it.
        let staging = argv(&agent(&[
            ("INPUT_COMMAND", "staging"),
            ("INPUT_REHEARSEQUICK", "true"),
        ]))
        .unwrap();
        assert_eq!(staging, ["slot-release", "staging"]);
    }

    #[test]
    fn an_empty_path_input_rooted_at_the_sources_is_not_given() {
        let env = agent(&[
            ("INPUT_COMMAND", "build"),
            ("INPUT_PACKAGE", "/s/"),
            ("INPUT_OUTPUTFOLDER", "/s/drop"),
            ("BUILD_SOURCESDIRECTORY", "/s"),
        ]);
        assert_eq!(
            argv(&env).unwrap(),
            ["slot-release", "build", "--out", "/s/drop"]
        );
        assert!(argv(&agent(&[])).is_none());
    }

    #[test]
    fn every_input_names_only_known_commands() {
        for input in INPUTS {
            for command in input.commands {
                assert!(COMMANDS.contains(command), "{}: {command}", input.name);
            }
        }
    }
}
