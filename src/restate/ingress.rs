//! The Restate ingress (port 8080): invoking handlers over HTTP.

use std::time::Duration;

use reqwest::{StatusCode, Url, header};
use serde_json::Value;

use super::Admin;
use super::http::{Api, Attempt, Problem, until};
use crate::error::{Error, Kind, Result};

/// Bound on one invocation. Restate retries a failing handler for a long time, so an unbounded call could hang.
const INVOKE_REQUEST: Duration = Duration::from_secs(30);
/// Bound on one health request.
const HEALTH_REQUEST: Duration = Duration::from_secs(5);
/// Bound on starting an invocation, which Restate only records before it answers.
const SEND_REQUEST: Duration = Duration::from_secs(5);
/// The name `verify_sample` greets, and the answer the sample's `Greeter/greet` must give.
const SAMPLE_NAME: &str = "restate-dev";
const SAMPLE_ANSWER: &str = "Hello, restate-dev!";

pub struct Ingress {
    api: Api,
}

impl Ingress {
    pub fn new(base: &str) -> Result<Self> {
        Ok(Ingress {
            api: Api::new("the Restate ingress", base)?,
        })
    }

    /// Waits until `GET /restate/health` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let url = self.api.url(&["restate", "health"]);
        until(timeout, |left| {
            let bound = left.min(HEALTH_REQUEST);
            let request = self.api.client.get(url.clone()).timeout(bound).send();
            let url = url.clone();
            async move {
                match request.await {
                    Ok(response) if response.status() == StatusCode::OK => Attempt::Done(()),
                    Ok(response) => Attempt::Retry(
                        Error::failed(format!(
                            "{} at {url} is not ready: HTTP {}",
                            self.api.what,
                            response.status()
                        ))
                        .hint("the Restate server is starting or failing; its logs say which"),
                    ),
                    Err(e) => Attempt::Retry(self.api.transport_error(&url, bound, e)),
                }
            }
        })
        .await
    }

    /// Calls a handler and returns its JSON answer (`null` for an empty one). `path` is `Service/handler` or
    /// `Object/key/handler`; `body` is JSON text, where `null` or nothing means "no input", which is what
    /// handlers without a parameter require.
    pub async fn invoke(&self, path: &str, body: &str) -> Result<Value> {
        let url = self.api.url(&segments(path)?);
        let request = with_body(self.api.client.post(url.clone()).timeout(INVOKE_REQUEST), body);
        let fail = |e| match self.api.transport_error(&url, INVOKE_REQUEST, e) {
            slow if slow.kind == Kind::Timeout => {
                slow.hint("Restate retries a failing handler until it succeeds; check the service's logs")
            }
            other => other,
        };
        let response = request.send().await.map_err(fail)?;
        let status = response.status();
        let text = response.text().await.map_err(fail)?;
        invocation_outcome(&url, status, &text)
    }

    /// Starts an invocation without waiting for it (`…/send`); its id. What Restate refuses at once (no such
    /// handler, a body it cannot take) fails here, as [`Ingress::invoke`] would.
    pub async fn send(&self, path: &str, body: &str) -> Result<String> {
        let mut parts = segments(path)?;
        parts.push("send");
        let url = self.api.url(&parts);
        let request = with_body(self.api.client.post(url.clone()).timeout(SEND_REQUEST), body);
        let fail = |e| self.api.transport_error(&url, SEND_REQUEST, e);
        let response = request.send().await.map_err(fail)?;
        let status = response.status();
        let text = response.text().await.map_err(fail)?;
        let accepted = invocation_outcome(&url, status, &text)?;
        match accepted["invocationId"].as_str() {
            Some(id) => Ok(id.to_string()),
            None => Err(
                Error::failed(format!("Restate accepted the call to {url} without an invocation id"))
                    .detail(format!("Restate said: {text}"))
                    .hint("is this a Restate 1.x ingress?"),
            ),
        }
    }

    /// Waits at most `bound` for the outcome of invocation `id` (`GET /restate/invocation/ID/attach`). The outer
    /// error means no answer came (Kind::Timeout when the invocation had not completed by then); the inner result
    /// is Restate's answer: the handler's output, or Restate's own error for the invocation.
    pub async fn attach(&self, id: &str, bound: Duration) -> Result<Result<Value>> {
        let url = self.api.url(&["restate", "invocation", id, "attach"]);
        let fail = |e| self.api.transport_error(&url, bound, e);
        let response = self
            .api
            .client
            .get(url.clone())
            .timeout(bound)
            .send()
            .await
            .map_err(fail)?;
        let status = response.status();
        let text = response.text().await.map_err(fail)?;
        Ok(invocation_outcome(&url, status, &text))
    }
}

/// A JSON body, unless it is `null` or empty: handlers without a parameter take none.
fn with_body(request: reqwest::RequestBuilder, body: &str) -> reqwest::RequestBuilder {
    let body = body.trim();
    if body.is_empty() || body == "null" {
        return request;
    }
    request
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
}

/// Proves the built-in sample works: `Greeter/greet` with "restate-dev" must answer "Hello, restate-dev!" within
/// `bound` (see [`super::prove`]).
pub async fn verify_sample(admin: &Admin, ingress: &Ingress, bound: Duration) -> Result<String> {
    let body = Value::String(SAMPLE_NAME.into()).to_string();
    let answer = super::prove(admin, ingress, "Greeter/greet", &body, bound).await?;
    match answer {
        Value::String(text) if text == SAMPLE_ANSWER => Ok(text),
        other => Err(Error::failed(format!(
            "the sample's Greeter/greet answered {other} instead of \"{SAMPLE_ANSWER}\""
        ))
        .hint("the registered deployment is not restate-dev's sample; check which image serves it")),
    }
}

/// The path's segments: `Service/handler` or `Object/key/handler`, optionally with Restate's `/send` suffix.
fn segments(path: &str) -> Result<Vec<&str>> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if !(2..=4).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(Error::usage(format!("invalid handler path `{path}`"))
            .hint("write it as Service/handler or Object/key/handler, e.g. Greeter/greet"));
    }
    Ok(parts)
}

/// What an ingress answer means: the handler's output, or an error that says what to check.
fn invocation_outcome(url: &Url, status: StatusCode, text: &str) -> Result<Value> {
    if status.is_success() {
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        // Handlers may answer other content types; keep their text rather than failing on it.
        return Ok(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string())));
    }
    let problem = Problem::parse(status, text);
    let error = match status {
        StatusCode::NOT_FOUND => Error::failed(format!("Restate has no handler at {url} (HTTP 404)")).hint(
            "check the path (Service/handler or Object/key/handler) and that the deployment serving it is \
             registered (`restate-dev status` lists the services)",
        ),
        StatusCode::BAD_REQUEST => Error::failed(format!("Restate rejected the call to {url} (HTTP 400)")).hint(
            "check that the body is JSON of the handler's input type; handlers without a parameter take no body \
             (--verify-body null)",
        ),
        _ => Error::failed(format!("the call to {url} failed: HTTP {status}"))
            .hint("the handler failed; check the service's logs"),
    };
    Err(error.detail(format!("Restate said: {}", problem.message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_segments() {
        assert_eq!(segments("Greeter/greet").unwrap(), ["Greeter", "greet"]);
        assert_eq!(segments("/Counter/k/add").unwrap(), ["Counter", "k", "add"]);
        assert_eq!(segments("Counter/k/add/send").unwrap(), ["Counter", "k", "add", "send"]);
        for bad in ["Greeter", "Greeter/", "a//b", "a/b/c/d/e", ""] {
            assert_eq!(segments(bad).unwrap_err().kind, Kind::Usage, "{bad}");
        }
        let ingress = Ingress::new("http://127.0.0.1:8080").unwrap();
        let url = ingress.api.url(&segments("Counter/my key/add").unwrap());
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/Counter/my%20key/add");
    }

    fn url() -> Url {
        Url::parse("http://127.0.0.1:8080/Greeter/greet").unwrap()
    }

    #[test]
    fn answers_become_json() {
        assert_eq!(
            invocation_outcome(&url(), StatusCode::OK, "\"Hello, x!\"").unwrap(),
            "Hello, x!"
        );
        assert_eq!(invocation_outcome(&url(), StatusCode::OK, "5").unwrap(), 5);
        assert_eq!(invocation_outcome(&url(), StatusCode::OK, "").unwrap(), Value::Null);
        assert_eq!(invocation_outcome(&url(), StatusCode::OK, "plain").unwrap(), "plain");
        let accepted = r#"{"invocationId":"inv_1","status":"Accepted"}"#;
        assert_eq!(
            invocation_outcome(&url(), StatusCode::ACCEPTED, accepted).unwrap()["status"],
            "Accepted"
        );
    }

    #[test]
    fn refusals_say_what_to_check() {
        let not_found = r#"{"code":404,"message":"service 'Nope' not found, make sure to register the service before calling it.","source":"ingress"}"#;
        let e = invocation_outcome(&url(), StatusCode::NOT_FOUND, not_found).unwrap_err();
        assert_eq!(e.kind, Kind::Failed);
        assert!(
            e.message.contains("http://127.0.0.1:8080/Greeter/greet"),
            "{}",
            e.message
        );
        assert!(e.details[0].contains("service 'Nope' not found"));
        assert!(e.hint.unwrap().contains("registered"));

        let bad = r#"{"code":400,"message":"Cannot decode input payload","source":"invocation"}"#;
        let e = invocation_outcome(&url(), StatusCode::BAD_REQUEST, bad).unwrap_err();
        assert!(e.details[0].contains("Cannot decode input payload"));
        assert!(e.hint.unwrap().contains("JSON"));

        let e = invocation_outcome(&url(), StatusCode::INTERNAL_SERVER_ERROR, "{}").unwrap_err();
        assert!(e.message.contains("500"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connection_error_naming_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ingress = Ingress::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = ingress.invoke("Greeter/greet", "\"x\"").await.unwrap_err();
        assert_eq!(e.kind, Kind::Failed);
        assert!(
            e.message.contains(&format!(
                "cannot connect to the Restate ingress at http://127.0.0.1:{port}/Greeter/greet"
            )),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains(&format!("127.0.0.1:{port}")));
    }
}
