//! Per-connection deadlines. A connection waiting for a request (new, or kept alive after
//! one) may stay silent for the idle timeout; once a request's first byte has arrived, its
//! whole head must follow within the header-read timeout, so a client trickling a head
//! cannot hold a connection. While a request is being served there is no deadline.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Clone, Copy)]
enum Phase {
    /// Waiting for the first byte of a request since then.
    Idle(Instant),
    /// Reading a request head whose first byte arrived then.
    Head(Instant),
    /// Serving a request.
    Busy,
}

/// Why a connection was cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expiry {
    Idle,
    Head,
}

pub(super) struct Deadlines {
    idle: Duration,
    head: Duration,
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Deadlines {
    pub(super) fn new(idle: Duration, head: Duration) -> Arc<Deadlines> {
        Arc::new(Deadlines {
            idle,
            head,
            phase: Mutex::new(Phase::Idle(Instant::now())),
            changed: Notify::new(),
        })
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(PoisonError::into_inner) = phase;
        self.changed.notify_one();
    }

    pub(super) fn request_started(&self) {
        self.set(Phase::Busy);
    }

    pub(super) fn request_finished(&self) {
        self.set(Phase::Idle(Instant::now()));
    }

    /// Bytes arrived: on an idle connection they start a request head.
    fn bytes_read(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn deadline(&self) -> Option<(Instant, Expiry)> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Idle(since) => Some((since + self.idle, Expiry::Idle)),
            Phase::Head(since) => Some((since + self.head, Expiry::Head)),
            Phase::Busy => None,
        }
    }

    /// Resolves once the current phase's deadline has passed.
    pub(super) async fn expired(&self) -> Expiry {
        loop {
            // A change between reading the deadline and waiting leaves a stored permit in
            // `changed`, so it is never missed.
            match self.deadline() {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        _ = self.changed.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// A connection's socket that reports arriving bytes to its deadlines.
pub(super) struct Watched {
    stream: TcpStream,
    deadlines: Arc<Deadlines>,
}

impl Watched {
    pub(super) fn new(stream: TcpStream, deadlines: Arc<Deadlines>) -> Watched {
        Watched { stream, deadlines }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.deadlines.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_millis(100);
    const LONG: Duration = Duration::from_secs(30);

    async fn waiting(deadlines: &Arc<Deadlines>) -> tokio::task::JoinHandle<Expiry> {
        let deadlines = deadlines.clone();
        tokio::spawn(async move { deadlines.expired().await })
    }

    #[tokio::test]
    async fn a_silent_connection_expires_after_the_idle_timeout() {
        let deadlines = Deadlines::new(SHORT, LONG);
        let start = Instant::now();
        assert_eq!(deadlines.expired().await, Expiry::Idle);
        assert!(start.elapsed() >= SHORT);
    }

    #[tokio::test]
    async fn a_first_byte_shortens_the_wait_to_the_header_timeout() {
        let deadlines = Deadlines::new(LONG, SHORT);
        let expiry = waiting(&deadlines).await;
        tokio::time::sleep(SHORT).await;
        deadlines.bytes_read();
        let start = Instant::now();
        let why = tokio::time::timeout(LONG / 2, expiry).await;
        assert_eq!(
            why.expect("the header timeout ends the wait").unwrap(),
            Expiry::Head
        );
        assert!(start.elapsed() >= SHORT / 2);
    }

    #[tokio::test]
    async fn a_request_being_served_never_expires_and_idling_restarts_after_it() {
        let deadlines = Deadlines::new(SHORT, SHORT);
        deadlines.bytes_read();
        deadlines.request_started();
        let expiry = waiting(&deadlines).await;
        tokio::time::sleep(SHORT * 3).await;
        assert!(!expiry.is_finished());
        deadlines.request_finished();
        let why = tokio::time::timeout(LONG, expiry).await;
        assert_eq!(why.expect("idle again").unwrap(), Expiry::Idle);
    }
}
