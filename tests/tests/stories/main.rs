//! End to end: the real `slot-release` binary against the emulator, for every story and failure path.
//!
//! Each test seeds an emulator from a copy of an example config (production runs the previous release),
//! runs the binary as a pipeline step would, and asserts the emulator's final state: which content and
//! settings are in which slot, the journal, and that production answered healthy throughout. Apps that
//! need their dependencies installed come from `tests/fixtures` (`dependencies`).

mod analysis;
mod app_commands;
mod containers;
mod dependencies;
mod failures;
mod functions;
mod java;
mod jobs;
mod owned;
mod private_registry;
mod release;
mod rollback;
mod run_from_package;
mod secrets;
mod site_config;
mod sitecontainers;
mod substitution;
mod windows;

/// The app of the python example.
const APP: &str = "contoso-web";
