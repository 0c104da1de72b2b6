//! The activity log's export (`GET /bandits/api/flags/<name>/events`) as an analyst uses
//! it: every counted view carries the odds its arm was chosen with, the log streams as CSV
//! or NDJSON, and a time window selects part of it; on SQLite and PostgreSQL.

use bandits::engine::{EventKind, FlagDefinition, Policy};
use bandits::store::{Batch, Event, Store};
use bandits::Bandits;
use bandits_integration_tests::browser::{Visitor, SECRET_KEY, TOKEN};
use bandits_integration_tests::{each_database, eventually, routes};
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Value;

/// A site with `headline` split 75 / 25 between `off` and `on` on `/`, converting on
/// `/contact`, flushing every 50 ms.
async fn site(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("bandits.flush_interval_ms", 50))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let flag = FlagDefinition::new("headline")
        .with_policy(Policy::percent(25.0))
        .with_paths("/", "/contact")
        .validate()
        .expect("a valid flag");
    let rocket = rocket::custom(figment)
        .attach(Bandits::fairing().with_flag(flag))
        .manage(bandits::api::AdminCheck::new(|request| {
            request.headers().get_one("X-Staff") == Some("yes")
        }))
        .mount(
            "/",
            rocket::routes![routes::home, routes::contact, routes::peek],
        );
    Client::untracked(rocket).await.expect("the site ignites")
}

async fn export(client: &Client, query: &str) -> (Status, Option<String>, String) {
    let response = client
        .get(format!("/bandits/api/flags/headline/events{query}"))
        .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
        .dispatch()
        .await;
    let status = response.status();
    let kind = response.content_type().map(|kind| kind.to_string());
    (
        status,
        kind,
        response.into_string().await.unwrap_or_default(),
    )
}

async fn logged(store: &Store) -> usize {
    store
        .export_page("headline", 0, i64::MIN, i64::MAX, 10_000)
        .await
        .map_or(0, |page| page.len())
}

#[tokio::test]
async fn every_counted_view_logs_the_odds_of_its_arm_and_exports_as_csv_and_ndjson() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        // Twelve visitors see the page; the first four convert; two more only peek (the
        // arm is chosen where nothing counts) and are counted on the page afterwards.
        let mut visitors: Vec<Visitor> = (0..14).map(|_| Visitor::browser()).collect();
        for (i, visitor) in visitors.iter_mut().enumerate() {
            if i >= 12 {
                visitor.get(&client, "/peek").await;
            }
            assert_eq!(visitor.get(&client, "/").await.status, Status::Ok);
            if i < 4 {
                visitor.get(&client, "/contact").await;
            }
        }
        assert!(
            eventually(|| async { logged(&store).await == 18 }).await,
            "14 views and 4 conversions logged"
        );

        let (status, kind, csv) = export(&client, "").await;
        assert_eq!(status, Status::Ok);
        assert_eq!(kind.as_deref(), Some("text/csv; charset=utf-8"));
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("id,at,visitor,kind,epoch,arm,propensity,path,partner,flag")
        );
        let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
        assert_eq!(rows.len(), 18);
        let ids: Vec<i64> = rows.iter().map(|r| r[0].parse().expect("an id")).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first: {ids:?}");
        for row in &rows {
            let expected = match (row[3], row[5]) {
                ("exposure", "off") => "0.75",
                ("exposure", "on") => "0.25",
                ("conversion", _) => "",
                other => panic!("unexpected entry {other:?}"),
            };
            assert_eq!(row[6], expected, "{row:?}");
            assert_eq!(row[9], "headline");
        }

        let (status, kind, ndjson) = export(&client, "?format=ndjson").await;
        assert_eq!(status, Status::Ok);
        assert_eq!(kind.as_deref(), Some("application/x-ndjson"));
        let entries: Vec<Value> = ndjson
            .lines()
            .map(|line| rocket::serde::json::from_str(line).expect("one JSON object a line"))
            .collect();
        assert_eq!(entries.len(), 18);
        let views = entries.iter().filter(|e| e["kind"] == "exposure").count();
        assert_eq!(views, 14);
        assert!(entries
            .iter()
            .filter(|e| e["kind"] == "conversion")
            .all(|e| e["propensity"].is_null()));
        assert!(entries
            .iter()
            .filter(|e| e["kind"] == "exposure")
            .all(|e| e["propensity"] == 0.75 || e["propensity"] == 0.25));
    })
    .await;
}

/// Entries `0..count` of `headline`, one millisecond apart from `start`.
fn entries(count: i64, start: i64) -> Vec<Event> {
    (0..count)
        .map(|i| Event {
            at: start + i,
            kind: EventKind::Exposure,
            visitor: format!("{i:032x}"),
            flag: "headline".into(),
            epoch: 1,
            arm: "off".into(),
            path: "/a,\"quoted\"".into(),
            partner: None,
            propensity: Some(0.75),
        })
        .collect()
}

#[tokio::test]
async fn a_long_log_streams_whole_in_order_and_a_time_window_selects_part_of_it() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        assert!(eventually(|| async { store.flag("headline").await.is_ok() }).await);
        // More than two pages of the stream.
        let batch = Batch {
            events: entries(2_345, 1_000_000),
            ..Batch::default()
        };
        store
            .flush_once("export-1", &batch, 1_000_000)
            .await
            .expect("written");

        let (status, _, csv) = export(&client, "").await;
        assert_eq!(status, Status::Ok);
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("CSV")).collect();
        assert_eq!(rows.len(), 2_345);
        let times: Vec<i64> = rows.iter().map(|r| r[1].parse().expect("a time")).collect();
        assert_eq!(times, (1_000_000..1_002_345).collect::<Vec<_>>());
        // A path with a comma and quotes survives as one field.
        assert!(rows.iter().all(|r| &r[7] == "/a,\"quoted\""));

        let (_, _, window) = export(&client, "?format=ndjson&from=1001000&to=1001010").await;
        let times: Vec<i64> = window
            .lines()
            .map(|line| {
                let entry: Value = rocket::serde::json::from_str(line).expect("JSON");
                entry["at"].as_i64().expect("a time")
            })
            .collect();
        assert_eq!(times, (1_001_000..1_001_010).collect::<Vec<_>>());
    })
    .await;
}

#[tokio::test]
async fn the_admin_links_the_export_from_the_flag_page() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let mut visitor = Visitor::browser();
        visitor.get(&client, "/").await;
        assert!(eventually(|| async { logged(&store).await == 1 }).await);
        let staff = |path: &'static str| {
            client
                .get(path)
                .header(Header::new("X-Staff", "yes"))
                .dispatch()
        };
        let page =
            bandits_integration_tests::admin::staff_page(&client, "/bandits/admin/flags/headline")
                .await;
        assert!(
            page.contains("/bandits/admin/flags/headline/events"),
            "{page}"
        );
        let response = staff("/bandits/admin/flags/headline/events?format=ndjson").await;
        assert_eq!(response.status(), Status::Ok);
        let body = response.into_string().await.unwrap_or_default();
        let entry: Value = rocket::serde::json::from_str(body.trim()).expect("one entry");
        assert_eq!(entry["kind"], "exposure");
        // Not for visitors.
        let response = client
            .get("/bandits/admin/flags/headline/events")
            .dispatch()
            .await;
        assert_ne!(response.status(), Status::Ok);
    })
    .await;
}

#[tokio::test]
async fn bad_parameters_unknown_flags_and_strangers_are_refused() {
    each_database(|_store: Store, url| async move {
        let client = site(&url).await;
        for (query, field) in [
            ("?format=xml", "format"),
            ("?from=yesterday", "from"),
            ("?to=1.5", "to"),
        ] {
            let (status, _, body) = export(&client, query).await;
            assert_eq!(status, Status::UnprocessableEntity, "{query}");
            let body: Value = rocket::serde::json::from_str(&body).expect("a JSON error");
            assert_eq!(body["errors"][0]["field"], field, "{query}");
        }
        let response = client
            .get("/bandits/api/flags/no-such-flag/events")
            .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::NotFound);
        let response = client
            .get("/bandits/api/flags/headline/events")
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Unauthorized);
    })
    .await;
}
