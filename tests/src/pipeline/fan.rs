//! A job's `strategy.matrix` as the service expands it: a literal, or a runtime expression reading an
//! earlier job's output (the fan-out template's `Matrix`), turned into one job per entry, named
//! `<job>.<entry>`, with the entry's variables. The stand-in runs a matrix's jobs one
//! after another, which any `maxParallel` allows.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{RunRecord, output_reference};

/// A matrix entry's name and its variables.
type Entry = (String, BTreeMap<String, String>);

/// The entries of a job's `strategy.matrix` with their variables, or `None` when the job has none. A
/// runtime expression is read from the jobs that ran; an empty answer is an empty matrix.
pub(super) fn matrix(
    job: &Value,
    record: &RunRecord,
    stage: &str,
) -> Result<Option<Vec<Entry>>, String> {
    let matrix = &job["strategy"]["matrix"];
    let entries = match matrix {
        Value::Null => return Ok(None),
        Value::String(text) => {
            let expr = text
                .trim()
                .strip_prefix("$[")
                .and_then(|v| v.strip_suffix(']'))
                .ok_or_else(|| format!("strategy.matrix {text}: not a runtime expression"))?;
            let json = output_reference(expr.trim(), record, stage)?;
            if json.trim().is_empty() {
                return Ok(Some(Vec::new()));
            }
            serde_json::from_str::<Value>(&json)
                .map_err(|e| format!("strategy.matrix {text} is not JSON ({e}): {json}"))?
        }
        literal => literal.clone(),
    };
    let mut out = Vec::new();
    for (name, variables) in entries.as_object().into_iter().flatten() {
        let variables = variables
            .as_object()
            .ok_or_else(|| format!("matrix entry {name} is not a mapping"))?
            .iter()
            .map(|(k, v)| {
                // The service makes every matrix variable a string; anything else is refused.
                v.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| format!("matrix entry {name}: {k} is not a string"))
            })
            .collect::<Result<_, String>>()?;
        out.push((name.clone(), variables));
    }
    Ok(Some(out))
}
