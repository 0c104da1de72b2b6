//! Who may use the admin and the API: the admin token, and the site's own [`AdminCheck`].
//! Both the JSON API and the admin pages take their checks from here; secrets are compared
//! with the one constant-time comparison of the crate.

use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};

use crate::config::Config;
use crate::secret::same_secret;

/// The site's own answer to "is this request an admin's?", for sites that would rather
/// reuse their users than hand out the admin token. Managed as Rocket state; the token
/// still works beside it.
///
/// ```
/// use bandits::api::AdminCheck;
///
/// /// The site's own session check.
/// fn is_staff(request: &rocket::Request<'_>) -> bool {
///     # let _ = request;
///     // look up the signed-in user of this request
///     false
/// }
///
/// let rocket = rocket::build().manage(AdminCheck::new(is_staff));
/// ```
pub struct AdminCheck(Box<dyn Fn(&Request<'_>) -> bool + Send + Sync>);

impl AdminCheck {
    /// A check that opens the admin to requests for which `check` returns true.
    pub fn new(check: impl Fn(&Request<'_>) -> bool + Send + Sync + 'static) -> Self {
        AdminCheck(Box::new(check))
    }

    /// Whether `request` is an admin's.
    pub fn allows(&self, request: &Request<'_>) -> bool {
        (self.0)(request)
    }
}

/// A request from an admin: carrying the admin token, or passing the site's
/// [`AdminCheck`].
///
/// A site's check usually reads a cookie, which a browser also sends with requests another
/// site makes it send. So a request let in by the check alone may not change anything when
/// its `Sec-Fetch-Site` (or, without it, its `Origin`) says it comes from another site:
/// 403. The bearer token is never sent by a browser on its own, so it is let in from
/// anywhere. A request that changes something and says its body is not JSON is refused
/// with 415 whichever way it is let in.
pub struct Admin;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Admin {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let changes = !matches!(
            request.method(),
            Method::Get | Method::Head | Method::Options
        );
        let expected = request
            .rocket()
            .state::<Config>()
            .and_then(Config::admin_token);
        let presented = request
            .headers()
            .get_one("Authorization")
            .and_then(|header| header.strip_prefix("Bearer "))
            .map(str::trim);
        let by_token = match (expected, presented) {
            (Some(expected), Some(presented)) => same_secret(presented, expected.expose()),
            _ => false,
        };
        let by_site = !by_token
            && request
                .rocket()
                .state::<AdminCheck>()
                .is_some_and(|check| check.allows(request));
        if !(by_token || by_site) {
            return Outcome::Error((Status::Unauthorized, ()));
        }
        if changes && by_site && from_another_site(request) {
            return Outcome::Error((Status::Forbidden, ()));
        }
        if changes && request.content_type().is_some_and(|kind| !kind.is_json()) {
            return Outcome::Error((Status::UnsupportedMediaType, ()));
        }
        Outcome::Success(Admin)
    }
}

/// Whether a browser says `request` was made by a page of another site: by
/// `Sec-Fetch-Site` (anything but `same-origin`, or `none` for one the user typed), or,
/// from browsers without it, by an `Origin` other than the request's own host. A request
/// with neither header is not a browser's cross-site request.
pub(crate) fn from_another_site(request: &Request<'_>) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get_one("Sec-Fetch-Site") {
        return !matches!(site.trim(), "same-origin" | "none");
    }
    let Some(origin) = headers.get_one("Origin") else {
        return false;
    };
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    let host = headers.get_one("Host");
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host.trim()),
        // `Origin: null` (a sandboxed page, a redirect across sites), or no Host to compare.
        _ => true,
    }
}
