//! The triggers the configuration declares, as a request guard: for the routes that check
//! a subscription's trigger and those of the triggers themselves.

use rocket::request::{FromRequest, Outcome, Request};

use crate::config::{Config, Triggers};

/// The triggers the configuration declares, for the routes that check a subscription's
/// and those of the triggers themselves.
pub(super) struct Declared(pub(super) Triggers);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Declared {
    type Error = std::convert::Infallible;

    async fn from_request(request: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        // The fairing manages the configuration; an API mounted without it reads its own.
        let triggers = match request.rocket().state::<Config>() {
            Some(config) => config.triggers().clone(),
            None => Config::from_figment(request.rocket().figment())
                .map(|config| config.triggers().clone())
                .unwrap_or_default(),
        };
        Outcome::Success(Declared(triggers))
    }
}
