//! The JSON request body extractor. It documents the body with the type's schema like
//! poem-openapi's `Json`, but reads it under the size limit and names the offending field
//! for a missing field or a wrong type, which poem-openapi's own messages do not.

use poem::{Request, RequestBody, Result, http::StatusCode};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    error::ContentTypeError,
    impl_apirequest_for_payload,
    payload::{ParsePayload, Payload},
    registry::{MetaMediaType, MetaRequest, MetaSchema, MetaSchemaRef, Registry},
    types::{ParseFromJSON, Type},
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use crate::AppState;

pub struct JsonBody<T> {
    pub value: T,
    /// SHA-256 of the body in canonical form (keys sorted, no whitespace), which is what the
    /// idempotency layer compares: the same request re-sent with other spacing is the same request.
    pub fingerprint: String,
}

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        matches!(content_type.parse::<mime::Mime>(), Ok(mime) if mime.type_() == "application"
            && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json")))
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + Type> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        read(request, body, false).await
    }
}

/// A JSON body the client may leave out, which then reads as `{}`: for operations whose every
/// field has a default (a refund of the whole payment).
pub struct OptionalJsonBody<T>(pub JsonBody<T>);

impl<T: Type> Payload for OptionalJsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        JsonBody::<T>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON + Type> ParsePayload for OptionalJsonBody<T> {
    const IS_REQUIRED: bool = false;

    async fn from_request(request: &Request, body: &mut RequestBody) -> Result<Self> {
        read(request, body, true).await.map(Self)
    }
}

/// Like [`impl_apirequest_for_payload!`], except that a request without a `Content-Type` (an
/// empty `POST`) is read as the empty body rather than refused with 415.
impl<'a, T: ParseFromJSON + Type> ApiExtractor<'a> for OptionalJsonBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        <Self as Payload>::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        Some(MetaRequest {
            description: None,
            content: vec![MetaMediaType { content_type: Self::CONTENT_TYPE, schema: Self::schema_ref() }],
            required: false,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> Result<Self> {
        match request.content_type() {
            Some(content_type) if !Self::check_content_type(content_type) => {
                Err(ContentTypeError::NotSupported { content_type: content_type.to_owned() }.into())
            }
            _ => read(request, body, true).await.map(Self),
        }
    }
}

async fn read<T: ParseFromJSON + Type>(
    request: &Request,
    body: &mut RequestBody,
    optional: bool,
) -> Result<JsonBody<T>> {
    {
        let limit = request.data::<AppState>().map(|state| state.config.max_body_bytes).unwrap_or(1 << 20);
        let bytes = read_bytes(body, limit).await?;
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            if !optional {
                return Err(ApiError::bad_request("a JSON request body is required").into());
            }
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|err| ApiError::bad_request(format!("malformed JSON: {err}")))?
        };

        let mut registry = Registry::new();
        T::register(&mut registry);
        check(&value, &T::schema_ref(), &registry, "")?;

        let fingerprint = hex::encode(Sha256::digest(serde_json::to_vec(&value).unwrap_or_default()));
        let value = T::parse_from_json(Some(value)).map_err(|err| {
            let message = err.into_message();
            let field = message.split('`').nth(1).map(str::to_owned).unwrap_or_else(|| "body".to_owned());
            ApiError::validation(field, message)
        })?;
        Ok(JsonBody { value, fingerprint })
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON + Type);

/// The body, refused with 413 past `limit` bytes, which are all that is ever read.
async fn read_bytes(body: &mut RequestBody, limit: usize) -> Result<Vec<u8>, ApiError> {
    let body = body
        .take()
        .map_err(|err| ApiError::bad_request(format!("could not read the request body: {err}")))?;
    let bytes = body.into_bytes_limit(limit).await.map_err(|err| match err {
        poem::error::ReadBodyError::PayloadTooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is larger than {limit} bytes"),
        ),
        other => ApiError::bad_request(format!("could not read the request body: {other}")),
    })?;
    Ok(bytes.into())
}

/// The most a provider callback may send. Callbacks are a few hundred bytes to a few KB, and
/// anyone may post to their routes, so they get far less room than an authenticated request.
pub const CALLBACK_LIMIT: usize = 64 * 1024;

/// A provider callback's JSON body, read under [`CALLBACK_LIMIT`].
pub struct CallbackBody(pub Value);

impl Payload for CallbackBody {
    const CONTENT_TYPE: &'static str = "application/json";

    fn check_content_type(content_type: &str) -> bool {
        JsonBody::<Value>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        Value::schema_ref()
    }

    fn register(registry: &mut Registry) {
        Value::register(registry);
    }
}

impl ParsePayload for CallbackBody {
    const IS_REQUIRED: bool = true;

    async fn from_request(_request: &Request, body: &mut RequestBody) -> Result<Self> {
        let bytes = read_bytes(body, CALLBACK_LIMIT).await?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|err| ApiError::bad_request(format!("malformed JSON: {err}")))?;
        Ok(Self(value))
    }
}

impl_apirequest_for_payload!(CallbackBody);

/// Walks the value against the schema for what serde-less parsing gets vague about: required
/// fields and JSON types. Formats, patterns and lengths are left to the type's validators.
fn check(value: &Value, schema: &MetaSchemaRef, registry: &Registry, path: &str) -> Result<(), ApiError> {
    let schema: &MetaSchema = match schema {
        MetaSchemaRef::Inline(schema) => schema,
        MetaSchemaRef::Reference(name) => match registry.schemas.get(name) {
            Some(schema) => schema,
            None => return Ok(()),
        },
    };
    if value.is_null() || !schema.any_of.is_empty() || !schema.one_of.is_empty() {
        return Ok(());
    }
    // poem-openapi wraps a documented `$ref` in `allOf`: the value must satisfy each part.
    if !schema.all_of.is_empty() {
        return schema.all_of.iter().try_for_each(|part| check(value, part, registry, path));
    }
    let field = if path.is_empty() { "body" } else { path };
    let type_ok = match schema.ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        _ => true,
    };
    if !type_ok {
        return Err(ApiError::validation(
            field,
            format!("must be {}, not {}", article(schema.ty), json_type(value)),
        ));
    }
    if !schema.enum_items.is_empty() && !schema.enum_items.contains(value) {
        let allowed: Vec<String> = schema.enum_items.iter().map(Value::to_string).collect();
        return Err(ApiError::validation(field, format!("must be one of {}", allowed.join(", "))));
    }
    match value {
        Value::Object(map) => {
            for name in &schema.required {
                if map.get(*name).is_none_or(Value::is_null) {
                    let path = join(path, name);
                    return Err(ApiError::validation(path, "is required"));
                }
            }
            for (name, property) in &schema.properties {
                if let Some(child) = map.get(*name) {
                    check(child, property, registry, &join(path, name))?;
                }
            }
        }
        // PostgreSQL cannot store NUL in text, and no field of this API needs it.
        Value::String(text) if text.contains('\0') => {
            return Err(ApiError::validation(field, "must not contain NUL characters"));
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for (index, item) in items.iter().enumerate() {
                    check(item, item_schema, registry, &format!("{path}[{index}]"))?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_owned() } else { format!("{path}.{name}") }
}

fn article(ty: &str) -> String {
    match ty {
        "object" | "array" | "integer" => format!("an {ty}"),
        other => format!("a {other}"),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
