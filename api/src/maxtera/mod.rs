//! The Maxtera surface, mounted at `/maxtera/api/v1`: Nigerian customers with a naira wallet,
//! funded through OnePipe and spent on airtime, data and bills. Plain JSON objects; errors in
//! the shapes of the Django REST Framework service the seed describes (`{field: [reason]}`,
//! `{detail, code}`), and its paths with or without their trailing slash.

pub mod auth;
mod fields;
pub mod purchases;
pub mod transactions;
pub mod wallet;

use poem::{Request, http::Uri};
use poem_openapi::Tags;

pub const PREFIX: &str = "/maxtera/api/v1/";
/// Where new customers register and log in; limited per client IP.
pub const REGISTER_PATH: &str = "/maxtera/api/v1/auth/register";
pub const LOGIN_PATH: &str = "/maxtera/api/v1/auth/login";

#[derive(Tags)]
pub enum MaxteraTags {
    /// Maxtera API (Nigeria, NGN): accounts, wallet funding through OnePipe, airtime, data and
    /// bills. Every path may also end in `/`, as the Maxtera document writes them.
    Maxtera,
}

/// The seed writes its paths with a trailing slash, and its clients send them so; the routes
/// are declared without it (as the OpenAPI document lists them), so a request ending in `/`
/// is routed as if it did not.
pub fn strip_trailing_slash(mut req: Request) -> Request {
    let path = req.uri().path();
    if path.starts_with(PREFIX) && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let rewritten = match req.uri().query() {
            Some(query) => format!("{trimmed}?{query}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rewritten.parse::<Uri>() {
            *req.uri_mut() = uri;
        }
    }
    req
}
