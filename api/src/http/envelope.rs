//! The ultra surface's response envelope, `{success, data, error, meta}`, and the one response
//! type handlers return.

use poem::{
    IntoResponse, Response,
    http::{HeaderValue, StatusCode},
};
use poem_openapi::{
    ApiResponse,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
};
use serde_json::{Value, json};

const JSON: &str = "application/json; charset=utf-8";

/// A successful response with status `STATUS` whose `data` is a `T`.
///
/// It is either built fresh from a value, or carries the exact bytes of an earlier response
/// (an idempotent replay), so that a replay is byte for byte what the first request received.
pub struct Reply<T, const STATUS: u16 = 200> {
    body: Body<T>,
    headers: Vec<(&'static str, String)>,
}

enum Body<T> {
    Fresh { data: T, meta: Value },
    Stored { bytes: Vec<u8>, replayed: bool },
}

impl<T: ToJSON, const STATUS: u16> Reply<T, STATUS> {
    pub fn new(data: T) -> Self {
        Self { body: Body::Fresh { data, meta: json!({}) }, headers: Vec::new() }
    }

    pub fn with_meta(data: T, meta: Value) -> Self {
        Self { body: Body::Fresh { data, meta }, headers: Vec::new() }
    }

    /// Adds a response header, e.g. `Preference-Applied`.
    pub fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn stored(bytes: Vec<u8>, replayed: bool) -> Self {
        Self { body: Body::Stored { bytes, replayed }, headers: Vec::new() }
    }

    pub fn status() -> StatusCode {
        StatusCode::from_u16(STATUS).expect("reply status is a valid HTTP status")
    }

    /// The serialized envelope, as it goes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Fresh { data, meta } => {
                let envelope = json!({
                    "success": true,
                    "data": data.to_json(),
                    "error": null,
                    "meta": meta,
                });
                serde_json::to_vec(&envelope).expect("JSON values always serialize")
            }
            Body::Stored { bytes, .. } => bytes.clone(),
        }
    }
}

impl<T: ToJSON + Send, const STATUS: u16> IntoResponse for Reply<T, STATUS> {
    fn into_response(self) -> Response {
        let replayed = matches!(self.body, Body::Stored { replayed: true, .. });
        let mut response =
            Response::builder().status(Self::status()).content_type(JSON).body(match self.body {
                Body::Stored { bytes, .. } => bytes,
                fresh => Self { body: fresh, headers: Vec::new() }.to_bytes(),
            });
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        if replayed {
            response.headers_mut().insert("Idempotent-Replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

impl<T: ToJSON + Type + Send, const STATUS: u16> ApiResponse for Reply<T, STATUS> {
    fn meta() -> MetaResponses {
        let mut envelope = MetaSchema::new("object");
        envelope.required = vec!["success", "data", "error", "meta"];
        envelope.properties = vec![
            ("success", bool::schema_ref()),
            ("data", T::schema_ref()),
            (
                "error",
                MetaSchemaRef::Inline(Box::new(MetaSchema { nullable: true, ..MetaSchema::new("string") })),
            ),
            ("meta", MetaSchemaRef::Inline(Box::new(MetaSchema::new("object")))),
        ];
        MetaResponses {
            responses: vec![MetaResponse {
                description: "Success, in the `{success, data, error, meta}` envelope",
                status: Some(STATUS),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: JSON,
                    schema: MetaSchemaRef::Inline(Box::new(envelope)),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
