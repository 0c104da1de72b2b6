//! A browser for rocket::local clients: its own visitor cookie, a User-Agent, and the
//! counters read back from the store.

use std::collections::HashMap;

use bandits::store::Store;
use rocket::http::{Cookie, Header, Status};
use rocket::local::asynchronous::Client;

/// The admin token the test sites use.
pub const TOKEN: &str = "test-admin-token-0123456789";
/// Instances sharing a database share their secret key, as a load-balanced site does.
pub const SECRET_KEY: &str = "5d1c3e8b9a7f60142e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3";
/// A browser's User-Agent: bots are not counted.
pub const BROWSER: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";
/// The visitor cookie's default name.
pub const COOKIE: &str = "bandits";

/// A browser: its own cookie, sent back on every request.
#[derive(Default, Clone)]
pub struct Visitor {
    /// The visitor cookie's value, once the site set one.
    pub cookie: Option<String>,
    /// The User-Agent sent, if any.
    pub user_agent: Option<&'static str>,
    /// More headers sent with every request.
    pub headers: Vec<(&'static str, String)>,
}

/// A response, as the browser saw it.
pub struct Answer {
    /// The status.
    pub status: Status,
    /// The body.
    pub body: String,
    /// The visitor cookie the response set, if any.
    pub set_cookie: Option<Cookie<'static>>,
}

impl Visitor {
    /// A browser without a cookie yet.
    pub fn browser() -> Visitor {
        Visitor {
            cookie: None,
            user_agent: Some(BROWSER),
            headers: Vec::new(),
        }
    }

    /// Sends a request (`GET`, `POST` or `HEAD`) and keeps the cookie it sets.
    pub async fn send(&mut self, client: &Client, method: &str, path: &str) -> Answer {
        let mut request = match method {
            "GET" => client.get(path.to_string()),
            "POST" => client.post(path.to_string()),
            "HEAD" => client.head(path.to_string()),
            other => panic!("{other}"),
        };
        if let Some(agent) = self.user_agent {
            request = request.header(Header::new("User-Agent", agent));
        }
        for (name, value) in &self.headers {
            request = request.header(Header::new(*name, value.clone()));
        }
        if let Some(value) = &self.cookie {
            request = request.cookie(Cookie::new(COOKIE, value.clone()));
        }
        let response = request.dispatch().await;
        let status = response.status();
        let set_cookie = response.cookies().get(COOKIE).cloned();
        if let Some(cookie) = &set_cookie {
            self.cookie = Some(cookie.value().to_string());
        }
        let body = response.into_string().await.unwrap_or_default();
        Answer {
            status,
            body,
            set_cookie,
        }
    }

    /// Sends a `GET`.
    pub async fn get(&mut self, client: &Client, path: &str) -> Answer {
        self.send(client, "GET", path).await
    }
}

/// The CSRF token of the first form on an admin page.
pub fn csrf(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).expect("a form with a CSRF token") + marker.len();
    page[start..start + 32].to_string()
}

/// The stored (views, conversions) of each arm of `flag`, after the instances shut down.
pub async fn totals(store: &Store, flag: &str) -> HashMap<String, (u64, u64)> {
    let stored = store.flag(flag).await.expect("the flag exists");
    stored
        .flag
        .arms()
        .iter()
        .zip(&stored.totals)
        .map(|(arm, totals)| (arm.name.clone(), (totals.views, totals.conversions)))
        .collect()
}

pub async fn sum(store: &Store, flag: &str) -> (u64, u64) {
    totals(store, flag)
        .await
        .values()
        .fold((0, 0), |(v, c), (views, conversions)| {
            (v + views, c + conversions)
        })
}

/// A site that only encrypts and decrypts visitor cookies with [`SECRET_KEY`], as the test
/// sites do.
async fn cookie_site() -> Client {
    #[rocket::get("/")]
    fn plain(jar: &rocket::http::CookieJar<'_>) -> Option<String> {
        jar.get_private(COOKIE)
            .map(|cookie| cookie.value().to_string())
    }
    #[rocket::post("/", data = "<plain>")]
    fn seal(jar: &rocket::http::CookieJar<'_>, plain: String) {
        jar.add_private(Cookie::new(COOKIE, plain));
    }
    let figment = rocket::Config::figment()
        .merge(("secret_key", SECRET_KEY))
        .merge(("log_level", "off"));
    Client::untracked(rocket::custom(figment).mount("/", rocket::routes![plain, seal]))
        .await
        .expect("the cookie site ignites")
}

/// Browsers that already hold the visitor cookies of `states` (encrypted with
/// [`SECRET_KEY`]): visitors whose ids the test chose, so that what depends on the id (a
/// percentage rollout) is the same on every run.
pub async fn holding(states: &[bandits::engine::visitor::VisitorState]) -> Vec<Visitor> {
    let client = cookie_site().await;
    let mut visitors = Vec::with_capacity(states.len());
    for state in states {
        let response = client.post("/").body(state.encode()).dispatch().await;
        let sealed = response
            .cookies()
            .get(COOKIE)
            .map(|cookie| cookie.value().to_string())
            .expect("the cookie site sets the cookie");
        visitors.push(Visitor {
            cookie: Some(sealed),
            ..Visitor::browser()
        });
    }
    visitors
}

/// What the visitor cookies `values` (as the `Set-Cookie` headers of sites keyed with
/// [`SECRET_KEY`] set them) remember, read with Rocket's own decryption: `None` for a value
/// that does not decrypt or parse.
pub async fn remembered(values: &[String]) -> Vec<Option<bandits::engine::visitor::VisitorState>> {
    let client = cookie_site().await;
    let mut states = Vec::with_capacity(values.len());
    for value in values {
        // The header's value is percent-encoded; the local client takes it decoded.
        let decoded = rocket::http::RawStr::new(value).percent_decode_lossy();
        let response = client
            .get("/")
            .cookie(Cookie::new(COOKIE, decoded.into_owned()))
            .dispatch()
            .await;
        let text = match response.status() {
            Status::Ok => response.into_string().await,
            _ => None,
        };
        states.push(text.and_then(|text| bandits::engine::visitor::VisitorState::decode(&text)));
    }
    states
}
