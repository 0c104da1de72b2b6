//! The fairing: the site's templates, rewritten into plain Tera ([`crate::source`]) in a
//! directory of their own, which `rocket_dyn_templates` then loads as it always does.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::figment::value::magic::RelativePathBuf;
use rocket::{Build, Orbit, Rocket};
use rocket_dyn_templates::{Engines, Template};

use crate::source;

/// What `rocket_dyn_templates` reads when `template_dir` is not set.
const DEFAULT_TEMPLATE_DIR: &str = "templates";

/// The start of a rewritten copy's name in the system's temporary directory; the process
/// id follows, so that a later start can remove the copies of processes that ended without
/// removing their own (killed, for one).
const COPY_PREFIX: &str = "bandits-templates-";

type Callback = dyn Fn(&mut Engines) + Send + Sync;

/// Rewrites the templates at ignition, then attaches `Template::custom` with the flag
/// functions and the site's own callback. See [`crate::fairing`] and [`crate::custom`].
pub(crate) struct FlagTemplates {
    pub(crate) callback: Arc<Callback>,
}

#[rocket::async_trait]
impl Fairing for FlagTemplates {
    fn info(&self) -> Info {
        let kind = Kind::Ignite | Kind::Liftoff;
        #[cfg(debug_assertions)]
        let kind = kind | Kind::Request;
        Info {
            name: "bandits-tera templates",
            kind,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        let callback = Arc::clone(&self.callback);
        let templates = Template::custom(move |engines: &mut Engines| {
            crate::register(&mut engines.tera);
            callback(engines);
        });
        let dir = match rocket
            .figment()
            .extract_inner::<RelativePathBuf>("template_dir")
        {
            Ok(dir) => dir.relative(),
            Err(error) if error.missing() => PathBuf::from(DEFAULT_TEMPLATE_DIR),
            // rocket_dyn_templates says what is wrong with it.
            Err(_) => return Ok(rocket.attach(templates)),
        };
        if !dir.is_dir() {
            return Ok(rocket.attach(templates));
        }
        let rewritten = match Rewritten::new(dir) {
            Ok(rewritten) => rewritten,
            Err(error) => {
                log::error!("rocket-bandits: {error}");
                return Err(rocket);
            }
        };
        let figment = rocket
            .figment()
            .clone()
            .merge(("template_dir", rewritten.target.path()));
        Ok(rocket
            .configure(figment)
            .manage(rewritten)
            .attach(templates))
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        if let Some(rewritten) = rocket.state::<Rewritten>() {
            log::info!(
                "rocket-bandits: templates in {} are loaded from their plain Tera form in {}",
                rewritten.source.display(),
                rewritten.target.path().display()
            );
        }
    }

    /// As `rocket_dyn_templates` reloads a changed template in a debug build, so the
    /// rewritten copy follows the author's file (this fairing's requests come first).
    #[cfg(debug_assertions)]
    async fn on_request(&self, request: &mut rocket::Request<'_>, _: &mut rocket::Data<'_>) {
        if let Some(rewritten) = request.rocket().state::<Rewritten>() {
            rewritten.refresh_if_changed();
        }
    }
}

/// The rewritten copy of a template directory, removed when the site stops.
struct Rewritten {
    source: PathBuf,
    target: tempfile::TempDir,
    #[cfg(debug_assertions)]
    watch: Option<reload::Watch>,
}

impl Rewritten {
    fn new(source: PathBuf) -> Result<Rewritten, TemplateError> {
        let temp = std::env::temp_dir();
        remove_abandoned(&temp, |pid| {
            Path::new("/proc").join(pid.to_string()).exists()
        });
        let target = tempfile::Builder::new()
            .prefix(&format!("{COPY_PREFIX}{}-", std::process::id()))
            .tempdir_in(&temp)
            .map_err(|error| TemplateError::io(&source, error))?;
        copy_dir(&source, target.path())?;
        Ok(Rewritten {
            #[cfg(debug_assertions)]
            watch: reload::Watch::new(&source),
            source,
            target,
        })
    }

    #[cfg(debug_assertions)]
    fn refresh_if_changed(&self) {
        if self.watch.as_ref().is_some_and(reload::Watch::changed) {
            // A broken edit leaves the last good copy in place, as rocket_dyn_templates
            // keeps the last templates that loaded.
            if let Err(error) = copy_dir(&self.source, self.target.path()) {
                log::error!("rocket-bandits: {error}");
            }
        }
    }
}

/// Removes the rewritten copies in `temp` whose process no longer runs, by `running`. Only
/// where the system lists its processes in `/proc`; elsewhere a killed process's copy (a
/// few kilobytes) stays until the system clears its temporary directory.
fn remove_abandoned(temp: &Path, running: impl Fn(u32) -> bool) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.strip_prefix(COPY_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !running(pid) {
                // Another start may be removing it at the same time: either removes it.
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A template that cannot be loaded: its file, and the line when the source says it.
#[derive(Debug)]
struct TemplateError {
    path: PathBuf,
    message: String,
}

impl TemplateError {
    fn io(path: &Path, error: std::io::Error) -> TemplateError {
        TemplateError {
            path: path.to_path_buf(),
            message: error.to_string(),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "template {}: {}", self.path.display(), self.message)
    }
}

/// Copies `source` into `target`, each Tera template rewritten and checked. Every
/// template is rewritten before any file is written, so a mistake leaves `target` as it
/// was.
fn copy_dir(source: &Path, target: &Path) -> Result<(), TemplateError> {
    let mut files = Vec::new();
    collect(source, Path::new(""), &mut files)?;
    let mut written = Vec::with_capacity(files.len());
    for relative in files {
        let path = source.join(&relative);
        let bytes = std::fs::read(&path).map_err(|error| TemplateError::io(&path, error))?;
        let is_tera = relative.extension().is_some_and(|ext| ext == "tera");
        let bytes = if is_tera {
            plain_tera(&path, &relative, bytes)?
        } else {
            bytes
        };
        written.push((relative, bytes));
    }
    for (relative, bytes) in written {
        let path = target.join(&relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| TemplateError::io(parent, error))?;
        }
        std::fs::write(&path, bytes).map_err(|error| TemplateError::io(&path, error))?;
    }
    Ok(())
}

/// The files under `dir`, relative to the root the walk began at.
fn collect(root: &Path, relative: &Path, files: &mut Vec<PathBuf>) -> Result<(), TemplateError> {
    let dir = root.join(relative);
    let entries = std::fs::read_dir(&dir).map_err(|error| TemplateError::io(&dir, error))?;
    for entry in entries {
        let entry = entry.map_err(|error| TemplateError::io(&dir, error))?;
        let relative = relative.join(entry.file_name());
        // Followed, as rocket_dyn_templates follows them.
        let is_dir = std::fs::metadata(entry.path())
            .map_err(|error| TemplateError::io(&entry.path(), error))?
            .is_dir();
        if is_dir {
            collect(root, &relative, files)?;
        } else {
            files.push(relative);
        }
    }
    Ok(())
}

/// A Tera template's source in plain Tera, checked by Tera's parser so that a syntax
/// error names the author's file and line (the rewrite keeps every line where it was).
fn plain_tera(path: &Path, relative: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, TemplateError> {
    let failed = |message: String| TemplateError {
        path: path.to_path_buf(),
        message,
    };
    let text = String::from_utf8(bytes).map_err(|_| failed("is not UTF-8".to_string()))?;
    let plain = source::rewrite(&text).map_err(|error| failed(error.to_string()))?;
    if let Err(error) =
        rocket_dyn_templates::tera::Template::new(&relative.to_string_lossy(), None, &plain)
    {
        let mut message = String::new();
        let mut cause: Option<&dyn std::error::Error> = Some(&error);
        while let Some(error) = cause {
            message.push_str(&error.to_string());
            cause = error.source();
            if cause.is_some() {
                message.push_str(": ");
            }
        }
        return Err(failed(message));
    }
    let plain = plain.into_owned();
    Ok(plain.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::{remove_abandoned, COPY_PREFIX};

    #[test]
    fn the_copies_of_processes_that_ended_are_removed_and_no_others() {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let own = std::process::id();
        let names = [
            format!("{COPY_PREFIX}{own}-aaaa"),
            format!("{COPY_PREFIX}7-bbbb"),
            format!("{COPY_PREFIX}8-cccc"),
            "bandits-templates-x-dddd".to_string(),
            "other-9-eeee".to_string(),
        ];
        for name in &names {
            std::fs::create_dir(temp.path().join(name)).expect("a folder");
        }
        remove_abandoned(temp.path(), |pid| pid == 8);
        let left: Vec<bool> = names
            .iter()
            .map(|name| temp.path().join(name).exists())
            .collect();
        let on_linux = std::path::Path::new("/proc/self").exists();
        // Ours, a running process's, and names that are not copies stay; a dead one's goes.
        assert_eq!(left, [true, !on_linux, true, true, true]);
    }
}

#[cfg(debug_assertions)]
mod reload {
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use notify::{RecommendedWatcher, RecursiveMode, Watcher};

    /// Watches the author's template directory, in debug builds only.
    pub(super) struct Watch {
        _watcher: RecommendedWatcher,
        changed: Arc<AtomicBool>,
    }

    impl Watch {
        pub(super) fn new(dir: &Path) -> Option<Watch> {
            let changed = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&changed);
            let watcher =
                notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                    if event.is_ok() {
                        flag.store(true, Ordering::Release);
                    }
                })
                .and_then(|mut watcher| {
                    watcher.watch(dir, RecursiveMode::Recursive)?;
                    Ok(watcher)
                });
            match watcher {
                Ok(watcher) => Some(Watch {
                    _watcher: watcher,
                    changed,
                }),
                Err(error) => {
                    log::warn!(
                        "rocket-bandits: cannot watch {} for changes ({error}); edited templates \
                         are seen at the next start",
                        dir.display()
                    );
                    None
                }
            }
        }

        pub(super) fn changed(&self) -> bool {
            self.changed.swap(false, Ordering::AcqRel)
        }
    }
}
