//! What a given package and a package root must be: a readable zip whose entries stay in the site folder, or
//! a folder with something in it; a root that lies inside the checked-out sources.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::ArtifactError;

/// What a package path holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Inspected {
    Zip,
    Folder,
}

/// A package must be a readable zip (its central directory parses, it has files, no entry escapes the
/// site folder) or a folder with something in it.
pub(super) fn inspect(path: &Path) -> Result<Inspected, ArtifactError> {
    let meta = fs::metadata(path).map_err(|source| ArtifactError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        let mut entries = fs::read_dir(path).map_err(|source| ArtifactError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        return match entries.next() {
            Some(Ok(_)) => Ok(Inspected::Folder),
            Some(Err(source)) => Err(ArtifactError::Unreadable {
                path: path.to_owned(),
                source,
            }),
            None => Err(ArtifactError::EmptyFolder {
                path: path.to_owned(),
            }),
        };
    }
    if !meta.is_file() {
        return Err(ArtifactError::NotFileOrFolder {
            path: path.to_owned(),
        });
    }
    let file = File::open(path).map_err(|source| ArtifactError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    let archive = zip::ZipArchive::new(io::BufReader::new(file)).map_err(|source| {
        ArtifactError::NotAZip {
            path: path.to_owned(),
            source,
        }
    })?;
    if archive.is_empty() {
        return Err(ArtifactError::EmptyZip {
            path: path.to_owned(),
        });
    }
    for name in archive.file_names() {
        let name = name.map_err(|source| ArtifactError::NotAZip {
            path: path.to_owned(),
            source,
        })?;
        if escapes(&name) {
            return Err(ArtifactError::UnsafeZipEntry {
                path: path.to_owned(),
                entry: name.into_owned(),
            });
        }
    }
    Ok(Inspected::Zip)
}

/// Whether a zip entry name would land outside the folder it is extracted into. Backslashes count as
/// separators: Kudu on Windows treats them so, and tools on Windows write them.
fn escapes(name: &str) -> bool {
    let normal = name.replace('\\', "/");
    let drive = normal.as_bytes().get(1) == Some(&b':');
    normal.starts_with('/') || drive || normal.split('/').any(|part| part == "..")
}

/// The checked-out sources a package root must lie in: the pipeline's (`Build.SourcesDirectory`, as
/// `AgentEnv::sources_directory` gives it) in a pipeline, else the git work tree holding the config, else
/// the config's folder.
pub fn sources_dir(config: &Path, pipeline_sources: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = pipeline_sources.filter(|d| !d.as_os_str().is_empty()) {
        return dir;
    }
    let config_dir = config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let absolute = fs::canonicalize(config_dir).unwrap_or_else(|_| config_dir.to_path_buf());
    absolute
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .map_or(absolute.clone(), Path::to_path_buf)
}

/// The package root exists, is a folder, lies inside the sources (both resolved through symlinks) and is
/// not empty; returns it resolved. Checked before anything is built or changed.
pub fn check_package_root(root: &Path, sources: &Path) -> Result<PathBuf, ArtifactError> {
    let resolved = fs::canonicalize(root).map_err(|source| ArtifactError::RootMissing {
        root: root.to_owned(),
        source,
    })?;
    if !resolved.is_dir() {
        return Err(ArtifactError::RootNotAFolder {
            root: root.to_owned(),
        });
    }
    let sources_resolved = fs::canonicalize(sources).unwrap_or_else(|_| sources.to_path_buf());
    if !resolved.starts_with(&sources_resolved) {
        return Err(ArtifactError::RootOutsideSources {
            root: root.to_owned(),
            resolved,
            sources: sources_resolved,
        });
    }
    let mut entries = fs::read_dir(&resolved).map_err(|source| ArtifactError::RootMissing {
        root: root.to_owned(),
        source,
    })?;
    // `.git` alone is nothing to deploy; what the ignore rules leave is checked by the packager itself.
    let any = entries.any(|e| e.is_ok_and(|e| e.file_name() != ".git"));
    if !any {
        return Err(ArtifactError::RootEmpty {
            root: root.to_owned(),
        });
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_that_leave_the_site_folder_are_caught() {
        for bad in [
            "/etc/passwd",
            "c:/windows/x",
            "C:\\x",
            "a/../../b",
            "..",
            "a\\..\\..\\b",
            "\\\\server\\share",
        ] {
            assert!(escapes(bad), "{bad} passed");
        }
        for good in ["a/b", "..a/b", "a..b/c", "bin\\app.dll", ".well-known/x"] {
            assert!(!escapes(good), "{good} refused");
        }
    }
}
