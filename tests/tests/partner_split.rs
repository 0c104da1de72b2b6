//! A flag's statistics split by the referral partner who sent its visitors, on SQLite and
//! (with BANDITS_TEST_POSTGRES_URL) PostgreSQL: counted at the view, the conversion
//! following it, in the API (`?by=partner`), the admin's flag page and the activity log.

use bandits::api::AdminCheck;
use bandits::engine::partners::PartnerDefinition;
use bandits::engine::{FlagDefinition, Policy};
use bandits::store::{EventKind, EventQuery, Store};
use bandits::Bandits;
use bandits_integration_tests::browser::{Visitor, SECRET_KEY, TOKEN};
use bandits_integration_tests::each_database;
use rocket::http::{Header, Status};
use rocket::local::asynchronous::Client;
use rocket::serde::json::Value;
use rocket::{get, routes};
use sqlx::Row;

const NOW: i64 = 1_763_700_000_000;

#[get("/")]
fn home() -> &'static str {
    "home"
}

#[get("/contact")]
fn contact() -> &'static str {
    "contact"
}

/// The site, flushing only at shutdown so that what a test counts is exact.
async fn start(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("bandits.flush_interval_ms", 60_000))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let rocket = rocket::custom(figment)
        .attach(Bandits::fairing())
        .manage(AdminCheck::new(|request| {
            request.headers().get_one("X-Staff") == Some("yes")
        }))
        .mount("/", routes![home, contact]);
    Client::untracked(rocket).await.expect("the site ignites")
}

async fn partner(store: &Store, name: &str) -> String {
    let partner = PartnerDefinition::new(name)
        .validate()
        .expect("a valid partner");
    store.create_partner(&partner, NOW).await.unwrap().uid
}

/// Every visitor on the `on` arm, so each count lands where the test expects it.
async fn headline(store: &Store) {
    let flag = FlagDefinition::new("headline")
        .with_policy(Policy::Split {
            weights: vec![0.0, 1.0],
        })
        .with_paths("/", "/contact")
        .validate()
        .expect("a valid flag");
    store.create_flag(&flag, NOW).await.unwrap();
}

async fn api(client: &Client, path: &str) -> (Status, Value) {
    let response = client
        .get(path.to_string())
        .header(Header::new("Authorization", format!("Bearer {TOKEN}")))
        .dispatch()
        .await;
    let status = response.status();
    let body = response.into_json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// The `on` arm's (views, conversions) in the segment of partner `uid` (`None`: no
/// partner).
fn on_arm(stats: &Value, uid: Option<&str>) -> (u64, u64) {
    let segment = stats["by_partner"]
        .as_array()
        .expect("by_partner is a list")
        .iter()
        .find(|segment| segment["partner"].as_str() == uid)
        .unwrap_or_else(|| panic!("no segment for {uid:?} in {stats}"));
    let arm = &segment["arms"][1];
    assert_eq!(arm["arm"], "on");
    (
        arm["views"].as_u64().unwrap(),
        arm["conversions"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn a_flags_numbers_split_by_the_partner_who_sent_each_visitor() {
    each_database(|store, url| async move {
        headline(&store).await;
        let acme = partner(&store, "Acme").await;
        let other = partner(&store, "Other & Sons").await;
        let client = start(&url).await;

        // Sent by Acme: the view and the conversion count for Acme.
        let mut from_acme = Visitor::browser();
        from_acme
            .get(&client, &format!("/?affiliate_id={acme}"))
            .await;
        from_acme.get(&client, "/contact").await;
        // Sent by Other: a view only.
        let mut from_other = Visitor::browser();
        from_other
            .get(&client, &format!("/?affiliate_id={other}"))
            .await;
        // Nobody's.
        let mut direct = Visitor::browser();
        direct.get(&client, "/").await;
        // Counted as a view before Acme referred them: the conversion follows the view,
        // so both count for no partner.
        let mut late = Visitor::browser();
        late.get(&client, "/").await;
        late.get(&client, &format!("/?affiliate_id={acme}")).await;
        late.get(&client, "/contact").await;
        // The instance's status counts the referrals waiting for the flush.
        let (_, status) = api(&client, "/bandits/api/status").await;
        assert_eq!(status["pending"]["referrals"], 3, "{status}");
        assert_eq!(status["pending"]["firings"], 0);
        assert_eq!(status["dropped_partner_rows"], 0);
        client.terminate().await;

        let client = start(&url).await;
        let (status, stats) = api(&client, "/bandits/api/flags/headline/stats?by=partner").await;
        assert_eq!(status, Status::Ok, "{stats}");
        assert_eq!(stats["arms"][1]["views"], 4);
        assert_eq!(stats["arms"][1]["conversions"], 2);
        assert_eq!(on_arm(&stats, Some(&acme)), (1, 1));
        assert_eq!(on_arm(&stats, Some(&other)), (1, 0));
        assert_eq!(on_arm(&stats, None), (2, 1));
        let segments = stats["by_partner"].as_array().unwrap();
        assert_eq!(segments.len(), 3, "two partners, then no partner: {stats}");
        assert!(segments.last().unwrap()["partner"].is_null());
        let acme_segment = segments
            .iter()
            .find(|segment| segment["partner"] == acme.as_str())
            .unwrap();
        assert_eq!(acme_segment["name"], "Acme");
        assert_eq!(acme_segment["arms"][1]["rate"], 1.0);

        // Without `by`, the statistics are as they were; a `by` it does not know is
        // refused with the field named.
        let (_, plain) = api(&client, "/bandits/api/flags/headline/stats").await;
        assert!(plain.get("by_partner").is_none(), "{plain}");
        let (status, refused) = api(&client, "/bandits/api/flags/headline/stats?by=month").await;
        assert_eq!(status, Status::UnprocessableEntity);
        assert_eq!(refused["errors"][0]["field"], "by", "{refused}");

        // The admin's flag page shows the split, partners' names escaped.
        let page =
            bandits_integration_tests::admin::staff_page(&client, "/bandits/admin/flags/headline")
                .await;
        assert!(page.contains("By referral partner"), "{page}");
        assert!(page.contains("Other &amp; Sons"));
        assert!(page.contains(&format!("/bandits/admin/partners/{acme}")));
        assert!(page.contains("no partner"));

        // The activity log says whose each count is.
        let logged = store
            .events(&EventQuery {
                flag: Some("headline".into()),
                ..EventQuery::default()
            })
            .await
            .unwrap();
        let partners_of = |kind: EventKind| {
            let mut partners: Vec<Option<String>> = logged
                .iter()
                .filter(|logged| logged.event.kind == kind)
                .map(|logged| logged.event.partner.clone())
                .collect();
            partners.sort();
            partners
        };
        let mut views = vec![None, None, Some(acme.clone()), Some(other.clone())];
        views.sort();
        assert_eq!(partners_of(EventKind::Exposure), views);
        assert_eq!(
            partners_of(EventKind::Conversion),
            [None, Some(acme.clone())]
        );

        // A reset starts the split afresh with the counters.
        store.reset_flag("headline", NOW + 1).await.unwrap();
        let left: i64 = sqlx::query("SELECT COUNT(*) FROM bandits_partner_arms")
            .fetch_one(store.pool())
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "the old epoch's split is removed");
        let client = start(&url).await;
        let (_, stats) = api(&client, "/bandits/api/flags/headline/stats?by=partner").await;
        assert_eq!(stats["by_partner"].as_array().map(Vec::len), Some(1));
        assert_eq!(on_arm(&stats, None), (0, 0));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_database_from_before_the_split_gains_the_log_column_and_keeps_its_entries() {
    each_database(|store, url| async move {
        // The activity log as it was before it kept partners, with one entry.
        sqlx::query("ALTER TABLE bandits_events DROP COLUMN partner")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO bandits_events (at, kind, visitor, flag, epoch, arm, path)
             VALUES (1, 'exposure', 'v1', 'headline', 0, 'on', '/')",
        )
        .execute(store.pool())
        .await
        .unwrap();

        let again = Store::connect(&url).await.expect("the store opens");
        again
            .migrate()
            .await
            .expect("the migration adds the column");
        let logged = again.events(&EventQuery::default()).await.unwrap();
        assert_eq!(logged.len(), 1);
        assert_eq!(logged[0].event.visitor, "v1");
        assert_eq!(logged[0].event.partner, None);
        // Migrating again changes nothing.
        again.migrate().await.expect("migrating is idempotent");
    })
    .await;
}
