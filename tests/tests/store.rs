//! The store on SQLite and PostgreSQL: flags, additive counters, resets, winners, the
//! activity log, and concurrent writers losing nothing.

use std::time::Duration;

use bandits::engine::{ArmTotals, FlagDefinition, Policy};
use bandits::store::{
    Batch, Event, EventKind, EventQuery, Increment, Store, StoreError, SCHEMA_VERSION,
};
use bandits_integration_tests::{each_database, on_postgres};
use sqlx::Connection;

const NOW: i64 = 1_763_700_000_000;

fn headline() -> bandits::engine::Flag {
    FlagDefinition::new("headline-flag")
        .with_policy(Policy::thompson())
        .validate()
        .expect("a valid flag")
}

fn event(kind: EventKind, visitor: &str, arm: &str, path: &str, at: i64) -> Event {
    Event {
        at,
        kind,
        visitor: visitor.to_string(),
        flag: "headline-flag".to_string(),
        epoch: 0,
        arm: arm.to_string(),
        path: path.to_string(),
        partner: None,
        propensity: None,
    }
}

#[tokio::test]
async fn migrating_again_changes_nothing() {
    each_database(|store: Store, _| async move {
        store.create_flag(&headline(), NOW).await.unwrap();
        let before = store.snapshot().await.unwrap();
        store.migrate().await.unwrap();
        store.migrate().await.unwrap();
        assert_eq!(store.snapshot().await.unwrap(), before);
        assert_eq!(SCHEMA_VERSION, 1);
    })
    .await;
}

/// Views log their propensity, conversions none: flushes mixing known and unknown ones in
/// any order, again and again on the same connections, are all written and read back.
#[tokio::test]
async fn log_entries_keep_their_propensity_or_its_absence() {
    each_database(|store: Store, _| async move {
        store.create_flag(&headline(), NOW).await.unwrap();
        for round in 0..4_i64 {
            let events: Vec<Event> = (0..150_i64)
                .map(|i| {
                    let kind = if (i + round) % 3 == 0 {
                        EventKind::Conversion
                    } else {
                        EventKind::Exposure
                    };
                    let mut entry = event(kind, &format!("v{round}-{i}"), "on", "/", NOW + i);
                    if kind == EventKind::Exposure {
                        entry.propensity = Some(1.0 / (2.0 + i as f64));
                    }
                    entry
                })
                .collect();
            let batch = Batch {
                events: events.clone(),
                ..Batch::default()
            };
            store
                .flush_once(&format!("propensity-{round}"), &batch, NOW)
                .await
                .expect("a flush mixing known and unknown propensities is written");
        }
        let logged = store
            .export_page("headline-flag", 0, i64::MIN, i64::MAX, 10_000)
            .await
            .unwrap();
        assert_eq!(logged.len(), 600);
        for entry in &logged {
            let event = &entry.event;
            match event.kind {
                EventKind::Conversion => assert_eq!(event.propensity, None),
                EventKind::Exposure => {
                    let i = (event.at - NOW) as f64;
                    assert_eq!(event.propensity, Some(1.0 / (2.0 + i)));
                }
            }
        }
    })
    .await;
}

/// An instance that starts while another one flushes must not wait for the flush, nor
/// deadlock with it: PostgreSQL ends a deadlock by failing one side, here the start.
#[tokio::test]
async fn migrating_a_migrated_database_does_not_wait_for_writers() {
    on_postgres(|store: Store, _| async move {
        // Another instance's flush, in the middle of its transaction.
        let mut flush = store.pool().begin().await.unwrap();
        sqlx::query("INSERT INTO bandits_flushes (id, at) VALUES ('in-flight', 0)")
            .execute(&mut *flush)
            .await
            .unwrap();
        let started = tokio::time::timeout(Duration::from_secs(10), store.migrate()).await;
        assert!(
            matches!(started, Ok(Ok(()))),
            "migrating waited for the open flush: {started:?}"
        );
        flush.rollback().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn a_created_flag_starts_at_zero_and_names_are_unique() {
    each_database(|store: Store, _| async move {
        assert_eq!(store.config_version().await.unwrap(), 0);
        let stored = store.create_flag(&headline(), NOW).await.unwrap();
        assert_eq!(stored.flag, headline());
        assert_eq!(stored.epoch, 0);
        assert_eq!(stored.totals, vec![ArmTotals::default(); 2]);
        assert_eq!((stored.created_at, stored.updated_at), (NOW, NOW));
        assert_eq!(stored.winner_locked_at, None);
        assert_eq!(store.config_version().await.unwrap(), 1);

        let again = store.create_flag(&headline(), NOW).await;
        assert!(
            matches!(again, Err(StoreError::AlreadyExists(ref name)) if name == "headline-flag"),
            "{again:?}"
        );
        assert_eq!(store.config_version().await.unwrap(), 1, "nothing changed");
        assert!(matches!(
            store.flag("missing").await,
            Err(StoreError::NotFound(_))
        ));
    })
    .await;
}

/// A flush retried under its id after the reply of its commit was lost counts once; a
/// new id is a new batch. Ids older than a day are forgotten by later flushes.
#[tokio::test]
async fn a_batch_retried_under_its_id_is_written_once() {
    each_database(|store: Store, url| async move {
        let stored = store.create_flag(&headline(), NOW).await.unwrap();
        let batch = Batch {
            increments: vec![Increment::new(&stored, "on", 5, 2)],
            events: vec![event(EventKind::Exposure, "v1", "on", "/", NOW)],
            ..Batch::default()
        };
        let first = store.flush_once("batch-1", &batch, NOW).await.unwrap();
        assert_eq!(
            (first.applied, first.events, first.already_written),
            (1, 1, false)
        );
        let again = store.flush_once("batch-1", &batch, NOW).await.unwrap();
        assert_eq!(
            (again.applied, again.events, again.already_written),
            (0, 0, true)
        );
        store.flush_once("batch-2", &batch, NOW).await.unwrap();
        let flag = store.flag("headline-flag").await.unwrap();
        assert_eq!(flag.totals, [ArmTotals::new(0, 0), ArmTotals::new(10, 4)]);
        assert_eq!(store.events(&EventQuery::default()).await.unwrap().len(), 2);

        // An id recorded more than a day ago is removed by the next flush.
        let mut connection = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("UPDATE bandits_flushes SET at = at - 90000000 WHERE id = 'batch-1'")
            .execute(&mut connection)
            .await
            .unwrap();
        store.flush_once("batch-3", &batch, NOW).await.unwrap();
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM bandits_flushes ORDER BY id")
            .fetch_all(&mut connection)
            .await
            .unwrap();
        assert_eq!(ids, ["batch-2", "batch-3"]);
    })
    .await;
}

#[tokio::test]
async fn flushes_add_to_the_counters_and_log_the_events() {
    each_database(|store: Store, _| async move {
        let stored = store.create_flag(&headline(), NOW).await.unwrap();
        let batch = Batch {
            increments: vec![
                Increment::new(&stored, "off", 3, 1),
                Increment::new(&stored, "on", 2, 2),
            ],
            events: vec![
                event(EventKind::Exposure, "v1", "off", "/", NOW),
                event(EventKind::Exposure, "v2", "on", "/", NOW + 1),
                event(EventKind::Conversion, "v2", "on", "/contact/", NOW + 2),
            ],
            ..Batch::default()
        };
        let report = store.flush(&batch, NOW).await.unwrap();
        assert_eq!((report.applied, report.dropped, report.events), (2, 0, 3));
        store.flush(&batch, NOW).await.unwrap();

        let flag = store.flag("headline-flag").await.unwrap();
        assert_eq!(flag.totals, [ArmTotals::new(6, 2), ArmTotals::new(4, 4)]);
        let snapshot = store.snapshot().await.unwrap();
        assert_eq!(snapshot.flag("headline-flag").unwrap().totals, flag.totals);
        // Counting is not a configuration change.
        assert_eq!(snapshot.config_version, 1);

        let all = store.events(&EventQuery::default()).await.unwrap();
        assert_eq!(all.len(), 6);
        assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        assert_eq!(all[0].event, batch.events[2]);

        let v2 = EventQuery {
            visitor: Some("v2".into()),
            ..EventQuery::default()
        };
        assert_eq!(store.events(&v2).await.unwrap().len(), 4);
        let conversions_on_contact = EventQuery {
            path: Some("/contact/".into()),
            flag: Some("headline-flag".into()),
            ..EventQuery::default()
        };
        let found = store.events(&conversions_on_contact).await.unwrap();
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|e| e.event.kind == EventKind::Conversion));

        // Pages of two, keyed by the last id seen.
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = store
                .events(&EventQuery {
                    before,
                    limit: 2,
                    ..EventQuery::default()
                })
                .await
                .unwrap();
            if page.is_empty() {
                break;
            }
            before = page.last().map(|e| e.id);
            seen.extend(page.into_iter().map(|e| e.id));
        }
        let ids: Vec<i64> = all.iter().map(|e| e.id).collect();
        assert_eq!(seen, ids);
    })
    .await;
}

#[tokio::test]
async fn a_reset_starts_afresh_and_voids_older_increments() {
    each_database(|store: Store, _| async move {
        let before = store.create_flag(&headline(), NOW).await.unwrap();
        store
            .flush(
                &Batch {
                    increments: vec![Increment::new(&before, "on", 10, 3)],
                    events: vec![],
                    ..Batch::default()
                },
                NOW,
            )
            .await
            .unwrap();
        store
            .lock_winner("headline-flag", 0, "on", NOW + 5)
            .await
            .unwrap();

        let after = store.reset_flag("headline-flag", NOW + 10).await.unwrap();
        assert_eq!(after.epoch, 1);
        assert_eq!(after.totals, vec![ArmTotals::default(); 2]);
        assert_eq!(after.flag.winner(), None);
        assert_eq!(after.winner_locked_at, None);

        // Counted before the reset, flushed after it: dropped, not added.
        let late = Batch {
            increments: vec![
                Increment::new(&before, "on", 5, 5),
                Increment::new(&after, "off", 1, 0),
            ],
            events: vec![],
            ..Batch::default()
        };
        let report = store.flush(&late, NOW).await.unwrap();
        assert_eq!((report.applied, report.dropped), (1, 1));
        let totals = store.flag("headline-flag").await.unwrap().totals;
        assert_eq!(totals, [ArmTotals::new(1, 0), ArmTotals::default()]);
    })
    .await;
}

#[tokio::test]
async fn the_first_winner_lock_stands() {
    each_database(|store: Store, _| async move {
        store.create_flag(&headline(), NOW).await.unwrap();
        let locked = store
            .lock_winner("headline-flag", 0, "on", NOW + 1)
            .await
            .unwrap();
        assert_eq!(locked.flag.winner(), Some(1));
        assert_eq!(locked.winner_locked_at, Some(NOW + 1));
        let version = store.config_version().await.unwrap();

        // Another instance reaching a different decision later changes nothing.
        let again = store
            .lock_winner("headline-flag", 0, "off", NOW + 2)
            .await
            .unwrap();
        assert_eq!(again.flag.winner(), Some(1));
        assert_eq!(again.winner_locked_at, Some(NOW + 1));
        assert_eq!(store.config_version().await.unwrap(), version);

        // A decision made on totals from before a reset is ignored.
        store.reset_flag("headline-flag", NOW + 3).await.unwrap();
        let stale = store
            .lock_winner("headline-flag", 0, "on", NOW + 4)
            .await
            .unwrap();
        assert_eq!(stale.flag.winner(), None);

        let unknown = store
            .lock_winner("headline-flag", 1, "maybe", NOW + 5)
            .await;
        assert!(
            matches!(unknown, Err(StoreError::UnknownArm { .. })),
            "{unknown:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn editing_arms_keeps_the_counts_of_arms_that_remain() {
    each_database(|store: Store, _| async move {
        let flag = FlagDefinition::new("checkout")
            .with_arms(["a", "b", "c"])
            .validate()
            .unwrap();
        let stored = store.create_flag(&flag, NOW).await.unwrap();
        store
            .flush(
                &Batch {
                    increments: vec![
                        Increment::new(&stored, "a", 10, 1),
                        Increment::new(&stored, "b", 20, 2),
                        Increment::new(&stored, "c", 30, 3),
                    ],
                    events: vec![],
                    ..Batch::default()
                },
                NOW,
            )
            .await
            .unwrap();

        let edited = FlagDefinition::new("checkout")
            .with_arms(["a", "c", "d"])
            .validate()
            .unwrap();
        let updated = store.update_flag(&edited, NOW + 1).await.unwrap();
        assert_eq!(
            updated.totals,
            [
                ArmTotals::new(10, 1),
                ArmTotals::new(30, 3),
                ArmTotals::default()
            ]
        );
        assert_eq!(updated.updated_at, NOW + 1);
        assert_eq!(updated.created_at, NOW);
        assert_eq!(store.config_version().await.unwrap(), 2);

        // An increment for the removed arm finds nothing to add to.
        let report = store
            .flush(
                &Batch {
                    increments: vec![Increment::new(&stored, "b", 1, 0)],
                    events: vec![],
                    ..Batch::default()
                },
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(report.dropped, 1);

        let missing = FlagDefinition::new("nope").validate().unwrap();
        assert!(matches!(
            store.update_flag(&missing, NOW).await,
            Err(StoreError::NotFound(_))
        ));
    })
    .await;
}

#[tokio::test]
async fn deleting_a_flag_removes_its_counters_and_log() {
    each_database(|store: Store, _| async move {
        let stored = store.create_flag(&headline(), NOW).await.unwrap();
        store
            .flush(
                &Batch {
                    increments: vec![Increment::new(&stored, "on", 1, 0)],
                    events: vec![event(EventKind::Exposure, "v1", "on", "/", NOW)],
                    ..Batch::default()
                },
                NOW,
            )
            .await
            .unwrap();
        store.delete_flag("headline-flag").await.unwrap();
        assert!(store.snapshot().await.unwrap().flags.is_empty());
        assert!(store.counters().await.unwrap().is_empty());
        assert!(store
            .events(&EventQuery::default())
            .await
            .unwrap()
            .is_empty());
        assert!(matches!(
            store.delete_flag("headline-flag").await,
            Err(StoreError::NotFound(_))
        ));
        // Visitors counted before the delete are dropped when flushed after it.
        let report = store
            .flush(
                &Batch {
                    increments: vec![Increment::new(&stored, "on", 1, 0)],
                    events: vec![],
                    ..Batch::default()
                },
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(report.dropped, 1);
        // The name is free again, and starts from zero.
        let again = store.create_flag(&headline(), NOW).await.unwrap();
        assert_eq!(again.totals, vec![ArmTotals::default(); 2]);
    })
    .await;
}

/// Two instances (two pools on one database) flushing at once from 32 tasks: every
/// increment lands, because increments are added in the database, never read-modify-write.
#[tokio::test]
async fn concurrent_flushes_from_two_instances_lose_nothing() {
    each_database(|first: Store, url| async move {
        let second = Store::connect(&url).await.expect("a second instance");
        let stored = first.create_flag(&headline(), NOW).await.unwrap();

        let mut tasks = Vec::new();
        for task in 0..32u64 {
            let store = if task % 2 == 0 {
                first.clone()
            } else {
                second.clone()
            };
            let stored = stored.clone();
            tasks.push(tokio::spawn(async move {
                for round in 0..10u64 {
                    let arm = if (task + round) % 3 == 0 { "on" } else { "off" };
                    let batch = Batch {
                        increments: vec![Increment::new(&stored, arm, 3, 1)],
                        events: vec![event(EventKind::Exposure, "v", arm, "/", NOW)],
                        ..Batch::default()
                    };
                    store.flush(&batch, NOW).await.expect("flush");
                }
            }));
        }
        for task in tasks {
            task.await.expect("a flushing task");
        }
        let totals = second.flag("headline-flag").await.unwrap().totals;
        let views: u64 = totals.iter().map(|t| t.views).sum();
        let conversions: u64 = totals.iter().map(|t| t.conversions).sum();
        assert_eq!((views, conversions), (32 * 10 * 3, 32 * 10));
        let logged = first
            .events(&EventQuery {
                limit: 1000,
                ..EventQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(logged.len(), 320);
        second.pool().close().await;
    })
    .await;
}

#[tokio::test]
async fn counts_and_times_beyond_32_bits_survive_the_round_trip() {
    each_database(|store: Store, _| async move {
        let stored = store.create_flag(&headline(), i64::MAX - 1).await.unwrap();
        assert_eq!(stored.created_at, i64::MAX - 1);
        let big = 5_000_000_000u64;
        store
            .flush(
                &Batch {
                    increments: vec![Increment::new(&stored, "on", big, big / 2)],
                    events: vec![],
                    ..Batch::default()
                },
                NOW,
            )
            .await
            .unwrap();
        let totals = store.flag("headline-flag").await.unwrap().totals;
        assert_eq!(totals[1], ArmTotals::new(big, big / 2));
    })
    .await;
}

#[tokio::test]
async fn history_groups_the_log_by_time_and_arm() {
    each_database(|store: Store, _| async move {
        store.create_flag(&headline(), 0).await.unwrap();
        let minute = 60_000;
        let t0 = 1_763_700_000_000;
        // Minute 0: two on, one off; minute 5: one on converts, one off exposure.
        let events = vec![
            event(EventKind::Exposure, "a", "on", "/", t0),
            event(EventKind::Exposure, "b", "on", "/", t0 + 10),
            event(EventKind::Exposure, "c", "off", "/", t0 + 20),
            event(
                EventKind::Conversion,
                "a",
                "on",
                "/contact",
                t0 + 5 * minute,
            ),
            event(EventKind::Exposure, "d", "off", "/", t0 + 5 * minute + 1),
        ];
        store
            .flush(
                &Batch {
                    increments: vec![],
                    events,
                    ..Batch::default()
                },
                NOW,
            )
            .await
            .unwrap();
        let history = store.history("headline-flag", 0, 48).await.unwrap();
        assert_eq!(history.bucket_ms, minute, "at least a minute per bucket");
        let at = |start: i64, arm: &str| -> (u64, u64) {
            history
                .points
                .iter()
                .filter(|p| p.start == start && p.arm == arm)
                .fold((0, 0), |(e, c), p| (e + p.exposures, c + p.conversions))
        };
        assert_eq!(at(t0, "on"), (2, 0));
        assert_eq!(at(t0, "off"), (1, 0));
        assert_eq!(at(t0 + 5 * minute, "on"), (0, 1));
        assert_eq!(at(t0 + 5 * minute, "off"), (1, 0));
        assert!(history.points.windows(2).all(|w| w[0].start <= w[1].start));
        // Another epoch, or a flag without log: nothing.
        assert!(store
            .history("headline-flag", 1, 48)
            .await
            .unwrap()
            .points
            .is_empty());
        assert!(store
            .history("unknown", 0, 48)
            .await
            .unwrap()
            .points
            .is_empty());
    })
    .await;
}

#[tokio::test]
async fn admin_sessions_close_at_their_expiry_and_at_sign_out() {
    each_database(|store, _url| async move {
        let expires = NOW + bandits::store::ADMIN_SESSION_MS;
        store
            .open_admin_session("digest-one", NOW, expires)
            .await
            .expect("opened");
        store
            .open_admin_session("digest-two", NOW, expires)
            .await
            .expect("opened");
        assert!(store.admin_session_open("digest-one", NOW).await.unwrap());
        assert!(store
            .admin_session_open("digest-one", expires - 1)
            .await
            .unwrap());
        assert!(
            !store
                .admin_session_open("digest-one", expires)
                .await
                .unwrap(),
            "open until its expiry, not at it"
        );
        assert!(!store.admin_session_open("unknown", NOW).await.unwrap());
        store.end_admin_session("digest-one").await.expect("ended");
        assert!(!store.admin_session_open("digest-one", NOW).await.unwrap());
        assert!(store.admin_session_open("digest-two", NOW).await.unwrap());
    })
    .await;
}
