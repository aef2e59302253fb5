//! Calls out to addresses someone else chose. Merchants choose webhook URLs and, through their
//! provider configurations, the hosts workers send payments to; without a guard either is a way
//! to make Ultra's workers call its own database, the cloud metadata service or admin ports
//! (server-side request forgery). Every such call goes through a client built here.

pub mod addresses;

use std::sync::Arc;

use reqwest::{
    ClientBuilder, Url,
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};

/// Which addresses outbound calls may reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Only the public internet: loopback, private, link-local, metadata and other reserved
    /// addresses are refused, on every address a connection resolves to.
    Public,
    /// Anything, for an operator who opted in: a laptop or a test run whose provider sandbox
    /// and webhook receivers listen on loopback.
    Private,
}

impl Reach {
    pub fn allowing_private(allow: bool) -> Self {
        if allow { Self::Private } else { Self::Public }
    }

    /// A client builder that never follows redirects (a redirect could lead anywhere) and,
    /// for [`Reach::Public`], resolves names only to public addresses. IP-literal hosts are
    /// connected to without resolving: check them with [`Reach::refusal`] before each call.
    pub fn client_builder(self) -> ClientBuilder {
        let builder = reqwest::Client::builder().redirect(redirect::Policy::none()).no_proxy();
        match self {
            Self::Public => builder.dns_resolver(Arc::new(PublicOnly)),
            Self::Private => builder,
        }
    }

    /// Why `url` may not be called, when its host is an IP literal outside this reach.
    pub fn refusal(self, url: &Url) -> Option<String> {
        if self == Self::Private {
            return None;
        }
        let ip = match url.host()? {
            url::Host::Ipv4(ip) => std::net::IpAddr::V4(ip),
            url::Host::Ipv6(ip) => std::net::IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        (!addresses::is_public(ip)).then(|| format!("{ip} is a private or reserved address"))
    }
}

/// Resolves names the usual way and refuses any that reach a private or reserved address.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let resolved = addresses::resolve(name.as_str(), 0, false).await?;
            Ok(Box::new(resolved.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_public_client_cannot_reach_loopback_by_name_or_literal() {
        let client = Reach::Public.client_builder().build().unwrap();
        let refused = client.get("http://localhost:9/").send().await.unwrap_err();
        assert!(format!("{refused:?}").contains("private or reserved"), "{refused:?}");
        for literal in ["http://127.0.0.1:9/", "http://[::1]:9/", "http://169.254.169.254/"] {
            assert!(Reach::Public.refusal(&Url::parse(literal).unwrap()).is_some(), "{literal}");
            assert!(Reach::Private.refusal(&Url::parse(literal).unwrap()).is_none(), "{literal}");
        }
        assert!(Reach::Public.refusal(&Url::parse("https://api.mvola.mg/token").unwrap()).is_none());
    }
}
