//! What the sender of callbacks logs: the partner and the event, never the URL, whose
//! query may carry a partner's token. In a test binary of its own, because it installs the
//! process's logger before Rocket does.

use std::time::Duration;

use bandits::store::{Callback, DeliveryState};
use bandits::Bandits;
use bandits_integration_tests::browser::SECRET_KEY;
use bandits_integration_tests::receiver::Receiver;
use bandits_integration_tests::{each_database, eventually, log_capture};
use rocket::local::asynchronous::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_giving_up_are_logged_without_the_url() {
    log_capture::install();
    each_database(|store, url| async move {
        log_capture::clear();
        let receiver = Receiver::start(1, Duration::ZERO).await;
        receiver.answer(500);
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url.as_str()))
            .merge(("bandits.callbacks.poll_interval_ms", 20))
            .merge(("bandits.callbacks.retry_initial_ms", 50))
            .merge(("bandits.callbacks.retry_for_hours", 0.3 / 3_600.0))
            .merge(("secret_key", SECRET_KEY));
        let client = Client::untracked(rocket::custom(figment).attach(Bandits::fairing()))
            .await
            .expect("the site ignites");
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            listener.local_addr().expect("its address")
        };
        let callbacks = [
            Callback {
                event_id: "event-logged-1".into(),
                partner: "partner-logged".into(),
                trigger: "Order placed".into(),
                visitor: "v1".into(),
                url: receiver.url("event-logged-1"),
            },
            Callback {
                event_id: "event-logged-2".into(),
                partner: "partner-logged".into(),
                trigger: "Order placed".into(),
                visitor: "v2".into(),
                url: format!("http://{closed}/track/?token=partner-secret-token"),
            },
        ];
        store
            .enqueue_callbacks(
                &callbacks,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0),
            )
            .await
            .expect("enqueued");
        let given_up = eventually(|| async {
            let log = store.callback_deliveries(Some("partner-logged"), 10).await;
            log.is_ok_and(|log| log.iter().all(|d| d.state == DeliveryState::GaveUp))
        })
        .await;
        assert!(given_up, "not given up");
        client.terminate().await;

        let logged = log_capture::at_least(log::Level::Info);
        for event in ["event-logged-1", "event-logged-2"] {
            assert!(
                logged.iter().any(|line| line.contains(event)
                    && line.contains("partner-logged")
                    && line.contains("failed")),
                "{event}: {logged:#?}"
            );
            assert!(
                logged
                    .iter()
                    .any(|line| line.contains(event) && line.contains("given up")),
                "{event}: {logged:#?}"
            );
        }
        let leaked = log_capture::containing("partner-secret-token");
        assert!(leaked.is_empty(), "{leaked:#?}");
        let leaked = log_capture::containing("/track/");
        assert!(leaked.is_empty(), "{leaked:#?}");
    })
    .await;
}
