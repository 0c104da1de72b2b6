//! Comparing secrets, and the keyed digests that tie an admin session to the secret that
//! opened it.
//!
//! Every comparison of a secret a request presents (the admin token, the password, a
//! CSRF token) goes through [`same_secret`]: both sides are hashed to fixed-length
//! SHA-256 digests first, so neither the time taken nor an early return tells the
//! secret's length.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What an admin session's digest is computed over besides its id, so that the digest
/// cannot stand for anything else keyed by the same secret.
const SESSION_CONTEXT: &[u8] = b"rocket-bandits admin session v1\0";

/// Whether `presented` equals `expected`, in time that depends on neither's content nor
/// length.
pub(crate) fn same_secret(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    bool::from(presented.ct_eq(&expected))
}

/// The digest binding session `id` to `secret` (HMAC-SHA256 keyed by the secret), in hex.
/// A session cookie carries it; a session is valid only while a configured secret gives
/// the same digest, so a new token or password ends every session opened with the old
/// one.
pub(crate) fn session_digest(secret: &str, id: &str) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
    mac.update(SESSION_CONTEXT);
    mac.update(id.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// SHA-256 of `text`, in hex: how the database knows a session id without holding it.
pub(crate) fn digest_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// A fresh random id of 128 bits, in hex (32 characters).
pub(crate) fn random_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, byte| {
            let _ = write!(out, "{byte:02x}");
            out
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_equal_whatever_their_lengths() {
        assert!(same_secret("0123456789abcdef", "0123456789abcdef"));
        assert!(!same_secret("0123456789abcdef", "0123456789abcdeF"));
        assert!(!same_secret("0123456789abcde", "0123456789abcdef"));
        assert!(!same_secret("", "0123456789abcdef"));
        assert!(same_secret("", ""));
    }

    #[test]
    fn a_session_digest_depends_on_the_secret_and_the_id() {
        let digest = session_digest("a long admin token", "id-1");
        assert_eq!(digest.len(), 64);
        assert_eq!(digest, session_digest("a long admin token", "id-1"));
        assert_ne!(digest, session_digest("another admin token", "id-1"));
        assert_ne!(digest, session_digest("a long admin token", "id-2"));
        assert_ne!(digest_hex("id-1"), digest_hex("id-2"));
        assert_eq!(random_id().len(), 32);
    }
}
