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

/// Checks an entry name: relative, `/`-separated, no `.`/`..`, no backslashes or control characters.
fn check_name(name: &str) -> Result<(), PackageError> {
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
    Ok(())
}

/// The files to package, sorted by name. Kept compact because it lives for the whole build: the names in
/// one buffer and 24 bytes per file, where a `String` and a `PathBuf` per file cost a tree of 200,000 files
/// about 40 MB of small allocations.
#[derive(Debug)]
pub(super) struct Entries {
    /// The canonical package root; a file's bytes are at `root/name` unless it is a followed symlink.
    root: PathBuf,
    names: String,
    items: Vec<Item>,
    /// Canonical targets of in-root symlinks, which are read instead of the link.
    links: Vec<PathBuf>,
}

#[derive(Debug, Clone, Copy)]
struct Item {
    name_start: usize,
    name_len: u32,
    /// Index into `links`, or `NOT_A_LINK`.
    link: u32,
    /// Size seen when walking; a different size at read time is an error.
    size: u64,
}

const NOT_A_LINK: u32 = u32::MAX;

impl Entries {
    fn new(root: &Path) -> Self {
        Self {
            root: root.to_owned(),
            names: String::new(),
            items: Vec::new(),
            links: Vec::new(),
        }
    }

    fn push(&mut self, name: &str, size: u64, link: Option<PathBuf>) -> Result<(), PackageError> {
        let too_many = || PackageError::InvalidOption {
            reason: "the package root holds more files or longer names than a package can"
                .to_owned(),
        };
        let link = match link {
            None => NOT_A_LINK,
            Some(target) => {
                let index = u32::try_from(self.links.len())
                    .ok()
                    .filter(|&i| i != NOT_A_LINK)
                    .ok_or_else(too_many)?;
                self.links.push(target);
                index
            }
        };
        self.items.push(Item {
            name_start: self.names.len(),
            name_len: u32::try_from(name.len()).map_err(|_| too_many())?,
            link,
            size,
        });
        self.names.push_str(name);
        Ok(())
    }

    fn sort(&mut self) {
        let names = &self.names;
        let name = |item: &Item| &names[item.name_start..item.name_start + item.name_len as usize];
        // The walk yields each folder's files in order, so this mostly merges sorted runs.
        self.items.sort_by(|a, b| name(a).cmp(name(b)));
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(super) fn name(&self, i: usize) -> &str {
        let item = &self.items[i];
        &self.names[item.name_start..item.name_start + item.name_len as usize]
    }

    pub(super) fn size(&self, i: usize) -> u64 {
        self.items[i].size
    }

    pub(super) fn total_bytes(&self) -> u64 {
        self.items.iter().map(|item| item.size).sum()
    }

    /// What to open for entry `i`: the file itself, or the canonical target of an in-root symlink.
    pub(super) fn source(&self, i: usize) -> PathBuf {
        let item = &self.items[i];
        match self.links.get(item.link as usize) {
            Some(target) => target.clone(),
            None => self.root.join(self.name(i)),
        }
    }
}

/// Walks the tree with the ignore rules and validates every entry; returns entries sorted by name.
pub(super) fn collect_entries(
    spec: &PackageSpec,
    root: &Path,
    out_dir: &Path,
    cancel: &CancellationToken,
) -> Result<Entries, PackageError> {
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

    let mut entries = Entries::new(root);
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
        check_name(&name_text)?;
        if name_text == MANIFEST_PATH {
            return Err(PackageError::ReservedPath { path: name_text });
        }
        if file_type.is_file() {
            entries.push(&name_text, meta.len(), None)?;
        } else if file_type.is_symlink() {
            let (target, size) = resolve_symlink(root, path, &name_text)?;
            entries.push(&name_text, size, Some(target))?;
        } else {
            return Err(PackageError::SpecialFile {
                path: name_text,
                kind: special_kind(&meta),
            });
        }
    }
    entries.sort();
    Ok(entries)
}

/// Decides what an in-tree symlink becomes: links to regular files inside the root are followed (the entry
/// holds the target's bytes under the link's name); everything else is refused. Returns the canonical
/// target and its size.
fn resolve_symlink(root: &Path, path: &Path, name: &str) -> Result<(PathBuf, u64), PackageError> {
    let name = || name.to_owned();
    let target = fs::read_link(path).unwrap_or_default();
    let canonical = match fs::canonicalize(path) {
        Ok(c) => c,
        Err(e) if is_loop(&e) => return Err(PackageError::SymlinkLoop { path: name() }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PackageError::DanglingSymlink {
                path: name(),
                target,
            });
        }
        Err(e) => return Err(io_entry_error(&name(), e)),
    };
    if !canonical.starts_with(root) {
        return Err(PackageError::SymlinkOutsideRoot {
            path: name(),
            target: canonical,
        });
    }
    let meta = fs::metadata(&canonical).map_err(|e| io_entry_error(&name(), e))?;
    if meta.is_dir() {
        return Err(PackageError::SymlinkToDirectory {
            path: name(),
            target,
        });
    }
    if !meta.is_file() {
        return Err(PackageError::SpecialFile {
            path: name(),
            kind: special_kind(&meta),
        });
    }
    let size = meta.len();
    Ok((canonical, size))
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
            assert!(check_name(bad).is_err(), "{bad} accepted");
        }
        for good in [
            "a",
            "a/b.txt",
            ".env.example",
            "dir/.hidden/x",
            "ünïcode/ファイル",
        ] {
            assert!(check_name(good).is_ok(), "{good} refused");
        }
    }
}
