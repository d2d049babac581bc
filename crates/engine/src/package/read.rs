//! Reading one entry's bytes safely: opened without following a symlink swapped in since the walk, read to
//! exactly the size the walk saw (whole, or one chunk at a time at fixed offsets), and checked unchanged.

use std::fs::{self, File, Metadata};
use std::io::{self, Read};

use super::PackageError;
use super::walk::{Entries, special_kind};

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

fn changed(name: &str, expected: u64, actual: u64) -> PackageError {
    PackageError::ChangedWhileReading {
        path: name.to_owned(),
        expected,
        actual,
    }
}

/// Opens entry `i` without following a symlink swapped in since the walk and without blocking on a FIFO.
pub(super) fn open_entry(entries: &Entries, i: usize) -> Result<(File, Metadata), PackageError> {
    let name = entries.name(i);
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use nix::fcntl::OFlag;
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits());
    }
    let file = options
        .open(entries.source(i))
        .map_err(|e| io_entry_error(name, e))?;
    let meta = file.metadata().map_err(|e| io_entry_error(name, e))?;
    if !meta.is_file() {
        return Err(PackageError::SpecialFile {
            path: name.to_owned(),
            kind: special_kind(&meta),
        });
    }
    if meta.len() != entries.size(i) {
        return Err(changed(name, entries.size(i), meta.len()));
    }
    Ok((file, meta))
}

/// The same length on disk after reading as the walk saw, or the file changed while it was packaged.
fn same_length_after(name: &str, file: &File, expected: u64) -> Result<(), PackageError> {
    let after = file.metadata().map(|m| m.len()).unwrap_or(expected);
    if after != expected {
        return Err(changed(name, expected, after));
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

/// Reads exactly `size` bytes of `file` into `buf` (replacing its contents); more or fewer is an error.
pub(super) fn read_whole(
    name: &str,
    size: u64,
    file: &mut File,
    buf: &mut Vec<u8>,
) -> Result<(), PackageError> {
    buf.clear();
    let expected = usize::try_from(size).unwrap_or(usize::MAX);
    buf.reserve(expected.saturating_add(1));
    // One byte past the expected size is enough to notice growth without reading an unbounded file.
    Read::by_ref(file)
        .take(size + 1)
        .read_to_end(buf)
        .map_err(|e| io_entry_error(name, e))?;
    if buf.len() as u64 != size {
        return Err(changed(name, size, buf.len() as u64));
    }
    same_length_after(name, file, size)
}

/// Fills `buf` from `file` at `offset`, as far as the file goes; returns how many bytes were read.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset + done as u64;
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(file, &mut buf[done..], at);
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], at);
        match n {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Fills all of `buf` from `file` at `offset`; a file too short for it is an `UnexpectedEof` error.
pub(super) fn fill_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    if read_at(file, buf, offset)? == buf.len() {
        Ok(())
    } else {
        Err(io::ErrorKind::UnexpectedEof.into())
    }
}

/// Reads `len` bytes at `offset` of a file that is `size` bytes long into `buf` (replacing its contents);
/// the chunk that reaches the end also checks that the file ends there. Positioned reads, so the threads
/// share one open file (one file, even if the path is replaced meanwhile) and need no seek.
pub(super) fn read_range(
    name: &str,
    size: u64,
    file: &File,
    offset: u64,
    len: usize,
    buf: &mut Vec<u8>,
) -> Result<(), PackageError> {
    buf.clear();
    buf.resize(len, 0);
    let n = read_at(file, buf, offset).map_err(|e| io_entry_error(name, e))?;
    if n != len {
        return Err(changed(name, size, offset + n as u64));
    }
    if offset + len as u64 == size {
        let mut probe = [0u8; 1];
        let more = read_at(file, &mut probe, size).map_err(|e| io_entry_error(name, e))?;
        if more != 0 {
            return Err(changed(name, size, size + more as u64));
        }
        same_length_after(name, file, size)?;
    }
    Ok(())
}
