//! A partner's callback receiver on 127.0.0.1, answering HTTP by hand: it counts the calls
//! per event id (the `event` query parameter of the URLs it hands out), keeps the
//! `Idempotency-Key` and `User-Agent` of each, can fail the first N calls (503), answer
//! every call with another status, hold each call a while, be down (its port closed) and
//! up again, and notices two calls for the same event at the same time.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The longest request head read.
const MAX_HEAD: usize = 16 * 1024;

/// One call as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The path and query asked for.
    pub target: String,
    /// The `event` query parameter.
    pub event: Option<String>,
    /// The `Idempotency-Key` header.
    pub key: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// What the receiver answered.
    pub status: u16,
}

#[derive(Default)]
struct State {
    calls: Mutex<Vec<Call>>,
    /// Calls still to fail with 503.
    failing: AtomicUsize,
    /// The status of the other calls.
    status: AtomicU16,
    /// How long each call is held before its answer, in milliseconds.
    hold_ms: AtomicU64,
    in_progress: Mutex<HashSet<String>>,
    overlaps: AtomicU64,
}

/// A callback receiver; see the module's documentation.
pub struct Receiver {
    address: SocketAddr,
    state: Arc<State>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// A receiver, up, failing its first `fail_first` calls with 503, answering 200 after,
    /// holding each call `hold` before answering.
    pub async fn start(fail_first: usize, hold: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port for the receiver");
        let state = State {
            failing: AtomicUsize::new(fail_first),
            status: AtomicU16::new(200),
            hold_ms: AtomicU64::new(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX)),
            ..State::default()
        };
        let receiver = Receiver {
            address: listener.local_addr().expect("the receiver's address"),
            state: Arc::new(state),
            accept: Mutex::new(None),
        };
        receiver.serve(listener);
        receiver
    }

    /// The callback URL of `event`, with a partner's token in its query.
    pub fn url(&self, event: &str) -> String {
        format!(
            "http://{}/track/?campaign=123&visitor_id=v-{event}&event={event}&token=partner-secret-token",
            self.address
        )
    }

    /// The port's address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Answers every later call (past the failing ones) with `status`.
    pub fn answer(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Stops listening: connections are refused until [`up`](Self::up).
    pub async fn down(&self) {
        let task = self.accept.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Listens on the same port again.
    pub async fn up(&self) {
        let listener = TcpListener::bind(self.address)
            .await
            .expect("the receiver's port again");
        self.serve(listener);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// For each event, the calls answered with a 2xx: what the partner counted.
    pub fn delivered(&self) -> HashMap<String, usize> {
        let mut counted = HashMap::new();
        for call in self.calls() {
            if let (Some(event), true) = (call.event, (200..300).contains(&call.status)) {
                *counted.entry(event).or_default() += 1;
            }
        }
        counted
    }

    /// How many calls arrived while another call for the same event was in progress.
    pub fn overlaps(&self) -> u64 {
        self.state.overlaps.load(Ordering::SeqCst)
    }

    fn serve(&self, listener: TcpListener) {
        let state = Arc::clone(&self.state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&state)));
            }
        });
        *self.accept.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

async fn answer(mut stream: TcpStream, state: Arc<State>) {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buffer[..n]),
        }
        if head.len() > MAX_HEAD {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let mut lines = head.split("\r\n");
    let target = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .unwrap_or_default()
        .to_string();
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    };
    let event = target.split_once('?').and_then(|(_, query)| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("event="))
            .map(str::to_string)
    });
    if let Some(event) = &event {
        let fresh = state
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(event.clone());
        if !fresh {
            state.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }
    tokio::time::sleep(Duration::from_millis(state.hold_ms.load(Ordering::SeqCst))).await;
    let failing = state
        .failing
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if failing {
        503
    } else {
        state.status.load(Ordering::SeqCst)
    };
    if let Some(event) = &event {
        state
            .in_progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(event);
    }
    state
        .calls
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Call {
            target,
            event,
            key: header("Idempotency-Key"),
            user_agent: header("User-Agent"),
            status,
        });
    let location = if (300..400).contains(&status) {
        "Location: /elsewhere/?event=redirected\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} Status\r\n{location}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
