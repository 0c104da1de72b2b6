//! The reliability suite: the example site as separate processes (`bandits-site`, one
//! `headline-flag` on `/` converting on `/contact/`) on one PostgreSQL database, under
//! concurrent load from real HTTP clients on 127.0.0.1. Skipped, with a line saying so,
//! without BANDITS_TEST_POSTGRES_URL.
//!
//! - Two instances, one restarted gracefully (SIGTERM) mid-load: no 5xx, counts exact.
//! - PostgreSQL connections terminated (`pg_terminate_backend`) every 150 ms mid-load, for
//!   at least 20 rounds: no 5xx, no failed request, counts exact after recovery.
//! - One instance killed with SIGKILL: what it loses is at most what it held in memory (not
//!   yet flushed) when asked just before the kill, plus what it counted after; the measured
//!   loss is printed (`-- --nocapture`).
//!
//! The clients know what must be counted: a visitor is one view when the site's answer
//! to `/` set the visitor cookie (it remembers the arm), and one conversion when the
//! answer to `/contact/` after that came back. Every load runs until its test has seen
//! what it needs (bounded in time: a stalled load fails after two minutes).

use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bandits::engine::WinnerRule;
use bandits::store::Store;
use bandits_integration_tests::browser::{remembered, sum, BROWSER, COOKIE, TOKEN};
use bandits_integration_tests::on_postgres;
use bandits_integration_tests::process::{free_port, site_command};
use rand::Rng;
use sqlx::{AnyConnection, Connection};

const SITE: &str = env!("CARGO_BIN_EXE_bandits-site");

/// The tests run one at a time: each loads both cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const FLAG: &str = "headline-flag";

/// One site process.
struct Instance {
    child: Child,
}

impl Instance {
    /// Starts the site on `port`, on the database at `url`, flushing every `flush_ms`, and
    /// waits until it answers.
    fn start(url: &str, port: u16, flush_ms: u64) -> Instance {
        let bandits = format!("{{admin_token=\"{TOKEN}\",flush_interval_ms={flush_ms}}}");
        let child = site_command(SITE, url, port, &bandits)
            .env("EXAMPLE_SITE_FLAGS", "1")
            .spawn()
            .expect("the site binary starts");
        let mut instance = Instance { child };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = instance.child.try_wait() {
                panic!("the site on port {port} exited at start: {status}");
            }
            if ureq::get(&format!("http://127.0.0.1:{port}/contact/"))
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok()
            {
                return instance;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the site on port {port} did not answer within a minute");
    }

    /// SIGTERM: Rocket stops accepting, finishes the requests in flight, the plugin
    /// flushes. Returns how the process ended.
    fn terminate(mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a process id");
        // SAFETY: kill(2) with the id of our own child process, which has not been reaped
        // (we wait for it below), so the id cannot belong to another process.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM could not be sent");
        self.child.wait().expect("the site exits")
    }

    /// SIGKILL: the process ends at once, flushing nothing.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A failed test leaves no process behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One visitor's visit as its browser saw it.
struct Visit {
    /// The visitor cookie the site left it with, if any.
    cookie: Option<String>,
    /// When the answer to `/` arrived.
    home_at: Instant,
    /// The port of the instance that answered `/`.
    home_port: u16,
    /// When the answer to `/contact/` arrived, if it was asked for.
    contact_at: Option<Instant>,
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Every visit that got an answer to `/`.
    visits: Mutex<Vec<Visit>>,
    /// Answers 500 and up.
    server_errors: AtomicU64,
    /// Requests that got no answer (connection refused or closed), retried elsewhere.
    retried: AtomicU64,
    /// Requests abandoned without an answer (their instance was killed): they may or may
    /// not have been counted.
    unanswered: AtomicU64,
    /// Answers per port.
    answers: Mutex<std::collections::HashMap<u16, u64>>,
}

impl Tally {
    fn visited(&self) -> usize {
        self.visits.lock().map(|visits| visits.len()).unwrap_or(0)
    }

    /// How many answers came from the instance on `port`.
    fn answered_on(&self, port: u16) -> u64 {
        self.answers
            .lock()
            .map(|answers| answers.get(&port).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// What the visitors' cookies remember of `headline-flag`: each cookie that says its
/// visitor was counted as a view (a conversion) must be one view (conversion) in the
/// database, and the database must hold no other.
struct Remembered {
    views: u64,
    conversions: u64,
    /// When the answer that made each count arrived at the browser.
    counted_at: Vec<Instant>,
    /// The visits to `/` that were not counted as a view: which instance answered, when.
    uncounted: Vec<(u16, Instant)>,
}

async fn remembered_counts(tally: &Tally) -> Remembered {
    let visits = std::mem::take(&mut *tally.visits.lock().expect("the visits"));
    let cookies: Vec<String> = visits.iter().filter_map(|v| v.cookie.clone()).collect();
    let mut states = remembered(&cookies).await.into_iter();
    let mut counts = Remembered {
        views: 0,
        conversions: 0,
        counted_at: Vec::new(),
        uncounted: Vec::new(),
    };
    for visit in &visits {
        if visit.cookie.is_none() {
            counts.uncounted.push((visit.home_port, visit.home_at));
            continue;
        }
        let state = states
            .next()
            .flatten()
            .expect("every visitor cookie the site set decrypts and parses");
        let assigned = state.get(FLAG);
        if !assigned.is_some_and(|assigned| assigned.exposed) {
            counts.uncounted.push((visit.home_port, visit.home_at));
        }
        if let Some(assigned) = assigned {
            if assigned.exposed {
                counts.views += 1;
                counts.counted_at.push(visit.home_at);
            }
            if assigned.converted {
                counts.conversions += 1;
                counts
                    .counted_at
                    .push(visit.contact_at.expect("converted on /contact/"));
            }
        }
    }
    counts
}

/// An answer: the status and the visitor cookie it set.
struct Answer {
    status: u16,
    /// The port of the instance that answered.
    port: u16,
    cookie: Option<String>,
}

/// One request to one instance; `None` when no answer came back.
fn request(agent: &ureq::Agent, port: u16, path: &str, cookie: Option<&str>) -> Option<Answer> {
    let mut request = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .set("User-Agent", BROWSER);
    if let Some(value) = cookie {
        request = request.set("Cookie", &format!("{COOKIE}={value}"));
    }
    let response = match request.call() {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(_)) => return None,
    };
    let status = response.status();
    let prefix = format!("{COOKIE}=");
    let cookie = response
        .all("set-cookie")
        .into_iter()
        .find_map(|header| header.strip_prefix(&prefix))
        .and_then(|rest| rest.split(';').next())
        .map(str::to_string);
    // The answer counts as received only once all of it arrived.
    response.into_string().ok()?;
    Some(Answer {
        status,
        port,
        cookie,
    })
}

/// How the load behaves when an instance does not answer.
#[derive(Clone, Copy, PartialEq)]
enum OnNoAnswer {
    /// Ask another instance (as a load balancer does), for up to 30 seconds.
    Retry,
    /// Give up on this visitor (its instance was killed).
    GiveUp,
}

/// `visitors` visitors over `threads` threads, each asking one of `ports` at random for `/`
/// and, half of them, `/contact/` after; stops early when `stop` is set.
fn load(
    ports: &[u16],
    visitors: u64,
    threads: u64,
    on_no_answer: OnNoAnswer,
    tally: &Arc<Tally>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|thread| {
            let ports = ports.to_vec();
            let tally = Arc::clone(tally);
            let stop = Arc::clone(stop);
            let share = visitors / threads + u64::from(thread < visitors % threads);
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(10))
                    .redirects(0)
                    .build();
                let mut rng = rand::rng();
                let send = |path: &str, cookie: Option<&str>, rng: &mut rand::rngs::ThreadRng| {
                    let started = Instant::now();
                    loop {
                        let port = ports[rng.random_range(0..ports.len())];
                        if let Some(answer) = request(&agent, port, path, cookie) {
                            if let Ok(mut answers) = tally.answers.lock() {
                                *answers.entry(port).or_default() += 1;
                            }
                            if answer.status >= 500 {
                                tally.server_errors.fetch_add(1, Ordering::Relaxed);
                            }
                            return Some(answer);
                        }
                        if on_no_answer == OnNoAnswer::GiveUp
                            || started.elapsed() > Duration::from_secs(30)
                        {
                            tally.unanswered.fetch_add(1, Ordering::Relaxed);
                            return None;
                        }
                        tally.retried.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                };
                for _ in 0..share {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Some(home) = send("/", None, &mut rng) else {
                        continue;
                    };
                    let mut visit = Visit {
                        cookie: home.cookie.filter(|_| home.status == 200),
                        home_at: Instant::now(),
                        home_port: home.port,
                        contact_at: None,
                    };
                    if visit.cookie.is_some() && rng.random_bool(0.5) {
                        if let Some(contact) = send("/contact/", visit.cookie.as_deref(), &mut rng)
                        {
                            visit.contact_at = Some(Instant::now());
                            if contact.status == 200 && contact.cookie.is_some() {
                                visit.cookie = contact.cookie;
                            }
                        }
                    }
                    if let Ok(mut visits) = tally.visits.lock() {
                        visits.push(visit);
                    }
                }
            })
        })
        .collect()
}

/// 12 clients on `ports`, retrying elsewhere when an instance does not answer, until
/// `stop` is set (or a million visitors came).
fn load_until_stopped(
    ports: &[u16],
    tally: &Arc<Tally>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    load(ports, 1_000_000, 12, OnNoAnswer::Retry, tally, stop)
}

/// Waits for the load's threads off the async runtime.
async fn finish(threads: Vec<std::thread::JoinHandle<()>>) {
    tokio::task::spawn_blocking(move || {
        for thread in threads {
            thread.join().expect("a load thread panicked");
        }
    })
    .await
    .expect("the load finished");
}

/// Waits until `tally` has seen `count` visits.
async fn visits_reach(tally: &Tally, count: usize) {
    let started = Instant::now();
    while tally.visited() < count {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the load stalled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Creates the site's `headline-flag` before the site starts (the site then leaves it as
/// it is), with a person to decide its winner. Here every arm converts alike, and the
/// default t-test, looked at after every flush, sooner or later locks a winner by chance:
/// from then on visitors are no longer counted, which is right for the site but not what
/// these tests measure.
async fn create_flag(store: &Store) {
    let flag = example_site::headline_flag()
        .definition()
        .clone()
        .with_winner_rule(WinnerRule::Manual)
        .validate()
        .expect("the example's flag with a manual winner is valid");
    store
        .create_flag(&flag, 0)
        .await
        .expect("the flag is created");
}

/// Stops `instance` with SIGTERM and checks it ended well.
async fn stop(instance: Instance) {
    let status = tokio::task::spawn_blocking(move || instance.terminate())
        .await
        .expect("the stop finished");
    assert!(status.success(), "the graceful stop ended with {status}");
}

#[tokio::test]
async fn an_instance_restarted_gracefully_under_load_loses_and_doubles_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    on_postgres(|store: Store, url| async move {
        create_flag(&store).await;
        let (a, b) = (free_port(), free_port());
        let first = Instance::start(&url, a, 200);
        let second = Instance::start(&url, b, 200);
        let tally = Arc::new(Tally::default());
        let stop_load = Arc::new(AtomicBool::new(false));
        // The load goes on until 1,000 visitors have come after the restart, however fast
        // this machine is (a fixed number could all be served before the restart).
        let threads = load_until_stopped(&[a, b], &tally, &stop_load);

        // A deploy: the first instance stops gracefully and starts again on its port.
        visits_reach(&tally, 800).await;
        let stop_began = Instant::now();
        stop(first).await;
        let stop_ended = Instant::now();
        let restarted = tokio::task::spawn_blocking({
            let url = url.clone();
            move || Instance::start(&url, a, 200)
        })
        .await
        .expect("the restart finished");
        let after_restart = tally.visited();
        let served_before = tally.answered_on(a);
        visits_reach(&tally, after_restart + 1_000).await;
        assert!(
            tally.answered_on(a) > served_before,
            "the restarted instance served no visitor"
        );
        stop_load.store(true, Ordering::Relaxed);
        finish(threads).await;
        let visitors = u64::try_from(tally.visited()).expect("a count");
        stop(restarted).await;
        stop(second).await;

        assert_eq!(
            tally.server_errors.load(Ordering::Relaxed),
            0,
            "5xx answers"
        );
        assert_eq!(tally.unanswered.load(Ordering::Relaxed), 0);
        let retried = tally.retried.load(Ordering::Relaxed);
        let expected = remembered_counts(&tally).await;
        // A stopping instance still answers the requests that reach it on open
        // connections during Rocket's grace period, but counts none of them: its last flush
        // may already have run. Those visitors are counted when they come back. Every other
        // visitor was counted.
        for (port, at) in &expected.uncounted {
            assert!(
                *port == a && (stop_began..=stop_ended).contains(at),
                "a visitor answered by port {port} {:?} after the stop began was not \
                 counted, and not while its instance was stopping",
                at.saturating_duration_since(stop_began)
            );
        }
        assert_eq!(
            expected.views + expected.uncounted.len() as u64,
            visitors,
            "every visitor was counted in or answered uncounted while stopping"
        );
        assert_eq!(
            sum(&store, FLAG).await,
            (expected.views, expected.conversions),
            "views and conversions in the database"
        );
        println!(
            "graceful restart: {} views and {} conversions counted exactly; {retried} \
             requests retried on the other instance meanwhile; visitors answered uncounted \
             by the stopping instance: {}",
            expected.views,
            expected.conversions,
            expected.uncounted.len()
        );
    })
    .await;
}

#[tokio::test]
async fn connections_terminated_under_load_fail_no_request_and_lose_nothing() {
    let _serial = ONE_AT_A_TIME.lock().await;
    on_postgres(|store: Store, url| async move {
        create_flag(&store).await;
        let (a, b) = (free_port(), free_port());
        let instances = [Instance::start(&url, a, 50), Instance::start(&url, b, 50)];
        let tally = Arc::new(Tally::default());
        let stop_load = Arc::new(AtomicBool::new(false));
        // The load runs until the faults below have happened often enough, however fast
        // this machine serves it: a fixed number of visitors finished too early on a fast
        // one, before enough connections had been terminated to prove anything.
        let threads = load_until_stopped(&[a, b], &tally, &stop_load);

        // Every 150 ms, every connection to the site's database but ours is terminated:
        // flushes fail half-way, connections die around commits. It goes on until 20 rounds
        // have found connections to terminate and at least 3,000 visitors have come.
        let mut killer = AnyConnection::connect(&url)
            .await
            .expect("a connection of our own");
        let (mut terminated, mut rounds): (i64, u32) = (0, 0);
        let started = Instant::now();
        while rounds < 20 || tally.visited() < 3_000 {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "after 120 s only {rounds} rounds terminated connections and {} visitors came",
                tally.visited()
            );
            let killed: i64 = sqlx::query_scalar(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut killer)
            .await
            .expect("pg_terminate_backend runs");
            terminated += killed;
            rounds += u32::from(killed > 0);
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        stop_load.store(true, Ordering::Relaxed);
        finish(threads).await;
        let _ = killer.close().await;
        let visitors = tally.visited();
        for instance in instances {
            stop(instance).await;
        }

        assert_eq!(
            tally.server_errors.load(Ordering::Relaxed),
            0,
            "5xx answers"
        );
        assert_eq!(tally.retried.load(Ordering::Relaxed), 0, "requests failed");
        let expected = remembered_counts(&tally).await;
        // While flushes fail, new visitors see the control and are not counted (nor does
        // their cookie say so); every count a cookie remembers is in the database, once.
        assert!(expected.views > 0, "nobody was counted");
        assert_eq!(
            sum(&store, FLAG).await,
            (expected.views, expected.conversions),
            "views and conversions in the database"
        );
        println!(
            "pg_terminate_backend: {terminated} connections terminated in {rounds} rounds; {} \
             views and {} conversions counted exactly; {} of {visitors} visitors came while \
             the database was away and saw the control uncounted",
            expected.views,
            expected.conversions,
            (visitors as u64).saturating_sub(expected.views)
        );
    })
    .await;
}

/// What an instance says of its unwritten counts (`GET /bandits/api/status`).
struct PendingStatus {
    /// Counts not yet written to the database, or being written.
    pending: u64,
    /// Flushes committed so far.
    write_transactions: u64,
}

fn pending_status(port: u16) -> PendingStatus {
    let body = ureq::get(&format!("http://127.0.0.1:{port}/bandits/api/status"))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .call()
        .expect("the status answers")
        .into_string()
        .expect("a body");
    let status: rocket::serde::json::Value =
        rocket::serde::json::serde_json::from_str(&body).expect("JSON");
    let number = |pointer: &str| {
        status
            .pointer(pointer)
            .and_then(|value| value.as_u64())
            .unwrap_or_else(|| panic!("{pointer} in {body}"))
    };
    PendingStatus {
        pending: number("/pending/events"),
        write_transactions: number("/write_transactions"),
    }
}

#[tokio::test]
async fn an_instance_killed_loses_at_most_its_last_flush_interval() {
    let _serial = ONE_AT_A_TIME.lock().await;
    on_postgres(|store: Store, url| async move {
        create_flag(&store).await;
        let mut before = (0, 0);
        for flush_ms in [500, 100] {
            let port = free_port();
            let instance = Instance::start(&url, port, flush_ms);
            let tally = Arc::new(Tally::default());
            let stop_load = Arc::new(AtomicBool::new(false));
            let threads = load(
                &[port],
                1_000_000,
                8,
                OnNoAnswer::GiveUp,
                &tally,
                &stop_load,
            );

            // Kill at a moment unrelated to the flush loop's phase, right after asking the
            // instance how many counts wait in its memory for a flush.
            let after = Duration::from_millis(1_500 + rand::rng().random_range(0..flush_ms));
            tokio::time::sleep(after).await;
            let asked_at = Instant::now();
            let status = tokio::task::spawn_blocking(move || pending_status(port))
                .await
                .expect("the status request");
            instance.kill();
            stop_load.store(true, Ordering::Relaxed);
            finish(threads).await;

            let expected = remembered_counts(&tally).await;
            let now = sum(&store, FLAG).await;
            let stored = (now.0 - before.0) + (now.1 - before.1);
            before = now;
            let answered = expected.views + expected.conversions;
            let unanswered = tally.unanswered.load(Ordering::Relaxed);
            // A request counted and flushed whose answer the kill cut off is stored but its
            // browser never heard of it: at most one per request cut off.
            assert!(
                stored <= answered + unanswered,
                "{stored} stored, only {answered} answered (+{unanswered} cut off)"
            );
            assert!(answered > 0, "the load reached the site");
            assert!(
                status.write_transactions > 0,
                "the instance flushed before the kill: the test proves nothing otherwise"
            );
            // What may be lost: the counts the instance held in memory when it answered the
            // status request (not yet written, or being written), and those it counted after
            // that, which were all answered after the request was sent. No time margin: a
            // slow machine only makes both numbers larger.
            let lost = answered.saturating_sub(stored);
            let answered_later = expected
                .counted_at
                .iter()
                .filter(|at| **at > asked_at)
                .count() as u64;
            assert!(
                lost <= status.pending + answered_later,
                "lost {lost} counts, more than the {} the instance held when asked and the \
                 {answered_later} answered after",
                status.pending
            );
            println!(
                "SIGKILL with flush_interval_ms = {flush_ms}: {answered} counts answered, \
                 {stored} stored, {lost} lost ({:.1}%); {} held in memory when asked, \
                 {answered_later} answered after",
                100.0 * lost as f64 / answered as f64,
                status.pending
            );
        }
    })
    .await;
}
