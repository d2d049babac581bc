//! The release engine: plans, stages, journal, health gates, hooks and packaging.
//!
//! A stage reads the live app through the [`port::Port`] trait, computes a [`plan::Plan`] with no I/O
//! ([`plan::compute`]), prints it, and executes it step by step ([`stages::run`]), writing the
//! [`journal`] around every irreversible step. The rehearsal (crate `slot-release-rehearse`) runs the
//! same code path against the embedded emulator, which this crate does not link. The engine never speaks
//! HTTP to Azure itself and never writes `##vso[` commands.

pub mod error;
pub use error::{Error, Result};

// Owned by the packaging/health/hooks work.
pub mod analysis;
pub mod artifact;
pub mod fanout;
pub mod health;
pub mod history;
pub mod hooks;
pub mod identity;
pub mod package;

// Owned by the plan/stages/journal work.
pub mod journal;
pub mod lock;
pub mod machine;
pub mod plan;
pub mod port;
pub mod release;
pub mod selection;
pub mod spec;
pub mod stages;
pub mod state;
pub mod substitute;
