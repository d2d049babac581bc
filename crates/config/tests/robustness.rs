//! Hostile and random input: an alias bomb is refused quickly, and no input makes loading panic.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use slot_release_config::{LoadOptions, load_str};

/// Nine levels of nine aliases each expand to 9^9 (about 387 million) nodes.
fn alias_bomb() -> String {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for level in 1..=9 {
        let previous = level - 1;
        let items = vec![format!("*a{previous}"); 9].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    text.push_str("version: 1\n");
    text
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let started = Instant::now();
    let result = load_str("bomb.yml", &alias_bomb(), &LoadOptions::default());
    let elapsed = started.elapsed();
    let problems = match result {
        Ok(_) => panic!("an alias bomb loaded"),
        Err(problems) => problems,
    };
    eprintln!("alias bomb refused in {elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
    let codes: Vec<_> = problems.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["document-too-large"], "{problems}");
}

#[test]
fn deep_nesting_is_refused() {
    let text = format!("version: 1\napp: {}{}\n", "[".repeat(100), "]".repeat(100));
    let problems = match load_str("deep.yml", &text, &LoadOptions::default()) {
        Ok(_) => panic!("a 100-deep document loaded"),
        Err(problems) => problems,
    };
    assert_eq!(
        problems.iter().next().map(|d| d.code),
        Some("document-too-large")
    );
}

const EXAMPLE: &str = include_str!("../../../examples/python-webapp/release.yml");

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        let _ = load_str("random.yml", &text, &LoadOptions::default());
    }

    #[test]
    fn mutated_example_never_panics(at in 0usize..EXAMPLE.len(), cut in 0usize..40, insert in "[ :\\-\\[\\]{}&*!|>'\"#\n a-z0-9$()]{0,12}") {
        let mut text = EXAMPLE.to_string();
        let start = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut).min(text.len());
        let end = (end..=text.len()).find(|i| text.is_char_boundary(*i)).unwrap_or(text.len());
        text.replace_range(start..end, &insert);
        if let Err(problems) = load_str("mutated.yml", &text, &LoadOptions::default()) {
            // Rendering must not panic either, and every located problem points into the file.
            let _ = problems.to_string();
            for problem in &problems {
                prop_assert!(problem.line <= text.lines().count() + 1, "{problem}");
            }
        }
    }
}
