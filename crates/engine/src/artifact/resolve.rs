//! Resolving a package path or wildcard pattern (the wildcards AzureWebApp@1 accepts) to exactly one match.

use std::fs;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use super::ArtifactError;

/// How many matches an ambiguous wildcard error lists before summarising the rest.
const LISTED_MATCHES: usize = 10;

/// Whether a path component holds a wildcard.
fn is_wild(part: &str) -> bool {
    part.contains(['*', '?', '[', '{'])
}

/// Resolves a package path or wildcard pattern (`drop/*.zip`, `**/*.zip`, `$(Pipeline.Workspace)/drop/*.zip`
/// once the agent expanded the macro) to exactly one existing file or folder. Relative patterns are resolved
/// against `base`. `*` and `?` stay within one folder, `**` spans folders; `.git` folders are not searched.
pub fn resolve_pattern(pattern: &str, base: &Path) -> Result<PathBuf, ArtifactError> {
    let normal = if cfg!(windows) {
        pattern.replace('\\', "/")
    } else {
        pattern.to_owned()
    };
    let parts: Vec<&str> = normal.split('/').collect();
    let Some(first_wild) = parts.iter().position(|p| is_wild(p)) else {
        let path = base.join(pattern);
        return if fs::symlink_metadata(&path).is_ok() {
            Ok(path)
        } else {
            Err(ArtifactError::NoMatch {
                pattern: pattern.to_owned(),
                searched: path,
            })
        };
    };
    let prefix = parts[..first_wild].join("/");
    let dir = if prefix.is_empty() && normal.starts_with('/') {
        PathBuf::from("/")
    } else if prefix.is_empty() {
        base.to_path_buf()
    } else {
        base.join(&prefix)
    };
    let rest = parts[first_wild..].join("/");
    let matcher = GlobBuilder::new(&rest)
        .literal_separator(true)
        .build()
        .map_err(|source| ArtifactError::InvalidPattern {
            pattern: pattern.to_owned(),
            source,
        })?
        .compile_matcher();
    // Without `**` nothing deeper than the pattern's own depth can match.
    let max_depth = if rest.split('/').any(|p| p.contains("**")) {
        usize::MAX
    } else {
        rest.split('/').count()
    };
    let mut matches = Vec::new();
    if dir.is_dir() {
        search(&dir, &dir, &matcher, 1, max_depth, &mut matches)?;
    }
    matches.sort();
    match matches.len() {
        0 => Err(ArtifactError::NoMatch {
            pattern: pattern.to_owned(),
            searched: dir,
        }),
        1 => Ok(matches.remove(0)),
        count => {
            let mut listed: Vec<String> = matches
                .iter()
                .take(LISTED_MATCHES)
                .map(|m| m.display().to_string())
                .collect();
            if count > LISTED_MATCHES {
                listed.push(format!("and {} more", count - LISTED_MATCHES));
            }
            Err(ArtifactError::AmbiguousMatch {
                pattern: pattern.to_owned(),
                count,
                matches: listed.join(", "),
            })
        }
    }
}

fn search(
    root: &Path,
    dir: &Path,
    matcher: &GlobMatcher,
    depth: usize,
    max_depth: usize,
    out: &mut Vec<PathBuf>,
) -> Result<(), ArtifactError> {
    let entries = fs::read_dir(dir).map_err(|source| ArtifactError::Search {
        dir: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| ArtifactError::Search {
            dir: dir.to_owned(),
            source,
        })?;
        if entry.file_name() == ".git" {
            continue;
        }
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let rel_text: String = rel
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/");
        if matcher.is_match(&rel_text) {
            out.push(path.clone());
        }
        // Symlinked folders are not followed: they could loop, or lead out of the search.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && depth < max_depth {
            search(root, &path, matcher, depth + 1, max_depth, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wildcard_components_start_a_search() {
        assert!(is_wild("*.zip"));
        assert!(is_wild("**"));
        assert!(is_wild("pkg-?.zip"));
        assert!(!is_wild("package.zip"));
        assert!(!is_wild("$(Pipeline.Workspace)"));
    }
}
