//! Headless Chromium and Node for the browser tests (`tests/tests/browser_pricing.rs`):
//! whether they are on the machine, `npm ci` of `tests/browser/` once, and a script run
//! with a deadline.
//!
//! The tests need Chromium at `/usr/bin/chromium` (Debian's `chromium` package; another
//! path with `BANDITS_TEST_CHROMIUM`) and `node` and `npm` on `PATH`. Without them they
//! return at once, and the test binary says at its exit how many did not run and why:
//! "browser tests skipped: no Chromium at /usr/bin/chromium (apt-get install chromium):
//! 2 tests did not run".

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The variable naming another Chromium than [`DEFAULT_CHROMIUM`].
pub const CHROMIUM_VAR: &str = "BANDITS_TEST_CHROMIUM";
/// Where Debian's `chromium` package puts the browser.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// The longest `npm ci` may take.
const INSTALL_DEADLINE: Duration = Duration::from_secs(300);

/// The Node side of the browser tests: `package.json`, its lock file and the scripts.
pub fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// What the browser tests run.
#[derive(Debug, Clone)]
pub struct Tools {
    /// The Chromium executable.
    pub chromium: PathBuf,
    /// `node`.
    pub node: PathBuf,
    /// `npm`.
    pub npm: PathBuf,
}

/// The tools, or why the browser tests cannot run here.
pub fn find_tools() -> Result<Tools, String> {
    let chromium = match std::env::var(CHROMIUM_VAR) {
        Ok(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_CHROMIUM),
    };
    if !is_executable(&chromium) {
        let hint = if chromium == Path::new(DEFAULT_CHROMIUM) {
            "apt-get install chromium".to_string()
        } else {
            format!("{CHROMIUM_VAR} names no executable")
        };
        return Err(format!("no Chromium at {} ({hint})", chromium.display()));
    }
    let node = on_path("node").ok_or("no node on PATH (install Node.js 18 or later)")?;
    let npm = on_path("npm").ok_or("no npm on PATH (install npm with Node.js)")?;
    Ok(Tools {
        chromium,
        node,
        npm,
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The tools with `tests/browser/node_modules` installed, for a test to run; `None`
/// (the test returns) when they are missing, counted for the line printed at exit.
/// Panics when `npm ci` fails: the machine has the tools, so the test must not pass.
pub fn prepare() -> Option<Tools> {
    let tools = match find_tools() {
        Ok(tools) => tools,
        Err(reason) => {
            skipped(reason);
            return None;
        }
    };
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(problem) = INSTALLED.get_or_init(|| install(&tools)) {
        panic!("{problem}");
    }
    Some(tools)
}

/// Whether `node_modules` is missing or older than `package.json` or its lock file
/// (npm writes `node_modules/.package-lock.json` at every install).
fn stale(dir: &Path) -> bool {
    let modified = |file: &str| std::fs::metadata(dir.join(file)).and_then(|meta| meta.modified());
    let Ok(installed) = modified("node_modules/.package-lock.json") else {
        return true;
    };
    ["package.json", "package-lock.json"]
        .iter()
        .any(|file| modified(file).map_or(true, |changed| changed > installed))
}

/// `npm ci` in [`scripts_dir`] when `node_modules` is [`stale`], under a lock file so
/// that two test processes do not install at once.
fn install(tools: &Tools) -> Result<(), String> {
    let dir = scripts_dir();
    let lock = Lock::take(&dir.join("node_modules.lock"))?;
    let outcome = if stale(&dir) {
        let mut command = Command::new(&tools.npm);
        command
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir);
        match run(command, INSTALL_DEADLINE) {
            Ok(out) if out.success => Ok(()),
            Ok(out) => Err(format!(
                "npm ci in {} failed (it needs the npm registry once):\n{}\n{}",
                dir.display(),
                out.stdout,
                out.stderr
            )),
            Err(problem) => Err(format!("npm ci in {}: {problem}", dir.display())),
        }
    } else {
        Ok(())
    };
    drop(lock);
    outcome
}

/// An exclusive `flock(2)` on a file, let go when dropped.
struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> Result<Lock, String> {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(|error| format!("{}: {error}", path.display()))?;
        // SAFETY: flock(2) on a descriptor this function owns, open until the lock drops.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if locked != 0 {
            return Err(format!(
                "{}: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(Lock(file))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as in `take`; closing the file would let go as well.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// What a process wrote and how it ended.
#[derive(Debug)]
pub struct Finished {
    /// Exit status 0.
    pub success: bool,
    /// The status, in words.
    pub status: String,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs `script` (a file of [`scripts_dir`]) with `node`, its argument `site` (the site's
/// origin), Chromium named by the variable `CHROMIUM`; killed with the browser it started
/// after `deadline`.
pub fn node_script(
    tools: &Tools,
    script: &str,
    site: &str,
    deadline: Duration,
) -> Result<Finished, String> {
    let mut command = Command::new(&tools.node);
    command
        .arg(script)
        .arg(site)
        .env("CHROMIUM", &tools.chromium)
        .current_dir(scripts_dir());
    run(command, deadline)
}

/// A process group started by [`run`]: stopped whole when dropped before it ended, on
/// every path. playwright starts the browser in a group of its own, and closes it when
/// node gets SIGTERM (or when its pipe to the browser closes), so the group first gets
/// SIGTERM, and SIGKILL if it is still there after [`GRACE`].
struct Group(Child);

/// How long a group has between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(5);

impl Group {
    fn signal(&self, signal: libc::c_int) {
        if let Ok(pid) = libc::pid_t::try_from(self.0.id()) {
            // SAFETY: kill(2) of the process group our child leads (process_group(0)); the
            // child is not reaped before the last signal, so the id is still ours.
            unsafe { libc::kill(-pid, signal) };
        }
    }

    fn kill(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            self.signal(libc::SIGTERM);
            let asked = Instant::now();
            while asked.elapsed() < GRACE {
                if let Ok(Some(_)) = self.0.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.signal(libc::SIGKILL);
            let _ = self.0.wait();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `command` in a process group of its own, its output captured; after `deadline`
/// the group is killed and the answer is an error with what it wrote so far.
pub fn run(mut command: Command, deadline: Duration) -> Result<Finished, String> {
    use std::os::unix::process::CommandExt;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = command
        .spawn()
        .map_err(|error| format!("{command:?} does not start: {error}"))?;
    let mut group = Group(child);
    let stdout = reader(group.0.stdout.take());
    let stderr = reader(group.0.stderr.take());
    let started = Instant::now();
    let status = loop {
        match group.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Ok(None) => {
                group.kill();
                return Err(format!(
                    "{command:?} did not end within {deadline:?}; killed.\nstdout:\n{}\nstderr:\n{}",
                    collect(stdout),
                    collect(stderr)
                ));
            }
            Err(error) => return Err(format!("{command:?}: {error}")),
        }
    };
    Ok(Finished {
        success: status.success(),
        status: status.to_string(),
        stdout: collect(stdout),
        stderr: collect(stderr),
    })
}

type Output = std::thread::JoinHandle<String>;

fn reader(pipe: Option<impl Read + Send + 'static>) -> Option<Output> {
    pipe.map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

/// What a reader thread read; it ends when every process holding the pipe has.
fn collect(output: Option<Output>) -> String {
    output
        .map(|thread| thread.join().unwrap_or_default())
        .unwrap_or_default()
}

/// Why the browser tests of this binary did not run, and how many did not.
static NOT_RUN: AtomicU32 = AtomicU32::new(0);
static REASON: Mutex<String> = Mutex::new(String::new());

fn skipped(reason: String) {
    static SUMMARY: std::sync::Once = std::sync::Once::new();
    NOT_RUN.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut kept) = REASON.lock() {
        *kept = reason;
    }
    SUMMARY.call_once(|| {
        // SAFETY: atexit(3) with a function that takes nothing, returns nothing and does
        // not unwind; it runs once, when the test binary exits.
        let registered = unsafe { libc::atexit(print_skip_summary) };
        if registered != 0 {
            eprintln!("{}", skip_summary());
        }
    });
}

/// What a run without the browser's tools left out, in one line.
pub fn skip_summary() -> String {
    let reason = REASON
        .lock()
        .map(|reason| reason.clone())
        .unwrap_or_default();
    format!(
        "browser tests skipped: {reason}: {} tests did not run",
        NOT_RUN.load(Ordering::Relaxed)
    )
}

/// Writes [`skip_summary`] to the standard error at exit, past the test harness's capture.
extern "C" fn print_skip_summary() {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{}", skip_summary());
}
