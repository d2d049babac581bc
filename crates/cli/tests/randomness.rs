//! The binary's TLS randomness is seeded from the OS, not from aws-lc's CPU-jitter source: the decision
//! in docs/architecture.md ("Randomness"), made in `.cargo/config.toml`. If the build setting is lost,
//! the jitter collector is compiled back in and its symbols appear in the binary.

#[test]
fn the_binary_has_no_cpu_jitter_entropy_source() {
    let path = env!("CARGO_BIN_EXE_slot-release");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    // Present (as several symbols) in every build of aws-lc-sys with the jitter source; the test
    // binary is a debug build, which keeps its symbols.
    let needle = b"jent_entropy_init";
    let found = bytes.windows(needle.len()).any(|w| w == needle);
    assert!(
        !found,
        "{path} links aws-lc's CPU-jitter entropy source (jent_entropy_init): the build lost \
         AWS_LC_SYS_NO_JITTER_ENTROPY=1 from .cargo/config.toml; see docs/architecture.md, Randomness"
    );
}
