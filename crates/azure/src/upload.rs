//! A package file as an `azure_core` seekable request body: read from disk in fixed-size chunks so
//! memory stays flat for any package size, and reopened from the start when the body is reset.
//!
//! Reads are plain blocking reads straight into the transport's chunk buffer. The package is a local
//! file the build has just written (in the page cache, or one disk read away); tokio's file type would
//! move every read to the blocking pool and copy it once more, and the transport allocates a fresh chunk
//! buffer on every poll, so a read that first answers `Pending` costs a wasted buffer too.

use futures::io::AsyncRead;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Chunk size of the upload; one chunk is in flight per read. Measured against 128 KiB to 4 MiB with
/// the blocking reads below (`cargo xtask bench --only upload`): no size was faster beyond the noise,
/// and at this size the chunk the transport zeroes, fills and encrypts stays in the CPU's cache.
const CHUNK: usize = 256 * 1024;

/// A file streamed as a request body.
#[derive(Debug)]
pub(crate) struct FileStream {
    path: PathBuf,
    len: u64,
    file: Option<std::fs::File>,
    /// Bytes handed to the transport so far, across clones (the transport may clone the body).
    pub(crate) sent: Arc<AtomicU64>,
}

impl Clone for FileStream {
    fn clone(&self) -> Self {
        // A clone starts from the beginning with its own handle; open file handles cannot be shared.
        Self {
            path: self.path.clone(),
            len: self.len,
            file: None,
            sent: self.sent.clone(),
        }
    }
}

impl FileStream {
    pub(crate) fn new(path: PathBuf, len: u64) -> Self {
        Self {
            path,
            len,
            file: None,
            sent: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl AsyncRead for FileStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let file = match &mut this.file {
            Some(f) => f,
            // Opening is a single syscall on a local file; doing it here keeps clones cheap.
            None => this.file.insert(std::fs::File::open(&this.path)?),
        };
        let n = loop {
            match file.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        this.sent.fetch_add(n as u64, Ordering::Relaxed);
        Poll::Ready(Ok(n))
    }
}

#[async_trait::async_trait]
impl azure_core::stream::SeekableStream for FileStream {
    async fn reset(&mut self) -> azure_core::Result<()> {
        self.file = None;
        Ok(())
    }

    fn len(&self) -> Option<u64> {
        Some(self.len)
    }

    fn buffer_size(&self) -> usize {
        CHUNK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::stream::SeekableStream;
    use futures::StreamExt;

    /// Everything the transport would send, read through azure_core's own chunking of the body.
    async fn drain(stream: &mut Box<dyn SeekableStream>) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.expect("chunk");
            assert!(chunk.len() <= CHUNK, "chunk of {} bytes", chunk.len());
            out.extend_from_slice(&chunk);
        }
        out
    }

    #[tokio::test]
    async fn the_body_is_the_file_byte_for_byte_again_after_a_reset_and_in_a_clone() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("package.zip");
        // Several chunks and a partial last one.
        let data: Vec<u8> = (0..(2 * CHUNK + 12_345) as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 7) as u8)
            .collect();
        std::fs::write(&path, &data).expect("package");
        let stream = FileStream::new(path, data.len() as u64);
        let sent = stream.sent.clone();
        let mut body: Box<dyn SeekableStream> = Box::new(stream);
        assert_eq!(body.len(), Some(data.len() as u64));

        let first = drain(&mut body).await;
        assert!(first == data, "first read differs from the file");
        assert_eq!(sent.load(Ordering::Relaxed), data.len() as u64);

        let mut clone = body.clone();
        body.reset().await.expect("reset");
        assert!(drain(&mut body).await == data, "read after reset differs");
        assert!(drain(&mut clone).await == data, "clone differs");
        assert_eq!(sent.load(Ordering::Relaxed), 3 * data.len() as u64);
    }
}
