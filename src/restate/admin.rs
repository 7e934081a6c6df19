//! The Restate admin API (port 9070): health, deployment registration, and what Restate knows about an
//! invocation (its last failure), which it can also kill.

use std::future::Future;
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

use super::http::{Api, Attempt, Problem, until};
use crate::error::{Error, Result};

/// Bound on one registration request: Restate calls the service's discovery endpoint before it answers, and
/// retries that call itself for about two seconds when the service refuses connections.
const REGISTER_REQUEST: Duration = Duration::from_secs(15);
/// Bound on one health or listing request.
const SHORT_REQUEST: Duration = Duration::from_secs(5);
/// Restate's code for "the deployment could not be reached or did not answer discovery".
const UNREACHABLE_DEPLOYMENT: &str = "META0003";

pub struct Admin {
    api: Api,
}

/// A deployment Restate knows, as `register` found it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registration {
    pub id: String,
    /// The services it serves, by name.
    pub services: Vec<String>,
    /// True when this call created it; false when the same deployment was already registered.
    pub created: bool,
}

impl Admin {
    pub fn new(base: &str) -> Result<Self> {
        Ok(Admin {
            api: Api::new("the Restate admin API", base)?,
        })
    }

    /// Waits until `GET /health` answers 200.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        self.wait_healthy_while(timeout, || async { Ok(()) }).await
    }

    /// Like [`Admin::wait_healthy`], but between attempts asks `alive` whether waiting still makes sense (e.g.
    /// "is the container still running?"); its error ends the wait at once.
    pub async fn wait_healthy_while<F, Fut>(&self, timeout: Duration, mut alive: F) -> Result<()>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<()>>,
    {
        let url = self.api.url(&["health"]);
        until(timeout, |left| {
            let bound = left.min(SHORT_REQUEST);
            // A new connection each time: one kept alive to a wrong place (a NodePort whose rules still pointed
            // at a pod from before a restart) would give the same wrong answer until the timeout.
            let request = (self.api.client.get(url.clone()))
                .header(reqwest::header::CONNECTION, "close")
                .timeout(bound)
                .send();
            let alive = alive();
            let url = url.clone();
            async move {
                let not_yet = match request.await {
                    Ok(response) if response.status() == StatusCode::OK => return Attempt::Done(()),
                    Ok(response) => Error::failed(format!(
                        "{} at {url} is not healthy: HTTP {}",
                        self.api.what,
                        response.status()
                    ))
                    .hint("the Restate server is starting or failing; its logs say which"),
                    Err(e) => self.api.transport_error(&url, bound, e),
                };
                match alive.await {
                    Ok(()) => Attempt::Retry(not_yet),
                    Err(e) => Attempt::Fail(e),
                }
            }
        })
        .await
    }

    /// Registers the service deployment at `uri` (`POST /deployments`), or refreshes it: both "created" and
    /// "already registered" succeed. Until `timeout`, it retries while the admin API is unreachable and while
    /// Restate cannot reach the service yet (a fresh Pod or container may not accept connections yet); other
    /// refusals fail at once.
    ///
    /// It always forces: without `force`, Restate 1.7 answers 200 for a known URI with the schema it discovered the
    /// first time and never asks the service again, so handlers added since then stay unknown (404). A dev loop
    /// re-registers the same URI after every change, so it must make Restate discover again.
    pub async fn register(&self, uri: &str, timeout: Duration) -> Result<Registration> {
        let url = self.api.url(&["deployments"]);
        let body = serde_json::json!({ "uri": uri, "force": true });
        until(timeout, |left| {
            let bound = left.min(REGISTER_REQUEST);
            let request = self.api.client.post(url.clone()).timeout(bound).json(&body).send();
            let url = url.clone();
            async move {
                let response = match request.await {
                    Ok(response) => response,
                    Err(e) if e.is_timeout() => return Attempt::Retry(waiting_on_service(uri)),
                    Err(e) => return Attempt::Retry(self.api.transport_error(&url, bound, e)),
                };
                let status = response.status();
                match response.text().await {
                    Ok(text) => registration_outcome(uri, status, &text),
                    Err(e) => Attempt::Retry(self.api.transport_error(&url, bound, e)),
                }
            }
        })
        .await
    }

    /// The body of a short request that must answer 200; otherwise an error with Restate's own message.
    async fn short_ok(&self, request: reqwest::RequestBuilder, url: &reqwest::Url) -> Result<String> {
        let response = request
            .timeout(SHORT_REQUEST)
            .send()
            .await
            .map_err(|e| self.api.transport_error(url, SHORT_REQUEST, e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| self.api.transport_error(url, SHORT_REQUEST, e))?;
        if status != StatusCode::OK {
            return Err(Error::failed(format!(
                "{} at {url} answered HTTP {status}: {}",
                self.api.what,
                Problem::parse(status, &text).message
            )));
        }
        Ok(text)
    }

    /// Restate's own version (`GET /version`), e.g. `1.7.12`.
    pub async fn version(&self) -> Result<String> {
        let url = self.api.url(&["version"]);
        let text = self.short_ok(self.api.client.get(url.clone()), &url).await?;
        #[derive(Deserialize)]
        struct Version {
            version: String,
        }
        serde_json::from_str::<Version>(&text)
            .map(|v| v.version)
            .map_err(|e| Error::failed(format!("cannot read Restate's version from {url}")).source(e))
    }

    /// The names of the registered services (`GET /services`).
    pub async fn services(&self) -> Result<Vec<String>> {
        let url = self.api.url(&["services"]);
        let text = self.short_ok(self.api.client.get(url.clone()), &url).await?;
        parse_services(&text).map_err(|e| {
            Error::failed(format!("cannot read the service list from {url}"))
                .source(e)
                .hint("is this a Restate 1.x admin API?")
        })
    }
    /// What Restate records about invocation `id` (`sys_invocation`): its status and last failure.
    pub async fn invocation(&self, id: &str) -> Result<Option<InvocationState>> {
        // The id goes into SQL; Restate's ids are base62 with an `inv_` prefix, so anything else is refused.
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::failed(format!("`{id}` is not a Restate invocation id")));
        }
        let url = self.api.url(&["query"]);
        let query = format!(
            "SELECT status, retry_count, last_failure, last_failure_error_code FROM sys_invocation WHERE id = '{id}'"
        );
        let request = (self.api.client.post(url.clone()))
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&serde_json::json!({ "query": query }));
        let text = self.short_ok(request, &url).await?;
        #[derive(Deserialize)]
        struct Rows {
            rows: Vec<InvocationState>,
        }
        let rows: Rows = serde_json::from_str(&text)
            .map_err(|e| Error::failed(format!("cannot read Restate's answer from {url}")).source(e))?;
        Ok(rows.rows.into_iter().next())
    }

    /// Kills invocation `id` at once (`PATCH /invocations/ID/kill`). Cancelling is not enough for a proof that
    /// keeps failing: a handler that throws before it awaits anything never sees the cancellation.
    pub async fn kill(&self, id: &str) -> Result<()> {
        let url = self.api.url(&["invocations", id, "kill"]);
        let response = self
            .api
            .client
            .patch(url.clone())
            .timeout(SHORT_REQUEST)
            .send()
            .await
            .map_err(|e| self.api.transport_error(&url, SHORT_REQUEST, e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        Err(Error::failed(format!(
            "{} at {url} answered HTTP {status}: {}",
            self.api.what,
            Problem::parse(status, &text).message
        )))
    }
}

/// One row of `sys_invocation`, as much of it as a failure message needs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvocationState {
    /// pending, scheduled, ready, running, backing-off, suspended, paused, completed.
    pub status: String,
    #[serde(default)]
    pub retry_count: Option<u64>,
    /// Restate's text for the last failed attempt, e.g. `[500 Internal] boom` and the handler's stack.
    #[serde(default)]
    pub last_failure: Option<String>,
    #[serde(default)]
    pub last_failure_error_code: Option<String>,
}

/// Why a registration request got no answer in time: Restate answers only once the service at `uri` has
/// answered its discovery request, so the admin API waits as long as the service does.
fn waiting_on_service(uri: &str) -> Error {
    Error::timeout(format!(
        "Restate did not register {uri}: its admin API answers once the service there has answered Restate's \
         discovery request, and the service did not"
    ))
    .hint(format!(
        "the service at {uri} accepts connections but does not answer: check that it is running (not paused or \
         stuck) and speaks HTTP/2 cleartext (h2c); its logs say more"
    ))
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

fn parse_services(text: &str) -> serde_json::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Services {
        services: Vec<Named>,
    }
    let mut names: Vec<String> = serde_json::from_str::<Services>(text)?
        .services
        .into_iter()
        .map(|s| s.name)
        .collect();
    names.sort();
    Ok(names)
}

/// Decides what one answer to `POST /deployments` means.
fn registration_outcome(uri: &str, status: StatusCode, text: &str) -> Attempt<Registration> {
    if status == StatusCode::CREATED || status == StatusCode::OK {
        #[derive(Deserialize)]
        struct Registered {
            id: String,
            services: Vec<Named>,
        }
        return match serde_json::from_str::<Registered>(text) {
            Ok(r) => {
                let mut services: Vec<String> = r.services.into_iter().map(|s| s.name).collect();
                services.sort();
                Attempt::Done(Registration {
                    id: r.id,
                    services,
                    created: status == StatusCode::CREATED,
                })
            }
            Err(e) => Attempt::Fail(
                Error::failed(format!("cannot read Restate's answer to registering {uri}"))
                    .source(e)
                    .hint("is this a Restate 1.x admin API?"),
            ),
        };
    }
    let problem = Problem::parse(status, text);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return Attempt::Retry(
            Error::failed(format!(
                "the Restate admin API is not ready to register {uri} (HTTP 503)"
            ))
            .detail(format!("Restate said: {}", problem.message))
            .hint("the Restate server is still starting; its logs say why if it does not finish"),
        );
    }
    if problem.restate_code.as_deref() == Some(UNREACHABLE_DEPLOYMENT) {
        return Attempt::Retry(
            Error::failed(format!("Restate cannot reach the service at {uri}"))
                .detail(format!("Restate said: {}", problem.message))
                .hint(format!(
                    "the service must be running and reachable from the Restate server at {uri}, speaking \
                     HTTP/2 cleartext (h2c); check the service's logs and that the port is right"
                )),
        );
    }
    let failed = Error::failed(format!("Restate refused to register {uri}: HTTP {status}"))
        .detail(format!("Restate said: {}", problem.message));
    Attempt::Fail(match status {
        StatusCode::BAD_REQUEST => failed.hint("the URI must be absolute and reachable, e.g. http://greeter:9080"),
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => {
            failed.hint("is this URL the Restate admin API (port 9070), and not the ingress (8080)?")
        }
        StatusCode::CONFLICT => failed.hint(
            "a deployment at this URI is registered with different services; remove it (`restate-dev down`) \
             or serve the new version at a new URI",
        ),
        _ => failed.hint("Restate's message above says what failed; the Restate server's logs say more"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    const REGISTERED: &str = r#"{"id":"dp_149USbhJqxJwHbT0leXhtwB","services":[
        {"name":"Greeter","ty":"Service","handlers":[{"name":"greet"}]},
        {"name":"Counter","ty":"VirtualObject","handlers":[{"name":"add"},{"name":"get"}]}],
        "min_protocol_version":5,"max_protocol_version":7}"#;

    fn done(a: Attempt<Registration>) -> Registration {
        match a {
            Attempt::Done(r) => r,
            Attempt::Retry(e) | Attempt::Fail(e) => panic!("expected a registration, got {e}"),
        }
    }

    #[test]
    fn created_and_existing_both_succeed() {
        let created = done(registration_outcome("http://s:9080", StatusCode::CREATED, REGISTERED));
        assert_eq!(
            created,
            Registration {
                id: "dp_149USbhJqxJwHbT0leXhtwB".into(),
                services: vec!["Counter".into(), "Greeter".into()],
                created: true
            }
        );
        assert!(!done(registration_outcome("http://s:9080", StatusCode::OK, REGISTERED)).created);
    }

    #[test]
    fn an_unreachable_service_is_retried() {
        let body = r#"{"message":"[META0003] error when calling 'http://s:9080/': Connection refused","restate_code":"META0003"}"#;
        let Attempt::Retry(e) = registration_outcome("http://s:9080", StatusCode::INTERNAL_SERVER_ERROR, body) else {
            panic!("META0003 should be retried");
        };
        assert!(e.message.contains("http://s:9080"), "{}", e.message);
        assert!(e.details[0].contains("Connection refused"));
        assert!(e.hint.unwrap().contains("h2c"));
    }

    #[test]
    fn a_starting_server_is_retried() {
        let body = r#"{"message":"not ready"}"#;
        assert!(matches!(
            registration_outcome("http://s:9080", StatusCode::SERVICE_UNAVAILABLE, body),
            Attempt::Retry(_)
        ));
    }

    #[test]
    fn other_refusals_fail_at_once() {
        let bad_uri = r#"{"message":"The request field 'uri' is invalid.","restate_code":null}"#;
        for (status, body, hint) in [
            (StatusCode::BAD_REQUEST, bad_uri, "absolute"),
            (StatusCode::CONFLICT, r#"{"message":"conflict"}"#, "remove it"),
            (StatusCode::INTERNAL_SERVER_ERROR, "oops", "logs"),
            (StatusCode::NOT_FOUND, "", "admin API"),
        ] {
            let Attempt::Fail(e) = registration_outcome("notauri", status, body) else {
                panic!("{status} should fail at once");
            };
            assert_eq!(e.kind, Kind::Failed);
            assert!(
                e.message.contains("notauri") && e.message.contains(status.as_str()),
                "{}",
                e.message
            );
            assert!(e.hint.unwrap().contains(hint));
        }
    }

    #[test]
    fn an_unreadable_success_fails() {
        assert!(matches!(
            registration_outcome("http://s:9080", StatusCode::CREATED, "{}"),
            Attempt::Fail(_)
        ));
    }

    #[test]
    fn service_lists_are_sorted_names() {
        let text = r#"{"services":[{"name":"Greeter","ty":"Service"},{"name":"Counter","ty":"VirtualObject"}]}"#;
        assert_eq!(parse_services(text).unwrap(), ["Counter", "Greeter"]);
        assert!(parse_services("[]").is_err());
    }

    /// A port that was free a moment ago, with nothing listening on it.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[tokio::test]
    async fn waiting_for_nothing_times_out_naming_the_url() {
        let base = format!("http://127.0.0.1:{}/", closed_port());
        let admin = Admin::new(&base).unwrap();
        let e = admin.wait_healthy(Duration::from_millis(500)).await.unwrap_err();
        assert_eq!(e.kind, Kind::Timeout);
        assert!(e.message.contains(&format!("{base}health")), "{}", e.message);
        assert!(e.hint.is_some());
    }

    #[tokio::test]
    async fn a_failing_liveness_check_ends_the_wait_at_once() {
        let admin = Admin::new(&format!("http://127.0.0.1:{}", closed_port())).unwrap();
        let e = admin
            .wait_healthy_while(Duration::from_secs(30), || async {
                Err(Error::failed("the Restate container exited"))
            })
            .await
            .unwrap_err();
        // The check's own error, not a timeout: the wait ended at the first check.
        assert_eq!(e.message, "the Restate container exited");
    }
}
