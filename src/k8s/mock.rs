//! A scripted API server for unit tests, on kube-rs's tower-test pattern: the client under test talks to a mock
//! service, and the test reads each request as the apiserver would see it and answers as the apiserver would.

use std::collections::BTreeMap;

use http::{Request, Response};
use kube::client::Body;
use tower_test::mock::{self, Handle, SendResponse};

pub struct ApiServer {
    handle: Handle<Request<Body>, Response<Body>>,
    /// A request taken by `serve` to see whether the client is still there.
    pending: Option<(Request<Body>, SendResponse<Response<Body>>)>,
}

pub fn client() -> (kube::Client, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    (
        kube::Client::new(service, "default"),
        ApiServer { handle, pending: None },
    )
}

/// One request, decoded.
#[derive(Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub body: Option<serde_json::Value>,
}

pub struct Reply(SendResponse<Response<Body>>);

impl ApiServer {
    pub async fn next(&mut self) -> (Seen, Reply) {
        let (request, send) = match self.pending.take() {
            Some(pending) => pending,
            None => self.handle.next_request().await.expect("the client sent no request"),
        };
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let query = parse_query(parts.uri.query().unwrap_or_default());
        let seen = Seen {
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query,
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .map(|v| v.to_str().expect("ASCII header").to_string()),
            body: (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).expect("a JSON body")),
        };
        (seen, Reply(send))
    }

    /// The next request, which must be `method path`.
    pub async fn expect(&mut self, method: &str, path: &str) -> (Seen, Reply) {
        let (seen, reply) = self.next().await;
        assert_eq!((seen.method.as_str(), seen.path.as_str()), (method, path), "{seen:?}");
        (seen, reply)
    }
}

impl ApiServer {
    /// Answers every request with `route` until the client is dropped; a JSON string is sent as plain text
    /// (pod logs). Returns what was seen, in order.
    pub async fn serve(mut self, mut route: impl FnMut(&Seen) -> (u16, serde_json::Value)) -> Vec<Seen> {
        let mut seen_all = Vec::new();
        while self.handle_has_next().await {
            let (seen, reply) = self.next().await;
            match route(&seen) {
                (200, serde_json::Value::String(text)) => reply.text(&text),
                (status, body) => reply.json(status, body),
            }
            seen_all.push(seen);
        }
        seen_all
    }

    async fn handle_has_next(&mut self) -> bool {
        match self.handle.next_request().await {
            Some(request) => {
                self.pending = Some(request);
                true
            }
            None => false,
        }
    }
}

impl Reply {
    pub fn json(self, status: u16, body: serde_json::Value) {
        self.bytes(status, serde_json::to_vec(&body).expect("JSON"));
    }

    pub fn text(self, body: &str) {
        self.bytes(200, body.as_bytes().to_vec());
    }

    fn bytes(self, status: u16, body: Vec<u8>) {
        let response = Response::builder()
            .status(status)
            .body(Body::from(body))
            .expect("a response");
        self.0.send_response(response);
    }
}

/// The apiserver's answer for a missing object.
pub fn not_found(kind: &str, name: &str) -> serde_json::Value {
    status(404, "NotFound", &format!("{kind} \"{name}\" not found"))
}

pub fn status(code: u16, reason: &str, message: &str) -> serde_json::Value {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
}

/// A list response of `kind` (e.g. "PodList") with these items.
pub fn list(api_version: &str, kind: &str, items: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items })
}

/// A query string's parameters, decoded.
pub fn parse_query(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_string(), percent_decode(v))
        })
        .collect()
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = value.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).expect("UTF-8 query")
}
