//! Real HTTPS tests against the emulator: every route, its success and documented failures, swap
//! semantics, Kudu deployments, running apps, Key Vault, faults and the admin API.

#[path = "../common/mod.rs"]
mod common;

mod appconfig;
mod apps;
mod arm;
mod builds;
mod extras;
mod faults;
mod identity;
mod java_windows;
mod keyvault;
mod kinds;
mod kudu;
mod logs;
mod metrics;
mod packages;
mod shapes;
mod signin;
mod stacks;
