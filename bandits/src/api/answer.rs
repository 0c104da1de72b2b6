//! What every route of the API shares: the JSON body it takes, its answers' JSON, and its
//! error answers.

use rocket::data::{Data, FromData, Outcome};
use rocket::http::Status;
use rocket::request::Request;
use rocket::serde::json::{json, Json, Value};

use crate::engine::FieldError;

/// A JSON request body: refused with 415 unless the request says `Content-Type:
/// application/json`, so that no HTML form of another site can send one.
pub(crate) struct JsonBody(pub(crate) Value);

#[rocket::async_trait]
impl<'r> FromData<'r> for JsonBody {
    type Error = String;

    async fn from_data(request: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        if !request.content_type().is_some_and(|kind| kind.is_json()) {
            return Outcome::Error((
                Status::UnsupportedMediaType,
                "send Content-Type: application/json".to_string(),
            ));
        }
        match Json::<Value>::from_data(request, data).await {
            Outcome::Success(Json(value)) => Outcome::Success(JsonBody(value)),
            Outcome::Error((status, error)) => Outcome::Error((status, error.to_string())),
            Outcome::Forward(forward) => Outcome::Forward(forward),
        }
    }
}

/// An error answer: a status and a JSON body.
pub(crate) type Failure = (Status, Json<Value>);

pub(crate) fn failure(status: Status, message: impl Into<String>) -> Failure {
    (
        status,
        Json(json!({ "error": message.into(), "errors": [] })),
    )
}

/// An answer's typed struct as JSON.
pub(crate) fn to_json<T: serde::Serialize>(answer: &T) -> Result<Json<Value>, Failure> {
    serde_json::to_value(answer)
        .map(Json)
        .map_err(|error| failure(Status::InternalServerError, error.to_string()))
}

pub(crate) fn invalid(errors: Vec<FieldError>) -> Failure {
    let fields: Vec<Value> = errors
        .iter()
        .map(|error| json!({ "field": error.field, "message": error.rule.to_string() }))
        .collect();
    let summary = errors
        .iter()
        .map(FieldError::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    (
        Status::UnprocessableEntity,
        Json(json!({ "error": summary, "errors": fields })),
    )
}
