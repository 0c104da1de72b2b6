//! Referral partners as a site uses them, on SQLite and (with BANDITS_TEST_POSTGRES_URL)
//! PostgreSQL: visitors captured from partners' links, triggers fired by requests the
//! configuration names and by code, completions once per visitor and trigger, and their
//! callbacks in the outbox.

use bandits::engine::partners::{
    PartnerDefinition, Referral, SubscriptionDefinition, PLACEHOLDERS,
};
use bandits::engine::targeting::User;
use bandits::engine::visitor::VisitorState;
use bandits::store::{Store, StoreError};
use bandits::{Bandits, Flags, FlagsHandle};
use bandits_integration_tests::browser::{holding, remembered, Visitor, SECRET_KEY};
use bandits_integration_tests::{each_database, eventually};
use rocket::http::Status;
use rocket::local::asynchronous::Client;
use rocket::response::Redirect;
use rocket::{get, post, routes};
use sqlx::Row;

const NOW: i64 = 1_763_700_000_000;
const DAY: i64 = 24 * 60 * 60 * 1000;

#[get("/landing")]
fn landing() -> &'static str {
    "hello"
}

/// A signup form's answer: a redirect when it worked, 422 when it did not. No tracking
/// code: the configuration ties "User registered" to it.
#[post("/signup?<ok>")]
fn signup(ok: bool) -> Result<Redirect, Status> {
    if ok {
        Ok(Redirect::to("/landing"))
    } else {
        Err(Status::UnprocessableEntity)
    }
}

#[post("/checkout")]
fn checkout(flags: Flags<'_>) -> String {
    flags.fire("Order placed").to_string()
}

#[post("/newsletter")]
fn newsletter(flags: Flags<'_>) -> String {
    flags.fire("Newsletter").to_string()
}

#[get("/me")]
fn me(flags: Flags<'_>) -> String {
    flags.visitor_id().unwrap_or_default()
}

async fn start(url: &str, credit: &str, flush_ms: u64) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.flush_interval_ms", flush_ms))
        .merge(("bandits.partners.credit", credit))
        .merge((
            "bandits.triggers",
            rocket::figment::value::Value::from(vec![
                trigger(&[
                    ("name", "User registered"),
                    ("method", "POST"),
                    ("path", "/signup"),
                ]),
                trigger(&[("name", "Order placed")]),
                trigger(&[("name", "Newsletter"), ("enabled", "false")]),
            ]),
        ))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let rocket = rocket::custom(figment)
        .attach(
            Bandits::fairing().user(|request| request.headers().get_one("X-User").map(User::new)),
        )
        .mount("/", routes![landing, signup, checkout, newsletter, me]);
    Client::untracked(rocket).await.expect("the site ignites")
}

/// One `[[bandits.triggers]]` table.
fn trigger(fields: &[(&str, &str)]) -> rocket::figment::value::Value {
    let mut dict = rocket::figment::value::Dict::new();
    for (key, value) in fields {
        let value = match *value {
            "false" => rocket::figment::value::Value::from(false),
            text => rocket::figment::value::Value::from(text.to_string()),
        };
        dict.insert(key.to_string(), value);
    }
    rocket::figment::value::Value::from(dict)
}

async fn partner(store: &Store, name: &str, active: bool) -> String {
    let partner = PartnerDefinition {
        active,
        ..PartnerDefinition::new(name)
    }
    .validate()
    .expect("a valid partner");
    store.create_partner(&partner, NOW).await.unwrap().uid
}

async fn subscribe(store: &Store, uid: &str, trigger: &str) {
    let subscription = SubscriptionDefinition {
        partner: uid.to_string(),
        trigger: trigger.to_string(),
        callback_url: format!(
            "https://partner.example/track/?campaign=123&visitor_id={{visitor_id}}&t={{trigger}}&p={uid}"
        ),
    }
    .validate()
    .expect("a valid subscription");
    store.subscribe(&subscription, NOW).await.unwrap();
}

/// The outbox's rows: (visitor, trigger, partner, url), in visitor and trigger order.
async fn outbox(store: &Store) -> Vec<(String, String, String, String)> {
    sqlx::query(
        "SELECT visitor, trigger_name, partner, url FROM bandits_outbox
         ORDER BY visitor, trigger_name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| {
        (
            row.get::<String, _>(0),
            row.get::<String, _>(1),
            row.get::<String, _>(2),
            row.get::<String, _>(3),
        )
    })
    .collect()
}

async fn visitor_id(client: &Client, visitor: &mut Visitor) -> String {
    visitor.get(client, "/me").await.body
}

async fn referral_in_cookie(visitor: &Visitor) -> Option<Referral> {
    let cookie = visitor.cookie.clone()?;
    remembered(&[cookie])
        .await
        .pop()
        .flatten()?
        .referral()
        .cloned()
}

#[tokio::test]
async fn a_referred_visitor_completes_each_trigger_once_and_nobody_else_does() {
    each_database(|store, url| async move {
        let acme = partner(&store, "Acme", true).await;
        let other = partner(&store, "Other", true).await;
        let asleep = partner(&store, "Asleep", false).await;
        for trigger in ["User registered", "Order placed", "Newsletter"] {
            subscribe(&store, &acme, trigger).await;
            subscribe(&store, &asleep, trigger).await;
        }
        let client = start(&url, "first", 60_000).await;

        // Captured from the link, kept in the cookie; the first partner keeps the credit.
        let mut referred = Visitor::browser();
        let landed = referred
            .get(&client, &format!("/landing?x=1&affiliate_id={acme}"))
            .await;
        assert_eq!(landed.status, Status::Ok);
        assert!(landed.set_cookie.is_some(), "the referral is remembered");
        assert_eq!(referral_in_cookie(&referred).await.unwrap().partner, acme);
        let again = referred
            .get(&client, &format!("/landing?affiliate_id={other}"))
            .await;
        assert!(
            again.set_cookie.is_none(),
            "the first partner keeps the visitor"
        );
        let id = visitor_id(&client, &mut referred).await;
        assert_eq!(
            store.referral(&id).await.unwrap(),
            None,
            "written at the flush"
        );

        // Fired by configuration (POST /signup answered 303), twice; by code, once; a
        // disabled trigger fires nothing.
        for _ in 0..2 {
            let answer = referred.send(&client, "POST", "/signup?ok=true").await;
            assert_eq!(answer.status, Status::SeeOther);
        }
        assert_eq!(
            referred.send(&client, "POST", "/checkout").await.body,
            "true"
        );
        assert_eq!(
            referred.send(&client, "POST", "/newsletter").await.body,
            "false"
        );

        // Nothing for: an inactive partner, an unknown uid, a bot, a 4xx answer.
        let mut inactive = Visitor::browser();
        let answer = inactive
            .get(&client, &format!("/landing?affiliate_id={asleep}"))
            .await;
        assert!(answer.set_cookie.is_none());
        inactive.send(&client, "POST", "/signup?ok=true").await;
        let mut unknown = Visitor::browser();
        assert!(unknown
            .get(&client, "/landing?affiliate_id=Zzzzzzz9")
            .await
            .set_cookie
            .is_none());
        let mut bot = Visitor {
            user_agent: Some("Googlebot/2.1 (+http://www.google.com/bot.html)"),
            ..Visitor::browser()
        };
        assert!(bot
            .get(&client, &format!("/landing?affiliate_id={acme}"))
            .await
            .set_cookie
            .is_none());
        bot.send(&client, "POST", "/signup?ok=true").await;
        let mut refused = Visitor::browser();
        refused
            .get(&client, &format!("/landing?affiliate_id={acme}"))
            .await;
        let refused_id = visitor_id(&client, &mut refused).await;
        let answer = refused.send(&client, "POST", "/signup?ok=false").await;
        assert_eq!(answer.status, Status::UnprocessableEntity);

        client.terminate().await;

        let stored = store
            .referral(&id)
            .await
            .unwrap()
            .expect("written at the flush");
        assert_eq!(stored.referral.partner, acme);
        assert_eq!(stored.entry, format!("/landing?x=1&affiliate_id={acme}"));
        assert!(store.referral(&refused_id).await.unwrap().is_some());
        let completions = store.completions(None).await.unwrap();
        let mut done: Vec<(&str, &str, &str)> = completions
            .iter()
            .map(|c| (c.visitor.as_str(), c.trigger.as_str(), c.partner.as_str()))
            .collect();
        done.sort();
        assert_eq!(
            done,
            [
                (id.as_str(), "Order placed", acme.as_str()),
                (id.as_str(), "User registered", acme.as_str()),
            ]
        );
        assert_eq!(completions.len(), 2, "{done:?}");
        let sent = outbox(&store).await;
        assert_eq!(sent.len(), 2, "one callback per completion: {sent:?}");
        assert_eq!(
            sent[1].3,
            format!(
                "https://partner.example/track/?campaign=123&visitor_id={id}\
                 &t=User%20registered&p={acme}"
            )
        );
        assert!(sent.iter().all(|row| row.0 == id && row.2 == acme));
    })
    .await;
}

#[tokio::test]
async fn last_credit_goes_to_the_latest_link_and_an_unsubscribed_trigger_pays_no_one() {
    each_database(|store, url| async move {
        let acme = partner(&store, "Acme", true).await;
        let other = partner(&store, "Other", true).await;
        subscribe(&store, &acme, "User registered").await;
        let client = start(&url, "last", 60_000).await;

        // Acme, then Other: Other's visitor, and Other subscribes to nothing.
        let mut to_other = Visitor::browser();
        to_other
            .get(&client, &format!("/landing?affiliate_id={acme}"))
            .await;
        let answer = to_other
            .get(&client, &format!("/landing?affiliate_id={other}"))
            .await;
        assert!(answer.set_cookie.is_some());
        assert_eq!(referral_in_cookie(&to_other).await.unwrap().partner, other);
        to_other.send(&client, "POST", "/signup?ok=true").await;
        let other_id = visitor_id(&client, &mut to_other).await;

        // Other, then Acme: Acme's, and Acme is paid for the signup.
        let mut to_acme = Visitor::browser();
        to_acme
            .get(&client, &format!("/landing?affiliate_id={other}"))
            .await;
        to_acme
            .get(&client, &format!("/landing?affiliate_id={acme}"))
            .await;
        to_acme.send(&client, "POST", "/signup?ok=true").await;
        // Order placed: Acme does not subscribe to it.
        assert_eq!(
            to_acme.send(&client, "POST", "/checkout").await.body,
            "false"
        );
        let acme_id = visitor_id(&client, &mut to_acme).await;
        client.terminate().await;

        assert_eq!(
            store
                .referral(&other_id)
                .await
                .unwrap()
                .unwrap()
                .referral
                .partner,
            other
        );
        assert_eq!(
            store
                .referral(&acme_id)
                .await
                .unwrap()
                .unwrap()
                .referral
                .partner,
            acme
        );
        let completions = store.completions(None).await.unwrap();
        assert_eq!(completions.len(), 1, "{completions:?}");
        assert_eq!(completions[0].visitor, acme_id);
        assert_eq!(completions[0].trigger, "User registered");
        assert_eq!(outbox(&store).await.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn an_expired_referral_completes_nothing() {
    each_database(|store, url| async move {
        let acme = partner(&store, "Acme", true).await;
        subscribe(&store, &acme, "Order placed").await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let mut states = Vec::new();
        for days in [31, 29] {
            let mut state = VisitorState::new(&mut rand::rng());
            state.set_referral(Some(Referral {
                partner: acme.clone(),
                referred_at: now - days * DAY,
            }));
            states.push(state);
        }
        let mut visitors = holding(&states).await;
        let client = start(&url, "first", 60_000).await;
        assert_eq!(
            visitors[0].send(&client, "POST", "/checkout").await.body,
            "false"
        );
        assert_eq!(
            visitors[1].send(&client, "POST", "/checkout").await.body,
            "true"
        );
        client.terminate().await;
        let completions = store.completions(None).await.unwrap();
        assert_eq!(completions.len(), 1);
        assert_eq!(completions[0].visitor, states[1].id());
    })
    .await;
}

/// A payment confirmed later by a webhook: code outside any request fires the trigger by
/// the visitor's id, on two instances sharing the database, twice each: one completion,
/// one callback.
#[tokio::test]
async fn a_background_job_completes_a_trigger_once_across_instances() {
    each_database(|store, url| async move {
        let acme = partner(&store, "Acme", true).await;
        subscribe(&store, &acme, "Order placed").await;
        let site = start(&url, "first", 60_000).await;
        let mut referred = Visitor::browser();
        referred
            .get(&site, &format!("/landing?affiliate_id={acme}"))
            .await;
        let id = visitor_id(&site, &mut referred).await;
        let mut plain = Visitor::browser();
        plain.get(&site, "/landing").await;
        let plain_id = visitor_id(&site, &mut plain).await;
        site.terminate().await;

        let first = start(&url, "first", 60_000).await;
        let second = start(&url, "first", 60_000).await;
        for client in [&first, &second] {
            let handle = client.rocket().state::<FlagsHandle>().unwrap();
            assert!(handle.fire(&id, "Order placed"));
            assert!(
                !handle.fire(&id, "Order placed"),
                "a repeat is refused at once"
            );
            assert!(
                handle.fire(&plain_id, "Order placed"),
                "resolved at the flush"
            );
            assert!(!handle.fire(&id, "Newsletter"), "disabled");
            assert!(!handle.fire(&id, "No such trigger"));
            assert!(!handle.fire("not-an-id", "Order placed"));
        }
        let (a, b) = tokio::join!(first.terminate(), second.terminate());
        drop((a, b));
        let completions = store.completions(None).await.unwrap();
        assert_eq!(completions.len(), 1, "{completions:?}");
        assert_eq!(completions[0].visitor, id);
        let sent = outbox(&store).await;
        assert_eq!(sent.len(), 1, "{sent:?}");
    })
    .await;
}

/// Partners and subscriptions edited in the store reach a running site at its next
/// flush, as flag edits do.
#[tokio::test]
async fn a_deactivated_partner_stops_registering_at_the_next_flush() {
    each_database(|store, url| async move {
        let acme = partner(&store, "Acme", true).await;
        let client = start(&url, "first", 50).await;
        let link = format!("/landing?affiliate_id={acme}");
        assert!(Visitor::browser()
            .get(&client, &link)
            .await
            .set_cookie
            .is_some());
        let version = store.config_version().await.unwrap();
        store.deactivate_partner(&acme, NOW).await.unwrap();
        assert!(store.config_version().await.unwrap() > version);
        assert!(
            eventually(|| async {
                Visitor::browser()
                    .get(&client, &link)
                    .await
                    .set_cookie
                    .is_none()
            })
            .await
        );
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn partners_and_subscriptions_are_created_edited_listed_and_checked() {
    each_database(|store, _url| async move {
        let acme = partner(&store, "Acme", true).await;
        assert!(bandits::engine::partners::is_uid(&acme));
        let renamed = PartnerDefinition {
            note: "the spring deal".into(),
            ..PartnerDefinition::new("Acme Ads")
        }
        .validate()
        .unwrap();
        let stored = store.update_partner(&acme, &renamed, NOW + 1).await.unwrap();
        assert_eq!(stored.partner.name(), "Acme Ads");
        assert_eq!(stored.updated_at, NOW + 1);
        assert!(!store
            .deactivate_partner(&acme, NOW + 2)
            .await
            .unwrap()
            .partner
            .active());
        assert!(matches!(
            store.partner("Nobody00").await,
            Err(StoreError::NoPartner(_))
        ));
        assert_eq!(store.partners().await.unwrap().len(), 1);

        subscribe(&store, &acme, "User registered").await;
        let definition = SubscriptionDefinition {
            partner: acme.clone(),
            trigger: "User registered".into(),
            callback_url: format!(
                "https://partner.example/track/?campaign=123&visitor_id={{visitor_id}}&t={{trigger}}&p={acme}"
            ),
        };
        let twice = definition.clone().validate().unwrap();
        assert!(matches!(
            store.subscribe(&twice, NOW).await,
            Err(StoreError::SubscriptionExists { .. })
        ));
        let orphan = SubscriptionDefinition {
            partner: "Nobody00".into(),
            ..definition.clone()
        }
        .validate()
        .unwrap();
        assert!(matches!(
            store.subscribe(&orphan, NOW).await,
            Err(StoreError::NoPartner(_))
        ));
        let listed = store.subscriptions().await.unwrap();
        assert_eq!(listed.len(), 1);
        let moved = SubscriptionDefinition {
            trigger: "Order placed".into(),
            ..definition
        }
        .validate()
        .unwrap();
        let updated = store
            .update_subscription(listed[0].id, &moved, NOW)
            .await
            .unwrap();
        assert_eq!(updated.subscription.trigger(), "Order placed");
        store.unsubscribe(listed[0].id).await.unwrap();
        assert!(matches!(
            store.unsubscribe(listed[0].id).await,
            Err(StoreError::NoSubscription(_))
        ));

        // A malformed callback URL is refused before the store, with the field named.
        for url in [
            "https://partner.example/track/",
            "ftp://partner.example/{visitor_id}",
            "https://partner.example/{nope}/{visitor_id}",
            "not a url {visitor_id}",
        ] {
            let errors = SubscriptionDefinition {
                partner: acme.clone(),
                trigger: "User registered".into(),
                callback_url: url.into(),
            }
            .validate()
            .unwrap_err();
            assert_eq!(errors.len(), 1, "{url}");
            assert_eq!(errors[0].field, "callback_url", "{url}");
        }
        assert!(PLACEHOLDERS.contains(&"visitor_id"));
    })
    .await;
}

/// The user hook's user is kept with the referral: known when the link is followed, or
/// linked when a trigger fires for the visitor once signed in, or at the first request
/// the plugin looks at once they sign in; the first user linked stays.
#[tokio::test]
async fn the_signed_in_user_is_linked_to_the_referral() {
    each_database(|store, url| async move {
        let acme = partner(&store, "Acme", true).await;
        subscribe(&store, &acme, "Order placed").await;
        let client = start(&url, "first", 60_000).await;
        let link = format!("/landing?affiliate_id={acme}");
        let mut signed_in = Visitor {
            headers: vec![("X-User", "bob".to_string())],
            ..Visitor::browser()
        };
        signed_in.get(&client, &link).await;
        let bob = visitor_id(&client, &mut signed_in).await;
        let mut later = Visitor::browser();
        later.get(&client, &link).await;
        let alice = visitor_id(&client, &mut later).await;
        let mut carol_browser = Visitor::browser();
        carol_browser.get(&client, &link).await;
        let carol = visitor_id(&client, &mut carol_browser).await;
        client.terminate().await;
        assert_eq!(
            store.referral(&bob).await.unwrap().unwrap().user.as_deref(),
            Some("bob")
        );
        assert_eq!(store.referral(&alice).await.unwrap().unwrap().user, None);

        let client = start(&url, "first", 60_000).await;
        later.headers.push(("X-User", "alice".to_string()));
        assert_eq!(later.send(&client, "POST", "/checkout").await.body, "true");
        // Signed in, no trigger: a request that reads a flag links the user.
        carol_browser.headers.push(("X-User", "carol".to_string()));
        assert_eq!(visitor_id(&client, &mut carol_browser).await, carol);
        client.terminate().await;
        assert_eq!(
            store
                .referral(&carol)
                .await
                .unwrap()
                .unwrap()
                .user
                .as_deref(),
            Some("carol")
        );
        // Someone else signing in with the same cookie later does not take it over.
        let client = start(&url, "first", 60_000).await;
        carol_browser.headers = vec![("X-User", "mallory".to_string())];
        visitor_id(&client, &mut carol_browser).await;
        client.terminate().await;
        assert_eq!(
            store
                .referral(&carol)
                .await
                .unwrap()
                .unwrap()
                .user
                .as_deref(),
            Some("carol")
        );
        assert_eq!(
            store
                .referral(&alice)
                .await
                .unwrap()
                .unwrap()
                .user
                .as_deref(),
            Some("alice")
        );
    })
    .await;
}
