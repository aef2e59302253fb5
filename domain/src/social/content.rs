//! What a post may say and show, per the seed (1 to 2,200 characters, at most 10 media URLs)
//! and per where it goes: platforms fetch media themselves, so every URL must be public, and
//! each target takes only what it can publish.

use std::net::IpAddr;

use ultra_entity::social_accounts::SocialAccountKind;
use url::{Host, Url};

use crate::{DomainError, DomainResult};

pub const MAX_CONTENT_CHARS: usize = 2200;
pub const MAX_MEDIA: usize = 10;
const MAX_URL_LEN: usize = 2048;
/// Instagram refuses captions with more hashtags than this.
const INSTAGRAM_HASHTAGS: usize = 30;
const VIDEO_EXTENSIONS: [&str; 2] = [".mp4", ".mov"];

/// The text of a post, checked; errors name `content`.
pub fn checked_content(content: &str) -> DomainResult<String> {
    let invalid = |message: &str| Err(DomainError::validation("content", message));
    if content.trim().is_empty() {
        return invalid("must not be empty");
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return invalid("must be at most 2200 characters");
    }
    if content.contains('\0') {
        return invalid("must not contain NUL characters");
    }
    Ok(content.to_owned())
}

/// Media URLs, checked one by one; errors name `mediaUrls[i]`.
pub fn checked_media(urls: &[String]) -> DomainResult<Vec<String>> {
    if urls.len() > MAX_MEDIA {
        return Err(DomainError::validation("mediaUrls", "must have at most 10 items"));
    }
    urls.iter()
        .enumerate()
        .map(|(i, url)| {
            public_https_url(url)
                .map_err(|message| DomainError::validation(format!("mediaUrls[{i}]"), message))
                .map(|()| url.clone())
        })
        .collect()
}

fn public_https_url(text: &str) -> Result<(), &'static str> {
    if text.len() > MAX_URL_LEN {
        return Err("must be at most 2048 characters");
    }
    let url = Url::parse(text).map_err(|_| "must be an absolute URL")?;
    if url.scheme() != "https" {
        return Err("must be an https URL: platforms fetch media only over HTTPS");
    }
    let public = match url.host() {
        None => false,
        Some(Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain.contains('.') && domain != "localhost" && !domain.ends_with(".localhost")
        }
        Some(Host::Ipv4(ip)) => is_public(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_public(IpAddr::V6(ip)),
    };
    if !public {
        return Err("must be on a public host: the platform fetches it from the internet");
    }
    if url.username() != "" || url.password().is_some() {
        return Err("must not carry credentials");
    }
    Ok(())
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]))
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00)
                && v6.to_ipv4_mapped().is_none_or(|v4| is_public(IpAddr::V4(v4)))
        }
    }
}

/// Whether a media URL names a video, by its path's extension.
pub fn is_video(url: &str) -> bool {
    let path = Url::parse(url).map(|u| u.path().to_ascii_lowercase()).unwrap_or_default();
    VIDEO_EXTENSIONS.iter().any(|ext| path.ends_with(ext))
}

/// What the target itself requires: Instagram publishes one image or video with at most 30
/// hashtags, TikTok one video, a Facebook Page post one link at most.
pub fn check_for_target(kind: SocialAccountKind, content: &str, media: &[String]) -> DomainResult<()> {
    match kind {
        SocialAccountKind::Instagram => {
            if media.len() != 1 {
                return Err(DomainError::validation(
                    "mediaUrls",
                    "an Instagram post needs exactly one image or video URL",
                ));
            }
            let hashtags = content.split_whitespace().filter(|word| word.starts_with('#')).count();
            if hashtags > INSTAGRAM_HASHTAGS {
                return Err(DomainError::validation(
                    "content",
                    format!("has {hashtags} hashtags; Instagram allows at most {INSTAGRAM_HASHTAGS}"),
                ));
            }
        }
        SocialAccountKind::Tiktok => {
            if media.len() != 1 || !is_video(&media[0]) {
                return Err(DomainError::validation(
                    "mediaUrls",
                    "a TikTok post needs exactly one video URL (.mp4 or .mov)",
                ));
            }
        }
        SocialAccountKind::FacebookPage => {
            if media.len() > 1 {
                return Err(DomainError::validation(
                    "mediaUrls",
                    "a Facebook Page post takes at most one media URL, which it shares as its link",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: DomainResult<impl std::fmt::Debug>) -> String {
        match result {
            Err(DomainError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn content_is_bounded() {
        assert!(checked_content("hello").is_ok());
        assert!(checked_content(&"é".repeat(2200)).is_ok());
        assert_eq!(field_of(checked_content(&"a".repeat(2201))), "content");
        assert_eq!(field_of(checked_content("  \n ")), "content");
        assert_eq!(field_of(checked_content("a\0b")), "content");
    }

    #[test]
    fn media_must_be_public_https_urls() {
        let ok = ["https://cdn.example.com/a.jpg".to_owned()];
        assert!(checked_media(&ok).is_ok());
        for (bad, _) in [
            ("http://cdn.example.com/a.jpg", "plain http"),
            ("https://127.0.0.1/a.jpg", "loopback"),
            ("https://10.1.2.3/a.jpg", "private"),
            ("https://[::1]/a.jpg", "v6 loopback"),
            ("https://localhost/a.jpg", "localhost"),
            ("https://intranet/a.jpg", "single label"),
            ("not a url", "garbage"),
            ("https://user:pw@cdn.example.com/a.jpg", "credentials"),
        ] {
            let urls = vec!["https://cdn.example.com/ok.png".to_owned(), bad.to_owned()];
            assert_eq!(field_of(checked_media(&urls)), "mediaUrls[1]", "{bad}");
        }
        let eleven = vec!["https://cdn.example.com/a.jpg".to_owned(); 11];
        assert_eq!(field_of(checked_media(&eleven)), "mediaUrls");
    }

    #[test]
    fn targets_take_what_they_can_publish() {
        let image = vec!["https://cdn.example.com/a.jpg".to_owned()];
        let video = vec!["https://cdn.example.com/a.MP4?sig=1".to_owned()];
        assert!(check_for_target(SocialAccountKind::Instagram, "hi", &image).is_ok());
        assert_eq!(field_of(check_for_target(SocialAccountKind::Instagram, "hi", &[])), "mediaUrls");
        let tags = (0..31).map(|i| format!("#t{i}")).collect::<Vec<_>>().join(" ");
        assert_eq!(field_of(check_for_target(SocialAccountKind::Instagram, &tags, &image)), "content");
        assert!(check_for_target(SocialAccountKind::Tiktok, "hi", &video).is_ok());
        assert_eq!(field_of(check_for_target(SocialAccountKind::Tiktok, "hi", &image)), "mediaUrls");
        assert!(check_for_target(SocialAccountKind::FacebookPage, "hi", &[]).is_ok());
        let two = vec![image[0].clone(), video[0].clone()];
        assert_eq!(field_of(check_for_target(SocialAccountKind::FacebookPage, "hi", &two)), "mediaUrls");
    }
}
