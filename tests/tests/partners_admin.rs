//! The admin's referral partners and triggers, as an admin uses them in a browser, on
//! SQLite and (with BANDITS_TEST_POSTGRES_URL) PostgreSQL: the partners list with its
//! counts, the partner and subscription forms refused by field, "retry now", CSRF and
//! sign-in, escaping, and the trigger switch that stops (and restarts) completions.

use bandits::engine::backoff::Next;
use bandits::engine::partners::{PartnerDefinition, SubscriptionDefinition};
use bandits::engine::FieldError;
use bandits::store::{Callback, DeliveryState, Outcome, Store};
use bandits::{Bandits, FlagsHandle};
use bandits_integration_tests::admin::{self, location, ADMIN};
use bandits_integration_tests::browser::{Visitor, SECRET_KEY, TOKEN};
use bandits_integration_tests::{each_database, eventually};
use rocket::figment::value::{Dict, Value as ConfigValue};
use rocket::http::{Cookie, RawStr, Status};
use rocket::local::asynchronous::Client;
use rocket::response::Redirect;
use rocket::{get, post, routes};

const NOW: i64 = 1_763_700_000_000;

#[get("/landing")]
fn landing() -> &'static str {
    "hello"
}

#[post("/signup")]
fn signup() -> Redirect {
    Redirect::to("/landing")
}

#[post("/newsletter")]
fn newsletter() -> &'static str {
    "subscribed"
}

/// A site with three triggers: "User registered" (`POST /signup`), "Order placed" (code
/// only) and "Newsletter" (`POST /newsletter`, disabled in the configuration). It flushes
/// often; its callback sender looks for due callbacks once a minute only, so a callback
/// made due by the admin stays as the admin left it while the test reads it.
async fn site(url: &str) -> Client {
    site_with(
        url,
        vec![
            trigger(&[
                ("name", "User registered".into()),
                ("method", "POST".into()),
                ("path", "/signup".into()),
            ]),
            trigger(&[("name", "Order placed".into())]),
            newsletter_trigger(),
        ],
    )
    .await
}

/// A trigger of `bandits.triggers`.
fn trigger(fields: &[(&str, ConfigValue)]) -> ConfigValue {
    let mut dict = Dict::new();
    for (key, value) in fields {
        dict.insert(key.to_string(), value.clone());
    }
    ConfigValue::from(dict)
}

/// "Newsletter": `POST /newsletter`, disabled in the configuration.
fn newsletter_trigger() -> ConfigValue {
    trigger(&[
        ("name", "Newsletter".into()),
        ("method", "POST".into()),
        ("path", "/newsletter".into()),
        ("enabled", false.into()),
    ])
}

/// The test site with `triggers` only.
async fn site_with(url: &str, triggers: Vec<ConfigValue>) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", TOKEN))
        .merge(("bandits.flush_interval_ms", 20))
        .merge(("bandits.callbacks.poll_interval_ms", 60_000))
        .merge(("bandits.triggers", ConfigValue::from(triggers)))
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    let rocket = rocket::custom(figment)
        .attach(Bandits::fairing())
        .mount("/", routes![landing, signup, newsletter]);
    // Untracked: the admin's session and each visitor's cookie are sent by hand.
    Client::untracked(rocket).await.expect("the site ignites")
}

/// The address the admin's browser connects from.
const ADDRESS: &str = "192.0.2.7:4000";

/// A signed-in admin's browser: its session cookie and its forms' CSRF token.
struct Browser<'c> {
    client: &'c Client,
    csrf: String,
    session: Cookie<'static>,
}

/// What a page or a post answered.
struct Answer {
    status: Status,
    location: Option<String>,
    body: String,
}

/// `fields` as a form body, each value percent-encoded.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(key, value)| format!("{key}={}", RawStr::new(value).percent_encode()))
        .collect::<Vec<_>>()
        .join("&")
}

/// `text` as maud writes it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The message of `errors`' problem with `field`, as the page shows it beside the field.
fn beside(errors: &[FieldError], field: &str) -> String {
    let error = errors
        .iter()
        .find(|error| error.field == field)
        .unwrap_or_else(|| panic!("a problem with {field}: {errors:?}"));
    format!(
        "<span class=\"error\" role=\"alert\">{}</span>",
        escaped(&error.rule.to_string())
    )
}

impl<'c> Browser<'c> {
    async fn sign_in(client: &'c Client) -> Browser<'c> {
        let (csrf, session) = admin::signed_in(client, TOKEN).await;
        Browser {
            client,
            csrf,
            session,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        let response = self
            .client
            .get(format!("{ADMIN}{path}"))
            .cookie(self.session.clone())
            .dispatch()
            .await;
        let status = response.status();
        let location = location(&response);
        let body = response.into_string().await.unwrap_or_default();
        Answer {
            status,
            location,
            body,
        }
    }

    /// Posts `fields` with the CSRF token.
    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_body(path, form(&all)).await
    }

    async fn post_body(&self, path: &str, body: String) -> Answer {
        let response =
            admin::post_form(self.client, ADDRESS, path, body, Some(&self.session), None).await;
        let status = response.status();
        let location = location(&response);
        let body = response.into_string().await.unwrap_or_default();
        Answer {
            status,
            location,
            body,
        }
    }
}

/// A callback URL to a closed port: every try fails at once.
fn callback_url(uid: &str) -> String {
    format!("http://127.0.0.1:9/track/?visitor_id={{visitor_id}}&p={uid}")
}

async fn partner(store: &Store, name: &str) -> String {
    let partner = PartnerDefinition::new(name)
        .validate()
        .expect("a valid partner");
    store.create_partner(&partner, NOW).await.unwrap().uid
}

async fn subscribe(store: &Store, uid: &str, trigger: &str) {
    let subscription = SubscriptionDefinition {
        partner: uid.to_string(),
        trigger: trigger.to_string(),
        callback_url: callback_url(uid),
    }
    .validate()
    .expect("a valid subscription");
    store.subscribe(&subscription, NOW).await.unwrap();
}

/// A visitor who followed partner `uid`'s link.
async fn referred(client: &Client, uid: &str) -> Visitor {
    let mut visitor = Visitor::browser();
    let landed = visitor
        .get(client, &format!("/landing?affiliate_id={uid}"))
        .await;
    assert!(
        landed.set_cookie.is_some(),
        "the link registers the visitor"
    );
    visitor
}

/// The triggers visitor `visitor` completed, by name.
async fn completed(store: &Store, visitor: &str) -> Vec<String> {
    let mut names: Vec<String> = store
        .completions(Some(visitor))
        .await
        .unwrap()
        .into_iter()
        .map(|completion| completion.trigger)
        .collect();
    names.sort();
    names
}

/// The visitors partner `uid` referred, once the flush has written `count` of them.
async fn referred_ids(store: &Store, uid: &str, count: usize) -> Vec<String> {
    let written =
        eventually(|| async { store.referrals_of(uid, 10).await.unwrap().len() >= count }).await;
    assert!(written, "the referrals are written");
    store
        .referrals_of(uid, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|referral| referral.visitor)
        .collect()
}

#[tokio::test]
async fn the_partners_list_shows_each_partner_with_its_counts() {
    each_database(|store: Store, url| async move {
        let acme = partner(&store, "Acme ads").await;
        subscribe(&store, &acme, "User registered").await;
        let idle = partner(&store, "Idle partner").await;
        store.deactivate_partner(&idle, NOW).await.unwrap();
        let client = site(&url).await;

        let mut visitor = referred(&client, &acme).await;
        visitor.send(&client, "POST", "/signup").await;
        let counted = eventually(|| async {
            let totals = store.partner_totals().await.unwrap();
            totals.get(&acme).is_some_and(|t| t.pending == 1)
        })
        .await;
        assert!(counted, "the signup completed and wrote a callback");

        let browser = Browser::sign_in(&client).await;
        let flags = browser.get("/").await;
        assert!(
            flags
                .body
                .contains(&format!("href=\"{ADMIN}/partners\">Partners</a>")),
            "the header links to the partners"
        );
        assert!(flags
            .body
            .contains(&format!("href=\"{ADMIN}/triggers\">Triggers</a>")));

        let list = browser.get("/partners").await;
        assert_eq!(list.status, Status::Ok);
        let page = list.body;
        assert!(
            page.contains(&format!("href=\"{ADMIN}/partners/new\"")),
            "a link to create one"
        );
        let row = page
            .split("<tr>")
            .find(|row| row.contains(&format!("<code>{acme}</code>")))
            .expect("Acme's row");
        assert!(row.contains("Acme ads"), "{row}");
        assert!(
            row.contains("<span class=\"badge won\">active</span>"),
            "{row}"
        );
        assert!(row.contains("data-label=\"Referred\">1</td>"), "{row}");
        assert!(row.contains("<div>User registered: 1</div>"), "{row}");
        assert!(row.contains("data-label=\"Pending\">1</td>"), "{row}");
        assert!(row.contains("data-label=\"Delivered\">0</td>"), "{row}");
        assert!(row.contains("data-label=\"Given up\">0</td>"), "{row}");
        let idle_row = page
            .split("<tr>")
            .find(|row| row.contains(&format!("<code>{idle}</code>")))
            .expect("the idle partner's row");
        assert!(idle_row.contains("inactive"), "{idle_row}");
        assert!(
            idle_row.contains("data-label=\"Referred\">0</td>"),
            "{idle_row}"
        );

        // The partner's page: its link, its subscription, its visitor, its callback.
        let page = browser.get(&format!("/partners/{acme}")).await;
        assert_eq!(page.status, Status::Ok);
        assert!(
            page.body.contains(&format!("/?affiliate_id={acme}")),
            "{}",
            page.body
        );
        let subscription = &store.subscriptions().await.unwrap()[0].subscription;
        assert!(page
            .body
            .contains(&escaped(subscription.callback_url().as_str())));
        let visitor_id = referred_ids(&store, &acme, 1).await.remove(0);
        assert!(page.body.contains(&format!("<code>{visitor_id}</code>")));
        assert!(page.body.contains("<code>/landing?affiliate_id="));
        assert!(page.body.contains("<span class=\"badge \">pending</span>"));
        assert!(
            page.body.contains("Retry now"),
            "a pending callback can be retried"
        );
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn partners_are_created_edited_and_deactivated_through_forms() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let browser = Browser::sign_in(&client).await;
        let new = browser.get("/partners/new").await;
        assert_eq!(new.status, Status::Ok);
        assert!(
            new.body.contains("name=\"active\" value=\"true\" checked"),
            "active by default"
        );

        // Refused by field: nothing is saved, the message is beside the field.
        let refused = browser
            .post(
                "/partners/new",
                &[("name", " "), ("note", "kept"), ("active", "true")],
            )
            .await;
        assert_eq!(refused.status, Status::UnprocessableEntity);
        let errors = PartnerDefinition::new(" ").validate().unwrap_err();
        assert!(
            refused.body.contains(&beside(&errors, "name")),
            "{}",
            refused.body
        );
        assert!(
            refused.body.contains(">kept</textarea>"),
            "the form keeps what was typed"
        );
        let long_note = "n".repeat(20_000);
        let refused = browser
            .post("/partners/new", &[("name", "Acme"), ("note", &long_note)])
            .await;
        assert_eq!(refused.status, Status::UnprocessableEntity);
        let errors = PartnerDefinition {
            note: long_note.clone(),
            ..PartnerDefinition::new("Acme")
        }
        .validate()
        .unwrap_err();
        assert!(refused.body.contains(&beside(&errors, "note")));
        assert!(
            store.partners().await.unwrap().is_empty(),
            "nothing was saved"
        );

        let created = browser
            .post(
                "/partners/new",
                &[
                    ("name", "Acme ads"),
                    ("note", "10% of orders"),
                    ("active", "true"),
                ],
            )
            .await;
        assert_eq!(created.status, Status::SeeOther, "{}", created.body);
        let partners = store.partners().await.unwrap();
        assert_eq!(partners.len(), 1);
        let uid = partners[0].uid.clone();
        assert_eq!(uid.len(), 8);
        assert!(uid.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(
            created.location.as_deref(),
            Some(format!("{ADMIN}/partners/{uid}").as_str())
        );
        assert_eq!(partners[0].partner.name(), "Acme ads");
        assert_eq!(partners[0].partner.note(), "10% of orders");
        assert!(partners[0].partner.active());
        let list = browser.get("/partners").await;
        assert!(list.body.contains(&format!("<code>{uid}</code>")));
        assert!(list.body.contains("Acme ads"));

        // Seen at once by this instance: its link registers visitors.
        referred(&client, &uid).await;

        // Edit: the form shows the partner; unticking "active" deactivates it.
        let edit = browser.get(&format!("/partners/{uid}/edit")).await;
        assert_eq!(edit.status, Status::Ok);
        assert!(edit.body.contains("value=\"Acme ads\""));
        let refused = browser
            .post(
                &format!("/partners/{uid}/edit"),
                &[("name", ""), ("active", "true")],
            )
            .await;
        assert_eq!(refused.status, Status::UnprocessableEntity);
        assert_eq!(
            store.partner(&uid).await.unwrap().partner.name(),
            "Acme ads"
        );
        let saved = browser
            .post(
                &format!("/partners/{uid}/edit"),
                &[("name", "Acme"), ("note", "")],
            )
            .await;
        assert_eq!(saved.status, Status::SeeOther, "{}", saved.body);
        let stored = store.partner(&uid).await.unwrap();
        assert_eq!(stored.partner.name(), "Acme");
        assert_eq!(stored.partner.note(), "");
        assert!(!stored.partner.active(), "deactivated");
        let page = browser.get(&format!("/partners/{uid}")).await;
        assert!(page
            .body
            .contains("<span class=\"badge switched\">inactive</span>"));
        // Seen at once: its link registers no one now.
        let mut late = Visitor::browser();
        let landed = late
            .get(&client, &format!("/landing?affiliate_id={uid}"))
            .await;
        assert!(
            landed.set_cookie.is_none(),
            "an inactive partner's link is ignored"
        );

        let saved = browser
            .post(
                &format!("/partners/{uid}/edit"),
                &[("name", "Acme"), ("active", "true")],
            )
            .await;
        assert_eq!(saved.status, Status::SeeOther);
        assert!(
            store.partner(&uid).await.unwrap().partner.active(),
            "active again"
        );

        for path in ["/partners/Zzzzzzz9", "/partners/Zzzzzzz9/edit"] {
            assert_eq!(browser.get(path).await.status, Status::NotFound, "{path}");
        }
        let missing = browser
            .post("/partners/Zzzzzzz9/edit", &[("name", "Ghost")])
            .await;
        assert_eq!(missing.status, Status::NotFound);
        assert_eq!(store.partners().await.unwrap().len(), 1);
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn subscriptions_are_added_edited_and_deleted_and_refused_by_field() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let uid = partner(&store, "Acme").await;
        let other = partner(&store, "Other").await;
        let browser = Browser::sign_in(&client).await;
        let new_path = format!("/partners/{uid}/subscriptions/new");

        let new = browser.get(&new_path).await;
        assert_eq!(new.status, Status::Ok);
        for trigger in ["User registered", "Order placed", "Newsletter"] {
            assert!(
                new.body.contains(&format!("<option value=\"{trigger}\"")),
                "{trigger} is offered"
            );
        }

        let bad_url = "ftp://partner.example/{visitor_id}";
        let refused = browser
            .post(
                &new_path,
                &[("trigger", "Order placed"), ("callback_url", bad_url)],
            )
            .await;
        assert_eq!(refused.status, Status::UnprocessableEntity);
        let errors = SubscriptionDefinition {
            partner: uid.clone(),
            trigger: "Order placed".into(),
            callback_url: bad_url.into(),
        }
        .validate()
        .unwrap_err();
        assert!(
            refused.body.contains(&beside(&errors, "callback_url")),
            "{}",
            refused.body
        );
        assert!(
            refused
                .body
                .contains(&format!("value=\"{}\"", escaped(bad_url))),
            "the form keeps what was typed"
        );
        let refused = browser
            .post(
                &new_path,
                &[
                    ("trigger", "Order paid"),
                    ("callback_url", &callback_url(&uid)),
                ],
            )
            .await;
        assert_eq!(refused.status, Status::UnprocessableEntity);
        assert!(refused
            .body
            .contains("is not a trigger declared in bandits.triggers"));
        assert!(
            store.subscriptions().await.unwrap().is_empty(),
            "nothing was saved"
        );

        let added = browser
            .post(
                &new_path,
                &[
                    ("trigger", "Order placed"),
                    ("callback_url", &callback_url(&uid)),
                ],
            )
            .await;
        assert_eq!(added.status, Status::SeeOther, "{}", added.body);
        assert_eq!(
            added.location.as_deref(),
            Some(format!("{ADMIN}/partners/{uid}").as_str())
        );
        let subscriptions = store.subscriptions().await.unwrap();
        assert_eq!(subscriptions.len(), 1);
        assert_eq!(subscriptions[0].subscription.trigger(), "Order placed");
        let id = subscriptions[0].id;
        let twice = browser
            .post(
                &new_path,
                &[
                    ("trigger", "Order placed"),
                    ("callback_url", &callback_url(&uid)),
                ],
            )
            .await;
        assert_eq!(
            twice.status,
            Status::Conflict,
            "the same subscription twice"
        );
        assert_eq!(store.subscriptions().await.unwrap().len(), 1);

        let edit_path = format!("/partners/{uid}/subscriptions/{id}/edit");
        let edit = browser.get(&edit_path).await;
        assert_eq!(edit.status, Status::Ok);
        assert!(edit
            .body
            .contains("<option value=\"Order placed\" selected>"));
        let refused = browser
            .post(
                &edit_path,
                &[
                    ("trigger", "User registered"),
                    ("callback_url", "https://x.example/"),
                ],
            )
            .await;
        assert_eq!(refused.status, Status::UnprocessableEntity);
        assert!(refused
            .body
            .contains("<span class=\"error\" role=\"alert\">"));
        assert_eq!(
            store.subscriptions().await.unwrap()[0]
                .subscription
                .trigger(),
            "Order placed",
            "nothing was saved"
        );
        let changed = browser
            .post(
                &edit_path,
                &[
                    ("trigger", "User registered"),
                    ("callback_url", &callback_url(&uid)),
                ],
            )
            .await;
        assert_eq!(changed.status, Status::SeeOther, "{}", changed.body);
        assert_eq!(
            store.subscriptions().await.unwrap()[0]
                .subscription
                .trigger(),
            "User registered"
        );
        // Seen at once by this instance: the signup completes for the partner.
        let mut visitor = referred(&client, &uid).await;
        visitor.send(&client, "POST", "/signup").await;
        let written = eventually(|| async {
            !store
                .callback_deliveries(Some(&uid), 10)
                .await
                .unwrap()
                .is_empty()
        })
        .await;
        assert!(written, "the edited subscription completes");

        // Another partner's subscription is not this partner's.
        for path in [
            format!("/partners/{other}/subscriptions/{id}/edit"),
            format!("/partners/{other}/subscriptions/{id}/delete"),
        ] {
            assert_eq!(browser.get(&path).await.status, Status::NotFound, "{path}");
        }
        let elsewhere = browser
            .post(&format!("/partners/{other}/subscriptions/{id}/delete"), &[])
            .await;
        assert_eq!(elsewhere.status, Status::NotFound);

        let delete_path = format!("/partners/{uid}/subscriptions/{id}/delete");
        let confirm = browser.get(&delete_path).await;
        assert_eq!(confirm.status, Status::Ok);
        assert!(confirm.body.contains("Delete subscription"));
        assert!(confirm
            .body
            .contains(&format!("action=\"{ADMIN}{delete_path}\"")));
        assert_eq!(
            store.subscriptions().await.unwrap().len(),
            1,
            "asking deletes nothing"
        );
        let deleted = browser.post(&delete_path, &[]).await;
        assert_eq!(deleted.status, Status::SeeOther);
        assert!(store.subscriptions().await.unwrap().is_empty());
        assert_eq!(
            browser.post(&delete_path, &[]).await.status,
            Status::NotFound
        );
        client.terminate().await;
    })
    .await;
}

/// Writes callbacks to `uid` due an hour from now (the sender leaves them alone), claims
/// them, and records what each came to: `e-given-up` given up, `e-delivered` delivered.
async fn delivery_log(store: &Store, uid: &str) {
    let later = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
        + 3_600_000;
    let callback = |event_id: &str| Callback {
        event_id: event_id.to_string(),
        partner: uid.to_string(),
        trigger: "Order placed".to_string(),
        visitor: "v1".to_string(),
        url: "http://127.0.0.1:9/".to_string(),
    };
    store
        .enqueue_callbacks(&[callback("e-given-up"), callback("e-delivered")], later)
        .await
        .unwrap();
    let claimed = store
        .claim_callbacks("test", later, later + 60_000, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    for (event_id, next, status) in [
        ("e-given-up", Next::GiveUp, Some(500)),
        ("e-delivered", Next::Delivered, Some(200)),
    ] {
        let outcome = Outcome {
            status,
            error: (next == Next::GiveUp).then(|| "refused".to_string()),
            next,
        };
        assert!(store
            .record_callback(event_id, "test", &outcome, later)
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn retry_now_makes_a_given_up_callback_due_at_once() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let uid = partner(&store, "Acme").await;
        let other = partner(&store, "Other").await;
        delivery_log(&store, &uid).await;
        let browser = Browser::sign_in(&client).await;

        let page = browser.get(&format!("/partners/{uid}")).await;
        let given_up = page
            .body
            .split("<tr>")
            .find(|row| row.contains("<code>e-given-up</code>"))
            .expect("the given-up row");
        assert!(given_up.contains("given up"), "{given_up}");
        assert!(given_up.contains("status 500"), "{given_up}");
        assert!(given_up.contains("refused"), "{given_up}");
        assert!(given_up.contains("Retry now"), "{given_up}");
        let delivered = page
            .body
            .split("<tr>")
            .find(|row| row.contains("<code>e-delivered</code>"))
            .expect("the delivered row");
        assert!(!delivered.contains("Retry now"), "{delivered}");

        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as i64;
        let retried = browser
            .post(&format!("/partners/{uid}/deliveries/e-given-up/retry"), &[])
            .await;
        assert_eq!(retried.status, Status::SeeOther, "{}", retried.body);
        assert_eq!(
            retried.location.as_deref(),
            Some(format!("{ADMIN}/partners/{uid}").as_str())
        );
        let after = store
            .callback_delivery("e-given-up")
            .await
            .unwrap()
            .expect("still in the log");
        assert_eq!(after.state, DeliveryState::Pending);
        assert!(after.gave_up_at.is_none());
        assert!(
            after.next_try_at >= before && after.next_try_at <= before + 60_000,
            "due at once: {after:?}"
        );

        let refused = browser
            .post(
                &format!("/partners/{uid}/deliveries/e-delivered/retry"),
                &[],
            )
            .await;
        assert_eq!(refused.status, Status::Conflict);
        for (partner, event_id) in [(&other, "e-given-up"), (&uid, "e-none")] {
            let missing = browser
                .post(
                    &format!("/partners/{partner}/deliveries/{event_id}/retry"),
                    &[],
                )
                .await;
            assert_eq!(missing.status, Status::NotFound, "{partner} {event_id}");
        }
        let delivered = store
            .callback_delivery("e-delivered")
            .await
            .unwrap()
            .expect("kept");
        assert_eq!(delivered.state, DeliveryState::Delivered);
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn every_post_without_the_csrf_token_is_refused_and_changes_nothing() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let uid = partner(&store, "Acme").await;
        subscribe(&store, &uid, "Order placed").await;
        let id = store.subscriptions().await.unwrap()[0].id;
        delivery_log(&store, &uid).await;
        let before = (
            store.partners().await.unwrap(),
            store.subscriptions().await.unwrap(),
            store.callback_delivery("e-given-up").await.unwrap(),
        );
        let browser = Browser::sign_in(&client).await;
        let url = callback_url(&uid);
        let posts: Vec<(String, Vec<(&str, &str)>)> = vec![
            ("/partners/new".into(), vec![("name", "Mallory")]),
            (format!("/partners/{uid}/edit"), vec![("name", "Mallory")]),
            (
                format!("/partners/{uid}/subscriptions/new"),
                vec![("trigger", "User registered"), ("callback_url", &url)],
            ),
            (
                format!("/partners/{uid}/subscriptions/{id}/edit"),
                vec![("trigger", "User registered"), ("callback_url", &url)],
            ),
            (format!("/partners/{uid}/subscriptions/{id}/delete"), vec![]),
            (
                format!("/partners/{uid}/deliveries/e-given-up/retry"),
                vec![],
            ),
            (
                "/triggers".into(),
                vec![("name", "Order placed"), ("enabled", "false")],
            ),
        ];
        for (path, fields) in &posts {
            let without = browser.post_body(path, form(fields)).await;
            assert_eq!(without.status, Status::Forbidden, "{path} without a token");
            let mut wrong = vec![("csrf", "0123456789abcdef0123456789abcdef")];
            wrong.extend_from_slice(fields);
            let forged = browser.post_body(path, form(&wrong)).await;
            assert_eq!(
                forged.status,
                Status::Forbidden,
                "{path} with a wrong token"
            );
        }
        let after = (
            store.partners().await.unwrap(),
            store.subscriptions().await.unwrap(),
            store.callback_delivery("e-given-up").await.unwrap(),
        );
        assert_eq!(after, before, "nothing was changed");
        assert!(store.trigger_switches().await.unwrap().is_empty());
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn without_access_every_partner_page_sends_to_sign_in() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let uid = partner(&store, "Acme").await;
        let to_login = format!("{ADMIN}/login");
        for path in [
            "/partners".to_string(),
            "/partners/new".to_string(),
            format!("/partners/{uid}"),
            format!("/partners/{uid}/edit"),
            format!("/partners/{uid}/subscriptions/new"),
            format!("/partners/{uid}/subscriptions/1/edit"),
            format!("/partners/{uid}/subscriptions/1/delete"),
            "/triggers".to_string(),
        ] {
            let response = client.get(format!("{ADMIN}{path}")).dispatch().await;
            assert_eq!(response.status(), Status::SeeOther, "GET {path}");
            assert_eq!(location(&response).as_deref(), Some(to_login.as_str()));
        }
        // Not even a form with a token of its own (the sign-in form's session) gets in.
        let (csrf, session) = admin::sign_in_form(&client).await;
        for path in [
            "/partners/new".to_string(),
            format!("/partners/{uid}/edit"),
            format!("/partners/{uid}/subscriptions/new"),
            format!("/partners/{uid}/deliveries/e1/retry"),
            "/triggers".to_string(),
        ] {
            let body = form(&[("csrf", &csrf), ("name", "Mallory"), ("enabled", "false")]);
            let response =
                admin::post_form(&client, ADDRESS, &path, body, Some(&session), None).await;
            assert_eq!(response.status(), Status::SeeOther, "POST {path}");
            assert_eq!(location(&response).as_deref(), Some(to_login.as_str()));
        }
        assert_eq!(store.partners().await.unwrap().len(), 1);
        assert_eq!(store.partner(&uid).await.unwrap().partner.name(), "Acme");
        assert!(store.trigger_switches().await.unwrap().is_empty());
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn partner_values_are_escaped() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let name = "<script>alert(1)</script>";
        let partner = PartnerDefinition {
            note: "\"><img src=x onerror=alert(2)>".into(),
            ..PartnerDefinition::new(name)
        }
        .validate()
        .expect("a valid partner");
        let uid = store.create_partner(&partner, NOW).await.unwrap().uid;
        let browser = Browser::sign_in(&client).await;
        for path in [
            "/partners".to_string(),
            format!("/partners/{uid}"),
            format!("/partners/{uid}/edit"),
        ] {
            let page = browser.get(&path).await;
            assert_eq!(page.status, Status::Ok, "{path}");
            assert!(
                page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{path}"
            );
            assert!(!page.body.contains("<script>"), "{path}");
            assert!(!page.body.contains("<img"), "{path}");
        }
        // What an admin types comes back escaped too.
        let refused = browser
            .post(
                &format!("/partners/{uid}/subscriptions/new"),
                &[("trigger", "<b>x</b>"), ("callback_url", "\"><script>")],
            )
            .await;
        assert_eq!(refused.status, Status::UnprocessableEntity);
        assert!(!refused.body.contains("<script>"));
        assert!(!refused.body.contains("<b>x"));
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn a_trigger_switched_off_in_the_admin_completes_nothing_until_switched_back() {
    each_database(|store: Store, url| async move {
        let client = site(&url).await;
        let uid = partner(&store, "Acme").await;
        subscribe(&store, &uid, "User registered").await;
        subscribe(&store, &uid, "Newsletter").await;
        let browser = Browser::sign_in(&client).await;

        let page = browser.get("/triggers").await;
        assert_eq!(page.status, Status::Ok);
        let row = |page: &str, name: &str| -> String {
            page.split("<tr>")
                .find(|row| row.contains(&format!("<strong>{name}</strong>")))
                .unwrap_or_else(|| panic!("{name}'s row: {page}"))
                .to_string()
        };
        let signup_row = row(&page.body, "User registered");
        assert!(signup_row.contains("<code>/signup</code>"), "{signup_row}");
        assert!(
            signup_row.contains("data-label=\"Configuration\">enabled"),
            "{signup_row}"
        );
        assert!(signup_row.contains("fires</span>"), "{signup_row}");
        let newsletter_row = row(&page.body, "Newsletter");
        assert!(newsletter_row.contains("data-label=\"Configuration\">disabled"));
        assert!(newsletter_row.contains("<span class=\"badge switched\">off</span>"));
        assert!(row(&page.body, "Order placed").contains("code only"));

        // Off in the admin, though the configuration enables it.
        let off = browser
            .post(
                "/triggers",
                &[("name", "User registered"), ("enabled", "false")],
            )
            .await;
        assert_eq!(off.status, Status::SeeOther, "{}", off.body);
        let page = browser.get("/triggers").await;
        let signup_row = row(&page.body, "User registered");
        assert!(
            signup_row.contains("<span class=\"badge switched\">off</span>"),
            "{signup_row}"
        );
        assert!(signup_row.contains("Use configuration"), "{signup_row}");
        let switches = store.trigger_switches().await.unwrap();
        assert_eq!(switches.len(), 1);
        assert_eq!(
            (switches[0].name.as_str(), switches[0].enabled),
            ("User registered", false)
        );

        let handle = client
            .rocket()
            .state::<FlagsHandle>()
            .cloned()
            .expect("the plugin ignited");
        // Code-only "Order placed" switched off: code fires it in vain.
        let off = browser
            .post(
                "/triggers",
                &[("name", "Order placed"), ("enabled", "false")],
            )
            .await;
        assert_eq!(off.status, Status::SeeOther);

        // A referred, subscribed visitor signs up and subscribes to the newsletter
        // (disabled by the configuration): nothing completes.
        let mut early = referred(&client, &uid).await;
        early.send(&client, "POST", "/signup").await;
        early.send(&client, "POST", "/newsletter").await;
        let early_id = referred_ids(&store, &uid, 1).await.remove(0);
        assert!(
            !handle.fire(&early_id, "Order placed"),
            "switched off for code too"
        );

        // Back to the configuration for the signup; on in the admin for the newsletter,
        // though the configuration disables it.
        let cleared = browser
            .post("/triggers", &[("name", "User registered"), ("enabled", "")])
            .await;
        assert_eq!(cleared.status, Status::SeeOther);
        let on = browser
            .post("/triggers", &[("name", "Newsletter"), ("enabled", "true")])
            .await;
        assert_eq!(on.status, Status::SeeOther);
        let cleared = browser
            .post("/triggers", &[("name", "Order placed"), ("enabled", "")])
            .await;
        assert_eq!(cleared.status, Status::SeeOther);
        let switches = store.trigger_switches().await.unwrap();
        assert_eq!(switches.len(), 1);
        assert_eq!(
            (switches[0].name.as_str(), switches[0].enabled),
            ("Newsletter", true)
        );
        let page = browser.get("/triggers").await;
        assert!(row(&page.body, "Newsletter").contains("fires</span>"));
        assert!(row(&page.body, "User registered").contains("(configuration decides)"));
        assert!(handle.fire(&early_id, "Order placed"), "on again for code");

        let mut late = referred(&client, &uid).await;
        late.send(&client, "POST", "/signup").await;
        late.send(&client, "POST", "/newsletter").await;
        let late_id = referred_ids(&store, &uid, 2)
            .await
            .into_iter()
            .find(|id| *id != early_id)
            .expect("the late visitor's referral");
        let done = eventually(|| async { completed(&store, &late_id).await.len() == 2 }).await;
        assert!(
            done,
            "both complete: {:?}",
            completed(&store, &late_id).await
        );
        assert_eq!(
            completed(&store, &late_id).await,
            ["Newsletter", "User registered"]
        );
        // Fired before the late visitor's, so flushed by now: nothing completed.
        assert_eq!(completed(&store, &early_id).await, Vec::<String>::new());

        // Unknown triggers and values other than on, off or cleared change nothing.
        let unknown = browser
            .post("/triggers", &[("name", "Order paid"), ("enabled", "false")])
            .await;
        assert_eq!(unknown.status, Status::NotFound);
        let wrong = browser
            .post("/triggers", &[("name", "Newsletter"), ("enabled", "maybe")])
            .await;
        assert_eq!(wrong.status, Status::UnprocessableEntity);
        assert!(
            wrong.body.contains("enabled"),
            "the field is named: {}",
            wrong.body
        );
        let switches = store.trigger_switches().await.unwrap();
        assert_eq!(switches.len(), 1);
        assert!(switches[0].enabled);
        client.terminate().await;
    })
    .await;
}

/// Responses are looked at for triggers even when the configuration enables none fired
/// by requests: an admin may switch one on.
#[tokio::test]
async fn a_request_trigger_disabled_in_the_configuration_fires_once_switched_on() {
    each_database(|store: Store, url| async move {
        let uid = partner(&store, "Acme").await;
        subscribe(&store, &uid, "Newsletter").await;
        let client = site_with(&url, vec![newsletter_trigger()]).await;
        let browser = Browser::sign_in(&client).await;
        let on = browser
            .post("/triggers", &[("name", "Newsletter"), ("enabled", "true")])
            .await;
        assert_eq!(on.status, Status::SeeOther, "{}", on.body);

        let mut visitor = referred(&client, &uid).await;
        let answer = visitor.send(&client, "POST", "/newsletter").await;
        assert_eq!(answer.status, Status::Ok);
        let visitor_id = referred_ids(&store, &uid, 1).await.remove(0);
        let done = eventually(|| async { !completed(&store, &visitor_id).await.is_empty() }).await;
        assert!(done, "switched on in the admin, it fires");
        assert_eq!(completed(&store, &visitor_id).await, ["Newsletter"]);
        client.terminate().await;
    })
    .await;
}

#[tokio::test]
async fn trigger_switches_are_stored_and_read_with_the_snapshot() {
    each_database(|store: Store, _| async move {
        let version = store.config_version().await.unwrap();
        let switch = store
            .set_trigger_switch("Order placed", false, NOW)
            .await
            .unwrap();
        assert!(!switch.enabled);
        assert!(
            store.config_version().await.unwrap() > version,
            "others reload"
        );
        store
            .set_trigger_switch("Order placed", true, NOW + 1)
            .await
            .unwrap();
        store
            .set_trigger_switch("Newsletter", false, NOW + 2)
            .await
            .unwrap();
        let switches = store.trigger_switches().await.unwrap();
        assert_eq!(
            switches
                .iter()
                .map(|s| (s.name.as_str(), s.enabled, s.updated_at))
                .collect::<Vec<_>>(),
            [
                ("Newsletter", false, NOW + 2),
                ("Order placed", true, NOW + 1)
            ]
        );
        assert_eq!(store.snapshot().await.unwrap().trigger_switches, switches);

        let version = store.config_version().await.unwrap();
        assert!(store.clear_trigger_switch("Order placed").await.unwrap());
        assert!(store.config_version().await.unwrap() > version);
        let version = store.config_version().await.unwrap();
        assert!(!store.clear_trigger_switch("Order placed").await.unwrap());
        assert_eq!(
            store.config_version().await.unwrap(),
            version,
            "nothing to clear: nothing changed"
        );
        let snapshot = store.snapshot().await.unwrap();
        assert_eq!(snapshot.trigger_switches.len(), 1);
        assert_eq!(snapshot.trigger_switches[0].name, "Newsletter");
    })
    .await;
}
