//! The social adapters against the real sandbox binary: the OAuth dance through a browser that
//! stops at redirects, publishing with every test marker, token rotation and revocation, and
//! transcripts that never give a token away.

use std::time::Duration;

use chrono::Utc;
use reqwest::Url;
use serde_json::Value;
use ultra_providers::{
    AccountKind, AccountTokens, Connected, Platform, PostContent, ProviderError, Providers, Publication,
    Reach, Settings, SocialAdapter, Target, Transcript,
};
use ultra_tests::{Process, TestDb, start_sandbox};

const REDIRECT_URI: &str = "https://ultra.test/api/v1/social/callback?source=dashboard";
const CLIENT_SECRET: &str = "ultra-sandbox-secret";

struct World {
    _db: TestDb,
    sandbox: Process,
    http: reqwest::Client,
    adapter: SocialAdapter,
    /// Every exchange of the test, checked at the end for leaked secrets.
    log: Transcript,
    /// Every secret the test saw, none of which may appear in `log`.
    secrets: Vec<String>,
}

impl World {
    async fn start(platform: Platform) -> Self {
        let db = TestDb::new().await;
        // No callbacks are involved, so the API address the sandbox is given goes unused.
        let sandbox = start_sandbox(&db, "http://127.0.0.1:9").await;
        let settings = Settings(
            [
                ("baseUrl", format!("{}/{}", sandbox.base, platform.as_str())),
                ("clientId", "ultra-sandbox".to_owned()),
                ("clientSecret", CLIENT_SECRET.to_owned()),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
        );
        let adapter = Providers::new(Duration::from_secs(5), Reach::Private)
            .social(platform, settings)
            .expect("adapter");
        assert_eq!(adapter.platform(), platform);
        Self {
            _db: db,
            sandbox,
            http: reqwest::Client::new(),
            adapter,
            log: Transcript::default(),
            secrets: vec![CLIENT_SECRET.to_owned()],
        }
    }

    /// The user consents in the browser; the app receives `code` and its own `state` back.
    async fn consent(&mut self) -> String {
        let state = "st/1 &x";
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let answer = browser.get(self.adapter.authorize_url(REDIRECT_URI, state)).send().await.unwrap();
        assert_eq!(answer.status(), 302, "{}", answer.text().await.unwrap());
        let location = Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
        assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
        let value =
            |name: &str| location.query_pairs().find(|(key, _)| key == name).map(|(_, v)| v.into_owned());
        assert_eq!(value("state").as_deref(), Some(state));
        let code = value("code").expect("a code");
        self.secrets.push(code.clone());
        code
    }

    async fn connect(&mut self) -> Vec<Connected> {
        let code = self.consent().await;
        let connected = self.adapter.connect(&code, REDIRECT_URI, &mut self.log).await.expect("connect");
        for account in &connected {
            self.remember(&account.tokens);
        }
        connected
    }

    fn remember(&mut self, tokens: &AccountTokens) {
        self.secrets.push(tokens.access_token.clone());
        self.secrets.extend(tokens.refresh_token.clone());
        self.secrets.extend(tokens.user_token.clone());
    }

    async fn publish(
        &mut self,
        account: &Connected,
        tokens: &AccountTokens,
        text: &str,
        media: &[&str],
        resume: Option<&str>,
    ) -> Result<Publication, ProviderError> {
        let media_urls: Vec<String> = media.iter().map(|url| (*url).to_owned()).collect();
        let target = Target { kind: account.kind, external_id: &account.external_id, tokens };
        let content = PostContent { text, media_urls: &media_urls };
        self.adapter.publish(&target, &content, resume, &mut self.log).await
    }

    async fn refresh(
        &mut self,
        kind: AccountKind,
        tokens: &AccountTokens,
    ) -> Result<AccountTokens, ProviderError> {
        let refreshed = self.adapter.refresh(kind, tokens, &mut self.log).await;
        if let Ok(tokens) = &refreshed {
            self.remember(tokens);
        }
        refreshed
    }

    async fn posts(&self, network: &str) -> Vec<Value> {
        let url = format!("{}/_sandbox/posts?network={network}", self.sandbox.base);
        self.http.get(url).send().await.unwrap().json().await.unwrap()
    }

    /// The user removes the app in the platform's own settings.
    async fn remove_app(&self, platform: &str) -> u64 {
        let url = format!("{}/_sandbox/social/{platform}/revoke", self.sandbox.base);
        let answer = self.http.post(url).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        answer.json::<Value>().await.unwrap()["revoked"].as_u64().expect("a count")
    }

    /// No token, code or secret made it into the transcripts, while the exchanges themselves did.
    fn assert_transcript_is_clean(&self) {
        let text = serde_json::to_string(&self.log).unwrap();
        assert!(text.contains("[redacted]"), "{text}");
        for secret in &self.secrets {
            assert!(!text.contains(secret.as_str()), "{secret} leaked into the transcript: {text}");
        }
    }
}

fn published(result: Result<Publication, ProviderError>) -> String {
    match result {
        Ok(Publication::Published { post_id }) => post_id,
        other => panic!("expected a published post, got {other:?}"),
    }
}

fn rejected_with(result: Result<Publication, ProviderError>) -> String {
    match result {
        Err(ProviderError::Rejected { code, .. }) => code,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn account(connected: &[Connected], kind: AccountKind) -> Connected {
    connected.iter().find(|account| account.kind == kind).cloned().unwrap_or_else(|| panic!("no {kind:?}"))
}

#[tokio::test]
async fn meta_connects_a_page_and_its_instagram_account_and_publishes_to_both() {
    let mut world = World::start(Platform::Meta).await;
    let connected = world.connect().await;
    assert_eq!(connected.len(), 2, "{connected:?}");
    let page = account(&connected, AccountKind::FacebookPage);
    let instagram = account(&connected, AccountKind::Instagram);
    assert_eq!(page.name, "Ultra Sandbox Page");
    assert_eq!(instagram.name, "ultra.sandbox");
    assert!(instagram.external_id.starts_with("1784"), "{instagram:?}");
    assert_eq!(page.tokens, instagram.tokens, "the Page token publishes to both");
    assert_eq!(page.tokens.access_expires_at, None, "Page tokens do not expire");
    let user_expiry = page.tokens.user_token_expires_at.expect("the user token lapses");
    assert!((user_expiry - Utc::now()).num_days() >= 59, "{user_expiry}");
    assert!(page.tokens.user_token.is_some());
    let exchanges = &world.log.0;
    assert!(exchanges.iter().any(|e| e.url.contains("grant_type=fb_exchange_token")), "{exchanges:?}");
    assert!(exchanges.iter().all(|e| e.status == Some(200)), "{exchanges:?}");

    // A Page post, with its first media URL as the link.
    let tokens = page.tokens.clone();
    let post_id =
        published(world.publish(&page, &tokens, "Hello from Ultra", &["https://ultra.test/p"], None).await);
    let posts = world.posts("facebook").await;
    let post = posts.iter().find(|post| post["id"] == post_id.as_str()).expect("the Page post");
    assert_eq!(post["text"], "Hello from Ultra");
    assert_eq!(post["link"], "https://ultra.test/p");
    assert_eq!(post["account"], page.external_id.as_str());

    // An Instagram picture: the container is still IN_PROGRESS at the first poll.
    let before = world.log.0.len();
    let media_id =
        published(world.publish(&instagram, &tokens, "A picture", &["https://cdn.test/a.jpg"], None).await);
    let polls: Vec<&str> = world.log.0[before..]
        .iter()
        .filter_map(|exchange| exchange.response.get("status_code").and_then(Value::as_str))
        .collect();
    assert_eq!(polls, ["IN_PROGRESS", "FINISHED"]);
    let posts = world.posts("instagram").await;
    let post = posts.iter().find(|post| post["id"] == media_id.as_str()).expect("the Instagram post");
    assert_eq!(post["mediaUrl"], "https://cdn.test/a.jpg");
    assert_eq!(post["published"], true);

    // A video goes up as a reel.
    let before = world.log.0.len();
    published(world.publish(&instagram, &tokens, "A reel", &["https://cdn.test/clip.MP4?s=1"], None).await);
    assert_eq!(world.log.0[before].request["media_type"], "REELS", "{:?}", world.log.0[before]);

    // Media Instagram cannot fetch, and posts without exactly one media URL.
    let fails = world.publish(&instagram, &tokens, "Broken", &["https://cdn.test/fail.jpg"], None).await;
    assert_eq!(rejected_with(fails), "media_error");
    let before = world.log.0.len();
    assert_eq!(
        rejected_with(world.publish(&instagram, &tokens, "No media", &[], None).await),
        "media_required"
    );
    assert_eq!(world.log.0.len(), before, "refused without asking Instagram");

    // Content the platform refuses.
    assert_eq!(rejected_with(world.publish(&page, &tokens, "spam #sandbox-fail", &[], None).await), "368");

    // A server error the first time, accepted on the retry.
    let text = "Launch #sandbox-500-once";
    let first = world.publish(&page, &tokens, text, &[], None).await;
    assert!(matches!(first, Err(ProviderError::Unavailable(_))), "{first:?}");
    published(world.publish(&page, &tokens, text, &[], None).await);

    world.assert_transcript_is_clean();
}

#[tokio::test]
async fn meta_resumes_a_container_renews_the_user_token_and_notices_revocation() {
    let mut world = World::start(Platform::Meta).await;
    let connected = world.connect().await;
    let page = account(&connected, AccountKind::FacebookPage);
    let instagram = account(&connected, AccountKind::Instagram);

    // A container made earlier (as by a call that answered Processing) is resumed, not made again.
    let create = world
        .http
        .post(format!("{}/meta/v21.0/{}/media", world.sandbox.base, instagram.external_id))
        .bearer_auth(&instagram.tokens.access_token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("image_url=https%3A%2F%2Fcdn.test%2Fb.jpg&caption=Resumed")
        .send()
        .await
        .unwrap();
    let container = create.json::<Value>().await.unwrap()["id"].as_str().expect("a container").to_owned();
    let before = world.log.0.len();
    let tokens = instagram.tokens.clone();
    published(
        world.publish(&instagram, &tokens, "Resumed", &["https://cdn.test/b.jpg"], Some(&container)).await,
    );
    assert!(
        world.log.0[before..].iter().all(|exchange| !exchange.url.ends_with("/media")),
        "no new container"
    );
    let posts = world.posts("instagram").await;
    assert!(posts.iter().any(|post| post["text"] == "Resumed"), "{posts:?}");

    // Renewing gives a new long-lived user token; the Page token, which does not expire, stays.
    let renewed = world.refresh(AccountKind::FacebookPage, &page.tokens).await.expect("refresh");
    assert_ne!(renewed.user_token, page.tokens.user_token);
    assert_eq!(renewed.access_token, page.tokens.access_token);
    assert!(renewed.user_token_expires_at.is_some());
    published(world.publish(&page, &renewed, "After renewal", &[], None).await);
    let wrong_platform = world.refresh(AccountKind::Tiktok, &renewed).await;
    assert!(matches!(wrong_platform, Err(ProviderError::Unsupported(_))), "{wrong_platform:?}");

    // The user removes the app on Facebook: every call with its tokens is refused.
    assert!(world.remove_app("meta").await >= 2);
    let refused = world.publish(&page, &renewed, "After removal", &[], None).await;
    assert!(matches!(refused, Err(ProviderError::Credentials(_))), "{refused:?}");
    let refused =
        world.publish(&instagram, &renewed, "After removal", &["https://cdn.test/c.jpg"], None).await;
    assert!(matches!(refused, Err(ProviderError::Credentials(_))), "{refused:?}");
    let refused = world.refresh(AccountKind::Instagram, &renewed).await;
    assert!(matches!(refused, Err(ProviderError::Credentials(_))), "{refused:?}");

    // Connecting again, then revoking from our side.
    let connected = world.connect().await;
    let page = account(&connected, AccountKind::FacebookPage);
    world.adapter.revoke(&page.tokens, &mut world.log).await.expect("revoke");
    let refused = world.publish(&page, &page.tokens, "After revoke", &[], None).await;
    assert!(matches!(refused, Err(ProviderError::Credentials(_))), "{refused:?}");

    world.assert_transcript_is_clean();
}

#[tokio::test]
async fn tiktok_connects_rotates_refresh_tokens_publishes_and_revokes() {
    let mut world = World::start(Platform::Tiktok).await;
    let connected = world.connect().await;
    assert_eq!(connected.len(), 1);
    let creator = connected[0].clone();
    assert_eq!(creator.kind, AccountKind::Tiktok);
    assert!(creator.external_id.starts_with("-000"), "{creator:?}");
    assert_eq!(creator.name, "ultra.sandbox");
    let tokens = creator.tokens.clone();
    assert!(tokens.refresh_token.is_some() && tokens.refresh_expires_at.is_some());
    let access_expiry = tokens.access_expires_at.expect("the access token lapses");
    assert!((access_expiry - Utc::now()).num_minutes() > 100, "{access_expiry}");
    assert_eq!(tokens.scope.as_deref(), Some("user.info.basic,video.publish,video.upload"));

    // Refresh tokens rotate: the old one is refused once used.
    let rotated = world.refresh(AccountKind::Tiktok, &tokens).await.expect("refresh");
    assert_ne!(rotated.refresh_token, tokens.refresh_token);
    assert_ne!(rotated.access_token, tokens.access_token);
    let stale = world.refresh(AccountKind::Tiktok, &tokens).await;
    assert!(matches!(stale, Err(ProviderError::Credentials(_))), "{stale:?}");

    // A video TikTok pulls from its URL, downloading at the first status fetch.
    let before = world.log.0.len();
    let post_id = published(
        world.publish(&creator, &rotated, "Launch day", &["https://cdn.test/clip.mp4"], None).await,
    );
    let init = world.log.0[before..].iter().find(|e| e.url.ends_with("/video/init/")).expect("an init");
    assert_eq!(init.request["post_info"]["privacy_level"], "PUBLIC_TO_EVERYONE");
    let statuses: Vec<&str> = world.log.0[before..]
        .iter()
        .filter_map(|exchange| exchange.response.pointer("/data/status").and_then(Value::as_str))
        .collect();
    assert_eq!(statuses, ["PROCESSING_DOWNLOAD", "PUBLISH_COMPLETE"]);
    let posts = world.posts("tiktok").await;
    let post = posts.iter().find(|post| post["id"] == post_id.as_str()).expect("the TikTok post");
    assert_eq!(post["published"], true);
    assert_eq!(post["text"], "Launch day");

    // What TikTok cannot take.
    let picture = world.publish(&creator, &rotated, "A picture", &["https://cdn.test/a.jpg"], None).await;
    assert_eq!(rejected_with(picture), "video_required");
    let failing = world.publish(&creator, &rotated, "Broken", &["https://cdn.test/fail.mp4"], None).await;
    assert_eq!(rejected_with(failing), "video_pull_failed");
    let spam = world.publish(&creator, &rotated, "#sandbox-fail", &["https://cdn.test/s.mp4"], None).await;
    assert_eq!(rejected_with(spam), "spam_risk_too_many_posts");

    // A server error the first time, accepted on the retry.
    let text = "Again #sandbox-500-once";
    let first = world.publish(&creator, &rotated, text, &["https://cdn.test/b.mp4"], None).await;
    assert!(matches!(first, Err(ProviderError::Unavailable(_))), "{first:?}");
    published(world.publish(&creator, &rotated, text, &["https://cdn.test/b.mp4"], None).await);

    // Revoking ends the access and the refresh token alike.
    world.adapter.revoke(&rotated, &mut world.log).await.expect("revoke");
    let refused = world.publish(&creator, &rotated, "After revoke", &["https://cdn.test/c.mp4"], None).await;
    assert!(matches!(refused, Err(ProviderError::Credentials(_))), "{refused:?}");
    let refused = world.refresh(AccountKind::Tiktok, &rotated).await;
    assert!(matches!(refused, Err(ProviderError::Credentials(_))), "{refused:?}");

    // The creator removes the app on TikTok.
    let creator = world.connect().await.remove(0);
    assert_eq!(world.remove_app("tiktok").await, 2);
    let refused =
        world.publish(&creator, &creator.tokens, "After removal", &["https://cdn.test/d.mp4"], None).await;
    assert!(matches!(refused, Err(ProviderError::Credentials(_))), "{refused:?}");

    world.assert_transcript_is_clean();
}

#[tokio::test]
async fn an_unreachable_platform_is_recorded_without_an_answer() {
    let settings = Settings(
        [
            ("baseUrl", "http://127.0.0.1:9/tiktok"),
            ("clientId", "key"),
            ("clientSecret", "very-secret-value"),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect(),
    );
    let adapter =
        Providers::new(Duration::from_secs(2), Reach::Private).social(Platform::Tiktok, settings).unwrap();
    let mut log = Transcript::default();
    let failed = adapter.connect("the-code-123", REDIRECT_URI, &mut log).await;
    assert!(matches!(failed, Err(ProviderError::Unavailable(_) | ProviderError::Timeout)), "{failed:?}");
    assert_eq!(log.0.len(), 1);
    assert_eq!(log.0[0].status, None);
    assert!(log.0[0].response.is_string(), "{:?}", log.0[0]);
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("very-secret-value") && !text.contains("the-code-123"), "{text}");
    assert!(text.contains("\"status\":null"), "{text}");

    let missing =
        Providers::new(Duration::from_secs(2), Reach::Private).social(Platform::Meta, Settings::default());
    assert!(matches!(missing, Err(ProviderError::Configuration(_))));
}
