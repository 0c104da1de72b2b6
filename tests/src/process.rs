//! The example site as a process of its own, for the tests that stop, kill and restart
//! it, and the addresses they need.

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::Command;

use crate::browser::SECRET_KEY;

/// A free port on 127.0.0.1 (bound, then let go).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The command that starts the site binary `site` (a test's
/// `env!("CARGO_BIN_EXE_bandits-site")`) on 127.0.0.1:`port`, on the database at `url`,
/// with `bandits` as its `ROCKET_BANDITS` table, quiet.
pub fn site_command(site: &str, url: &str, port: u16, bandits: &str) -> Command {
    let mut command = Command::new(site);
    command
        .env("ROCKET_ADDRESS", "127.0.0.1")
        .env("ROCKET_PORT", port.to_string())
        .env("ROCKET_SECRET_KEY", SECRET_KEY)
        .env("ROCKET_LOG_LEVEL", "critical")
        .env("ROCKET_CLI_COLORS", "false")
        .env("ROCKET_DATABASES", format!("{{bandits={{url=\"{url}\"}}}}"))
        .env("ROCKET_BANDITS", bandits);
    command
}

/// The address of the PostgreSQL server of `url`.
pub fn server_address(url: &str) -> SocketAddr {
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .expect("a server URL");
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .expect("the PostgreSQL server's address")
}
