//! What the admin and ingress clients share: one HTTP/1.1 client with bounded timeouts, URL building, reading
//! Restate's error bodies, and the bounded retry loop.

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode, Url};

use crate::error::{Error, Kind, Result};

/// How long establishing one TCP connection may take; everything here is on loopback or a port-forward.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between attempts of a wait: short at first, since Restate starts in well under a second.
const FIRST_PAUSE: Duration = Duration::from_millis(25);
const MAX_PAUSE: Duration = Duration::from_millis(500);
/// The shortest per-request bound a nearly exhausted wait still grants, so the last attempt can answer at all.
const MIN_ATTEMPT: Duration = Duration::from_millis(200);
/// Longest error body quoted in a message.
const MAX_QUOTE: usize = 400;

/// One Restate HTTP API (admin or ingress) at a base URL.
pub struct Api {
    /// What it is, for messages: "the Restate admin API".
    pub what: &'static str,
    pub base: Url,
    pub client: Client,
}

impl Api {
    pub fn new(what: &'static str, base: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::usage(format!("invalid URL for {what} `{base}`: {why}"))
                .hint("give an absolute http:// URL such as http://127.0.0.1:9070")
        };
        let base = Url::parse(base).map_err(|e| bad(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() || base.host().is_none() {
            return Err(bad("it must be an http:// or https:// URL with a host"));
        }
        // Proxies are never wanted: these URLs are loopback ports or port-forwards on this machine.
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy()
            .build()
            .map_err(|e| Error::failed("cannot set up the HTTP client").source(e))?;
        Ok(Api { what, base, client })
    }

    /// The base URL with `segments` appended, each percent-encoded as one path segment.
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// The error for a request that got no HTTP answer.
    pub fn transport_error(&self, url: &Url, bound: Duration, e: reqwest::Error) -> Error {
        if e.is_timeout() {
            Error::timeout(format!(
                "{} at {url} did not answer within {}",
                self.what,
                seconds(bound)
            ))
            .source(e)
            .hint(format!(
                "check that {} is running and not overloaded (its logs may say why)",
                self.what
            ))
        } else if e.is_connect() {
            Error::failed(format!("cannot connect to {} at {url}", self.what))
                .source(e)
                .hint(format!(
                    "check that {} is running and listening on {}",
                    self.what,
                    authority(url)
                ))
        } else {
            Error::failed(format!("the request to {} at {url} failed", self.what)).source(e)
        }
    }
}

/// `host:port` of a URL, for hints.
fn authority(url: &Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_string(),
        _ => url.to_string(),
    }
}

/// A duration as people write it in flags: `2s`, `1.5s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// Restate's error body: `{"message", "restate_code"}` from admin, `{"code", "message"}` from ingress.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub message: String,
    pub restate_code: Option<String>,
}

impl Problem {
    /// Reads an error body; a body that is not Restate's JSON is quoted as text.
    pub fn parse(status: StatusCode, body: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Body {
            message: String,
            #[serde(default)]
            restate_code: Option<String>,
        }
        match serde_json::from_str::<Body>(body) {
            Ok(b) => Problem {
                message: b.message,
                restate_code: b.restate_code,
            },
            Err(_) => {
                let text = body.trim();
                let message = if text.is_empty() {
                    format!("HTTP {status} with an empty body")
                } else if text.chars().count() > MAX_QUOTE {
                    format!("{}…", text.chars().take(MAX_QUOTE).collect::<String>())
                } else {
                    text.to_string()
                };
                Problem {
                    message,
                    restate_code: None,
                }
            }
        }
    }
}

/// What one attempt of a bounded wait found.
pub enum Attempt<T> {
    Done(T),
    /// Not yet; the error says why, and becomes the answer if time runs out.
    Retry(Error),
    /// A failure that waiting cannot fix.
    Fail(Error),
}

/// Runs `attempt` until it is done, fails, or `timeout` has passed. Each attempt gets the time left, to bound its
/// own request by. When time runs out, the last reason to retry becomes a [`Kind::Timeout`] error; a request
/// that merely ran out of time does not replace an earlier, more telling reason (the last attempt is often cut
/// short by the deadline).
pub async fn until<T, F, Fut>(timeout: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Attempt<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    let mut reason: Option<Error> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now()).max(MIN_ATTEMPT);
        let why = match attempt(left).await {
            Attempt::Done(value) => return Ok(value),
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry(why) => why,
        };
        let best = match reason.take() {
            Some(earlier) if why.kind == Kind::Timeout && earlier.kind != Kind::Timeout => earlier,
            _ => why,
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(gave_up(best, timeout));
        }
        reason = Some(best);
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 3 / 2).min(MAX_PAUSE);
    }
}

fn gave_up(mut why: Error, timeout: Duration) -> Error {
    why.kind = Kind::Timeout;
    why.message = format!("{} (still so after {})", why.message, seconds(timeout));
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_append_encoded_segments() {
        let api = Api::new("x", "http://127.0.0.1:9070").unwrap();
        assert_eq!(api.url(&["deployments"]).as_str(), "http://127.0.0.1:9070/deployments");
        assert_eq!(
            api.url(&["Counter", "a b/c", "add"]).as_str(),
            "http://127.0.0.1:9070/Counter/a%20b%2Fc/add"
        );
        let prefixed = Api::new("x", "http://localhost:8001/proxy/").unwrap();
        assert_eq!(prefixed.url(&["health"]).as_str(), "http://localhost:8001/proxy/health");
        let unslashed = Api::new("x", "http://localhost:8001/proxy").unwrap();
        assert_eq!(
            unslashed.url(&["health"]).as_str(),
            "http://localhost:8001/proxy/health"
        );
    }

    #[test]
    fn bad_base_urls_are_usage_errors() {
        for bad in ["127.0.0.1:9070", "localhost", "ftp://h/", "mailto:a@b", ""] {
            let e = Api::new("the Restate admin API", bad).err().expect(bad);
            assert_eq!(e.kind, Kind::Usage, "{bad}");
            assert!(e.message.contains("the Restate admin API"), "{}", e.message);
        }
    }

    #[test]
    fn problems_read_both_error_shapes() {
        let admin = r#"{"message":"[META0003] error when calling 'http://x:9080/'","restate_code":"META0003"}"#;
        assert_eq!(
            Problem::parse(StatusCode::INTERNAL_SERVER_ERROR, admin),
            Problem {
                message: "[META0003] error when calling 'http://x:9080/'".into(),
                restate_code: Some("META0003".into())
            }
        );
        let ingress = r#"{"code":404,"message":"service 'Nope' not found","source":"ingress"}"#;
        let p = Problem::parse(StatusCode::NOT_FOUND, ingress);
        assert_eq!(p.message, "service 'Nope' not found");
        assert_eq!(p.restate_code, None);
        let null_code = r#"{"message":"bad uri","restate_code":null}"#;
        assert_eq!(Problem::parse(StatusCode::BAD_REQUEST, null_code).restate_code, None);
    }

    #[test]
    fn problems_quote_other_bodies() {
        assert_eq!(
            Problem::parse(StatusCode::BAD_GATEWAY, " upstream down\n").message,
            "upstream down"
        );
        assert_eq!(
            Problem::parse(StatusCode::BAD_GATEWAY, "").message,
            "HTTP 502 Bad Gateway with an empty body"
        );
        let long = "x".repeat(1000);
        assert_eq!(
            Problem::parse(StatusCode::BAD_GATEWAY, &long).message.chars().count(),
            MAX_QUOTE + 1
        );
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds(Duration::from_secs(2)), "2s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
    }

    #[tokio::test]
    async fn until_returns_the_first_success() {
        let mut calls = 0;
        let got = until(Duration::from_secs(5), |_| {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Attempt::Retry(Error::failed("not yet"))
                } else {
                    Attempt::Done(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn until_stops_at_a_failure() {
        let e = until(Duration::from_secs(5), |_| async {
            Attempt::<()>::Fail(Error::usage("bad"))
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind, Kind::Usage);
    }

    #[tokio::test]
    async fn a_cut_short_request_does_not_hide_the_reason() {
        let mut calls = 0;
        let e = until(Duration::from_millis(300), |_| {
            calls += 1;
            let first = calls == 1;
            async move {
                Attempt::<()>::Retry(if first {
                    Error::failed("Restate cannot reach the service")
                } else {
                    Error::timeout("no answer within 0.2s")
                })
            }
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind, Kind::Timeout);
        assert_eq!(e.message, "Restate cannot reach the service (still so after 0.3s)");
    }

    #[tokio::test]
    async fn until_turns_the_last_reason_into_a_timeout() {
        let e = until(Duration::from_millis(300), |_| async {
            Attempt::<()>::Retry(Error::failed("still down").hint("start it"))
        })
        .await
        .unwrap_err();
        assert_eq!(e.kind, Kind::Timeout);
        assert_eq!(e.message, "still down (still so after 0.3s)");
        assert_eq!(e.hint.as_deref(), Some("start it"));
    }
}
