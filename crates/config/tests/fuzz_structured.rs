//! Structured fuzzing of the loader and validator: the example config is parsed into a tree, mutated
//! the way people break configs (a key dropped, renamed or misspelt, a value of the wrong type, an
//! empty or huge value, extreme numbers, odd keys), written back as block YAML and loaded. Whatever
//! comes in: no panic, an answer within a bounded time, and every rejection says where.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;
use slot_release_config::{Diagnostics, LoadOptions, load_str};

const EXAMPLES: [&str; 1] = [include_str!("../../../examples/python-webapp/release.yml")];
/// Loading a few-kilobyte config is instant; this leaves room for a loaded CI machine.
const BOUND: Duration = Duration::from_secs(2);

/// One way of breaking the tree at a chosen node.
#[derive(Debug, Clone)]
enum Mutation {
    /// Drop the key.
    Remove,
    /// Replace the value with another of any type.
    Replace(Value),
    /// Add a key beside the existing ones.
    AddKey(String, Value),
    /// Rename the key (a misspelling).
    Rename(String),
    /// Wrap the value in a one-item list (a common indentation mistake).
    WrapInList,
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        "\\PC{0,24}".prop_map(Value::from),
        Just(Value::from("")),
        Just(Value::from("x".repeat(10_000))),
        Just(Value::from("$(Build.BuildNumber")),
        Just(Value::from("$(env.)")),
        Just(Value::from("##vso[task.setvariable variable=x]y")),
        Just(Value::from("-1s")),
        Just(Value::from("99999999999999999999h")),
        Just(Value::from("../../etc/passwd")),
        Just(Value::from("/absolute/path")),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z_][a-zA-Z0-9_.-]{0,10}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        Just(Mutation::Remove),
        value().prop_map(Mutation::Replace),
        ("[a-zA-Z_][a-zA-Z0-9_]{0,12}", value()).prop_map(|(k, v)| Mutation::AddKey(k, v)),
        "[a-zA-Z][a-zA-Z0-9]{0,12}".prop_map(Mutation::Rename),
        Just(Mutation::WrapInList),
    ]
}

/// Every node's path (keys and indexes), root first.
fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(Step::Key(k.clone()));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Applies a mutation to the node at `path` (its parent holds it).
fn apply(root: &mut Value, path: &[Step], mutation: &Mutation) {
    let Some((last, parent_path)) = path.split_last() else {
        if let Mutation::Replace(v) = mutation {
            *root = v.clone();
        }
        return;
    };
    let mut parent = &mut *root;
    for step in parent_path {
        parent = match (step, parent) {
            (Step::Key(k), Value::Object(m)) => match m.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Step::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match (last, parent) {
        (Step::Key(k), Value::Object(map)) => match mutation {
            Mutation::Remove => {
                map.remove(k);
            }
            Mutation::Replace(v) => {
                map.insert(k.clone(), v.clone());
            }
            Mutation::AddKey(new, v) => {
                map.insert(new.clone(), v.clone());
            }
            Mutation::Rename(new) => {
                if let Some(v) = map.remove(k) {
                    map.insert(new.clone(), v);
                }
            }
            Mutation::WrapInList => {
                if let Some(v) = map.get_mut(k) {
                    *v = Value::Array(vec![v.clone()]);
                }
            }
        },
        (Step::Index(i), Value::Array(items)) if *i < items.len() => match mutation {
            Mutation::Remove => {
                items.remove(*i);
            }
            Mutation::Replace(v) => items[*i] = v.clone(),
            Mutation::AddKey(_, v) => items.push(v.clone()),
            Mutation::Rename(_) | Mutation::WrapInList => {
                items[*i] = Value::Array(vec![items[*i].clone()]);
            }
        },
        _ => {}
    }
}

/// Block-style YAML, with every string double-quoted the JSON way (which YAML reads the same), so
/// problems land on real lines and columns.
fn to_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                out.push_str(&format!("{pad}{}:", quote(k)));
                block_child(v, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for v in items {
                out.push_str(&format!("{pad}-"));
                block_child(v, indent, out);
            }
        }
        other => out.push_str(&format!("{pad}{}\n", flow(other))),
    }
}

fn block_child(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            to_yaml(v, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            to_yaml(v, indent + 2, out);
        }
        other => out.push_str(&format!(" {}\n", flow(other))),
    }
}

fn flow(v: &Value) -> String {
    match v {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        Value::String(s) => quote(s),
        other => other.to_string(),
    }
}

fn quote(s: &str) -> String {
    Value::from(s).to_string()
}

fn example_tree(index: usize) -> Value {
    let text = EXAMPLES[index % EXAMPLES.len()];
    match serde_saphyr::from_str::<Value>(text) {
        Ok(v) => v,
        Err(e) => panic!("the example does not parse: {e}"),
    }
}

/// Loads and checks the properties every input must have. Returns the problems (if any).
fn load_checked(text: &str) -> Result<Option<Diagnostics>, TestCaseError> {
    let started = Instant::now();
    let result = load_str("fuzz.yml", text, &LoadOptions::default());
    let elapsed = started.elapsed();
    prop_assert!(elapsed < BOUND, "loading took {elapsed:?}");
    let Err(problems) = result else {
        return Ok(None);
    };
    prop_assert!(!problems.is_empty(), "a rejection without a problem");
    let rendered = problems.to_string();
    prop_assert!(!rendered.trim().is_empty());
    let lines = text.lines().count().max(1);
    for problem in &problems {
        prop_assert!(
            problem.line >= 1 && problem.line <= lines + 1,
            "a problem without a location in the file ({} lines): {problem:?}",
            lines
        );
        prop_assert!(!problem.message.trim().is_empty(), "{problem:?}");
    }
    Ok(Some(problems))
}

#[test]
fn the_unmutated_tree_loads() {
    let mut text = String::new();
    to_yaml(&example_tree(0), 0, &mut text);
    if let Err(problems) = load_str("roundtrip.yml", &text, &LoadOptions::default()) {
        panic!("the re-emitted example is refused:\n{problems}\n{text}");
    }
}

#[test]
fn known_breakages_are_located_on_their_line() {
    let cases: [(&[&str], Value); 3] = [
        (
            &["stages", "staging", "healthCheck", "interval"],
            Value::from("soon"),
        ),
        (&["app", "kind"], Value::from("lambda")),
        (
            &["stages", "staging", "healthCheck", "successes"],
            Value::from("many"),
        ),
    ];
    for (path, bad) in cases {
        let mut tree = example_tree(0);
        let steps: Vec<Step> = path.iter().map(|k| Step::Key((*k).to_owned())).collect();
        apply(&mut tree, &steps, &Mutation::Replace(bad.clone()));
        let mut text = String::new();
        to_yaml(&tree, 0, &mut text);
        let problems = match load_str("known.yml", &text, &LoadOptions::default()) {
            Ok(_) => panic!("{path:?} = {bad} was accepted\n{text}"),
            Err(p) => p,
        };
        let key = format!("{}:", quote(path[path.len() - 1]));
        let expected: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with(&key))
            .map(|(n, _)| n + 1)
            .collect();
        assert!(
            problems.iter().any(|p| expected.contains(&p.line)),
            "{path:?} = {bad}: no problem on lines {expected:?}:\n{problems}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn structured_mutations_never_panic_hang_or_lose_the_location(
        picks in prop::collection::vec((any::<prop::sample::Index>(), mutation()), 1..4),
    ) {
        let mut tree = example_tree(0);
        for (index, mutation) in &picks {
            let mut all = Vec::new();
            paths(&tree, &mut Vec::new(), &mut all);
            let path = index.get(&all).clone();
            apply(&mut tree, &path, mutation);
        }
        let mut text = String::new();
        to_yaml(&tree, 0, &mut text);
        load_checked(&text)?;
    }

    #[test]
    fn duplicated_and_reindented_lines_are_located(
        line in any::<prop::sample::Index>(),
        shift in 0usize..5,
        duplicate in any::<bool>(),
    ) {
        let text = EXAMPLES[0];
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let at = line.index(lines.len());
        if duplicate {
            let copy = lines[at].clone();
            lines.insert(at, copy);
        } else {
            lines[at] = format!("{}{}", " ".repeat(shift), lines[at]);
        }
        load_checked(&lines.join("\n"))?;
    }
}
