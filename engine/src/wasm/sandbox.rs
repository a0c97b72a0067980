//! What keeps a guest in its box besides the empty WASI context: the store-wide memory limiter,
//! the capped log pipes for its stdout and stderr, and the stopped clocks.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// How often the engine's epoch advances: the resolution of call deadlines.
pub const TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Core instances, linear memories and tables a store may hold. A component built by the Rust
/// toolchain uses a handful of each; these bound what a hand-made one can ask for.
pub(super) const MAX_INSTANCES: usize = 64;
pub(super) const MAX_MEMORIES: usize = 16;
pub(super) const MAX_TABLES: usize = 64;

/// The memory cap of a whole store: the bytes of every linear memory and table of every core
/// instance, together. Remembers that it was hit (a refused grow is not a trap of its own).
pub(super) struct Limiter {
    max: usize,
    /// Bytes held now, across all memories and tables.
    used: usize,
    /// The last growth allowed, undone if the grow then fails.
    pending: usize,
    pub(super) hit: bool,
}

impl Limiter {
    pub(super) fn new(max: usize) -> Self {
        Limiter { max, used: 0, pending: 0, hit: false }
    }

    fn grow(&mut self, current: usize, desired: usize) -> wasmtime::Result<bool> {
        let after = self.used.saturating_sub(current).saturating_add(desired);
        if after > self.max {
            self.hit = true;
            return Err(MemoryCap.into());
        }
        self.pending = desired.saturating_sub(current);
        self.used = after;
        Ok(true)
    }

    fn undo(&mut self) {
        self.used = self.used.saturating_sub(std::mem::take(&mut self.pending));
    }
}

#[derive(Debug, thiserror::Error)]
#[error("memory cap reached")]
pub(super) struct MemoryCap;

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.grow(current, desired)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo();
        Ok(())
    }

    fn table_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        // A table element takes a pointer's worth of host memory.
        let size = std::mem::size_of::<usize>();
        self.grow(current.saturating_mul(size), desired.saturating_mul(size))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.undo();
        Ok(())
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// Guest stdout/stderr: kept up to a cap per call, the rest counted and dropped (the guest is
/// never failed for writing).
#[derive(Clone)]
pub(super) struct LogPipe {
    buf: Arc<Mutex<Vec<u8>>>,
    dropped: Arc<AtomicUsize>,
    cap: usize,
}

impl LogPipe {
    pub(super) fn new(cap: usize) -> Self {
        LogPipe { buf: Arc::default(), dropped: Arc::default(), cap }
    }

    fn keep(&self, bytes: &[u8]) {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(buf.len()).min(bytes.len());
        buf.extend_from_slice(&bytes[..room]);
        self.dropped.fetch_add(bytes.len() - room, Ordering::Relaxed);
    }

    /// Send what was written since the last drain to the log.
    pub(super) fn drain(&self, label: &str, stream: &str) {
        let text = std::mem::take(&mut *self.buf.lock().unwrap_or_else(|e| e.into_inner()));
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        for line in String::from_utf8_lossy(&text).lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!("plugin {label} ({stream}): {line}");
        }
        if dropped > 0 {
            tracing::info!("plugin {label} ({stream}): … {dropped} more bytes not shown");
        }
    }
}

impl wasmtime_wasi::p2::OutputStream for LogPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> wasmtime_wasi::p2::StreamResult<()> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> wasmtime_wasi::p2::StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> wasmtime_wasi::p2::StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl wasmtime_wasi::p2::Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl wasmtime_wasi::cli::IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn wasmtime_wasi::p2::OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// A wall clock stopped at the epoch, and a monotonic clock that never moves.
pub(super) struct Stopped;

impl wasmtime_wasi::HostWallClock for Stopped {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }

    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for Stopped {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        0
    }
}
