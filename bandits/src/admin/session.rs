//! The admin session: the private cookie that holds it, the guard that lets a request in,
//! and the CSRF check of every form.

use rocket::data::{self, Data, FromData};
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, SameSite, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket_db_pools::Database;

use crate::auth::AdminCheck;
use crate::clock::now_ms;
use crate::config::Config;
use crate::database::BanditsDatabase;
use crate::secret;
use crate::store::ADMIN_SESSION_MS;

/// The admin session cookie.
pub const SESSION_COOKIE: &str = "bandits_admin";

/// What the session cookie holds.
pub(super) struct Session {
    expires: i64,
    pub(super) csrf: String,
    /// Signed in: the session's id and its digest under the secret that opened it
    /// ([`secret::session_digest`]). `None` for the session a form gets before sign-in
    /// (it only carries the CSRF token).
    signed_in: Option<SignedIn>,
}

pub(super) struct SignedIn {
    pub(super) id: String,
    pub(super) digest: String,
}

impl Session {
    fn fresh(signed_in: Option<SignedIn>) -> Session {
        Session {
            expires: now_ms().saturating_add(ADMIN_SESSION_MS),
            csrf: secret::random_id(),
            signed_in,
        }
    }

    fn read(jar: &CookieJar<'_>) -> Option<Session> {
        let cookie = jar.get_private(SESSION_COOKIE)?;
        let mut parts = cookie.value().splitn(5, ':');
        let signed_in = parts.next()? == "1";
        let expires: i64 = parts.next()?.parse().ok()?;
        let csrf = parts.next()?.to_string();
        let id = parts.next().unwrap_or_default();
        let digest = parts.next().unwrap_or_default();
        let signed_in = match signed_in {
            false => None,
            true if id.len() == 32 && digest.len() == 64 => Some(SignedIn {
                id: id.to_string(),
                digest: digest.to_string(),
            }),
            // Signed in without a session id: a cookie of an older build, or forged.
            true => return None,
        };
        (expires > now_ms() && csrf.len() == 32).then_some(Session {
            expires,
            csrf,
            signed_in,
        })
    }

    fn write(&self, jar: &CookieJar<'_>, config: &Config, secure: bool) {
        let (flag, id, digest) = match &self.signed_in {
            Some(signed_in) => ("1", signed_in.id.as_str(), signed_in.digest.as_str()),
            None => ("0", "", ""),
        };
        let value = format!("{flag}:{}:{}:{id}:{digest}", self.expires, self.csrf);
        jar.add_private(
            Cookie::build((SESSION_COOKIE, value))
                .path(config.admin_prefix().to_string())
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(secure),
        );
    }
}

impl SignedIn {
    /// Whether a secret configured now opened this session. Both digests are computed
    /// and compared, so the time taken does not tell which secret is set; with none
    /// configured no session is valid.
    fn bound_to_current_secret(&self, config: &Config) -> bool {
        let matches = |secret: Option<&crate::config::AdminToken>| {
            secret.is_some_and(|secret| {
                secret::same_secret(
                    &self.digest,
                    &secret::session_digest(secret.expose(), &self.id),
                )
            })
        };
        matches(config.admin_token()) | matches(config.admin_password())
    }

    /// Whether the database still holds this session open (not signed out, not expired).
    async fn open(&self, request: &Request<'_>) -> bool {
        let Some(db) = BanditsDatabase::fetch(request.rocket()) else {
            return false;
        };
        match db
            .store()
            .admin_session_open(&secret::digest_hex(&self.id), now_ms())
            .await
        {
            Ok(open) => open,
            Err(error) => {
                log::warn!("rocket-bandits: cannot check an admin session: {error}");
                false
            }
        }
    }
}

/// The admin's configuration, for the catchers, which take no guards.
pub(super) fn config(request: &Request<'_>) -> Config {
    request
        .rocket()
        .state::<Config>()
        .cloned()
        .unwrap_or_default()
}

/// The session cookie of this request: the session it holds, or a fresh one (not signed
/// in) written for it, so that every form can carry a CSRF token; and where a new one is
/// written at sign-in and removed at sign-out.
pub(super) struct Sessions<'r> {
    jar: &'r CookieJar<'r>,
    config: Config,
    secure: bool,
    current: Session,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Sessions<'r> {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let config = config(request);
        let secure = config.secure_cookie(request.rocket().config().tls_enabled());
        let jar = request.cookies();
        let current = Session::read(jar).unwrap_or_else(|| {
            let session = Session::fresh(None);
            session.write(jar, &config, secure);
            session
        });
        Outcome::Success(Sessions {
            jar,
            config,
            secure,
            current,
        })
    }
}

impl Sessions<'_> {
    /// The CSRF token forms carry.
    pub(super) fn csrf(&self) -> &str {
        &self.current.csrf
    }

    /// Replaces the session with a signed-in one.
    pub(super) fn sign_in(&self, signed_in: SignedIn) {
        Session::fresh(Some(signed_in)).write(self.jar, &self.config, self.secure);
    }

    /// Removes the session cookie.
    pub(super) fn sign_out(&self) {
        self.jar.remove_private(
            Cookie::build(SESSION_COOKIE).path(self.config.admin_prefix().to_string()),
        );
    }
}

/// A request with access to the admin. Without access the request fails with 401, which
/// the admin's catcher turns into a redirect to the sign-in page.
pub struct AdminAccess {
    pub(super) csrf: String,
    /// The signed-in session's id, to end at sign-out.
    pub(super) session_id: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminAccess {
    type Error = ();

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, ()> {
        let by_site = request
            .rocket()
            .state::<AdminCheck>()
            .is_some_and(|check| check.allows(request));
        let session = Session::read(request.cookies());
        let config = config(request);
        let signed_in = match session.as_ref().and_then(|s| s.signed_in.as_ref()) {
            Some(signed_in) => {
                signed_in.bound_to_current_secret(&config) && signed_in.open(request).await
            }
            None => false,
        };
        match session {
            Some(session) if signed_in || by_site => Outcome::Success(AdminAccess {
                csrf: session.csrf,
                session_id: session
                    .signed_in
                    .filter(|_| signed_in)
                    .map(|signed_in| signed_in.id),
            }),
            None if by_site => match Sessions::from_request(request).await {
                Outcome::Success(sessions) => Outcome::Success(AdminAccess {
                    csrf: sessions.current.csrf,
                    session_id: None,
                }),
                _ => Outcome::Error((Status::Unauthorized, ())),
            },
            _ => Outcome::Error((Status::Unauthorized, ())),
        }
    }
}

/// A form that carries the CSRF token of the session cookie, in its `csrf` field.
pub(super) trait WithCsrf {
    /// The token the form carries, if any.
    fn csrf(&self) -> Option<&str>;
}

/// A posted form whose CSRF token is the session's: the data guard of every admin form.
/// A token missing or wrong (or no session cookie) fails with 403, which the admin's
/// catcher answers with a page saying the form expired; nothing is read or changed.
pub(super) struct Checked<T>(pub(super) T);

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + WithCsrf + Send> FromData<'r> for Checked<T> {
    type Error = ();

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let form = match Form::<T>::from_data(request, data).await {
            data::Outcome::Success(form) => form.into_inner(),
            data::Outcome::Error((status, _)) => return data::Outcome::Error((status, ())),
            data::Outcome::Forward(forward) => return data::Outcome::Forward(forward),
        };
        let expected = Session::read(request.cookies()).map(|session| session.csrf);
        match (form.csrf(), expected) {
            (Some(presented), Some(expected)) if secret::same_secret(presented, &expected) => {
                data::Outcome::Success(Checked(form))
            }
            _ => data::Outcome::Error((Status::Forbidden, ())),
        }
    }
}
