//! The `/metrics` HTTP endpoint: a thread of its own with a small event loop of its
//! own (a mio poll), so that scrapes are served concurrently and a silent or trickling
//! connection cannot delay anyone else's.
//!
//! Deliberately small: `GET /metrics` (anything else is a 404), one request per
//! connection, a request of at most [`MAX_REQUEST`] bytes, one deadline per connection
//! ([`REQUEST_DEADLINE`], reading and writing together), at most [`MAX_SCRAPERS`]
//! connections at once (more are closed at accept). It shares nothing with the chat
//! reactor but the counters it renders.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::metrics::{Gauges, Metrics, render};

/// How long one scrape may take, reading and writing together: a client trickling a
/// byte at a time is cut off then.
const REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The longest request read; the request line is all that matters.
const MAX_REQUEST: usize = 8 * 1024;
/// Connections served at once.
const MAX_SCRAPERS: usize = 64;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_SCRAPER: usize = 2;

/// The endpoint's thread.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

/// One scraper's connection.
#[derive(Debug)]
struct Scrape {
    stream: TcpStream,
    request: Vec<u8>,
    /// The response once the request is complete, and how much of it was written.
    response: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

impl MetricsServer {
    /// Serves the page on `listener` until [`MetricsServer::stop`].
    pub(crate) fn start(
        listener: std::net::TcpListener,
        metrics: Arc<Metrics>,
        gauges: Gauges,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new().name("metrics".into()).spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut endpoint = Endpoint {
                    poll,
                    listener,
                    scrapes: Vec::new(),
                    metrics,
                    gauges,
                };
                if let Err(e) = endpoint.run(&stop) {
                    tracing::error!("metrics endpoint failed: {e}");
                }
            }
        })?;
        Ok(Self {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The address served.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops and joins the thread.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.waker.wake() {
            tracing::warn!("could not wake the metrics thread: {e}");
        }
        if thread.join().is_err() {
            tracing::error!("the metrics thread panicked");
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The endpoint's loop state.
struct Endpoint {
    poll: Poll,
    listener: TcpListener,
    /// Slot `i` has token `FIRST_SCRAPER + i`.
    scrapes: Vec<Option<Scrape>>,
    metrics: Arc<Metrics>,
    gauges: Gauges,
}

impl Endpoint {
    fn run(&mut self, stop: &AtomicBool) -> io::Result<()> {
        let mut events = Events::with_capacity(256);
        while !stop.load(Ordering::SeqCst) {
            let now = Instant::now();
            let timeout = self
                .scrapes
                .iter()
                .flatten()
                .map(|s| s.deadline.saturating_duration_since(now))
                .min();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => self.progress(t - FIRST_SCRAPER),
                }
            }
            let now = Instant::now();
            for slot in 0..self.scrapes.len() {
                if self.scrapes[slot]
                    .as_ref()
                    .is_some_and(|s| now >= s.deadline)
                {
                    tracing::debug!("metrics request deadline passed");
                    self.close(slot);
                }
            }
        }
        Ok(())
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let open = self.scrapes.iter().flatten().count();
                    if open >= MAX_SCRAPERS {
                        continue; // dropped: closed at once
                    }
                    let slot = self
                        .scrapes
                        .iter()
                        .position(Option::is_none)
                        .unwrap_or_else(|| {
                            self.scrapes.push(None);
                            self.scrapes.len() - 1
                        });
                    let token = Token(FIRST_SCRAPER + slot);
                    if let Err(e) = self.poll.registry().register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        tracing::warn!("metrics: could not register a connection: {e}");
                        continue;
                    }
                    self.scrapes[slot] = Some(Scrape {
                        stream,
                        request: Vec::new(),
                        response: None,
                        deadline: Instant::now() + REQUEST_DEADLINE,
                    });
                    self.progress(slot);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors or similar: the next readiness retries.
                    tracing::warn!("metrics accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Reads what there is, answers once the request is complete, closes when done.
    fn progress(&mut self, slot: usize) {
        let Some(scrape) = self.scrapes.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let done = match scrape.step(&self.metrics, &self.gauges) {
            Ok(done) => done,
            Err(e) => {
                tracing::debug!("metrics request failed: {e}");
                true
            }
        };
        if done {
            self.close(slot);
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(mut scrape) = self.scrapes[slot].take() {
            let _ = self.poll.registry().deregister(&mut scrape.stream);
        }
    }
}

impl Scrape {
    /// Moves the request on as far as the socket allows; `Ok(true)` when finished.
    fn step(&mut self, metrics: &Metrics, gauges: &Gauges) -> io::Result<bool> {
        if self.response.is_none() {
            let mut chunk = [0u8; 1024];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        self.request.extend_from_slice(&chunk[..n]);
                        if complete(&self.request) {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.response = Some((respond(&self.request, metrics, gauges), 0));
        }
        let Some((response, written)) = &mut self.response else {
            return Ok(true);
        };
        while *written < response.len() {
            match self.stream.write(&response[*written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

/// Whether `request` holds a whole request head (or as much as will be read).
fn complete(request: &[u8]) -> bool {
    request.len() >= MAX_REQUEST || request.windows(4).any(|w| w == b"\r\n\r\n")
}

/// The HTTP response to `request`.
fn respond(request: &[u8], metrics: &Metrics, gauges: &Gauges) -> Vec<u8> {
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let (status, content_type, body) =
        if line.starts_with(b"GET /metrics ") || line == b"GET /metrics" {
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                render(metrics, gauges()),
            )
        } else {
            (
                "404 Not Found",
                "text/plain; charset=utf-8",
                "try /metrics\n".to_owned(),
            )
        };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
