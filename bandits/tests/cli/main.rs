//! The `bandits` binary, run as a deploy script runs it, on a fresh SQLite file and (with
//! `BANDITS_TEST_POSTGRES_URL`) a fresh PostgreSQL database: every command, what it
//! refuses and in which words, where it finds the site's database, and a running site
//! seeing its change at the next flush.

mod databases;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use bandits::engine::ArmTotals;
use bandits::store::{Batch, Increment, Store};
use bandits::FlagsHandle;
use databases::{kinds, Kind};
use rocket::local::asynchronous::Client;
use serde_json::Value;

/// What one run of the binary left: its exit status and its output.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Run {
        assert_eq!(self.code, Some(0), "failed: {}", self.stderr);
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `bandits` with `args` in `dir`, with no `ROCKET_*` variable but those of `env`,
/// giving it `stdin`.
fn bandits_in(dir: &Path, env: &[(&str, &str)], stdin: &str, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bandits"));
    command
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("ROCKET_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("the bandits binary starts");
    let mut input = child.stdin.take().expect("a stdin");
    // A command that asks nothing may exit before reading: a closed pipe is no error.
    let _ = input.write_all(stdin.as_bytes());
    drop(input);
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("the bandits binary ends");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `bandits --database url args...` with an empty standard input.
fn bandits(url: &str, args: &[&str]) -> Run {
    let dir = std::env::temp_dir();
    let mut all = vec!["--database", url];
    all.extend_from_slice(args);
    bandits_in(&dir, &[], "", &all)
}

async fn store(url: &str) -> Store {
    let store = Store::connect(url).await.expect("the test database");
    store.migrate().await.expect("migrated");
    store
}

/// Adds `views` and `conversions` to arm `arm` of flag `name`, as a site's flush does.
async fn count(store: &Store, name: &str, arm: &str, views: u64, conversions: u64) {
    let stored = store.flag(name).await.expect("the flag");
    let batch = Batch {
        increments: vec![Increment::new(&stored, arm, views, conversions)],
        ..Batch::default()
    };
    store
        .flush(&batch, 1_700_000_000_000)
        .await
        .expect("flushed");
}

fn names(list: &Value) -> Vec<String> {
    list["flags"]
        .as_array()
        .expect("a list of flags")
        .iter()
        .map(|flag| {
            flag["flag"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_on_each_database() {
    for kind in kinds() {
        let database = kind.create().await;
        eprintln!("on {}", kind.label());
        every_command(&database.url).await;
    }
}

async fn every_command(url: &str) {
    // Tables are created by the command line itself, before the site ever ran.
    let created = bandits(
        url,
        &[
            "flags",
            "create",
            "headline-flag",
            "--arms",
            "base,bold",
            "--policy",
            "thompson",
            "--source",
            "/",
            "--target",
            "contact/",
            "--note",
            "Shorter headline",
        ],
    )
    .ok();
    assert!(
        created.stdout.starts_with("created headline-flag"),
        "{}",
        created.stdout
    );
    bandits(
        url,
        &["flags", "create", "new-checkout", "--percentage", "10"],
    )
    .ok();
    bandits(
        url,
        &["flags", "create", "maintenance", "--everyone", "off"],
    )
    .ok();

    let table = bandits(url, &["flags", "list"]).ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("EVERYONE"),
        "{table}"
    );
    assert_eq!(lines.len(), 4, "{table}");
    // NAME, EVERYONE, PERCENT, TESTING come first.
    let row = |i: usize| lines[i].split_whitespace().take(4).collect::<Vec<_>>();
    assert_eq!(row(1), ["headline-flag", "unset", "-", "off"], "{table}");
    assert_eq!(row(2), ["maintenance", "off", "-", "off"], "{table}");
    assert_eq!(row(3), ["new-checkout", "unset", "10%", "off"], "{table}");

    // The API's JSON: `GET /bandits/api/flags`.
    let list = bandits(url, &["flags", "list", "--json"]).ok().json();
    assert_eq!(
        names(&list),
        ["headline-flag", "maintenance", "new-checkout"]
    );
    let first = &list["flags"][0];
    assert_eq!(first["flag"]["policy"]["kind"], "thompson");
    assert_eq!(first["flag"]["target_path"], "/contact/");
    assert_eq!(first["epoch"], 0);
    assert_eq!(first["totals"][1]["arm"], "bold");

    let store = store(url).await;
    count(&store, "headline-flag", "bold", 40, 7).await;

    let shown = bandits(url, &["flags", "show", "headline-flag"])
        .ok()
        .stdout;
    for expected in [
        "Shorter headline",
        "Thompson sampling",
        "/contact/",
        "base (control)",
    ] {
        assert!(shown.contains(expected), "{expected} in {shown}");
    }
    let bold = shown
        .lines()
        .find(|line| line.starts_with("bold"))
        .expect("a row for bold");
    assert!(
        bold.contains(" 40 ") && bold.contains(" 7 ") && bold.contains("17.5%"),
        "{bold}"
    );
    let one = bandits(url, &["flags", "show", "headline-flag", "--json"])
        .ok()
        .json();
    assert_eq!(one["totals"][1]["views"], 40);
    assert_eq!(one, list_entry_now(url, "headline-flag"));

    let missing = bandits(url, &["flags", "show", "no-such-flag"]);
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr, "error: no flag named \"no-such-flag\"\n");

    // set: only the fields given change; the counts stay.
    let targeting = |store: Store, name: &'static str| async move {
        store
            .flag(name)
            .await
            .expect("the flag")
            .flag
            .targeting()
            .clone()
    };
    bandits(url, &["flags", "set", "headline-flag", "--everyone", "on"]).ok();
    assert_eq!(
        targeting(store.clone(), "headline-flag").await.everyone,
        Some(true)
    );
    bandits(url, &["flags", "set", "headline-flag", "--everyone", "off"]).ok();
    assert_eq!(
        targeting(store.clone(), "headline-flag").await.everyone,
        Some(false)
    );
    let set = bandits(
        url,
        &[
            "flags",
            "set",
            "headline-flag",
            "--everyone",
            "unset",
            "--percent",
            "25",
            "--testing",
            "on",
        ],
    )
    .ok();
    assert!(
        set.stdout
            .contains("everyone unset, percent 25%, testing on"),
        "{}",
        set.stdout
    );
    let after = store.flag("headline-flag").await.expect("the flag");
    assert_eq!(after.flag.targeting().everyone, None);
    assert_eq!(after.flag.targeting().percent, Some(25.0));
    assert!(after.flag.targeting().testing);
    assert!(
        !after.flag.client_side(),
        "flags stay on the server by default"
    );
    let browser = bandits(
        url,
        &["flags", "set", "headline-flag", "--client-side", "on"],
    )
    .ok();
    assert!(browser.stdout.contains("client side"), "{}", browser.stdout);
    let after = store.flag("headline-flag").await.expect("the flag");
    assert!(after.flag.client_side());
    assert_eq!(
        after.flag.targeting().percent,
        Some(25.0),
        "the rest is kept"
    );
    bandits(
        url,
        &["flags", "set", "headline-flag", "--client-side", "off"],
    )
    .ok();
    assert!(!store
        .flag("headline-flag")
        .await
        .expect("the flag")
        .flag
        .client_side());
    assert_eq!(after.flag.note(), "Shorter headline");
    assert_eq!(after.totals[1], ArmTotals::new(40, 7));
    bandits(
        url,
        &[
            "flags",
            "set",
            "headline-flag",
            "--percent",
            "unset",
            "--testing",
            "off",
        ],
    )
    .ok();
    let after = store.flag("headline-flag").await.expect("the flag");
    assert_eq!(after.flag.targeting().percent, None);
    assert!(!after.flag.targeting().testing);

    let refused = bandits(url, &["flags", "set", "headline-flag", "--percent", "140"]);
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.stderr,
        "error: targeting.percent: must be in [0, 100], got 140\n"
    );
    let refused = bandits(url, &["flags", "set", "headline-flag", "--percent", "lots"]);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .starts_with("error: targeting.percent: must be a number"),
        "{}",
        refused.stderr
    );
    let negative = bandits(url, &["flags", "set", "headline-flag", "--percent", "-5"]);
    assert_eq!(
        negative.stderr,
        "error: targeting.percent: must be in [0, 100], got -5\n"
    );
    let nothing = bandits(url, &["flags", "set", "headline-flag"]);
    assert_eq!(nothing.code, Some(2), "{}", nothing.stderr);
    let wrong_value = bandits(
        url,
        &["flags", "set", "headline-flag", "--everyone", "maybe"],
    );
    assert_eq!(wrong_value.code, Some(2));
    assert!(
        wrong_value.stderr.contains("--everyone"),
        "{}",
        wrong_value.stderr
    );
    assert_eq!(
        bandits(url, &["flags", "set", "nope", "--testing", "on"]).code,
        Some(1)
    );
    assert_eq!(
        store
            .flag("headline-flag")
            .await
            .expect("the flag")
            .flag
            .targeting()
            .percent,
        None
    );

    // reset: a new epoch, counts at zero.
    let reset = bandits(url, &["flags", "reset", "headline-flag"]).ok();
    assert!(reset.stdout.contains("epoch 1"), "{}", reset.stdout);
    let after = store.flag("headline-flag").await.expect("the flag");
    assert_eq!(after.epoch, 1);
    assert!(after
        .totals
        .iter()
        .all(|totals| *totals == ArmTotals::default()));
    assert_eq!(bandits(url, &["flags", "reset", "nope"]).code, Some(1));

    // delete: asks; no answer, or anything but y, keeps the flag.
    let dir = std::env::temp_dir();
    for answer in ["", "\n", "n\n", "whatever\n"] {
        let kept = bandits_in(
            &dir,
            &[],
            answer,
            &["--database", url, "flags", "delete", "maintenance"],
        );
        assert_eq!(kept.code, Some(1), "answer {answer:?}");
        assert!(
            kept.stderr
                .starts_with("Delete flag maintenance and its counts"),
            "{}",
            kept.stderr
        );
        assert!(
            kept.stderr.contains("error: flag maintenance not deleted"),
            "{}",
            kept.stderr
        );
        assert!(
            store.flag("maintenance").await.is_ok(),
            "kept after {answer:?}"
        );
    }
    bandits_in(
        &dir,
        &[],
        "y\n",
        &["--database", url, "flags", "delete", "maintenance"],
    )
    .ok();
    assert!(store.flag("maintenance").await.is_err());
    bandits(url, &["flags", "delete", "new-checkout", "--yes"]).ok();
    let list = bandits(url, &["flags", "list", "--json"]).ok().json();
    assert_eq!(names(&list), ["headline-flag"]);
    assert_eq!(
        bandits(url, &["flags", "delete", "new-checkout", "--yes"]).code,
        Some(1)
    );
    store.pool().close().await;
}

/// Flag `name` as `flags list --json` shows it.
fn list_entry_now(url: &str, name: &str) -> Value {
    let list = bandits(url, &["flags", "list", "--json"]).ok().json();
    list["flags"]
        .as_array()
        .and_then(|flags| flags.iter().find(|flag| flag["flag"]["name"] == name))
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_input_names_the_field_and_writes_nothing() {
    for kind in kinds() {
        let database = kind.create().await;
        let url = database.url.as_str();
        bandits(url, &["flags", "create", "taken"]).ok();
        let cases: &[(&[&str], &str)] = &[
            (&["Bad Name"], "error: name: may hold only lowercase letters, digits, '-' and '_', found 'B'\n"),
            (&["x", "--arms", "solo"], "error: arms: needs 2 to 32 arms, got 1\n"),
            (&["x", "--arms", "a,a"], "error: arms[1].name: the arm name \"a\" is used more than once\n"),
            (&["x", "--policy", "epsilon-greedy:3"], "error: policy.epsilon: must be in [0, 1], got 3\n"),
            (&["x", "--policy", "split:50,x"], "error: policy.weights[1]: must be a number, got \"x\"\n"),
            (&["x", "--policy", "split:50,50,50"], "error: policy.weights: needs one entry per arm (2), got 3\n"),
            (&["x", "--source", "a b"], "error: source_path: must be a path without spaces, query or fragment, found ' '\n"),
            (&["x", "--goal-event", "Sign Up"], "error: goal_event: may hold only lowercase letters, digits, '-' and '_', found 'S'\n"),
            (&["x", "--percentage", "140"], "error: targeting.percent: must be in [0, 100], got 140\n"),
            (&["x", "--percentage", "ten"], "error: percentage: must be a number, got \"ten\"\n"),
            (&["x", "--percentage", "10", "--policy", "thompson"], "error: policy: a percentage flag sets this itself: leave it out\n"),
            (&["x", "--min-views", "-1"], "error: min_views: must be a whole number, 0 or more, got \"-1\"\n"),
            (&["x", "--significance-level", "1.5"], "error: significance_level: must be in (0, 1), got 1.5\n"),
            (&["taken"], "error: name: a flag named \"taken\" already exists\n"),
        ];
        for (args, expected) in cases {
            let mut all = vec!["flags", "create"];
            all.extend_from_slice(args);
            let run = bandits(url, &all);
            assert_eq!(run.code, Some(1), "{args:?} on {}", kind.label());
            assert_eq!(&run.stderr, expected, "{args:?} on {}", kind.label());
            assert_eq!(run.stdout, "", "{args:?}");
        }
        // The policy's unknown kind is refused by the JSON reader, with the known ones.
        let unknown = bandits(url, &["flags", "create", "x", "--policy", "greedy"]);
        assert_eq!(unknown.code, Some(1));
        assert!(
            unknown
                .stderr
                .starts_with("error: policy.kind: unknown variant `greedy`"),
            "{}",
            unknown.stderr
        );
        assert!(unknown.stderr.contains("thompson"), "{}", unknown.stderr);
        // Every problem at once.
        let several = bandits(
            url,
            &[
                "flags",
                "create",
                "x",
                "--arms",
                "a,a",
                "--percentage",
                "140",
            ],
        );
        assert_eq!(several.stderr.lines().count(), 2, "{}", several.stderr);

        let list = bandits(url, &["flags", "list", "--json"]).ok().json();
        assert_eq!(
            names(&list),
            ["taken"],
            "nothing written on {}",
            kind.label()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn export_then_import_copies_definitions_and_never_counts() {
    for kind in kinds() {
        copies_between(&kind).await;
    }
}

async fn copies_between(kind: &Kind) {
    let (production, staging) = (kind.create().await, kind.create().await);
    let (from, to) = (production.url.as_str(), staging.url.as_str());
    bandits(
        from,
        &[
            "flags",
            "create",
            "headline-flag",
            "--arms",
            "base,bold,short",
            "--policy",
            "split:1,1,2",
            "--source",
            "/",
            "--target",
            "/contact/",
        ],
    )
    .ok();
    bandits(
        from,
        &[
            "flags",
            "create",
            "new-checkout",
            "--percentage",
            "10",
            "--testing",
            "on",
        ],
    )
    .ok();
    let source = store(from).await;
    count(&source, "headline-flag", "bold", 100, 9).await;
    // Staging has its own headline-flag, counted there, with two of the three arms.
    bandits(
        to,
        &["flags", "create", "headline-flag", "--arms", "base,bold"],
    )
    .ok();
    let target = store(to).await;
    count(&target, "headline-flag", "bold", 5, 1).await;
    let version_before = target.config_version().await.expect("a version");

    let exported = bandits(from, &["flags", "export"]).ok();
    let definitions = exported.json();
    assert_eq!(definitions.as_array().map(Vec::len), Some(2));
    // What the API's POST takes: a definition, with no counts.
    assert_eq!(definitions[0]["name"], "headline-flag");
    assert!(definitions[0].get("totals").is_none());
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("flags.json");
    std::fs::write(&file, &exported.stdout).expect("written");
    let file = file.to_string_lossy().into_owned();

    let imported = bandits(to, &["flags", "import", &file]).ok();
    assert_eq!(
        imported.stdout.lines().take(2).collect::<Vec<_>>(),
        ["updated headline-flag", "created new-checkout"],
        "{}",
        imported.stdout
    );
    let copied = target.snapshot().await.expect("a snapshot");
    let original = source.snapshot().await.expect("a snapshot");
    for (copy, made) in copied.flags.iter().zip(&original.flags) {
        assert_eq!(copy.flag.definition(), made.flag.definition());
    }
    assert!(
        copied.config_version > version_before,
        "running sites must see it"
    );
    let headline = target.flag("headline-flag").await.expect("the flag");
    assert_eq!(
        headline.totals,
        [
            ArmTotals::default(),
            ArmTotals::new(5, 1),
            ArmTotals::default()
        ]
    );
    assert_eq!(headline.epoch, 0);
    let source_headline = source.flag("headline-flag").await.expect("the flag");
    assert_eq!(source_headline.totals[1], ArmTotals::new(100, 9));

    // Again: nothing to change, nothing written (`-` reads the standard input).
    let again = bandits_in(
        dir.path(),
        &[],
        &exported.stdout,
        &["--database", to, "flags", "import", "-"],
    )
    .ok();
    assert!(
        again.stdout.contains("0 created, 0 updated, 2 unchanged"),
        "{}",
        again.stdout
    );

    // One flag, as the API's POST takes it, round-trips alone.
    let one = bandits(from, &["flags", "export", "new-checkout"]).ok();
    assert_eq!(one.json()["name"], "new-checkout");
    assert_eq!(one.json()["targeting"]["percent"], 10.0);

    // A file with one refused definition writes nothing, and names the flag and field.
    let mixed = r#"[{"name": "brand-new"}, {"name": "headline-flag", "policy": {"kind": "ucb1", "c": -1}}]"#;
    let refused = bandits_in(
        dir.path(),
        &[],
        mixed,
        &["--database", to, "flags", "import", "-"],
    );
    assert_eq!(refused.code, Some(1));
    assert_eq!(
        refused.stderr,
        "error: headline-flag: policy.c: must be in (0, inf), got -1\n"
    );
    assert!(target.flag("brand-new").await.is_err(), "nothing written");

    // Leaving out an arm would delete its counts: refused whole, the flag and field named.
    let fewer = r#"[{"name": "brand-new"}, {"name": "headline-flag", "arms": [{"name": "base"}, {"name": "short"}]}]"#;
    let refused = bandits_in(
        dir.path(),
        &[],
        fewer,
        &["--database", to, "flags", "import", "-"],
    );
    assert_eq!(refused.code, Some(1));
    assert!(
        refused
            .stderr
            .starts_with("error: headline-flag: arms: leaves out the arm \"bold\""),
        "{}",
        refused.stderr
    );
    assert!(target.flag("brand-new").await.is_err(), "nothing written");
    assert_eq!(
        target.flag("headline-flag").await.expect("kept").totals[1],
        ArmTotals::new(5, 1)
    );

    let not_json = bandits_in(
        dir.path(),
        &[],
        "{",
        &["--database", to, "flags", "import", "-"],
    );
    assert_eq!(not_json.code, Some(1));
    assert!(
        not_json.stderr.starts_with("error: -: is not valid JSON"),
        "{}",
        not_json.stderr
    );
    let no_file = bandits(to, &["flags", "import", "/no/such/file.json"]);
    assert_eq!(no_file.code, Some(1));
    assert!(
        no_file.stderr.contains("/no/such/file.json"),
        "{}",
        no_file.stderr
    );
    source.pool().close().await;
    target.pool().close().await;
}

#[test]
fn the_database_is_the_sites_unless_given() {
    let dir = tempfile::tempdir().expect("a directory");
    let at = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    std::fs::write(
        dir.path().join("Rocket.toml"),
        format!(
            "[default.databases.bandits]\nurl = \"{}\"\n",
            at("site.sqlite")
        ),
    )
    .expect("written");
    let list = |env: &[(&str, &str)], args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["flags", "list", "--json"]);
        names(&bandits_in(dir.path(), env, "", &all).ok().json())
    };
    bandits(&at("site.sqlite"), &["flags", "create", "from-toml"]).ok();
    bandits(&at("env.sqlite"), &["flags", "create", "from-env"]).ok();
    bandits(&at("option.sqlite"), &["flags", "create", "from-option"]).ok();

    assert_eq!(list(&[], &[]), ["from-toml"]);
    let env_url = format!("{{bandits={{url=\"{}\"}}}}", at("env.sqlite"));
    let env = [("ROCKET_DATABASES", env_url.as_str())];
    assert_eq!(list(&env, &[]), ["from-env"]);
    let option = at("option.sqlite");
    assert_eq!(
        list(&env, &["--database", option.as_str()]),
        ["from-option"]
    );

    // Without any configuration: the site's default file in the working directory.
    let bare = tempfile::tempdir().expect("a directory");
    bandits_in(bare.path(), &[], "", &["flags", "create", "by-default"]).ok();
    assert!(bare.path().join("bandits.sqlite").exists());
}

#[test]
fn a_password_is_never_printed() {
    let run = bandits(
        "postgres://app:s3cret-pw@127.0.0.1:1/app?sslpassword=other-s3cret",
        &["flags", "list"],
    );
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: database postgres://app:***@127.0.0.1:1/app"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
    let run = bandits("mysql://app:s3cret@db/app", &["flags", "list"]);
    assert_eq!(run.code, Some(2));
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_site_sees_a_change_at_its_next_flush() {
    for kind in kinds() {
        let database = kind.create().await;
        let url = database.url.clone();
        let figment = rocket::Config::figment()
            .merge(("databases.bandits.url", url.as_str()))
            .merge(("bandits.flush_interval_ms", 25))
            .merge(("log_level", "off"));
        let site = Client::untracked(rocket::custom(figment).attach(bandits::Bandits::fairing()))
            .await
            .expect("the site ignites");
        let flags = site
            .rocket()
            .state::<FlagsHandle>()
            .cloned()
            .expect("the handle");

        bandits(&url, &["flags", "create", "launch"]).ok();
        assert!(
            eventually(|| flags.definition("launch").is_some()).await,
            "created, on {}",
            kind.label()
        );
        assert!(!flags.is_active("launch"));
        bandits(&url, &["flags", "set", "launch", "--everyone", "on"]).ok();
        assert!(
            eventually(|| flags.is_active("launch")).await,
            "switched on, on {}",
            kind.label()
        );
        bandits(&url, &["flags", "delete", "launch", "--yes"]).ok();
        assert!(
            eventually(|| flags.definition("launch").is_none()).await,
            "deleted, on {}",
            kind.label()
        );
        site.terminate().await;
    }
}

/// Polls `check` every 25 ms for up to 30 s: for what happens within a flush interval or
/// two, never for timing.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..1_200 {
        if check() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    false
}
