//! The admin as a browser drives it: the sign-in form, signing in, posting forms.

use rocket::http::{ContentType, Cookie, Header, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

use crate::browser::csrf;

/// Where the test sites mount the admin.
pub const ADMIN: &str = "/bandits/admin";

/// A form's CSRF token and the session cookie it goes with.
pub type Session = (String, Cookie<'static>);

/// The sign-in form's CSRF token, and the session cookie that goes with it.
pub async fn sign_in_form(client: &Client) -> Session {
    let form = client.get(format!("{ADMIN}/login")).dispatch().await;
    // A tracked client that has a session already keeps it: the form sets none then.
    let session = form
        .cookies()
        .get(bandits::admin::SESSION_COOKIE)
        .cloned()
        .or_else(|| {
            client
                .cookies()
                .get(bandits::admin::SESSION_COOKIE)
                .cloned()
        })
        .expect("a session cookie for the form");
    let page = form.into_string().await.unwrap_or_default();
    (csrf(&page), session)
}

/// Posts `body` to the admin page `path` from the connection `address`, with `cookie`
/// when given (a tracked client also sends the cookies it keeps) and `header`.
pub async fn post_form<'c>(
    client: &'c Client,
    address: &str,
    path: &str,
    body: String,
    cookie: Option<&Cookie<'static>>,
    header: Option<Header<'static>>,
) -> LocalResponse<'c> {
    let mut request = client
        .post(format!("{ADMIN}{path}"))
        .header(ContentType::Form)
        .remote(address.parse().expect("an address"))
        .body(body);
    if let Some(cookie) = cookie {
        request = request.cookie(cookie.clone());
    }
    if let Some(header) = header {
        request = request.header(header);
    }
    request.dispatch().await
}

/// Posts the sign-in form `form` with `secret` from the connection `address`.
pub async fn attempt<'c>(
    client: &'c Client,
    form: &Session,
    secret: &str,
    address: &str,
    header: Option<Header<'static>>,
) -> LocalResponse<'c> {
    let body = format!("secret={}&csrf={}", secret.replace(' ', "+"), form.0);
    post_form(client, address, "/login", body, Some(&form.1), header).await
}

/// Signs in with `secret`: the signed-in session cookie and the CSRF token of its pages.
pub async fn signed_in(client: &Client, secret: &str) -> Session {
    let form = sign_in_form(client).await;
    let answer = attempt(client, &form, secret, "192.0.2.9:4000", None).await;
    assert_eq!(answer.status(), Status::SeeOther, "signed in");
    let session = answer
        .cookies()
        .get(bandits::admin::SESSION_COOKIE)
        .cloned()
        .expect("the signed-in session");
    drop(answer);
    let list = client
        .get(format!("{ADMIN}/"))
        .cookie(session.clone())
        .dispatch()
        .await;
    assert_eq!(list.status(), Status::Ok);
    let page = list.into_string().await.unwrap_or_default();
    (csrf(&page), session)
}

/// Where a redirect sends the browser.
pub fn location(response: &LocalResponse<'_>) -> Option<String> {
    response.headers().get_one("Location").map(str::to_string)
}

/// A site with the plugin, an admin token and the site's own admin check (`X-Staff:
/// yes`), on the database at `url`, flushing at its default interval.
pub async fn staff_site(url: &str) -> Client {
    let figment = rocket::Config::figment()
        .merge(("databases.bandits.url", url))
        .merge(("bandits.admin_token", crate::browser::TOKEN))
        .merge(("secret_key", crate::browser::SECRET_KEY))
        .merge(("log_level", "off"));
    let rocket = rocket::custom(figment)
        .attach(bandits::Bandits::fairing())
        .manage(bandits::api::AdminCheck::new(|request| {
            request.headers().get_one("X-Staff") == Some("yes")
        }));
    Client::untracked(rocket).await.expect("the site ignites")
}

/// The body of admin page `path`, asked for by the site's own staff (`X-Staff: yes`, as
/// [`staff_site`] and the sites built like it let in).
pub async fn staff_page(client: &Client, path: &str) -> String {
    client
        .get(path.to_string())
        .header(Header::new("X-Staff", "yes"))
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap_or_default()
}
