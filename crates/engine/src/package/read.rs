//! Reading one entry's bytes safely: opened without following a symlink swapped in since the walk, read to
//! exactly the size the walk saw, and hashed on the way.

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::PackageError;
use super::manifest::Sha256Hex;
use super::walk::{Entry, special_kind};

pub(super) fn io_entry_error(name: &str, e: io::Error) -> PackageError {
    if e.kind() == io::ErrorKind::NotFound {
        PackageError::Vanished {
            path: name.to_owned(),
        }
    } else {
        PackageError::Unreadable {
            path: name.to_owned(),
            source: e,
        }
    }
}

/// Opens an entry without following a symlink swapped in since the walk and without blocking on a FIFO.
pub(super) fn open_entry(entry: &Entry) -> Result<(File, Metadata), PackageError> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits());
    }
    let file = options
        .open(&entry.source)
        .map_err(|e| io_entry_error(&entry.name.0, e))?;
    let meta = file
        .metadata()
        .map_err(|e| io_entry_error(&entry.name.0, e))?;
    if !meta.is_file() {
        return Err(PackageError::SpecialFile {
            path: entry.name.0.clone(),
            kind: special_kind(&meta),
        });
    }
    if meta.len() != entry.size {
        return Err(PackageError::ChangedWhileReading {
            path: entry.name.0.clone(),
            expected: entry.size,
            actual: meta.len(),
        });
    }
    Ok((file, meta))
}

/// A file must end as it began: `read_total` bytes read (the read stops one byte past the expected size)
/// and the same length on disk afterwards, or it changed while it was being packaged.
fn unchanged_after_reading(
    entry: &Entry,
    file: &File,
    read_total: u64,
) -> Result<(), PackageError> {
    let after = file.metadata().map(|m| m.len()).unwrap_or(read_total);
    if read_total != entry.size || after != entry.size {
        return Err(PackageError::ChangedWhileReading {
            path: entry.name.0.clone(),
            expected: entry.size,
            actual: if read_total != entry.size {
                read_total
            } else {
                after
            },
        });
    }
    Ok(())
}

pub(super) fn mode_of(meta: &Metadata) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 != 0 {
            return 0o755;
        }
    }
    let _ = meta;
    0o644
}

/// Copies exactly `entry.size` bytes from `file` into `sink`, hashing them; more or fewer is an error.
pub(super) fn copy_checked(
    entry: &Entry,
    file: &mut File,
    sink: &mut dyn Write,
    cancel: &CancellationToken,
) -> Result<Sha256Hex, PackageError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 128 * 1024];
    let mut read_total = 0u64;
    // One byte past the expected size is enough to notice growth without reading an unbounded file.
    let mut limited = Read::by_ref(file).take(entry.size + 1);
    loop {
        // A multi-gigabyte file is several seconds of work: checked per chunk, not per file.
        if cancel.is_cancelled() {
            return Err(PackageError::Cancelled);
        }
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_entry_error(&entry.name.0, e)),
        };
        read_total += n as u64;
        if read_total > entry.size {
            break;
        }
        hasher.update(&buf[..n]);
        sink.write_all(&buf[..n])
            .map_err(|e| PackageError::Unreadable {
                path: entry.name.0.clone(),
                source: e,
            })?;
    }
    unchanged_after_reading(entry, file, read_total)?;
    Ok(Sha256Hex::from_digest(&hasher.finalize()))
}

/// Reads exactly `entry.size` bytes of `file` into `buf` and hashes them; more or fewer is an error.
pub(super) fn read_checked(
    entry: &Entry,
    file: &mut File,
    buf: &mut Vec<u8>,
) -> Result<Sha256Hex, PackageError> {
    buf.clear();
    let expected = usize::try_from(entry.size).unwrap_or(usize::MAX);
    buf.reserve(expected.saturating_add(1));
    // One byte past the expected size is enough to notice growth without reading an unbounded file.
    Read::by_ref(file)
        .take(entry.size + 1)
        .read_to_end(buf)
        .map_err(|e| io_entry_error(&entry.name.0, e))?;
    let read_total = buf.len() as u64;
    unchanged_after_reading(entry, file, read_total)?;
    Ok(Sha256Hex::of(buf))
}
