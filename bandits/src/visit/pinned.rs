//! The arms a site's own test pinned for one request (`bandits::testing`), kept in the
//! request's local cache until its visit starts.
//!
//! A `rocket::local` request is the same `Request` value from the test's builder to the
//! handlers (Rocket's `LocalRequest::dispatch` hands it to the fairings and the router as
//! it is), so what the test puts in its local cache is there when the visit reads it. A
//! request that came over HTTP starts with an empty cache, and this type is private to
//! the crate: nothing a client sends can pin an arm.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use rocket::Request;

use crate::engine::pinned::Pinned;
use crate::runtime::Runtime;
use crate::track::lock_or_recover;

/// The arms pinned for one request.
#[derive(Default)]
pub(crate) struct RequestPins(Mutex<Pinned>);

impl RequestPins {
    /// Pins arm `arm` of flag `flag` for `request` alone, and tells `runtime` that visits
    /// must look for pins from now on.
    pub(crate) fn pin_arm(request: &Request<'_>, runtime: &Runtime, flag: &str, arm: &str) {
        runtime.pinning.store(true, Ordering::Release);
        let pins = request.local_cache(RequestPins::default);
        lock_or_recover(&pins.0).pin_arm(flag, arm);
    }
}

/// What the tests pinned for `request`: its own pins over those of its client; `None`
/// when nothing is pinned (always, outside tests). Inlined into the visit, so that a
/// request outside tests pays the load of one flag and no call.
#[inline]
pub(super) fn pinned_for(request: &Request<'_>, runtime: &Runtime) -> Option<Arc<Pinned>> {
    if runtime.pinning.load(Ordering::Acquire) {
        read_pins(request, runtime)
    } else {
        None
    }
}

#[cold]
#[inline(never)]
fn read_pins(request: &Request<'_>, runtime: &Runtime) -> Option<Arc<Pinned>> {
    let client = runtime.pinned.load_full();
    let own = request.local_cache(RequestPins::default);
    let own = lock_or_recover(&own.0);
    if own.is_empty() {
        return client;
    }
    Some(Arc::new(match client {
        Some(client) => own.over(&client),
        None => own.clone(),
    }))
}
