//! The example site's `/pricing` page in a real browser: headless Chromium (through
//! playwright-core) on the site started as a process (`bandits-site`, the same as `cargo
//! run -p example-site`), and OpenFeature's own web SDK with its OFREP provider in a page
//! of the site. The Node side is in `tests/browser/` (`npm ci` runs there once when
//! `node_modules` is missing or older than the lock file).
//!
//! - A fresh browser sees one layout, the same after a reload; "Buy" counts; the flag's
//!   statistics then show one view and one conversion, on that arm, and nothing else.
//! - OpenFeature reads `pricing-layout` as the variant the page shows for the same
//!   browser, with the arm's payload as its value.
//!
//! Without Chromium (`apt-get install chromium`, or `BANDITS_TEST_CHROMIUM`) or Node
//! and npm the tests return at once, and the binary says so at its exit.

use std::process::Child;
use std::time::{Duration, Instant};

use bandits::store::Store;
use bandits_integration_tests::browser::{totals, BROWSER, TOKEN};
use bandits_integration_tests::eventually;
use bandits_integration_tests::headless::{node_script, prepare, Tools};
use bandits_integration_tests::process::{free_port, site_command};
use rocket::serde::json::{json, serde_json, Value};

const SITE: &str = env!("CARGO_BIN_EXE_bandits-site");
/// The longest a script may take, browser start included.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(120);

/// The site as a process on a fresh SQLite file; killed when dropped.
struct Site {
    child: Child,
    origin: String,
    url: String,
    _dir: tempfile::TempDir,
}

impl Site {
    /// Starts the site with the API's token set and a short flush interval, and waits
    /// until it answers.
    fn start() -> Site {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("site.sqlite").display()
        );
        let port = free_port();
        let bandits = format!("{{flush_interval_ms=50,admin_token=\"{TOKEN}\"}}");
        let child = site_command(SITE, &url, port, &bandits)
            // Quiet: the browser's request for /favicon.ico is a 404 Rocket would log.
            .env("ROCKET_LOG_LEVEL", "off")
            .spawn()
            .expect("the site binary starts");
        let mut site = Site {
            child,
            origin: format!("http://127.0.0.1:{port}"),
            url,
            _dir: dir,
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(Some(status)) = site.child.try_wait() {
                panic!("the site exited at start: {status}");
            }
            if site.stats().is_some() {
                return site;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the site did not answer within a minute");
    }

    /// `GET /bandits/api/flags/pricing-layout/stats` with the token; `None` until the
    /// site answers it.
    fn stats(&self) -> Option<Value> {
        let response = ureq::get(&format!(
            "{}/bandits/api/flags/pricing-layout/stats",
            self.origin
        ))
        .set("Authorization", &format!("Bearer {TOKEN}"))
        .set("User-Agent", BROWSER)
        .timeout(Duration::from_secs(5))
        .call()
        .ok()?;
        serde_json::from_str(&response.into_string().ok()?).ok()
    }

    /// Views and conversions per arm, from the statistics.
    fn counted(&self) -> Option<Vec<(String, u64, u64)>> {
        let stats = self.stats()?;
        stats["arms"]
            .as_array()?
            .iter()
            .map(|arm| {
                Some((
                    arm["arm"].as_str()?.to_string(),
                    arm["views"].as_u64()?,
                    arm["conversions"].as_u64()?,
                ))
            })
            .collect()
    }

    /// SIGTERM (the last flush), and waits for the site to exit; its database stays until
    /// the site is dropped.
    fn stop(&mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a process id");
        // SAFETY: kill(2) with the id of our own child process, not reaped yet (we wait
        // for it below), so the id cannot belong to another process.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM could not be sent");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "the site ended with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the site did not stop within 30 s of SIGTERM");
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

/// Runs `script` against `site` and reads the one line of JSON it prints.
fn script(tools: &Tools, script: &str, site: &Site) -> Value {
    let finished = node_script(tools, script, &site.origin, SCRIPT_DEADLINE)
        .unwrap_or_else(|problem| panic!("{script}: {problem}"));
    assert!(
        finished.success,
        "{script} ended with {}:\n{}\n{}",
        finished.status, finished.stdout, finished.stderr
    );
    let line = finished.stdout.lines().last().unwrap_or_default();
    let result: Value = serde_json::from_str(line)
        .unwrap_or_else(|error| panic!("{script} printed no JSON ({error}):\n{}", finished.stdout));
    assert_eq!(
        result["pageErrors"],
        json!([]),
        "{script}: the page's scripts failed"
    );
    result
}

/// The arms of `pricing-layout`.
const ARMS: [&str; 2] = ["table", "cards"];

#[tokio::test]
async fn a_fresh_browser_keeps_its_layout_and_its_purchase_counts_once() {
    let Some(tools) = prepare() else { return };
    let mut site = Site::start();

    let seen = script(&tools, "pricing.mjs", &site);
    let layout = seen["first"].as_str().expect("a layout").to_string();
    assert!(ARMS.contains(&layout.as_str()), "{seen}");
    assert_eq!(seen["reloaded"], json!(layout), "a reload keeps the layout");
    assert_eq!(seen["thanks"], json!("Thank you!"), "{seen}");
    assert_eq!(seen["converted"], json!(1), "\"Buy\" converts the flag");
    assert_eq!(seen["flagsJson"]["status"], json!(200), "{seen}");
    assert_eq!(
        seen["flagsJson"]["body"]["flags"]["pricing-layout"]["variant"],
        json!(layout),
        "flags.json says what the page shows"
    );

    // One view and one conversion, on the arm shown: the reload counted no second view.
    let converted = eventually(|| {
        let counted = site.counted();
        async move { counted.is_some_and(|arms| arms.iter().map(|(_, _, c)| c).sum::<u64>() >= 1) }
    })
    .await;
    assert!(converted, "no conversion reached the statistics");
    let expected: Vec<(String, u64, u64)> = ARMS
        .iter()
        .map(|arm| {
            let n = u64::from(*arm == layout);
            (arm.to_string(), n, n)
        })
        .collect();
    assert_eq!(site.counted(), Some(expected.clone()), "the statistics");

    // Nothing more after the last flush.
    site.stop();
    let store = Store::connect(&site.url)
        .await
        .expect("the site's database");
    let stored = totals(&store, "pricing-layout").await;
    for (arm, views, conversions) in expected {
        assert_eq!(stored[&arm], (views, conversions), "{arm}: {stored:?}");
    }
}

#[tokio::test]
async fn openfeature_reads_the_layout_the_page_shows() {
    let Some(tools) = prepare() else { return };
    let mut site = Site::start();

    let seen = script(&tools, "ofrep.mjs", &site);
    let layout = seen["layout"].as_str().expect("a layout").to_string();
    assert!(ARMS.contains(&layout.as_str()), "{seen}");
    let flag = &seen["flagsJson"]["body"]["flags"]["pricing-layout"];
    assert_eq!(flag["variant"], json!(layout), "{seen}");

    let details = &seen["openFeature"]["details"];
    assert_eq!(details["flagKey"], json!("pricing-layout"), "{details}");
    assert_eq!(details.get("errorCode"), None, "{details}");
    assert_eq!(details["variant"], json!(layout), "{details}");
    assert_eq!(details["value"], flag["payload"], "the arm's payload");
    assert_eq!(details["reason"], json!("SPLIT"), "{details}");
    let missing = &seen["openFeature"]["missing"];
    assert_eq!(missing["errorCode"], json!("FLAG_NOT_FOUND"), "{missing}");
    assert_eq!(missing["value"], json!(false), "{missing}");
    assert_eq!(
        seen["after"]["body"], seen["flagsJson"]["body"],
        "OpenFeature's reads left the visitor as it was"
    );

    // The page, flags.json and OpenFeature's evaluation: one visitor, one view.
    site.stop();
    let store = Store::connect(&site.url)
        .await
        .expect("the site's database");
    let stored = totals(&store, "pricing-layout").await;
    for arm in ARMS {
        let views = u64::from(arm == layout);
        assert_eq!(stored[arm], (views, 0), "{arm}: {stored:?}");
    }
}
