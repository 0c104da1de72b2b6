//! The sign-in limit: failed attempts counted per client address, 5 per 15 minutes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use rocket::request::{FromRequest, Outcome, Request};

use crate::config::Config;

/// Failed sign-ins allowed per client address and window.
pub const MAX_FAILED_SIGN_INS: u32 = 5;
/// The window failed sign-ins are counted over, in milliseconds (15 minutes).
pub const FAILURE_WINDOW_MS: i64 = 15 * 60 * 1000;
/// Client addresses remembered at most; the oldest windows go first past it.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Failed sign-ins per client, bounded: past [`MAX_TRACKED_CLIENTS`] clients, those the
/// table cannot hold share one count, so a full table limits them together rather than
/// letting them through.
pub struct SignInLimiter {
    table: Mutex<HashMap<Client, Failures>>,
    capacity: usize,
}

impl Default for SignInLimiter {
    fn default() -> Self {
        SignInLimiter::with_capacity(MAX_TRACKED_CLIENTS)
    }
}

/// Failed sign-ins of one client since the start of its window.
#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    /// When the window began, in milliseconds since the Unix epoch.
    since: i64,
}

impl Failures {
    /// Whether the window that began at `since` is still open at `now`.
    fn open_at(&self, now: i64) -> bool {
        now.saturating_sub(self.since) < FAILURE_WINDOW_MS
    }
}

/// Whom the sign-in limit counts a request against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Client {
    /// An address: IPv4 whole, IPv6 by its /64 network (one host commonly holds all of
    /// it).
    Address(IpAddr),
    /// No address known, or no room left for the client's own count.
    Unknown,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Client {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let config = request.rocket().state::<Config>();
        Outcome::Success(Client::of(request, config))
    }
}

impl Client {
    /// The client of `request`: the address the configured proxy header names (its last
    /// address), else the connection's peer. Never Rocket's `client_ip()`, which trusts
    /// `X-Real-IP` from anyone by default.
    fn of(request: &Request<'_>, config: Option<&Config>) -> Client {
        let header = config.and_then(Config::admin_client_ip_header);
        let from_proxy = header.and_then(|name| {
            let value = request.headers().get(name).last()?;
            let last = value.rsplit(',').next()?.trim();
            last.parse::<IpAddr>()
                .ok()
                .or_else(|| last.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        });
        match from_proxy.or_else(|| request.remote().map(|peer| peer.ip())) {
            Some(ip) => Client::Address(grouped(ip)),
            None => Client::Unknown,
        }
    }
}

/// `ip` as the limit counts it: IPv4 (also mapped into IPv6) whole, IPv6 by its /64.
fn grouped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

impl SignInLimiter {
    /// A limiter that keeps the counts of `capacity` clients apart.
    fn with_capacity(capacity: usize) -> Self {
        SignInLimiter {
            table: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Client, Failures>> {
        crate::track::lock_or_recover(&self.table)
    }

    /// Whose count `client`'s attempt goes to: its own when the table has it or room for
    /// it (after forgetting ended windows), else the shared count of the unknown.
    fn slot(&self, table: &mut HashMap<Client, Failures>, client: Client, now: i64) -> Client {
        if table.contains_key(&client) {
            return client;
        }
        if table.len() >= self.capacity {
            table.retain(|_, failures| failures.open_at(now));
        }
        if table.len() < self.capacity {
            client
        } else {
            Client::Unknown
        }
    }

    /// Whether `client` has used up its attempts at `now` (milliseconds since the epoch).
    pub(super) fn blocked(&self, client: Client, now: i64) -> bool {
        let mut table = self.lock();
        let slot = self.slot(&mut table, client, now);
        table
            .get(&slot)
            .is_some_and(|failures| failures.count >= MAX_FAILED_SIGN_INS && failures.open_at(now))
    }

    /// Counts a failed attempt of `client` at `now`; the first one after a window ended
    /// begins a new window.
    pub(super) fn failed(&self, client: Client, now: i64) {
        let mut table = self.lock();
        let slot = self.slot(&mut table, client, now);
        let entry = table.entry(slot).or_insert(Failures {
            count: 0,
            since: now,
        });
        if !entry.open_at(now) {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count = entry.count.saturating_add(1);
    }

    pub(super) fn succeeded(&self, client: Client) {
        if client != Client::Unknown {
            self.lock().remove(&client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(i: u32) -> Client {
        Client::Address(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)))
    }

    #[test]
    fn a_full_table_limits_the_clients_it_cannot_hold_together() {
        let limiter = SignInLimiter::with_capacity(100);
        for i in 0..100 {
            limiter.failed(address(i), NOON);
        }
        // Newcomers share one count: five failures between them, then none may try.
        for i in 100..100 + MAX_FAILED_SIGN_INS {
            assert!(!limiter.blocked(address(i), NOON), "newcomer {i}");
            limiter.failed(address(i), NOON);
        }
        for i in 200..300 {
            assert!(limiter.blocked(address(i), NOON), "newcomer {i}");
        }
        // Those the table holds keep their own counts.
        assert!(!limiter.blocked(address(0), NOON));
        assert!(limiter.lock().len() <= 101);
        // Once their windows ended, the table has room again.
        let later = NOON + 15 * MINUTE;
        assert!(!limiter.blocked(address(400), later));
    }

    /// A moment to start from, in milliseconds since the epoch.
    const NOON: i64 = 1_764_590_400_000;
    const MINUTE: i64 = 60_000;

    #[test]
    fn five_failures_block_an_address_for_fifteen_minutes_and_no_other() {
        // The documented limit: 5 failed attempts per address per 15 minutes.
        let limiter = SignInLimiter::default();
        let (one, other) = (address(1), address(2));
        for attempt in 0..4 {
            limiter.failed(one, NOON + attempt * MINUTE);
        }
        assert!(!limiter.blocked(one, NOON + 4 * MINUTE), "four failures");
        limiter.failed(one, NOON + 4 * MINUTE);
        assert!(limiter.blocked(one, NOON + 4 * MINUTE), "the fifth blocks");
        assert!(
            !limiter.blocked(other, NOON + 4 * MINUTE),
            "another address"
        );
        // The window counts from the first failure.
        assert!(limiter.blocked(one, NOON + 15 * MINUTE - 1));
        assert!(!limiter.blocked(one, NOON + 15 * MINUTE), "lifted");
        // A failure after the window starts a new count: four more do not block.
        for attempt in 0..4 {
            limiter.failed(one, NOON + (15 + attempt) * MINUTE);
        }
        assert!(!limiter.blocked(one, NOON + 19 * MINUTE));
        // A success forgets the count.
        limiter.failed(one, NOON + 19 * MINUTE);
        assert!(limiter.blocked(one, NOON + 19 * MINUTE));
        limiter.succeeded(one);
        assert!(!limiter.blocked(one, NOON + 19 * MINUTE));
    }

    #[test]
    fn an_ipv6_network_is_one_client() {
        let one: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("an address");
        let same: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("an address");
        let other: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(grouped(one), grouped(same));
        assert_ne!(grouped(one), grouped(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().expect("an address");
        assert_eq!(grouped(mapped), "192.0.2.1".parse::<IpAddr>().expect("v4"));
    }
}
