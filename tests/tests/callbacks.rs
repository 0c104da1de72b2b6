//! Callbacks to referral partners reach them: through failures, a partner's server down
//! for a while, a site killed with SIGKILL, and two instances sharing a database under
//! load. A receiver on 127.0.0.1 ([`Receiver`]) plays the partner and counts what it got
//! by event id; the callbacks are written to the outbox with `Store::enqueue_callbacks`,
//! as a completion does in its own transaction.

use std::collections::HashMap;
use std::process::Child;
use std::time::{Duration, Instant};

use bandits::store::{Callback, DeliveryState, Store};
use bandits::Bandits;
use bandits_integration_tests::browser::SECRET_KEY;
use bandits_integration_tests::process::{free_port, server_address, site_command};
use bandits_integration_tests::proxy::{through, Proxy};
use bandits_integration_tests::receiver::Receiver;
use bandits_integration_tests::{each_database, eventually, on_postgres};
use rocket::figment::value::Value;
use rocket::local::asynchronous::Client;

const SITE: &str = env!("CARGO_BIN_EXE_bandits-site");

/// A site with the plugin on the database at `url`, its sender quick to retry.
async fn site(url: &str, extra: &[(&str, Value)]) -> Client {
    let mut figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.flush_interval_ms", 50))
        .merge(("bandits.callbacks.timeout_ms", 2_000))
        .merge(("bandits.callbacks.poll_interval_ms", 20))
        .merge(("bandits.callbacks.retry_initial_ms", 50))
        .merge(("bandits.callbacks.retry_max_ms", 200))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    for (key, value) in extra {
        figment = figment.merge((*key, value.clone()));
    }
    Client::untracked(rocket::custom(figment).attach(Bandits::fairing()))
        .await
        .expect("the site ignites")
}

fn callback(receiver: &Receiver, event: &str) -> Callback {
    Callback {
        event_id: event.to_string(),
        partner: "partner-1".to_string(),
        trigger: "User registered".to_string(),
        visitor: format!("v-{event}"),
        url: receiver.url(event),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// How many callbacks of the outbox are in `state`.
async fn count(store: &Store, state: DeliveryState) -> usize {
    store
        .callback_deliveries(None, 10_000)
        .await
        .expect("the delivery log")
        .iter()
        .filter(|delivery| delivery.state == state)
        .count()
}

/// Every call carried its event's id as its Idempotency-Key, and the plugin's name.
fn assert_keys(receiver: &Receiver) {
    for call in receiver.calls() {
        assert_eq!(call.key, call.event, "{call:?}");
        assert!(
            call.user_agent
                .as_deref()
                .is_some_and(|agent| agent.starts_with("rocket-bandits/")),
            "{call:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_failing_twice_arrives_once_with_the_same_key() {
    each_database(|store, url| async move {
        let receiver = Receiver::start(2, Duration::ZERO).await;
        let client = site(&url, &[]).await;
        store
            .enqueue_callbacks(&[callback(&receiver, "order-1")], now())
            .await
            .expect("enqueued");

        assert!(
            eventually(|| async { count(&store, DeliveryState::Delivered).await == 1 }).await,
            "not delivered: {:?}",
            receiver.calls()
        );
        let calls = receiver.calls();
        let statuses: Vec<u16> = calls.iter().map(|call| call.status).collect();
        assert_eq!(statuses, [503, 503, 200]);
        assert_eq!(receiver.delivered(), HashMap::from([("order-1".into(), 1)]));
        assert_keys(&receiver);
        assert!(calls[0]
            .target
            .starts_with("/track/?campaign=123&visitor_id=v-order-1"));

        let delivery = store
            .callback_delivery("order-1")
            .await
            .expect("read")
            .expect("the callback");
        assert_eq!(delivery.attempts, 3);
        assert_eq!(delivery.last_status, Some(200));
        assert_eq!(delivery.last_error.as_deref(), Some("HTTP status 503"));
        assert!(delivery.delivered_at.is_some() && delivery.gave_up_at.is_none());
        // Delivered is final: nothing more arrives, and "retry now" refuses it.
        assert!(!store
            .retry_callback_now("order-1", now())
            .await
            .expect("retry"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(receiver.calls().len(), 3);
        client.terminate().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_down_for_a_while_gets_everything_once_it_is_up() {
    each_database(|store, url| async move {
        let receiver = Receiver::start(0, Duration::ZERO).await;
        receiver.down().await;
        let client = site(&url, &[]).await;
        let callbacks: Vec<Callback> = (0..20)
            .map(|i| callback(&receiver, &format!("signup-{i}")))
            .collect();
        store
            .enqueue_callbacks(&callbacks, now())
            .await
            .expect("enqueued");

        // Every callback tried at least twice while the partner is down.
        let tried = eventually(|| async {
            let log = store.callback_deliveries(Some("partner-1"), 100).await;
            log.is_ok_and(|log| log.len() == 20 && log.iter().all(|d| d.attempts >= 2))
        })
        .await;
        assert!(tried, "not every callback was tried twice");
        for delivery in store.callback_deliveries(None, 100).await.expect("log") {
            assert_eq!(delivery.state, DeliveryState::Pending);
            assert_eq!(delivery.last_status, None);
            let error = delivery.last_error.expect("the failure is kept");
            assert!(error.starts_with("no answer: could not connect"), "{error}");
            assert!(!error.contains("partner-secret-token"), "{error}");
            assert!(delivery.next_try_at >= delivery.created_at);
        }

        receiver.up().await;
        assert!(
            eventually(|| async { count(&store, DeliveryState::Delivered).await == 20 }).await,
            "not all delivered"
        );
        let delivered = receiver.delivered();
        assert_eq!(delivered.len(), 20);
        assert!(delivered.values().all(|&calls| calls == 1), "{delivered:?}");
        assert_keys(&receiver);
        client.terminate().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_a_failure_not_followed_and_given_up_then_retried_now() {
    each_database(|store, url| async move {
        let receiver = Receiver::start(0, Duration::ZERO).await;
        receiver.answer(302);
        // Half a second of retries.
        let retry_for = Value::from(0.5 / 3_600.0);
        let client = site(&url, &[("bandits.callbacks.retry_for_hours", retry_for)]).await;
        store
            .enqueue_callbacks(&[callback(&receiver, "order-9")], now())
            .await
            .expect("enqueued");

        assert!(
            eventually(|| async { count(&store, DeliveryState::GaveUp).await == 1 }).await,
            "not given up"
        );
        let delivery = store
            .callback_delivery("order-9")
            .await
            .expect("read")
            .expect("the callback");
        assert!(delivery.attempts >= 2, "{delivery:?}");
        assert_eq!(delivery.last_status, Some(302));
        assert_eq!(delivery.last_error.as_deref(), Some("HTTP status 302"));
        let calls = receiver.calls();
        assert_eq!(calls.len() as i64, delivery.attempts);
        assert!(
            calls.iter().all(|call| call.target.starts_with("/track/")),
            "a redirect was followed: {calls:?}"
        );

        // Given up is kept: no more calls, until the admin's "retry now".
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(receiver.calls().len(), calls.len());
        receiver.answer(204);
        assert!(store
            .retry_callback_now("order-9", now())
            .await
            .expect("retry"));
        assert!(
            eventually(|| async { count(&store, DeliveryState::Delivered).await == 1 }).await,
            "not delivered after retry now"
        );
        assert_eq!(receiver.delivered().get("order-9"), Some(&1));
        assert_keys(&receiver);
        client.terminate().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partner_slower_than_the_timeout_is_retried() {
    each_database(|store, url| async move {
        let receiver = Receiver::start(0, Duration::from_millis(1_000)).await;
        let retry_for = Value::from(1.5 / 3_600.0);
        let client = site(
            &url,
            &[
                ("bandits.callbacks.timeout_ms", Value::from(200)),
                ("bandits.callbacks.retry_for_hours", retry_for),
            ],
        )
        .await;
        store
            .enqueue_callbacks(&[callback(&receiver, "slow-1")], now())
            .await
            .expect("enqueued");
        assert!(
            eventually(|| async {
                let delivery = store.callback_delivery("slow-1").await.ok().flatten();
                delivery.is_some_and(|d| d.attempts >= 2)
            })
            .await,
            "not retried"
        );
        let delivery = store
            .callback_delivery("slow-1")
            .await
            .expect("read")
            .expect("the callback");
        let error = delivery.last_error.expect("the failure");
        assert!(error.starts_with("no answer: timed out"), "{error}");
        client.terminate().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_a_thousand_callbacks_none_twice_at_once() {
    each_database(|store, url| async move {
        let receiver = Receiver::start(0, Duration::from_millis(5)).await;
        let first = site(&url, &[]).await;
        let second = site(&url, &[]).await;
        let callbacks: Vec<Callback> = (0..1_000)
            .map(|i| callback(&receiver, &format!("load-{i}")))
            .collect();
        for chunk in callbacks.chunks(100) {
            store
                .enqueue_callbacks(chunk, now())
                .await
                .expect("enqueued");
        }

        // Which instances hold leases, sampled while they work: both must take part.
        let mut owners = std::collections::HashSet::new();
        let started = Instant::now();
        let mut all = false;
        while !all && started.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let holding: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT lease_owner FROM bandits_outbox WHERE lease_owner IS NOT NULL",
            )
            .fetch_all(store.pool())
            .await
            .unwrap_or_default();
            owners.extend(holding);
            all = count(&store, DeliveryState::Delivered).await == 1_000;
        }
        assert!(all, "not all delivered in two minutes");
        assert_eq!(
            owners.len(),
            2,
            "instances seen holding callbacks: {owners:?}"
        );
        let delivered = receiver.delivered();
        assert_eq!(delivered.len(), 1_000);
        let twice: Vec<_> = delivered.iter().filter(|(_, &n)| n != 1).collect();
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
        assert_eq!(receiver.overlaps(), 0, "sent twice at the same time");
        assert_eq!(receiver.calls().len(), 1_000);
        assert_keys(&receiver);
        first.terminate().await;
        second.terminate().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_takes_at_most_its_limit_and_nothing_another_instance_holds() {
    each_database(|store, url| async move {
        let receiver = Receiver::start(0, Duration::ZERO).await;
        let callbacks: Vec<Callback> = (0..50)
            .map(|i| callback(&receiver, &format!("claim-{i}")))
            .collect();
        let t = now();
        store
            .enqueue_callbacks(&callbacks, t)
            .await
            .expect("enqueued");

        let first = store
            .claim_callbacks("a", t, t + 60_000, 4)
            .await
            .expect("claim");
        assert_eq!(first.len(), 4);
        let rest = store
            .claim_callbacks("b", t, t + 60_000, 100)
            .await
            .expect("claim");
        assert_eq!(rest.len(), 46);
        assert!(rest.iter().all(|claimed| !first.contains(claimed)));
        assert!(store
            .claim_callbacks("c", t, t + 60_000, 100)
            .await
            .expect("claim")
            .is_empty());
        // Only the holder records; a lease that ran out is claimed again.
        let outcome = bandits::store::Outcome {
            status: Some(200),
            error: None,
            next: bandits::engine::backoff::Next::Delivered,
        };
        let event = &first[0].callback.event_id;
        assert!(!store
            .record_callback(event, "b", &outcome, t)
            .await
            .expect("record"));
        assert!(store
            .record_callback(event, "a", &outcome, t)
            .await
            .expect("record"));
        let later = t + 60_001;
        let again = store
            .claim_callbacks("c", later, later + 60_000, 100)
            .await
            .expect("claim");
        assert_eq!(again.len(), 49);
        assert_eq!(store.release_callbacks("c").await.expect("release"), 49);

        // Two instances claiming at once, a few at a time: each row goes to one of them.
        let other = Store::connect(&url).await.expect("a second instance");
        let claim_all = |store: Store, owner: &'static str| async move {
            let mut mine = Vec::new();
            loop {
                let t = now();
                let claimed = store.claim_callbacks(owner, t, t + 60_000, 3).await;
                let claimed = claimed.expect("claim");
                if claimed.is_empty() {
                    return mine;
                }
                assert!(claimed.len() <= 3, "{} claimed at once", claimed.len());
                mine.extend(claimed.into_iter().map(|c| c.callback.event_id));
            }
        };
        let (one, two) = tokio::join!(
            tokio::spawn(claim_all(store.clone(), "one")),
            tokio::spawn(claim_all(other, "two"))
        );
        let (one, two) = (one.expect("one"), two.expect("two"));
        let mut all: Vec<String> = one.iter().chain(&two).cloned().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 49, "one: {one:?}\ntwo: {two:?}");
        assert_eq!(one.len() + two.len(), 49, "one: {one:?}\ntwo: {two:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_delays_callbacks_and_sends_none_twice() {
    on_postgres(|store, url| async move {
        let receiver = Receiver::start(0, Duration::from_millis(400)).await;
        let proxy = Proxy::start(server_address(&url)).await;
        let client = site(
            &through(&url, proxy.port()),
            &[("databases.bandits.connect_timeout", Value::from(1))],
        )
        .await;

        // Down before anything is claimed: nothing is sent until the database is back.
        proxy.close().await;
        let first: Vec<Callback> = (0..10)
            .map(|i| callback(&receiver, &format!("outage-{i}")))
            .collect();
        store
            .enqueue_callbacks(&first, now())
            .await
            .expect("enqueued");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(receiver.calls().is_empty(), "sent without a claim");
        proxy.open().await;
        assert!(
            eventually(|| async { count(&store, DeliveryState::Delivered).await == 10 }).await,
            "not delivered after the database came back"
        );

        // Down while the partner answers: the outcomes are recorded once it is back,
        // within the lease, and nothing is sent again.
        let second: Vec<Callback> = (10..20)
            .map(|i| callback(&receiver, &format!("outage-{i}")))
            .collect();
        store
            .enqueue_callbacks(&second, now())
            .await
            .expect("enqueued");
        let claimed = eventually(|| async {
            let held: Option<i64> = sqlx::query_scalar(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM bandits_outbox WHERE lease_owner IS NOT NULL",
            )
            .fetch_one(store.pool())
            .await
            .ok();
            held.is_some_and(|held| held > 0)
        })
        .await;
        assert!(claimed, "nothing claimed");
        proxy.close().await;
        assert!(
            eventually(|| async { receiver.calls().len() > 10 }).await,
            "the partner got nothing"
        );
        // Longer than the pool waits for a connection (connect_timeout = 1 s), so the
        // records fail and are tried again.
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        proxy.open().await;
        assert!(
            eventually(|| async { count(&store, DeliveryState::Delivered).await == 20 }).await,
            "not all delivered"
        );
        let delivered = receiver.delivered();
        assert_eq!(delivered.len(), 20);
        assert!(delivered.values().all(|&n| n == 1), "{delivered:?}");
        assert_keys(&receiver);
        client.terminate().await;
    })
    .await;
}

/// The site as a process of its own (the example site's binary).
struct SiteProcess(Child);

impl SiteProcess {
    fn start(url: &str) -> SiteProcess {
        let bandits = "{callbacks={timeout_ms=1000,poll_interval_ms=20,retry_initial_ms=50,\
                       retry_max_ms=200,max_in_flight=4}}";
        let child = site_command(SITE, url, free_port(), bandits)
            .spawn()
            .expect("the site binary starts");
        SiteProcess(child)
    }

    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        let _ = self.0.wait();
    }
}

impl Drop for SiteProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_killed_with_callbacks_pending_delivers_them_all_after_a_restart() {
    each_database(|store, url| async move {
        // A slow partner: callbacks are in flight and pending when the site dies.
        let receiver = Receiver::start(0, Duration::from_millis(150)).await;
        let callbacks: Vec<Callback> = (0..60)
            .map(|i| callback(&receiver, &format!("kill-{i}")))
            .collect();
        store
            .enqueue_callbacks(&callbacks, now())
            .await
            .expect("enqueued");

        let site = SiteProcess::start(&url);
        assert!(
            eventually(|| async { receiver.delivered().len() >= 8 }).await,
            "the first site delivered nothing"
        );
        site.kill();
        let before = count(&store, DeliveryState::Delivered).await;
        assert!(
            before < 60,
            "all delivered before the kill: slow the receiver down"
        );

        let _site = SiteProcess::start(&url);
        let started = Instant::now();
        let mut all = false;
        while !all && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            all = count(&store, DeliveryState::Delivered).await == 60;
        }
        assert!(all, "not all delivered after the restart");
        let delivered = receiver.delivered();
        assert_eq!(delivered.len(), 60);
        // Sent again: at most what the killed site had in flight (max_in_flight = 4),
        // each with the same Idempotency-Key as the first time.
        let again: usize = delivered.values().map(|n| n - 1).sum();
        assert!(again <= 4, "{again} callbacks sent twice: {delivered:?}");
        println!("delivered before the kill: {before}; sent again after it: {again}");
        assert_eq!(receiver.overlaps(), 0);
        assert_keys(&receiver);
    })
    .await;
}
