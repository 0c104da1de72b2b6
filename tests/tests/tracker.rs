//! The in-memory tracker over a real store: exact counts under concurrency, several
//! instances on one database, failed flushes that lose nothing, resets and winners.

use std::sync::Arc;

use bandits::engine::{ArmTotals, FlagDefinition, Policy, WinnerRule};
use bandits::store::{EventKind, EventQuery, Store};
use bandits::track::Tracker;
use bandits_integration_tests::each_database;
use rand::rngs::SmallRng;
use rand::SeedableRng;

const NOW: i64 = 1_763_700_000_000;

/// An arm for a new visitor of flag `name`, as the plugin chooses it: the locked winner or
/// the policy's choice on the totals of the last refresh.
struct Chosen {
    epoch: i64,
    arm_name: String,
}

fn choose(tracker: &Tracker, name: &str, rng: &mut SmallRng) -> Option<Chosen> {
    let live = tracker.live();
    let stored = live.flag(name)?;
    let arm = stored.flag.choose_arm(&stored.totals, rng);
    Some(Chosen {
        epoch: stored.epoch,
        arm_name: stored.flag.arms()[arm].name.clone(),
    })
}

async fn with_headline(store: &Store) {
    let flag = FlagDefinition::new("headline-flag")
        .with_policy(Policy::thompson())
        .with_winner_rule(WinnerRule::Manual)
        .validate()
        .unwrap();
    store.create_flag(&flag, NOW).await.unwrap();
}

/// `checkout`: an even split of `off` and `on` under the default t-test, deciding from
/// 100 views.
async fn with_checkout(store: &Store) {
    let flag = FlagDefinition {
        min_views: 100,
        ..FlagDefinition::new("checkout").with_policy(Policy::even_split(2))
    }
    .validate()
    .unwrap();
    store.create_flag(&flag, NOW).await.unwrap();
}

/// 200 visitors of `checkout`, half on each arm: "on" converts 80 times in 100, "off" 5
/// times, a winner by any rule.
fn count_a_clear_winner(tracker: &Tracker) {
    for i in 0..200 {
        let arm = if i % 2 == 0 { "off" } else { "on" };
        let visitor = format!("v{i}");
        tracker.record(EventKind::Exposure, "checkout", 0, arm, &visitor, "/", NOW);
        if (arm == "on" && i % 10 != 9) || (arm == "off" && i % 40 == 0) {
            tracker.record(
                EventKind::Conversion,
                "checkout",
                0,
                arm,
                &visitor,
                "/",
                NOW,
            );
        }
    }
}

fn views_and_conversions(totals: &[ArmTotals]) -> (u64, u64) {
    (
        totals.iter().map(|t| t.views).sum(),
        totals.iter().map(|t| t.conversions).sum(),
    )
}

#[tokio::test]
async fn a_thousand_visitors_from_32_tasks_are_counted_exactly() {
    each_database(|store: Store, _| async move {
        with_headline(&store).await;
        let tracker = Arc::new(Tracker::start(store.clone()).await.unwrap());

        // A flush loop running alongside the visitors, as on a site.
        let flusher = {
            let tracker = Arc::clone(&tracker);
            tokio::spawn(async move {
                for _ in 0..20 {
                    tracker.tick(NOW).await.expect("tick");
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
        };
        let mut tasks = Vec::new();
        for task in 0..32u64 {
            let tracker = Arc::clone(&tracker);
            tasks.push(tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(task);
                for visitor in (task..1000).step_by(32) {
                    let id = format!("visitor-{visitor}");
                    let chosen = choose(&tracker, "headline-flag", &mut rng).expect("known flag");
                    tracker.record(
                        EventKind::Exposure,
                        "headline-flag",
                        chosen.epoch,
                        &chosen.arm_name,
                        &id,
                        "/",
                        NOW,
                    );
                    if visitor % 10 == 0 {
                        tracker.record(
                            EventKind::Conversion,
                            "headline-flag",
                            chosen.epoch,
                            &chosen.arm_name,
                            &id,
                            "/contact/",
                            NOW,
                        );
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        for task in tasks {
            task.await.expect("a visitor task");
        }
        flusher.await.expect("the flush loop");
        // The shutdown flush.
        tracker.tick(NOW).await.unwrap();

        let stored = store.flag("headline-flag").await.unwrap();
        assert_eq!(views_and_conversions(&stored.totals), (1000, 100));
        // The tracker's own snapshot agrees with the database after its refresh.
        let snapshot = tracker.snapshot();
        assert_eq!(
            snapshot.flag("headline-flag").unwrap().totals,
            stored.totals
        );
        let logged = store
            .events(&EventQuery {
                limit: 1000,
                flag: Some("headline-flag".into()),
                ..EventQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(logged.len(), 1000, "the newest 1,000 of 1,100 entries");
    })
    .await;
}

#[tokio::test]
async fn instances_see_each_others_counts_and_edits_after_a_tick() {
    each_database(|store: Store, url| async move {
        with_headline(&store).await;
        let first = Tracker::start(store).await.unwrap();
        let second = Tracker::start(Store::connect(&url).await.unwrap())
            .await
            .unwrap();

        for i in 0..30 {
            let arm = if i % 2 == 0 { "off" } else { "on" };
            let visitor = format!("v{i}");
            first.record(
                EventKind::Exposure,
                "headline-flag",
                0,
                arm,
                &visitor,
                "/",
                NOW,
            );
        }
        second.record(EventKind::Exposure, "headline-flag", 0, "on", "w", "/", NOW);
        first.tick(NOW).await.unwrap();
        second.tick(NOW).await.unwrap();
        let totals = second
            .snapshot()
            .flag("headline-flag")
            .unwrap()
            .totals
            .clone();
        assert_eq!(totals, [ArmTotals::new(15, 0), ArmTotals::new(16, 0)]);

        // A flag created through one instance reaches the other's decisions.
        let new_flag = FlagDefinition::new("checkout").validate().unwrap();
        first.store().create_flag(&new_flag, NOW).await.unwrap();
        let mut rng = SmallRng::seed_from_u64(1);
        assert!(choose(&second, "checkout", &mut rng).is_none());
        second.tick(NOW).await.unwrap();
        assert!(choose(&second, "checkout", &mut rng).is_some());
        second.store().pool().close().await;
    })
    .await;
}

#[tokio::test]
async fn a_failed_flush_keeps_everything_for_the_next() {
    each_database(|store: Store, _| async move {
        with_headline(&store).await;
        let tracker = Tracker::start(store.clone()).await.unwrap();
        for i in 0..7 {
            tracker.record(
                EventKind::Exposure,
                "headline-flag",
                0,
                "on",
                &format!("v{i}"),
                "/",
                NOW,
            );
        }
        // The log table disappears: the whole flush transaction fails.
        sqlx::query("ALTER TABLE bandits_events RENAME TO bandits_events_away")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(tracker.flush().await.is_err());
        tracker.record(
            EventKind::Conversion,
            "headline-flag",
            0,
            "on",
            "v1",
            "/contact/",
            NOW,
        );
        assert!(tracker.flush().await.is_err());
        assert_eq!(
            store.flag("headline-flag").await.unwrap().totals[1],
            ArmTotals::default(),
            "nothing half-written"
        );

        sqlx::query("ALTER TABLE bandits_events_away RENAME TO bandits_events")
            .execute(store.pool())
            .await
            .unwrap();
        let report = tracker.flush().await.unwrap();
        assert_eq!(report.events, 8);
        assert_eq!(
            store.flag("headline-flag").await.unwrap().totals[1],
            ArmTotals::new(7, 1)
        );
        assert!(
            tracker.flush().await.unwrap().events == 0,
            "nothing written twice"
        );
    })
    .await;
}

#[tokio::test]
async fn the_pending_log_is_bounded_but_counts_are_not() {
    each_database(|store: Store, _| async move {
        with_headline(&store).await;
        let tracker = Tracker::start(store.clone())
            .await
            .unwrap()
            .with_max_pending_events(5);
        sqlx::query("ALTER TABLE bandits_events RENAME TO bandits_events_away")
            .execute(store.pool())
            .await
            .unwrap();
        for i in 0..4 {
            tracker.record(
                EventKind::Exposure,
                "headline-flag",
                0,
                "off",
                &format!("a{i}"),
                "/",
                NOW,
            );
        }
        assert!(tracker.flush().await.is_err());
        for i in 0..4 {
            tracker.record(
                EventKind::Exposure,
                "headline-flag",
                0,
                "off",
                &format!("b{i}"),
                "/",
                NOW,
            );
        }
        assert!(tracker.flush().await.is_err());
        assert_eq!(tracker.dropped_events(), 3);
        sqlx::query("ALTER TABLE bandits_events_away RENAME TO bandits_events")
            .execute(store.pool())
            .await
            .unwrap();
        assert_eq!(tracker.flush().await.unwrap().events, 5);
        assert_eq!(
            store.flag("headline-flag").await.unwrap().totals[0],
            ArmTotals::new(8, 0)
        );
        // The oldest entries are the ones kept.
        let kept = store.events(&EventQuery::default()).await.unwrap();
        let visitors: Vec<&str> = kept
            .iter()
            .rev()
            .map(|e| e.event.visitor.as_str())
            .collect();
        assert_eq!(visitors, ["a0", "a1", "a2", "a3", "b0"]);
    })
    .await;
}

#[tokio::test]
async fn a_reset_voids_pending_counts_and_starts_a_new_epoch() {
    each_database(|store: Store, _| async move {
        with_headline(&store).await;
        let tracker = Tracker::start(store.clone()).await.unwrap();
        let mut rng = SmallRng::seed_from_u64(3);
        let before = choose(&tracker, "headline-flag", &mut rng).unwrap();
        tracker.record(
            EventKind::Exposure,
            "headline-flag",
            before.epoch,
            &before.arm_name,
            "v",
            "/",
            NOW,
        );

        store.reset_flag("headline-flag", NOW).await.unwrap();
        let report = tracker.tick(NOW).await.unwrap();
        assert_eq!(report.dropped, 1);
        let after = choose(&tracker, "headline-flag", &mut rng).unwrap();
        assert_eq!(after.epoch, before.epoch + 1);
        assert_eq!(
            store.flag("headline-flag").await.unwrap().totals,
            vec![ArmTotals::default(); 2]
        );
    })
    .await;
}

#[tokio::test]
async fn a_tick_locks_the_winner_the_rule_declares_and_everyone_gets_it() {
    each_database(|store: Store, _| async move {
        with_checkout(&store).await;
        let tracker = Tracker::start(store.clone()).await.unwrap();
        count_a_clear_winner(&tracker);
        tracker.tick(NOW + 7).await.unwrap();
        let stored = store.flag("checkout").await.unwrap();
        assert_eq!(stored.flag.winner(), Some(1), "{:?}", stored.totals);
        assert_eq!(stored.winner_locked_at, Some(NOW + 7));
        let mut rng = SmallRng::seed_from_u64(9);
        for _ in 0..100 {
            assert_eq!(
                choose(&tracker, "checkout", &mut rng).unwrap().arm_name,
                "on"
            );
        }
    })
    .await;
}

/// Idle rounds keep the flags in memory as they are (a site with a thousand flags would
/// otherwise rebuild them every flush interval for nothing), yet the first round after
/// another instance's counts arrive sees them and locks the winner they declare.
#[tokio::test]
async fn idle_rounds_rebuild_nothing_and_another_instances_counts_still_lock_the_winner() {
    each_database(|store: Store, url| async move {
        with_checkout(&store).await;
        let first = Tracker::start(store.clone()).await.unwrap();
        let second = Tracker::start(Store::connect(&url).await.unwrap())
            .await
            .unwrap();

        first.tick(NOW).await.unwrap();
        let idle = first.snapshot();
        for round in 1..4 {
            first.tick(NOW + round).await.unwrap();
            assert!(
                Arc::ptr_eq(&idle, &first.snapshot()),
                "idle round {round} rebuilt the flags"
            );
        }

        // The other instance counts a clear winner and only flushes (its own round would
        // lock the winner itself).
        count_a_clear_winner(&second);
        second.flush().await.unwrap();

        first.tick(NOW + 50).await.unwrap();
        let stored = store.flag("checkout").await.unwrap();
        assert_eq!(stored.flag.winner(), Some(1), "{:?}", stored.totals);
        assert_eq!(
            stored.winner_locked_at,
            Some(NOW + 50),
            "locked by the first"
        );
        assert_eq!(
            views_and_conversions(&first.snapshot().flags[0].totals),
            (200, 85)
        );
    })
    .await;
}

/// A flush that is dropped half-way (a timeout at shutdown) puts its batch back, and a
/// flush that starts while another is writing waits its turn instead of reporting an
/// empty success before the first one has failed or landed.
#[tokio::test]
async fn flushes_take_turns_and_a_dropped_flush_loses_nothing() {
    each_database(|store: Store, url| async move {
        use sqlx::Executor;

        with_headline(&store).await;
        let tracker = Arc::new(Tracker::start(store.clone()).await.unwrap());
        let epoch = tracker.snapshot().flags[0].epoch;
        for visitor in 0..10 {
            tracker.record(
                EventKind::Exposure,
                "headline-flag",
                epoch,
                "on",
                &format!("v{visitor}"),
                "/",
                NOW,
            );
        }

        let mut locker = bandits_integration_tests::lock_counters(&url, store.backend()).await;

        // A flush blocked on the lock, dropped after a while.
        let blocked =
            tokio::time::timeout(std::time::Duration::from_millis(300), tracker.flush()).await;
        assert!(
            blocked.is_err(),
            "the flush should still be waiting for the lock"
        );
        assert_eq!(
            tracker.pending().0,
            1,
            "the dropped flush put its increments back"
        );

        // A flush blocked on the lock, and a second one started meanwhile.
        let first = {
            let tracker = Arc::clone(&tracker);
            tokio::spawn(async move { tracker.flush().await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let second = {
            let tracker = Arc::clone(&tracker);
            tokio::spawn(async move { tracker.flush().await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(
            !second.is_finished(),
            "the second flush must wait for the first"
        );
        locker.execute("ROLLBACK").await.expect("the lock ends");
        first.await.expect("joins").expect("the first flush lands");
        second
            .await
            .expect("joins")
            .expect("the second flush lands");

        let stored = store.flag("headline-flag").await.unwrap();
        assert_eq!(views_and_conversions(&stored.totals), (10, 0));
        assert_eq!(tracker.pending(), (0, 0));
    })
    .await;
}

/// A count repeated (a stale cookie sent again) is not counted twice, while the same
/// visitor's other kind, another flag's epoch and other visitors are.
#[tokio::test]
async fn a_repeated_count_is_refused() {
    each_database(|store: Store, _| async move {
        with_headline(&store).await;
        let tracker = Tracker::start(store.clone()).await.unwrap();
        let count = |kind, visitor: &str, epoch| {
            tracker.record(kind, "headline-flag", epoch, "on", visitor, "/", NOW)
        };
        assert!(count(EventKind::Exposure, "v1", 0));
        assert!(!count(EventKind::Exposure, "v1", 0), "the same view twice");
        assert!(count(EventKind::Conversion, "v1", 0));
        for _ in 0..5 {
            assert!(
                !count(EventKind::Conversion, "v1", 0),
                "the same conversion again"
            );
        }
        assert!(count(EventKind::Exposure, "v2", 0));
        assert!(
            count(EventKind::Exposure, "v1", 1),
            "a new epoch is a new experiment"
        );
        tracker.flush().await.unwrap();
        let totals = store.flag("headline-flag").await.unwrap().totals;
        assert_eq!(totals[1].views, 2, "epoch 0: v1 and v2");
        assert_eq!(totals[1].conversions, 1);
    })
    .await;
}
