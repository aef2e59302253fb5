//! What the social-publishing simulators (Meta, TikTok) share: the test markers that choose a
//! post's fate and the record of what was posted, which `/_sandbox/posts` shows.
//!
//! A test picks a scenario through the same fields a real post carries:
//! - text (a Facebook `message`, an Instagram `caption`, a TikTok `title`) containing
//!   `#sandbox-500-once` is answered with a server error the first time that exact text is sent,
//!   and accepted when it is sent again, as a client's retry would;
//! - text containing `#sandbox-fail` is refused as the platform refuses abusive content;
//! - a media URL containing `fail` is accepted, but the platform cannot fetch it: the Instagram
//!   container ends `ERROR`, the TikTok post `FAILED`.

use std::{collections::HashSet, time::Instant};

use serde_json::{Value, json};

const FAILS_ONCE: &str = "#sandbox-500-once";
const FAILS: &str = "#sandbox-fail";

/// Why a post was not accepted, before the platform's own wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A transient server error: the same text sent again goes through.
    Transient,
    /// The content is refused for good.
    Abusive,
}

/// Whether the platform fails to fetch the media at `url`.
pub fn media_fails(url: &str) -> bool {
    url.contains("fail")
}

/// One post or video as the platform recorded it.
pub struct Post {
    /// `facebook`, `instagram` or `tiktok`.
    pub network: &'static str,
    pub id: String,
    /// The page, Instagram account or TikTok `open_id` it went to.
    pub account: String,
    pub text: String,
    pub link: Option<String>,
    pub media_url: Option<String>,
    pub published: bool,
    recorded_at: Instant,
}

impl Post {
    pub fn new(network: &'static str, id: String, account: String, text: String) -> Self {
        Self {
            network,
            id,
            account,
            text,
            link: None,
            media_url: None,
            published: false,
            recorded_at: Instant::now(),
        }
    }

    pub fn recorded_at(&self) -> Instant {
        self.recorded_at
    }

    pub fn summary(&self) -> Value {
        json!({
            "network": self.network,
            "id": self.id,
            "account": self.account,
            "text": self.text,
            "link": self.link,
            "mediaUrl": self.media_url,
            "published": self.published,
        })
    }
}

/// A platform's posts, and which texts have already had their one server error.
#[derive(Default)]
pub struct Posts {
    posts: Vec<Post>,
    failed_once: HashSet<String>,
}

impl Posts {
    /// What the markers in `text` make of an attempt to post it.
    pub fn screen(&mut self, text: &str) -> Result<(), Refusal> {
        if text.contains(FAILS) {
            return Err(Refusal::Abusive);
        }
        if text.contains(FAILS_ONCE) && self.failed_once.insert(text.to_owned()) {
            return Err(Refusal::Transient);
        }
        Ok(())
    }

    pub fn record(&mut self, post: Post) {
        self.posts.push(post);
    }

    pub fn by_id(&mut self, id: &str) -> Option<&mut Post> {
        self.posts.iter_mut().find(|post| post.id == id)
    }

    pub fn all(&self) -> &[Post] {
        &self.posts
    }
}

/// `text` percent-encoded for a query string, so that a client's `state` comes back intact.
fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// `redirect_uri` with `params` appended to whatever query it already has.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let query: Vec<String> =
        params.iter().map(|(name, value)| format!("{name}={}", query_escape(value))).collect();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fail_once_text_fails_only_the_first_time() {
        let mut posts = Posts::default();
        assert_eq!(posts.screen("launch #sandbox-500-once"), Err(Refusal::Transient));
        assert_eq!(posts.screen("launch #sandbox-500-once"), Ok(()));
        assert_eq!(posts.screen("another #sandbox-500-once"), Err(Refusal::Transient));
        assert_eq!(posts.screen("spam #sandbox-fail"), Err(Refusal::Abusive));
        assert_eq!(posts.screen("hello"), Ok(()));
    }

    #[test]
    fn redirects_keep_the_existing_query_and_escape_values() {
        assert_eq!(
            redirect_with("https://app.test/cb?x=1", &[("code", "abc"), ("state", "a b&c")]),
            "https://app.test/cb?x=1&code=abc&state=a%20b%26c"
        );
        assert_eq!(redirect_with("https://app.test/cb", &[("code", "abc")]), "https://app.test/cb?code=abc");
    }
}
