//! Which database a store talks to.

/// The database behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: the embedded default, one file on the site's machine.
    Sqlite,
    /// PostgreSQL: for several instances behind a load balancer.
    Postgres,
}

impl Backend {
    /// The backend a database URL names (`sqlite:` or `postgres:`/`postgresql:`).
    pub fn from_url(url: &str) -> Option<Backend> {
        let scheme = url.split(':').next()?.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}
