//! Who is calling, as far as the network says: the client IP and the request id.

use poem::{Request, web::RemoteAddr};
use ultra_domain::audit::Actor;

use crate::AppState;

/// The request id, set by the request-context middleware for every request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

pub fn client_ip(req: &Request) -> String {
    let trust_forwarded = req.data::<AppState>().is_some_and(|state| state.config.trust_forwarded_for);
    if trust_forwarded
        && let Some(first) = req
            .header("X-Forwarded-For")
            .and_then(|value| value.split(',').next())
            .map(str::trim)
            .filter(|ip| !ip.is_empty())
    {
        return first.to_owned();
    }
    match req.remote_addr() {
        RemoteAddr(poem::Addr::SocketAddr(addr)) => addr.ip().to_string(),
        other => other.to_string(),
    }
}

/// The audit actor for a request, before or after authentication.
pub fn actor(req: &Request, user_id: Option<&str>) -> Actor {
    Actor {
        user_id: user_id.map(str::to_owned),
        ip: Some(client_ip(req)),
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
    }
}
