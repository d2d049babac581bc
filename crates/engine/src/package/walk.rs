//! Walking the package root: ignore files and excludes applied, every name validated, in-root symlinks
//! followed and everything else that could make the archive unsafe refused.

use std::fs::{self, Metadata};
use std::io;
use std::path::{Path, PathBuf};

use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use tokio_util::sync::CancellationToken;

use super::PackageError;
use super::manifest::MANIFEST_PATH;
use super::options::PackageSpec;
use super::read::io_entry_error;

/// A validated entry name: relative, `/`-separated, no `.`/`..`, no backslashes or control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct EntryName(pub(super) String);

impl EntryName {
    fn new(name: &str) -> Result<Self, PackageError> {
        let unsafe_name = |reason| PackageError::UnsafeName {
            path: name.to_owned(),
            reason,
        };
        if name.is_empty() {
            return Err(unsafe_name("empty name"));
        }
        if name.starts_with('/') {
            return Err(unsafe_name("absolute path"));
        }
        // A backslash or drive colon is a separator to Windows extractors (Kudu on Windows): zip-slip there.
        if name.contains('\\') {
            return Err(unsafe_name("contains a backslash"));
        }
        if name.chars().any(char::is_control) {
            return Err(unsafe_name("contains a control character"));
        }
        for part in name.split('/') {
            match part {
                "" => return Err(unsafe_name("empty path component")),
                "." | ".." => return Err(unsafe_name("path traversal ('.' or '..' component)")),
                _ if part.len() >= 2 && part.as_bytes()[1] == b':' => {
                    return Err(unsafe_name("drive-letter component"));
                }
                _ => {}
            }
        }
        Ok(Self(name.to_owned()))
    }
}

/// How an entry's bytes are reached.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) name: EntryName,
    /// What to open: the file itself, or the canonical target of an in-root symlink.
    pub(super) source: PathBuf,
    /// Size seen when walking; a different size at read time is an error.
    pub(super) size: u64,
}

/// Walks the tree with the ignore rules and validates every entry; returns entries sorted by name.
pub(super) fn collect_entries(
    spec: &PackageSpec,
    root: &Path,
    out_dir: &Path,
    cancel: &CancellationToken,
) -> Result<Vec<Entry>, PackageError> {
    let mut overrides = OverrideBuilder::new(root);
    for glob in &spec.exclude {
        // Override globs whitelist unless negated; a leading '!' turns each into an exclusion.
        overrides
            .add(&format!("!{glob}"))
            .map_err(|source| PackageError::InvalidGlob {
                glob: glob.clone(),
                source,
            })?;
    }
    let overrides = overrides
        .build()
        .map_err(|source| PackageError::InvalidGlob {
            glob: spec.exclude.join(", "),
            source,
        })?;

    let mut builder = WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .hidden(!spec.include_hidden)
        .parents(false)
        .require_git(false)
        .follow_links(false)
        // Sorted so the first problem reported is the same on every machine.
        .sort_by_file_name(std::ffi::OsStr::cmp)
        .overrides(overrides);
    for name in &spec.ignore_files {
        builder.add_custom_ignore_filename(name);
    }
    let out_dir = out_dir.to_owned();
    builder.filter_entry(move |e| e.file_name() != ".git" && e.path() != out_dir);

    let mut entries = Vec::new();
    for item in builder.build() {
        if cancel.is_cancelled() {
            return Err(PackageError::Cancelled);
        }
        let dirent = item.map_err(|e| walk_error(root, &e))?;
        if dirent.depth() == 0 {
            continue;
        }
        let path = dirent.path();
        let rel = path.strip_prefix(root).unwrap_or(path);
        let Some(rel_str) = rel.to_str() else {
            return Err(PackageError::NonUtf8Name {
                path: rel.to_owned(),
                lossy: rel.to_string_lossy().into_owned(),
            });
        };
        let name_text = rel_str.replace(std::path::MAIN_SEPARATOR, "/");
        let meta = fs::symlink_metadata(path).map_err(|e| io_entry_error(&name_text, e))?;
        let file_type = meta.file_type();
        if file_type.is_dir() {
            continue;
        }
        let name = EntryName::new(&name_text)?;
        if name.0 == MANIFEST_PATH {
            return Err(PackageError::ReservedPath { path: name.0 });
        }
        if file_type.is_file() {
            entries.push(Entry {
                name,
                source: path.to_owned(),
                size: meta.len(),
            });
        } else if file_type.is_symlink() {
            entries.push(resolve_symlink(root, path, name)?);
        } else {
            return Err(PackageError::SpecialFile {
                path: name.0,
                kind: special_kind(&meta),
            });
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// Decides what an in-tree symlink becomes: links to regular files inside the root are followed (the entry
/// holds the target's bytes under the link's name); everything else is refused.
fn resolve_symlink(root: &Path, path: &Path, name: EntryName) -> Result<Entry, PackageError> {
    let target = fs::read_link(path).unwrap_or_default();
    let canonical = match fs::canonicalize(path) {
        Ok(c) => c,
        Err(e) if is_loop(&e) => return Err(PackageError::SymlinkLoop { path: name.0 }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PackageError::DanglingSymlink {
                path: name.0,
                target,
            });
        }
        Err(e) => return Err(io_entry_error(&name.0, e)),
    };
    if !canonical.starts_with(root) {
        return Err(PackageError::SymlinkOutsideRoot {
            path: name.0,
            target: canonical,
        });
    }
    let meta = fs::metadata(&canonical).map_err(|e| io_entry_error(&name.0, e))?;
    if meta.is_dir() {
        return Err(PackageError::SymlinkToDirectory {
            path: name.0,
            target,
        });
    }
    if !meta.is_file() {
        return Err(PackageError::SpecialFile {
            path: name.0,
            kind: special_kind(&meta),
        });
    }
    Ok(Entry {
        name,
        source: canonical,
        size: meta.len(),
    })
}

#[cfg(unix)]
fn is_loop(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32)
}

#[cfg(not(unix))]
fn is_loop(e: &io::Error) -> bool {
    // Windows reports reparse-point loops as ERROR_CANT_RESOLVE_FILENAME (1921).
    e.raw_os_error() == Some(1921)
}

pub(super) fn special_kind(meta: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_char_device() {
            return "a character device";
        }
    }
    let _ = meta;
    "a special file"
}

fn walk_error(root: &Path, e: &ignore::Error) -> PackageError {
    // The ignore crate wraps io errors with the path they concern; dig both out for a message that names it.
    fn find(e: &ignore::Error) -> (Option<PathBuf>, Option<&io::Error>) {
        match e {
            ignore::Error::WithPath { path, err } => {
                let (_, io) = find(err);
                (Some(path.clone()), io)
            }
            ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
                find(err)
            }
            ignore::Error::Loop { child, .. } => (Some(child.clone()), None),
            ignore::Error::Io(io) => (None, Some(io)),
            _ => (None, None),
        }
    }
    let (path, io) = find(e);
    let path = path
        .map(|p| p.strip_prefix(root).map(Path::to_owned).unwrap_or(p))
        .unwrap_or_else(|| root.to_owned());
    match io {
        Some(io) if io.kind() == io::ErrorKind::PermissionDenied => PackageError::Unreadable {
            path: path.to_string_lossy().into_owned(),
            source: io::Error::new(io.kind(), io.to_string()),
        },
        _ => PackageError::Walk {
            path,
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_reject_traversal_and_absolute_paths() {
        for bad in [
            "../x",
            "a/../b",
            "/etc/passwd",
            "a\\b",
            "./a",
            "a//b",
            "c:/x",
            "a/\n",
        ] {
            assert!(EntryName::new(bad).is_err(), "{bad} accepted");
        }
        for good in [
            "a",
            "a/b.txt",
            ".env.example",
            "dir/.hidden/x",
            "ünïcode/ファイル",
        ] {
            assert!(EntryName::new(good).is_ok(), "{good} refused");
        }
    }
}
