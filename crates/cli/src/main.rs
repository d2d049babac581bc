//! The `slot-release` binary: parses arguments and dispatches to the libraries.
fn main() {}
