//! The zip container, written strictly front to back: local headers and data, then the central directory
//! (kept in a spool file while the entries are written, so its size never weighs on memory) and the end
//! records, Zip64 where counts or sizes need it. Writing without seeking lets the archive's SHA-256 be
//! taken as the bytes go out instead of reading the archive back.
//!
//! An entry whose CRC and sizes are known when its header is written (every file compressed whole, and
//! the manifest) carries them in the header. A file compressed in chunks sets flag bit 3 and follows its
//! data with a data descriptor, as any streaming zip writer does.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use sha2::{Digest, Sha256};

/// The DOS time and date stored on every entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct DosTime {
    pub(super) time: u16,
    pub(super) date: u16,
}

/// How an entry's bytes are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Stored,
    Deflated,
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// What the central directory needs to know about one entry.
#[derive(Debug, Clone, Copy)]
pub(super) struct EntryRecord {
    pub(super) method: Method,
    /// `0o644` or `0o755`.
    pub(super) mode: u32,
    pub(super) crc: u32,
    pub(super) compressed: u64,
    pub(super) size: u64,
    /// Where the entry's local header starts.
    pub(super) offset: u64,
    /// Written with a data descriptor (CRC and sizes after the data).
    pub(super) descriptor: bool,
    /// Sizes in a Zip64 extra field (decided from the size known before the data was written).
    pub(super) zip64: bool,
}

/// Above this a chunked entry's sizes go in Zip64 fields: deflate can add a few bytes per block, so an
/// entry a little under 4 GiB could end up over it once compressed.
const ZIP64_ABOVE: u64 = u32::MAX as u64 - (64 << 20);

const U32_MAX: u64 = u32::MAX as u64;
/// Unix, APPNOTE 3.0 (as Info-ZIP writes it): readers take the upper half of the attributes as a mode.
const VERSION_MADE_BY: u16 = 0x031e;
const FLAG_DESCRIPTOR: u16 = 1 << 3;
const FLAG_UTF8: u16 = 1 << 11;

/// Whether a chunked entry of `size` bytes needs Zip64 fields.
pub(super) fn needs_zip64(size: u64) -> bool {
    size > ZIP64_ABOVE
}

fn version_needed(zip64: bool) -> u16 {
    if zip64 { 45 } else { 20 }
}

fn flags(name: &str, descriptor: bool) -> u16 {
    let mut flags = 0;
    if descriptor {
        flags |= FLAG_DESCRIPTOR;
    }
    // Info-ZIP marks only names that need it; an ASCII name reads the same either way.
    if !name.is_ascii() {
        flags |= FLAG_UTF8;
    }
    flags
}

fn too_large(what: &str) -> io::Error {
    io::Error::other(format!("{what} does not fit the zip format"))
}

/// The archive being written, with its running SHA-256 and length.
pub(super) struct ArchiveWriter {
    out: BufWriter<File>,
    hasher: Sha256,
    position: u64,
    central: BufWriter<File>,
    central_len: u64,
    entries: u64,
    time: DosTime,
    scratch: Vec<u8>,
}

impl ArchiveWriter {
    /// `central` is an empty scratch file for the central directory (removed by the caller).
    pub(super) fn new(out: File, central: File, time: DosTime) -> Self {
        Self {
            out: BufWriter::with_capacity(256 * 1024, out),
            hasher: Sha256::new(),
            position: 0,
            central: BufWriter::with_capacity(64 * 1024, central),
            central_len: 0,
            entries: 0,
            time,
            scratch: Vec::with_capacity(512),
        }
    }

    /// Where the next byte goes.
    pub(super) fn position(&self) -> u64 {
        self.position
    }

    /// Appends `bytes` to the archive.
    pub(super) fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.out.write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Writes a local header; `record` gives the CRC and sizes unless it uses a data descriptor.
    pub(super) fn local_header(&mut self, name: &str, record: &EntryRecord) -> io::Result<()> {
        let known = !record.descriptor;
        let (crc, compressed, size) = if known {
            (record.crc, record.compressed, record.size)
        } else {
            (0, 0, 0)
        };
        if !record.zip64 && (compressed >= U32_MAX || size >= U32_MAX) {
            return Err(too_large("an entry's size"));
        }
        let mut h = std::mem::take(&mut self.scratch);
        h.clear();
        h.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        h.extend_from_slice(&version_needed(record.zip64).to_le_bytes());
        h.extend_from_slice(&flags(name, record.descriptor).to_le_bytes());
        h.extend_from_slice(&record.method.code().to_le_bytes());
        h.extend_from_slice(&self.time.time.to_le_bytes());
        h.extend_from_slice(&self.time.date.to_le_bytes());
        h.extend_from_slice(&crc.to_le_bytes());
        if record.zip64 {
            h.extend_from_slice(&u32::MAX.to_le_bytes());
            h.extend_from_slice(&u32::MAX.to_le_bytes());
        } else {
            h.extend_from_slice(&(compressed as u32).to_le_bytes());
            h.extend_from_slice(&(size as u32).to_le_bytes());
        }
        let name_len = u16::try_from(name.len()).map_err(|_| too_large("an entry name"))?;
        h.extend_from_slice(&name_len.to_le_bytes());
        h.extend_from_slice(&(if record.zip64 { 20u16 } else { 0 }).to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        if record.zip64 {
            h.extend_from_slice(&1u16.to_le_bytes());
            h.extend_from_slice(&16u16.to_le_bytes());
            h.extend_from_slice(&size.to_le_bytes());
            h.extend_from_slice(&compressed.to_le_bytes());
        }
        let result = self.write(&h);
        self.scratch = h;
        result
    }

    /// Ends an entry: its data descriptor when it has one, and its central directory record.
    pub(super) fn finish_entry(&mut self, name: &str, record: &EntryRecord) -> io::Result<()> {
        if !record.zip64 && (record.compressed >= U32_MAX || record.size >= U32_MAX) {
            return Err(too_large("an entry's size"));
        }
        if record.descriptor {
            let mut d = Vec::with_capacity(24);
            d.extend_from_slice(&0x0807_4b50u32.to_le_bytes());
            d.extend_from_slice(&record.crc.to_le_bytes());
            if record.zip64 {
                d.extend_from_slice(&record.compressed.to_le_bytes());
                d.extend_from_slice(&record.size.to_le_bytes());
            } else {
                d.extend_from_slice(&(record.compressed as u32).to_le_bytes());
                d.extend_from_slice(&(record.size as u32).to_le_bytes());
            }
            self.write(&d)?;
        }
        self.central_record(name, record)
    }

    fn central_record(&mut self, name: &str, record: &EntryRecord) -> io::Result<()> {
        // Zip64 extra: the sizes when the local header had them there, the offset when it is too far.
        let far = record.offset >= U32_MAX;
        let mut extra = Vec::new();
        if record.zip64 {
            extra.extend_from_slice(&record.size.to_le_bytes());
            extra.extend_from_slice(&record.compressed.to_le_bytes());
        }
        if far {
            extra.extend_from_slice(&record.offset.to_le_bytes());
        }
        let mut h = std::mem::take(&mut self.scratch);
        h.clear();
        h.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        h.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
        h.extend_from_slice(&version_needed(record.zip64 || far).to_le_bytes());
        h.extend_from_slice(&flags(name, record.descriptor).to_le_bytes());
        h.extend_from_slice(&record.method.code().to_le_bytes());
        h.extend_from_slice(&self.time.time.to_le_bytes());
        h.extend_from_slice(&self.time.date.to_le_bytes());
        h.extend_from_slice(&record.crc.to_le_bytes());
        if record.zip64 {
            h.extend_from_slice(&u32::MAX.to_le_bytes());
            h.extend_from_slice(&u32::MAX.to_le_bytes());
        } else {
            h.extend_from_slice(&(record.compressed as u32).to_le_bytes());
            h.extend_from_slice(&(record.size as u32).to_le_bytes());
        }
        let name_len = u16::try_from(name.len()).map_err(|_| too_large("an entry name"))?;
        h.extend_from_slice(&name_len.to_le_bytes());
        let extra_len = if extra.is_empty() { 0 } else { extra.len() + 4 };
        h.extend_from_slice(&(extra_len as u16).to_le_bytes());
        // Comment length, disk number, internal attributes.
        h.extend_from_slice(&[0; 6]);
        let attributes = (0o100_000 | record.mode) << 16;
        h.extend_from_slice(&attributes.to_le_bytes());
        let offset = if far { u32::MAX } else { record.offset as u32 };
        h.extend_from_slice(&offset.to_le_bytes());
        h.extend_from_slice(name.as_bytes());
        if !extra.is_empty() {
            h.extend_from_slice(&1u16.to_le_bytes());
            h.extend_from_slice(&(extra.len() as u16).to_le_bytes());
            h.extend_from_slice(&extra);
        }
        let result = self.central.write_all(&h);
        self.central_len += h.len() as u64;
        self.entries += 1;
        self.scratch = h;
        result
    }

    /// Copies the central directory in and writes the end records; returns the archive file (flushed),
    /// its SHA-256 and its length.
    pub(super) fn finish(mut self) -> io::Result<(File, [u8; 32], u64)> {
        let start = self.position;
        let mut central = self.central.into_inner().map_err(|e| e.into_error())?;
        central.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 64 * 1024];
        let mut copied = 0u64;
        loop {
            let n = match central.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.hasher.update(&buf[..n]);
            self.out.write_all(&buf[..n])?;
            copied += n as u64;
        }
        if copied != self.central_len {
            return Err(io::Error::other(
                "the central directory spool was cut short",
            ));
        }
        self.position += copied;
        let size = self.central_len;
        let end = self.position;
        let mut t = Vec::with_capacity(120);
        let zip64 = self.entries >= 0xffff || start >= U32_MAX || size >= U32_MAX;
        if zip64 {
            t.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            t.extend_from_slice(&44u64.to_le_bytes());
            t.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
            t.extend_from_slice(&45u16.to_le_bytes());
            t.extend_from_slice(&[0; 8]);
            t.extend_from_slice(&self.entries.to_le_bytes());
            t.extend_from_slice(&self.entries.to_le_bytes());
            t.extend_from_slice(&size.to_le_bytes());
            t.extend_from_slice(&start.to_le_bytes());
            t.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            t.extend_from_slice(&0u32.to_le_bytes());
            t.extend_from_slice(&end.to_le_bytes());
            t.extend_from_slice(&1u32.to_le_bytes());
        }
        let entries16 = u16::try_from(self.entries).unwrap_or(u16::MAX);
        t.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        t.extend_from_slice(&[0; 4]);
        t.extend_from_slice(&entries16.to_le_bytes());
        t.extend_from_slice(&entries16.to_le_bytes());
        t.extend_from_slice(&(size.min(U32_MAX) as u32).to_le_bytes());
        t.extend_from_slice(&(start.min(U32_MAX) as u32).to_le_bytes());
        t.extend_from_slice(&0u16.to_le_bytes());
        self.hasher.update(&t);
        self.out.write_all(&t)?;
        self.position += t.len() as u64;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        Ok((file, self.hasher.finalize().into(), self.position))
    }
}

#[cfg(test)]
mod tests {
    use super::super::deflate::Encoder;
    use super::*;
    use std::io::Read;
    use std::process::Command;

    /// Writes `data` as an entry, deflated (so its two sizes differ) unless it is empty.
    fn entry(w: &mut ArchiveWriter, name: &str, data: &[u8], descriptor: bool, zip64: bool) {
        let mut stored = data.to_vec();
        let mut method = Method::Stored;
        if !data.is_empty() {
            stored.clear();
            Encoder::new(6).whole(data, &mut stored).unwrap();
            method = Method::Deflated;
        }
        let mut record = EntryRecord {
            method,
            mode: 0o755,
            crc: crc32fast::hash(data),
            compressed: stored.len() as u64,
            size: data.len() as u64,
            offset: w.position(),
            descriptor,
            zip64,
        };
        if descriptor {
            // As for a chunked file: the header knows nothing yet.
            let unknown = EntryRecord {
                crc: 0,
                compressed: 0,
                ..record
            };
            w.local_header(name, &unknown).unwrap();
            record.offset = unknown.offset;
        } else {
            w.local_header(name, &record).unwrap();
        }
        w.write(&stored).unwrap();
        w.finish_entry(name, &record).unwrap();
    }

    #[test]
    fn every_layout_reads_back_in_three_readers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.zip");
        let mut w = ArchiveWriter::new(
            File::create(&path).unwrap(),
            tempfile::tempfile().unwrap(),
            DosTime {
                time: 0,
                date: 0x21,
            },
        );
        entry(&mut w, "plain.txt", b"plain", false, false);
        entry(
            &mut w,
            "descriptor.txt",
            &b"after the data ".repeat(9),
            true,
            false,
        );
        // Zip64 fields on a small entry: the same layout a file over 4 GiB gets.
        entry(
            &mut w,
            "zip64/données.txt",
            &b"sizes in the extra field ".repeat(9),
            true,
            true,
        );
        entry(
            &mut w,
            "zip64-known.txt",
            &b"known sizes ".repeat(9),
            false,
            true,
        );
        let (_, digest, len) = w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, len);
        assert_eq!(<[u8; 32]>::from(Sha256::digest(&bytes)), digest);

        let mut zip = zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        let expected: [(&str, Vec<u8>); 4] = [
            ("plain.txt", b"plain".to_vec()),
            ("descriptor.txt", b"after the data ".repeat(9)),
            ("zip64/données.txt", b"sizes in the extra field ".repeat(9)),
            ("zip64-known.txt", b"known sizes ".repeat(9)),
        ];
        for (i, (name, data)) in expected.iter().enumerate() {
            let mut e = zip.by_index(i).unwrap();
            assert_eq!(e.name().unwrap(), *name);
            assert_eq!(e.unix_mode(), Some(0o100_755));
            let mut read = Vec::new();
            e.read_to_end(&mut read).unwrap();
            assert_eq!(read, *data, "{name}");
        }
        let unzip = Command::new("unzip")
            .arg("-tq")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            unzip.status.success(),
            "{}",
            String::from_utf8_lossy(&unzip.stdout)
        );
        let python = Command::new("python3")
            .args([
                "-c",
                "import sys,zipfile; sys.exit(zipfile.ZipFile(sys.argv[1]).testzip())",
            ])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            python.status.success(),
            "{}",
            String::from_utf8_lossy(&python.stderr)
        );
    }

    #[test]
    fn more_entries_than_sixteen_bits_get_zip64_end_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("many.zip");
        let mut w = ArchiveWriter::new(
            File::create(&path).unwrap(),
            tempfile::tempfile().unwrap(),
            DosTime {
                time: 0,
                date: 0x21,
            },
        );
        for i in 0..70_000u32 {
            entry(&mut w, &format!("{i}"), b"", false, false);
        }
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let zip64_end = 0x0606_4b50u32.to_le_bytes();
        assert!(bytes.windows(4).any(|w| w == zip64_end));
        assert_eq!(
            zip::ZipArchive::new(File::open(&path).unwrap())
                .unwrap()
                .len(),
            70_000
        );
    }
}
