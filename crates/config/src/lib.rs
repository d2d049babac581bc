//! Slot Release's `release.yml`: the version 1 model, loading with located diagnostics, semantic
//! validation, variable references and the JSON Schema.
//!
//! ```no_run
//! use slot_release_config::{LoadOptions, load_file};
//! match load_file(std::path::Path::new("release.yml"), &LoadOptions::default()) {
//!     Ok(loaded) => println!("{} environments", loaded.config.environments.len()),
//!     Err(problems) => eprintln!("{problems}"),
//! }
//! ```

mod analysis;
mod confine;
mod connection_strings;
mod diagnostic;
mod error;
mod load;
mod model;
mod reference;
mod registry;
mod site_config;
mod source;
pub mod stack;
mod substitute;
mod types;
mod validate;
pub mod vars;

pub use analysis::{Analysis, Baseline, LogsQuery, Percent};
pub use confine::check_package_root;
pub use connection_strings::{ConnectionString, ConnectionStringType};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use error::ConfigError;
pub use load::{LoadOptions, Loaded, VariableMode, load_file, load_str};
pub use model::{
    AllSecrets, App, AppKind, Canary, CanaryStep, ConfigVersion, Delivery, Environment, FanOut,
    FunctionKey, HealthCheck, Hook, HookLocation, Image, NameRule, Package, ProductionStage,
    ReleaseConfig, Restore, RollbackMode, RollbackStage, SecretPrefix, SecretSelect, SecretSpec,
    SecretSpecLong, Secrets, StageName, Stages, StagingStage, SwapStrategy, Target, UndoHooks,
    Watch,
};
pub use reference::{json_schema, json_schema_string, reference_markdown};
pub use registry::{
    REGISTRY_PASSWORD_SETTING, REGISTRY_URL_SETTING, REGISTRY_USERNAME_SETTING, Registry,
    RegistryCredentials, RegistryIdentity,
};
pub use site_config::{
    FtpsState, MinTlsVersion, RESTART_WARMUP_PATH, SWAP_WARMUP_PATH, SWAP_WARMUP_STATUSES,
    SiteConfig, Warmup,
};
pub use source::{Position, SourceMap};
pub use substitute::Substitute;
pub use types::{
    ConnectionStringName, Duration, EnvironmentName, HookName, SecretName, SecretRef, SettingName,
    SlotName, VaultName,
};
pub use vars::{MapVariables, ProcessEnvironment, VariableSource};
