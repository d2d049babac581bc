//! The release engine: plans, stages, journal, health gates, hooks, packaging and rehearsal.

// Owned by the packaging/health/hooks work.
pub mod health;
pub mod hooks;
pub mod package;

// Owned by the plan/stages/journal work.
pub mod journal;
pub mod plan;
pub mod port;
pub mod rehearse;
pub mod release;
pub mod spec;
pub mod stages;
pub mod state;
