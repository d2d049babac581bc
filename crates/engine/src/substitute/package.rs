//! A deploy's copy of the package with its configuration files substituted: every other entry is copied
//! raw (compressed bytes as they are, no inflating), a matched file is read whole (bounded by
//! [`MAX_FILE_BYTES`]), rewritten and deflated. The build's artifact is never changed.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{MAX_FILE_BYTES, Values, substitute_json, substitute_xml};
use crate::error::Error;

/// What a deploy substitutes, as the plan shows it: the files and the setting names that may replace a
/// key; values are never shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubstitutionPlan {
    /// The environment whose settings are substituted.
    pub environment: String,
    /// JSON file patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<String>,
    /// Whether `*.config` files are substituted.
    #[serde(default)]
    pub xml: bool,
    /// The plain settings that replace a key of the same name where a file has one.
    pub names: Vec<String>,
}

/// One file a deploy's copy changed, and its keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// The entry's name in the package.
    pub file: String,
    /// The keys replaced.
    pub keys: Vec<String>,
}

fn zip_error(file: &str, source: impl std::fmt::Display) -> Error {
    Error::Substitution {
        file: file.to_owned(),
        line: 0,
        reason: source.to_string(),
    }
}

/// Writes `to`, a copy of the package `from` with the files `plan` names substituted from `values`, and
/// returns what changed. A JSON pattern that matches no file is an error (as the Microsoft task's), so a
/// typo does not deploy unsubstituted files. Checks `cancel` between entries.
pub fn substitute_package(
    from: &Path,
    to: &Path,
    plan: &SubstitutionPlan,
    values: &Values,
    cancel: &CancellationToken,
) -> Result<Vec<FileChange>, Error> {
    let patterns = plan
        .json
        .iter()
        .map(|p| {
            Glob::new(p.trim_start_matches("./"))
                .map(|g| g.compile_matcher())
                .map_err(|e| zip_error(p, format!("not a valid file pattern: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut set = GlobSetBuilder::new();
    for p in &plan.json {
        if let Ok(g) = Glob::new(p.trim_start_matches("./")) {
            set.add(g);
        }
    }
    let json_set: GlobSet = set.build().map_err(|e| zip_error("substitute.json", e))?;
    let package = from.display().to_string();
    let input = File::open(from).map_err(|e| zip_error(&package, e))?;
    let mut archive =
        zip::ZipArchive::new(BufReader::new(input)).map_err(|e| zip_error(&package, e))?;
    let output = File::create(to).map_err(|e| zip_error(&to.display().to_string(), e))?;
    let mut writer = zip::ZipWriter::new(BufWriter::new(output));
    let mut changes = Vec::new();
    let mut matched = vec![false; patterns.len()];
    for i in 0..archive.len() {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled {
                step: Some("substitute variables in the package".into()),
                during: None,
            });
        }
        let name = archive
            .by_index_raw(i)
            .map_err(|e| zip_error(&package, e))?
            .name()
            .map_err(|e| zip_error(&package, e))?
            .into_owned();
        let is_file = !name.ends_with('/');
        let json = is_file && json_set.is_match(&name);
        for (m, p) in matched.iter_mut().zip(&patterns) {
            *m |= is_file && p.is_match(&name);
        }
        let xml = is_file && plan.xml && name.to_ascii_lowercase().ends_with(".config");
        if !(json || xml) {
            let raw = archive.by_index_raw(i).map_err(|e| zip_error(&name, e))?;
            writer.raw_copy_file(raw).map_err(|e| zip_error(&name, e))?;
            continue;
        }
        let mut entry = archive.by_index(i).map_err(|e| zip_error(&name, e))?;
        if entry.size() > MAX_FILE_BYTES {
            return Err(zip_error(
                &name,
                format!(
                    "{} bytes, more than the {MAX_FILE_BYTES} a configuration file may have",
                    entry.size()
                ),
            ));
        }
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(entry.unix_mode().unwrap_or(0o644));
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| zip_error(&name, e))?;
        drop(entry);
        let text = String::from_utf8(bytes).map_err(|_| zip_error(&name, "not UTF-8 text"))?;
        let done = if json {
            substitute_json(&text, &name, values)?
        } else {
            substitute_xml(&text, &name, values)?
        };
        writer
            .start_file(name.as_str(), options)
            .map_err(|e| zip_error(&name, e))?;
        writer
            .write_all(done.text.as_bytes())
            .map_err(|e: io::Error| zip_error(&name, e))?;
        if !done.keys.is_empty() {
            changes.push(FileChange {
                file: name,
                keys: done.keys,
            });
        }
    }
    if let Some(unmatched) = plan
        .json
        .iter()
        .zip(&matched)
        .find_map(|(p, m)| (!m).then_some(p))
    {
        return Err(zip_error(
            unmatched,
            "no file of the package matches this substitute.json pattern",
        ));
    }
    writer
        .finish()
        .map_err(|e| zip_error(&to.display().to_string(), e))?
        .flush()
        .map_err(|e| zip_error(&to.display().to_string(), e))?;
    Ok(changes)
}
