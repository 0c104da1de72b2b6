//! The per-thread cache of decoded visitor cookies: a returning visitor's cookie is
//! decrypted and decoded once per worker thread, not on every request.

use std::sync::Arc;

use rocket::Request;

use crate::engine::visitor::VisitorState;
use crate::runtime::Runtime;

/// Entries per generation of [`Decoded`]: two generations of about 400 bytes an entry,
/// under 1 MB per worker thread.
const DECODED_PER_GENERATION: usize = 1_024;

/// Characters at the end of a cookie value that [`Decoded`] keys its entries by: at least
/// the 16 bytes of the AES-GCM tag, base64-encoded, whatever the padding.
const TAG_CHARS: usize = 24;

thread_local! {
    static DECODED: std::cell::RefCell<Decoded> = std::cell::RefCell::new(Decoded::default());
}

/// What [`Decoded`] knows a cookie value by: its length and its last [`TAG_CHARS`]
/// characters, which hold the authentication tag of the encrypted value.
///
/// The tag is 128 bits that only the secret key's holder can produce, fresh with every
/// encryption (its nonce is random), and an entry is made only after the value decrypted
/// with the instance's key. A value that matches an entry therefore either is the cookie
/// that entry was made from, or was made by someone who saw that cookie: they get the
/// visitor that cookie would give them anyway, as by sending it again. Keying by the tag
/// rather than the whole value spares every request hashing and comparing the 400 or so
/// bytes of the value against an entry that is no longer in the processor's caches.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct DecodedKey {
    len: usize,
    tail: [u8; TAG_CHARS],
}

impl DecodedKey {
    /// The key of cookie value `value`; `None` for a value too short to hold a tag (it
    /// cannot decrypt).
    fn of(value: &str) -> Option<DecodedKey> {
        let start = value.len().checked_sub(TAG_CHARS)?;
        let tail = value.as_bytes().get(start..)?.try_into().ok()?;
        Some(DecodedKey {
            len: value.len(),
            tail,
        })
    }
}

/// The visitors this worker thread decoded lately, by the cookie value they sent (see
/// [`DecodedKey`]), with the instance that decoded it. A returning visitor sends the same
/// cookie on every request, and decrypting and decoding it is the dearest part of a
/// request that concerns a flag. Only values that decrypted with the instance's key and
/// decoded are kept, so a forged or foreign cookie gains nothing; two generations bound
/// the memory and keep the latest entries. The visitor is shared with the request until
/// the request changes it.
#[derive(Default)]
pub(super) struct Decoded {
    newer: foldhash::HashMap<DecodedKey, (u64, Arc<VisitorState>)>,
    older: foldhash::HashMap<DecodedKey, (u64, Arc<VisitorState>)>,
}

impl Decoded {
    /// The visitor of `request`'s cookie, if it sent a valid one.
    pub(super) fn visitor(request: &Request<'_>, runtime: &Runtime) -> Option<Arc<VisitorState>> {
        let name = runtime.config.cookie_name();
        let key = DecodedKey::of(request.cookies().get(name)?.value())?;
        let cached = DECODED.with(|decoded| {
            let decoded = decoded.borrow();
            decoded
                .newer
                .get(&key)
                .or_else(|| decoded.older.get(&key))
                .filter(|(instance, _)| *instance == runtime.instance)
                .map(|(_, visitor)| Arc::clone(visitor))
        });
        if cached.is_some() {
            return cached;
        }
        let visitor = request
            .cookies()
            .get_private(name)
            .and_then(|cookie| VisitorState::decode(cookie.value()))
            .map(Arc::new)?;
        DECODED.with(|decoded| {
            let mut decoded = decoded.borrow_mut();
            if decoded.newer.len() >= DECODED_PER_GENERATION {
                decoded.older = std::mem::take(&mut decoded.newer);
            }
            decoded
                .newer
                .insert(key, (runtime.instance, Arc::clone(&visitor)));
        });
        Some(visitor)
    }
}
