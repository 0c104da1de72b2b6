use super::*;
use rocket::figment::providers::{Format, Toml};

fn config(toml: &str) -> Result<Config, ConfigError> {
    Config::from_figment(&Figment::new().merge(Toml::string(toml)))
}

#[test]
fn defaults_without_a_table() {
    let config = Config::from_figment(&Figment::new()).unwrap();
    assert!(config.admin_token().is_none());
    assert_eq!(config.flush_interval(), Duration::from_millis(500));
    assert_eq!(config.cookie_name(), "bandits");
    assert!(config.is_excluded_user_agent(Some("Googlebot/2.1")));
    assert_eq!(config.cookie_max_age(), rocket::time::Duration::days(365));
    let default = Config::default();
    assert_eq!(default.cookie_name(), config.cookie_name());
    assert_eq!(default.cookie_max_age(), config.cookie_max_age());
    assert_eq!(default.flush_interval(), config.flush_interval());
}

#[test]
fn every_key_is_read() {
    let config = config(
        r#"
        [bandits]
        admin_token = "0123456789abcdef-secret"
        exclude_prefixes = ["/static/", "/healthz"]
        exclude_regex = "\\.png$"
        exclude_bots = false
        flush_interval_ms = 100
        cookie_name = "ab_visitor"
        cookie_max_age_days = 30
        "#,
    )
    .unwrap();
    assert_eq!(
        config.admin_token().map(AdminToken::expose),
        Some("0123456789abcdef-secret")
    );
    assert_eq!(
        format!("{:?}", config.admin_token()),
        "Some(AdminToken(..))"
    );
    assert!(!format!("{config:?}").contains("secret"));
    assert_eq!(config.flush_interval(), Duration::from_millis(100));
    assert_eq!(config.cookie_name(), "ab_visitor");
    assert_eq!(config.cookie_max_age(), rocket::time::Duration::days(30));
    assert!(!config.is_excluded_user_agent(Some("Googlebot/2.1")));
    assert!(!config.is_excluded_user_agent(None));
    for path in [
        "/static",
        "/static/app.css",
        "/healthz",
        "/logo.png",
        "/bandits",
        "/bandits/api/flags",
    ] {
        assert!(config.is_excluded_path(path), "{path}");
    }
    for path in ["/", "/statistics", "/contact/", "/banditsx", "/png"] {
        assert!(!config.is_excluded_path(path), "{path}");
    }
}

#[test]
fn wrong_values_name_their_key() {
    let cases = [
        ("admin_token = \"short\"", "bandits.admin_token"),
        (
            "exclude_prefixes = [\"static\"]",
            "bandits.exclude_prefixes[0]",
        ),
        ("exclude_regex = \"(unclosed\"", "bandits.exclude_regex"),
        ("flush_interval_ms = 5", "bandits.flush_interval_ms"),
        ("flush_interval_ms = 600000", "bandits.flush_interval_ms"),
        ("cookie_name = \"a b\"", "bandits.cookie_name"),
        ("cookie_name = \"\"", "bandits.cookie_name"),
        ("cookie_max_age_days = 0", "bandits.cookie_max_age_days"),
        ("cookie_max_age_days = 3651", "bandits.cookie_max_age_days"),
        ("cookie_max_age_days = -1", "bandits.cookie_max_age_days"),
        ("flush_interval_ms = \"soon\"", "bandits.flush_interval_ms"),
        ("exclude_bots = \"yes\"", "bandits.exclude_bots"),
        (
            "admin_client_ip_header = \"X Real IP\"",
            "bandits.admin_client_ip_header",
        ),
        (
            "max_pending_event_bytes = -1",
            "bandits.max_pending_event_bytes",
        ),
    ];
    for (line, key) in cases {
        let error = config(&format!("[bandits]\n{line}")).unwrap_err();
        assert_eq!(error.key, key, "{line}: {error}");
        assert!(error.to_string().starts_with(key), "{error}");
    }
    assert_eq!(config("bandits = 5").unwrap_err().key, "bandits");
    let unknown = config("[bandits]\nflush_interval = 5").unwrap_err();
    assert!(unknown.to_string().contains("flush_interval"), "{unknown}");
}

#[test]
fn bots_and_scripts_are_recognised() {
    let config = Config::default();
    for agent in [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0)",
        "facebookexternalhit/1.1",
        "curl/8.5.0",
        "python-requests/2.31",
        "Python-Requests/2.31",
        "Mozilla/5.0 (compatible; YandexBOT/3.0)",
        "Go-HTTP-Client/1.1",
        "",
        "   ",
    ] {
        assert!(config.is_excluded_user_agent(Some(agent)), "{agent}");
    }
    assert!(config.is_excluded_user_agent(None));
    let browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
                   Chrome/126.0 Safari/537.36";
    assert!(!config.is_excluded_user_agent(Some(browser)));
}

#[test]
fn remembered_verdicts_stay_right_past_the_memory_and_for_long_agents() {
    let config = Config::default();
    // Twice each, past the number of agents a thread remembers: the second answer
    // comes from the memory, or from a fresh search once it was cleared.
    for round in 0..2 {
        for i in 0..AGENTS_KEPT * 2 {
            let browser = format!("Mozilla/5.0 (X11; Linux x86_64) Firefox/{i}");
            let bot = format!("Mozilla/5.0 (compatible; Examplebot/{i})");
            assert!(
                !config.is_excluded_user_agent(Some(&browser)),
                "{round} {browser}"
            );
            assert!(config.is_excluded_user_agent(Some(&bot)), "{round} {bot}");
        }
    }
    let long_browser = format!("Mozilla/5.0 {}", "x".repeat(AGENT_KEPT_LEN));
    let long_bot = format!("{long_browser} crawler");
    for _ in 0..2 {
        assert!(!config.is_excluded_user_agent(Some(&long_browser)));
        assert!(config.is_excluded_user_agent(Some(&long_bot)));
    }
    AGENTS.with(|agents| assert!(agents.borrow().len() <= AGENTS_KEPT));
}

#[test]
fn partners_and_triggers_are_read_and_wrong_ones_name_their_key() {
    use crate::engine::partners::Credit;
    let config = config(
        r#"
        [bandits.partners]
        query_key = "ref"
        credit = "last"
        window_days = 7

        [[bandits.triggers]]
        name = "User registered"
        method = "post"
        path = "/signup/"

        [[bandits.triggers]]
        name = "Order placed"
        enabled = false
        "#,
    )
    .unwrap();
    assert_eq!(config.partners().query_key(), "ref");
    assert_eq!(config.partners().rules().credit, Credit::Last);
    assert_eq!(config.partners().rules().window_ms, 7 * 24 * 3_600_000);
    let triggers = config.triggers();
    assert!(triggers.any_fired_by_requests());
    let fired: Vec<&str> = triggers
        .fired_by("POST", "/signup", 302)
        .map(|t| t.name())
        .collect();
    assert_eq!(fired, ["User registered"]);
    assert_eq!(triggers.fired_by("POST", "/signup", 400).count(), 0);
    assert!(triggers.get("Order placed").is_some_and(|t| !t.enabled()));

    assert!(triggers.any_described_by_requests());

    // A request trigger the configuration disables is still described, so that an
    // admin's switch can turn it on.
    let off = self::config(
        r#"
        [[bandits.triggers]]
        name = "User registered"
        path = "/signup"
        enabled = false
        "#,
    )
    .unwrap();
    assert!(!off.triggers().any_fired_by_requests());
    assert!(off.triggers().any_described_by_requests());
    assert_eq!(off.triggers().fired_by("POST", "/signup", 200).count(), 0);
    let described: Vec<&str> = off
        .triggers()
        .described_by("POST", "/signup", 200)
        .map(|t| t.name())
        .collect();
    assert_eq!(described, ["User registered"]);

    let defaults = Config::default();
    assert_eq!(defaults.partners().query_key(), "affiliate_id");
    assert_eq!(defaults.partners().rules().credit, Credit::First);
    assert!(!defaults.triggers().any_fired_by_requests());
    assert!(!defaults.triggers().any_described_by_requests());

    for (toml, key) in [
        ("[bandits.partners]\nwindow_days = 0", "bandits.partners.window_days"),
        ("[bandits.partners]\nquery_key = \"a b\"", "bandits.partners.query_key"),
        ("[bandits.partners]\nquery_key = \"bandits_ref\"", "bandits.partners.query_key"),
        ("[bandits.partners]\ncredit = \"middle\"", "bandits.partners.credit"),
        (
            "[[bandits.triggers]]\nname = \"a\"\n[[bandits.triggers]]\nname = \"b\"\npath = \"/x\"\nstatus = [\"9xx\"]",
            "bandits.triggers[1].status[0]",
        ),
        (
            "[[bandits.triggers]]\nname = \"a\"\n[[bandits.triggers]]\nname = \"a\"",
            "bandits.triggers[1].name",
        ),
        ("[[bandits.triggers]]\nname = \"a\"\nmethod = \"POST\"", "bandits.triggers[0].method"),
    ] {
        let error = self::config(toml).unwrap_err();
        assert_eq!(error.key, key, "{toml}: {error}");
    }
}
