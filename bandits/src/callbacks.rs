//! The sender of callbacks to referral partners: it delivers what completions wrote to the
//! outbox, off the request path.
//!
//! When a referred visitor completes a trigger, the completion and its partners'
//! callbacks are written in one transaction (the outbox). At liftoff the [`Bandits`]
//! fairing starts this sender on Rocket's runtime; it reads the outbox every
//! `bandits.callbacks.poll_interval_ms`, claims the callbacks that are due, and calls each
//! partner's URL:
//!
//! - `GET <url>`, as django-affiliate-tracking does, with the header
//!   `Idempotency-Key: <event id>` (the same on every try of a callback) and
//!   `User-Agent: rocket-bandits/<version>`; redirects are not followed, and a try ends
//!   after `bandits.callbacks.timeout_ms`;
//! - a `2xx` answer is delivered; anything else (a `3xx` too), a timeout or a failed
//!   connection is tried again after an exponential wait with jitter
//!   ([`engine::backoff`](crate::engine::backoff)), until `retry_for_hours` after the
//!   callback was written; then it is given up, its last failure kept for the admin's
//!   delivery log (where "retry now" gives it one more try).
//!
//! # What is guaranteed
//!
//! - **At least once.** A callback stays in the outbox until a `2xx` is recorded or its
//!   retry time runs out: a restart, a crash or an outage of the database or of the
//!   partner's server delays it, and loses nothing.
//! - **Exactly once for a partner that honours `Idempotency-Key`.** A callback may reach a
//!   partner twice: when its answer was lost (a timeout after the partner counted it), or
//!   when the instance that sent it died before recording the answer. Every copy carries
//!   the same key.
//! - **Never twice at the same time.** An instance claims a callback with a lease
//!   (`lease_owner`, `lease_until`) for twice the timeout and five seconds more; no other
//!   instance on the same database (SQLite or PostgreSQL) takes it before the lease runs
//!   out, and an outcome is recorded only by the instance that still holds it. A dead
//!   instance's leases simply run out. The instances' clocks must agree to within a few
//!   seconds.
//! - **Not in order.** Callbacks due together are sent together (at most
//!   `bandits.callbacks.max_in_flight` at once per instance); one that fails may be
//!   overtaken by later ones.
//! - **Never on the request path.** A request that records a completion writes a row and
//!   returns; a slow or absent partner slows nobody's page.
//!
//! The log names the partner and the event id of a callback, never its URL (whose query
//! may carry a partner's token); the delivery log keeps the status and a description of
//! the last failure, without the URL either.
//!
//! [`Bandits`]: crate::Bandits

use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::clock::now_ms;
use crate::config::CallbackSettings;
use crate::engine::backoff::{Attempt, Backoff, Next};
use crate::store::{Callback, Claimed, Outcome, Store, StoreError};

/// The `User-Agent` of every callback.
pub const USER_AGENT: &str = concat!("rocket-bandits/", env!("CARGO_PKG_VERSION"));

/// The most of an answer's body read (and dropped); a longer body closes the connection.
const MAX_BODY_READ: usize = 64 * 1024;

/// How often a record of an outcome is tried again while the database does not answer.
const RECORD_RETRY: Duration = Duration::from_millis(250);

/// The sender, running; [`stop`](Sender::stop) ends it.
pub(crate) struct Sender {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    store: Store,
    owner: String,
}

impl Sender {
    /// Starts the sender on the current Tokio runtime. Fails only when no HTTP client can
    /// be built (no TLS roots), which is worth a failed start over a silent outbox.
    pub(crate) fn start(
        store: Store,
        settings: CallbackSettings,
        warning_interval: Duration,
    ) -> Result<Sender, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .build()?;
        let owner = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
        let (stop, stopped) = watch::channel(false);
        let round = Round {
            store: store.clone(),
            client,
            settings,
            backoff: Backoff::new(
                millis(settings.retry_initial()),
                millis(settings.retry_max()),
                millis(settings.retry_for()),
            ),
            owner: owner.clone(),
        };
        let task = tokio::spawn(run(round, stopped, warning_interval));
        Ok(Sender {
            stop,
            task: Mutex::new(Some(task)),
            store,
            owner,
        })
    }

    /// Stops claiming callbacks and lets the tries in flight end, for up to `within`;
    /// tries still running then are dropped, and every callback this sender still holds
    /// is let go, so that another instance (or this one, restarted) sends it at once.
    pub(crate) async fn stop(&self, within: Duration) {
        let _ = self.stop.send(true);
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        if let Some(mut task) = task {
            if tokio::time::timeout(within, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
        }
        match self.store.release_callbacks(&self.owner).await {
            Ok(0) => {}
            Ok(released) => log::info!(
                "rocket-bandits: {released} callback(s) in flight at shutdown will be sent \
                 again, with the same Idempotency-Key"
            ),
            Err(error) => log::warn!(
                "rocket-bandits: could not let go of the callbacks in flight ({error}); \
                 they will be sent again once their lease runs out"
            ),
        }
    }
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What every try needs.
#[derive(Clone)]
struct Round {
    store: Store,
    client: reqwest::Client,
    settings: CallbackSettings,
    backoff: Backoff,
    owner: String,
}

/// Claims due callbacks whenever a slot is free, until stopped.
async fn run(round: Round, mut stopped: watch::Receiver<bool>, warning_interval: Duration) {
    let mut in_flight = JoinSet::new();
    let mut outage = Outage::new(warning_interval);
    let max_in_flight = round.settings.max_in_flight() as usize;
    let lease = millis(round.settings.lease());
    loop {
        while in_flight.try_join_next().is_some() {}
        let free = max_in_flight.saturating_sub(in_flight.len());
        if free > 0 {
            let now = now_ms();
            let limit = u32::try_from(free).unwrap_or(u32::MAX);
            match round
                .store
                .claim_callbacks(&round.owner, now, now.saturating_add(lease), limit)
                .await
            {
                Ok(claimed) => {
                    outage.ended();
                    for claimed in claimed {
                        in_flight.spawn(deliver(round.clone(), claimed));
                    }
                }
                Err(error) => outage.failed(&error),
            }
        }
        tokio::select! {
            _ = stopped.changed() => break,
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            _ = tokio::time::sleep(round.settings.poll_interval()) => {}
        }
    }
    while in_flight.join_next().await.is_some() {}
}

/// One try of one claimed callback, and the record of what it came to.
async fn deliver(round: Round, claimed: Claimed) {
    let callback = &claimed.callback;
    let attempt = send(&round.client, callback).await;
    let tries = u32::try_from(claimed.attempts.saturating_add(1)).unwrap_or(u32::MAX);
    let now = now_ms();
    let next = round
        .backoff
        .next(&attempt, claimed.created_at, tries, now, &mut rand::rng());
    let outcome = Outcome {
        status: attempt.status(),
        error: attempt.failure(),
        next,
    };
    let (partner, event) = (&callback.partner, &callback.event_id);
    let failure = outcome.error.as_deref().unwrap_or_default();
    match next {
        Next::Delivered => {
            log::debug!("rocket-bandits: callback to partner {partner:?} for event {event:?} delivered (try {tries})")
        }
        Next::RetryAt(at) => log::info!(
            "rocket-bandits: callback to partner {partner:?} for event {event:?} failed \
             ({failure}), try {tries}; next try in {:.1} s",
            (at - now) as f64 / 1_000.0
        ),
        Next::GiveUp => log::warn!(
            "rocket-bandits: callback to partner {partner:?} for event {event:?} given up \
             after {tries} tries; last failure: {failure}"
        ),
    }
    // The database may blink: keep trying to record while the lease holds. Past it, the
    // callback is sent again (same Idempotency-Key) by whichever instance claims it.
    let lease_ends = Instant::now() + round.settings.lease();
    loop {
        match round
            .store
            .record_callback(event, &round.owner, &outcome, now_ms())
            .await
        {
            Ok(true) => return,
            Ok(false) => {
                log::warn!(
                    "rocket-bandits: the try of the callback to partner {partner:?} for event \
                     {event:?} ended after its lease; the instance holding it now decides"
                );
                return;
            }
            Err(error) if Instant::now() + RECORD_RETRY >= lease_ends => {
                log::warn!(
                    "rocket-bandits: could not record the try of the callback to partner \
                     {partner:?} for event {event:?} ({error}); it will be sent again, with \
                     the same Idempotency-Key"
                );
                return;
            }
            Err(_) => tokio::time::sleep(RECORD_RETRY).await,
        }
    }
}

/// Calls a partner's URL once.
async fn send(client: &reqwest::Client, callback: &Callback) -> Attempt {
    let url = match reqwest::Url::parse(&callback.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        Ok(url) => {
            return Attempt::Unsendable(format!("{:?} is not http or https", url.scheme()));
        }
        Err(error) => return Attempt::Unsendable(format!("not a URL ({error})")),
    };
    let Ok(key) = HeaderValue::from_str(&callback.event_id) else {
        return Attempt::Unsendable("the event id is not a valid header value".to_string());
    };
    match client.get(url).header("Idempotency-Key", key).send().await {
        Ok(mut response) => {
            let status = response.status().as_u16();
            // The status decides; the body is read (a little of it) only so that the
            // connection can serve the partner's next callback instead of a new one.
            let mut read = 0;
            while read < MAX_BODY_READ {
                match response.chunk().await {
                    Ok(Some(chunk)) => read += chunk.len(),
                    Ok(None) | Err(_) => break,
                }
            }
            Attempt::Answered(status)
        }
        Err(error) => Attempt::NoAnswer(describe(error)),
    }
}

/// What went wrong, without the URL: reqwest's own message names it, and a partner's
/// URL may carry a token in its query.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut cause = std::error::Error::source(&error);
    while let Some(error) = cause {
        let said = error.to_string();
        if !text.ends_with(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = error.source();
    }
    text
}

/// A database outage seen by the sender, for warnings at most once per interval.
struct Outage {
    interval: Duration,
    since: Option<Instant>,
    last_warning: Option<Instant>,
}

impl Outage {
    fn new(interval: Duration) -> Outage {
        Outage {
            interval,
            since: None,
            last_warning: None,
        }
    }

    fn failed(&mut self, error: &StoreError) {
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if self
            .last_warning
            .is_some_and(|last| now.duration_since(last) < self.interval)
        {
            return;
        }
        let lasting = match self.last_warning {
            None => String::new(),
            Some(_) => format!(" for {:.0} s", now.duration_since(since).as_secs_f64()),
        };
        self.last_warning = Some(now);
        log::warn!(
            "rocket-bandits: cannot read the callbacks to partners{lasting} ({error}); \
             they wait in the outbox and are sent once the database answers"
        );
    }

    fn ended(&mut self) {
        if let Some(since) = self.since.take() {
            self.last_warning = None;
            log::warn!(
                "rocket-bandits: the callbacks to partners can be read again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
    }
}
