//! The example site's referral partner, as the README's walk-through shows it: the site as
//! a process (`bandits-site`, the same as `cargo run -p example-site`) on a real port, so
//! the partner's callback travels over TCP to the receiver the site serves itself.
//!
//! - The first start creates the partner and its subscription; a second start on the same
//!   database finds them and creates nothing twice.
//! - A visitor arriving with `?affiliate_id=<uid>` who posts `/signup` produces one
//!   callback, received by `/partner-receiver` with the event id as `Idempotency-Key`; a
//!   visitor without a referral who posts `/signup` produces none.

use std::process::Child;
use std::time::{Duration, Instant};

use bandits::store::Store;
use bandits_integration_tests::browser::{BROWSER, COOKIE};
use bandits_integration_tests::eventually;
use bandits_integration_tests::process::{free_port, site_command};
use example_site::partner::{PARTNER_NAME, TRIGGER};

const SITE: &str = env!("CARGO_BIN_EXE_bandits-site");

/// The site as a process; killed when dropped.
struct Site {
    child: Child,
}

impl Site {
    /// Starts the site on `port` and the database at `url`, and waits until its partner
    /// is set up (the receiver page shows the uid); returns the site and the uid.
    fn start(url: &str, port: u16) -> (Site, String) {
        let bandits = "{flush_interval_ms=50,callbacks={poll_interval_ms=20}}";
        let child = site_command(SITE, url, port, bandits)
            .spawn()
            .expect("the site binary starts");
        let mut site = Site { child };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = site.child.try_wait() {
                panic!("the site exited at start: {status}");
            }
            let page = Browser::new(port).get("/partner-receiver").1;
            if let Some(uid) = between(&page, "<code class=\"uid\">", "</code>").first() {
                return (site, uid.clone());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the site's partner was not set up within a minute");
    }

    /// SIGTERM, and waits for the site to exit.
    fn stop(mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a process id");
        // SAFETY: kill(2) with the id of our own child process, not reaped yet (we wait
        // for it below), so the id cannot belong to another process.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM could not be sent");
        let status = self.child.wait().expect("the site exits");
        assert!(status.success(), "the site ended with {status}");
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A browser on the site at `port`: it keeps the visitor cookie.
struct Browser {
    port: u16,
    cookie: Option<String>,
}

impl Browser {
    fn new(port: u16) -> Browser {
        Browser { port, cookie: None }
    }

    /// Sends a request; the status and the body (`(0, "")` when nothing answered).
    fn send(&mut self, method: &str, path: &str) -> (u16, String) {
        let mut request = ureq::request(method, &format!("http://127.0.0.1:{}{path}", self.port))
            .set("User-Agent", BROWSER)
            .timeout(Duration::from_secs(5));
        if let Some(value) = &self.cookie {
            request = request.set("Cookie", &format!("{COOKIE}={value}"));
        }
        let response = match request.call() {
            Ok(response) | Err(ureq::Error::Status(_, response)) => response,
            Err(ureq::Error::Transport(_)) => return (0, String::new()),
        };
        let prefix = format!("{COOKIE}=");
        if let Some(value) = response
            .all("set-cookie")
            .into_iter()
            .find_map(|header| header.strip_prefix(&prefix))
            .and_then(|rest| rest.split(';').next())
        {
            self.cookie = Some(value.to_string());
        }
        let status = response.status();
        (status, response.into_string().unwrap_or_default())
    }

    fn get(&mut self, path: &str) -> (u16, String) {
        self.send("GET", path)
    }
}

/// Every piece of `text` between `start` and the next `end`.
fn between(text: &str, start: &str, end: &str) -> Vec<String> {
    text.split(start)
        .skip(1)
        .filter_map(|rest| rest.split_once(end).map(|(piece, _)| piece.to_string()))
        .collect()
}

/// The callbacks `/partner-receiver` lists: visitor, event id, `Idempotency-Key`.
fn received(port: u16) -> Vec<[String; 3]> {
    let page = Browser::new(port).get("/partner-receiver").1;
    page.lines()
        .filter(|line| line.starts_with("<li>visitor "))
        .map(|line| {
            let codes = between(line, "<code>", "</code>");
            assert_eq!(codes.len(), 3, "{line}");
            [codes[0].clone(), codes[1].clone(), codes[2].clone()]
        })
        .collect()
}

#[tokio::test]
async fn a_referred_sign_up_calls_the_sites_own_receiver_back() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("site.sqlite").display()
    );
    let port = free_port();

    let (first, uid) = Site::start(&url, port);
    first.stop();
    let (_site, again) = Site::start(&url, port);
    assert_eq!(again, uid, "the second start finds the same partner");
    let store = Store::connect(&url).await.expect("the site's database");
    let partners = store.partners().await.expect("the partners");
    assert_eq!(partners.len(), 1, "{partners:?}");
    assert_eq!(partners[0].partner.name(), PARTNER_NAME);
    let subscriptions = store.subscriptions().await.expect("the subscriptions");
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    let subscription = &subscriptions[0].subscription;
    assert_eq!(subscription.partner(), uid);
    assert_eq!(subscription.trigger(), TRIGGER);
    assert_eq!(
        subscription.callback_url().as_str(),
        format!(
            "http://127.0.0.1:{port}/partner-receiver/callback?visitor={{visitor_id}}&event={{event_id}}"
        )
    );

    // First a visitor without a referral signs up, then one through the partner's link.
    let mut plain = Browser::new(port);
    assert_eq!(plain.get("/").0, 200);
    assert_eq!(plain.send("POST", "/signup").0, 200);
    let mut referred = Browser::new(port);
    assert_eq!(referred.get(&format!("/?affiliate_id={uid}")).0, 200);
    let (status, welcome) = referred.send("POST", "/signup");
    assert_eq!(status, 200);
    assert!(welcome.contains("Your account is ready"), "{welcome}");

    assert!(
        eventually(|| async move { !received(port).is_empty() }).await,
        "the receiver got no callback"
    );
    // The plain visitor's sign-up was flushed no later than the referred one's.
    let completions = store.completions(None).await.expect("the completions");
    assert_eq!(completions.len(), 1, "{completions:?}");
    let completion = &completions[0];
    assert_eq!(completion.partner, uid);
    assert_eq!(completion.trigger, TRIGGER);
    let callbacks = store
        .callback_deliveries(None, 10)
        .await
        .expect("the delivery log");
    assert_eq!(callbacks.len(), 1, "{callbacks:?}");
    let callback = &callbacks[0];
    assert_eq!(callback.visitor, completion.visitor);
    assert_eq!(
        received(port),
        [[
            callback.visitor.clone(),
            callback.event_id.clone(),
            callback.event_id.clone()
        ]],
        "one callback, its Idempotency-Key the event id"
    );
}
