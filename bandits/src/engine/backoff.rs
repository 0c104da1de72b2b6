//! When a callback to a partner counts as delivered, when it is tried again, and when it
//! is given up: the pure rules the sender follows (no clock, no network; the time and the
//! randomness come in).
//!
//! A `2xx` answer is delivered. Anything else is a failure: another status (a `3xx` too,
//! since redirects are not followed), a timeout, a connection that failed. After a failure
//! the next try waits an exponential delay (the first `initial`, doubling each time, never
//! more than `max`) with *equal jitter*: half of the delay is fixed, the other half drawn
//! at random, so instances that failed together do not retry together, and every wait
//! still grows. A callback whose next try would fall later than `retry_for` after it was
//! written is given up; its last failure is kept.
//!
//! ```
//! use bandits::engine::backoff::{Attempt, Backoff, Next};
//! use rand::{rngs::SmallRng, SeedableRng};
//!
//! let backoff = Backoff::new(1_000, 3_600_000, 24 * 3_600_000);
//! let mut rng = SmallRng::seed_from_u64(7);
//! // The third failure of a callback written at 0, now at 10 s: back in 2 to 4 s.
//! match backoff.next(&Attempt::Answered(503), 0, 3, 10_000, &mut rng) {
//!     Next::RetryAt(at) => assert!((12_000..=14_000).contains(&at)),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(backoff.next(&Attempt::Answered(204), 0, 1, 10, &mut rng), Next::Delivered);
//! ```

use rand::Rng;

/// What one try of a callback came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The partner's server answered with this status.
    Answered(u16),
    /// No answer: a timeout, a refused or broken connection. The reason, for the log.
    NoAnswer(String),
    /// The URL cannot be called at all (not `http` or `https`, or not a URL): no retry
    /// can help.
    Unsendable(String),
}

impl Attempt {
    /// Whether the partner has it: a `2xx` answer.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Attempt::Answered(status) if (200..300).contains(status))
    }

    /// The status answered, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Attempt::Answered(status) => Some(*status),
            Attempt::NoAnswer(_) | Attempt::Unsendable(_) => None,
        }
    }

    /// What went wrong, for the delivery log; `None` when delivered.
    pub fn failure(&self) -> Option<String> {
        match self {
            _ if self.is_delivered() => None,
            Attempt::Answered(status) => Some(format!("HTTP status {status}")),
            Attempt::NoAnswer(reason) => Some(format!("no answer: {reason}")),
            Attempt::Unsendable(reason) => Some(format!("cannot be sent: {reason}")),
        }
    }
}

/// What becomes of a callback after a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The partner has it: never sent again.
    Delivered,
    /// Failed: try again at this time (milliseconds since the Unix epoch).
    RetryAt(i64),
    /// Failed, and no more tries: the retry time ran out, or no try can succeed.
    GiveUp,
}

/// The retry schedule, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: i64,
    max: i64,
    retry_for: i64,
}

impl Backoff {
    /// A schedule waiting `initial` after the first failure, doubling up to `max`, for
    /// `retry_for` after a callback is written. Values below one are taken as one.
    pub fn new(initial: i64, max: i64, retry_for: i64) -> Backoff {
        let initial = initial.max(1);
        Backoff {
            initial,
            max: max.max(initial),
            retry_for: retry_for.max(1),
        }
    }

    /// The delay before the next try after `failures` failed tries (1 for the first),
    /// without jitter: `initial * 2^(failures - 1)`, at most `max`.
    pub fn ceiling(&self, failures: u32) -> i64 {
        let doublings = failures.saturating_sub(1).min(62);
        self.initial
            .checked_mul(1_i64 << doublings)
            .map_or(self.max, |delay| delay.min(self.max))
    }

    /// The delay before the next try after `failures` failed tries: between half of
    /// [`ceiling`](Self::ceiling) and all of it, drawn from `rng`.
    pub fn delay(&self, failures: u32, rng: &mut impl Rng) -> i64 {
        let ceiling = self.ceiling(failures);
        let half = ceiling / 2;
        half + rng.random_range(0..=ceiling - half)
    }

    /// What becomes of a callback written at `created_at` after its try number `tries`
    /// (1 for the first) came to `attempt` at `now`.
    pub fn next(
        &self,
        attempt: &Attempt,
        created_at: i64,
        tries: u32,
        now: i64,
        rng: &mut impl Rng,
    ) -> Next {
        if attempt.is_delivered() {
            return Next::Delivered;
        }
        if matches!(attempt, Attempt::Unsendable(_)) {
            return Next::GiveUp;
        }
        let at = now.saturating_add(self.delay(tries, rng));
        if at > created_at.saturating_add(self.retry_for) {
            Next::GiveUp
        } else {
            Next::RetryAt(at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    const HOUR: i64 = 3_600_000;

    #[test]
    fn only_2xx_is_delivered() {
        for status in [200, 201, 204, 299] {
            assert!(Attempt::Answered(status).is_delivered(), "{status}");
            assert_eq!(Attempt::Answered(status).failure(), None);
        }
        for status in [100, 199, 300, 301, 302, 304, 307, 400, 404, 429, 500, 503] {
            assert!(!Attempt::Answered(status).is_delivered(), "{status}");
            assert_eq!(
                Attempt::Answered(status).failure(),
                Some(format!("HTTP status {status}"))
            );
        }
        assert!(!Attempt::NoAnswer("timed out".into()).is_delivered());
        assert_eq!(Attempt::NoAnswer("x".into()).status(), None);
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let backoff = Backoff::new(1_000, HOUR, 24 * HOUR);
        let ceilings: Vec<i64> = (1..=5).map(|n| backoff.ceiling(n)).collect();
        assert_eq!(ceilings, [1_000, 2_000, 4_000, 8_000, 16_000]);
        assert_eq!(backoff.ceiling(13), HOUR);
        assert_eq!(backoff.ceiling(u32::MAX), HOUR);
        assert_eq!(backoff.ceiling(0), 1_000);
    }

    #[test]
    fn jitter_stays_between_half_the_ceiling_and_the_ceiling_and_varies() {
        let backoff = Backoff::new(1_000, HOUR, 24 * HOUR);
        let mut rng = SmallRng::seed_from_u64(1);
        for failures in 1..=20 {
            let ceiling = backoff.ceiling(failures);
            let delays: Vec<i64> = (0..200)
                .map(|_| backoff.delay(failures, &mut rng))
                .collect();
            assert!(delays.iter().all(|d| (ceiling / 2..=ceiling).contains(d)));
            let distinct: std::collections::HashSet<_> = delays.iter().collect();
            assert!(distinct.len() > 50, "{failures}: {}", distinct.len());
        }
    }

    #[test]
    fn a_failure_is_retried_until_the_retry_time_runs_out_then_given_up() {
        let backoff = Backoff::new(1_000, HOUR, 24 * HOUR);
        let mut rng = SmallRng::seed_from_u64(2);
        let failed = Attempt::Answered(503);
        let (mut now, mut tries) = (0, 1);
        loop {
            match backoff.next(&failed, 0, tries, now, &mut rng) {
                Next::RetryAt(at) => {
                    assert!(at > now && at <= 24 * HOUR);
                    now = at;
                    tries += 1;
                }
                Next::GiveUp => break,
                Next::Delivered => unreachable!(),
            }
        }
        // 12 tries to reach the hourly cap (51 minutes on average), then one every half
        // hour to hour: 35 to 58 tries in all, the last within an hour of the day's end.
        assert!((35..=58).contains(&tries), "{tries}");
        assert!(now > 23 * HOUR, "gave up early, at {now}");
    }

    #[test]
    fn no_answer_is_retried_like_a_failed_status() {
        let backoff = Backoff::new(1_000, HOUR, HOUR);
        let mut rng = SmallRng::seed_from_u64(3);
        let next = backoff.next(&Attempt::NoAnswer("refused".into()), 0, 1, 5, &mut rng);
        assert!(matches!(next, Next::RetryAt(at) if (505..=1_005).contains(&at)));
    }

    #[test]
    fn a_try_past_the_retry_time_gives_up_and_an_unsendable_url_at_once() {
        let backoff = Backoff::new(1_000, HOUR, 10_000);
        let mut rng = SmallRng::seed_from_u64(4);
        let failed = Attempt::Answered(500);
        assert_eq!(backoff.next(&failed, 0, 1, 9_600, &mut rng), Next::GiveUp);
        assert_eq!(
            backoff.next(&Attempt::Unsendable("ftp".into()), 0, 1, 0, &mut rng),
            Next::GiveUp
        );
        // Delivered wins even past the retry time.
        assert_eq!(
            backoff.next(&Attempt::Answered(200), 0, 9, 99_999, &mut rng),
            Next::Delivered
        );
    }
}
