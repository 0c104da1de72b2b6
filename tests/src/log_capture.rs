//! The process's log, captured, for the test binaries that check what the plugin logs.
//! [`install`] must run before Rocket starts (Rocket keeps the first logger it finds), so
//! such tests live in binaries of their own.

use std::sync::{Mutex, Once};

static LINES: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());
static INSTALLED: Once = Once::new();

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _metadata: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        lines().push((record.level(), record.args().to_string()));
    }

    fn flush(&self) {}
}

fn lines() -> std::sync::MutexGuard<'static, Vec<(log::Level, String)>> {
    LINES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the capture the process's logger, at every level (once per process).
pub fn install() {
    INSTALLED.call_once(|| {
        log::set_logger(&Capture).expect("the first logger of this test binary");
        log::set_max_level(log::LevelFilter::Debug);
    });
}

/// Forgets what was logged so far.
pub fn clear() {
    lines().clear();
}

/// What was logged since the last [`clear`] or `take`, and forgets it.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *lines())
        .into_iter()
        .map(|(_, line)| line)
        .collect()
}

/// The lines logged so far at `level` or more severe (`Warn`: warnings and errors).
pub fn at_least(level: log::Level) -> Vec<String> {
    lines()
        .iter()
        .filter(|(at, _)| *at <= level)
        .map(|(_, line)| line.clone())
        .collect()
}

/// The lines logged so far that contain `text`.
pub fn containing(text: &str) -> Vec<String> {
    lines()
        .iter()
        .filter(|(_, line)| line.contains(text))
        .map(|(_, line)| line.clone())
        .collect()
}
