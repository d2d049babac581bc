//! A package file as an `azure_core` seekable request body: read from disk in fixed-size chunks so
//! memory stays flat for any package size, and reopened from the start when the body is reset.

use futures::io::AsyncRead;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Chunk size of the upload; one chunk is in flight per read.
const CHUNK: usize = 256 * 1024;

/// A file streamed as a request body.
#[derive(Debug)]
pub(crate) struct FileStream {
    path: PathBuf,
    len: u64,
    file: Option<tokio::fs::File>,
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
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.file.is_none() {
            // Opening is a single syscall on a local file; doing it here keeps clones cheap.
            let f = std::fs::File::open(&this.path)?;
            this.file = Some(tokio::fs::File::from_std(f));
        }
        let Some(file) = this.file.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        let mut rb = tokio::io::ReadBuf::new(buf);
        match tokio::io::AsyncRead::poll_read(Pin::new(file), cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                this.sent.fetch_add(n as u64, Ordering::Relaxed);
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
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
