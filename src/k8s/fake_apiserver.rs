//! A fake Kubernetes API server for tests: plain HTTP/1.1 on 127.0.0.1, keep-alive, every request recorded and
//! answered by the test's handler, which may also take the connection over as a WebSocket (`pods/portforward`).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::k8s::mock;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The decoded query parameters.
    pub fn params(&self) -> BTreeMap<String, String> {
        mock::parse_query(&self.query)
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

pub type Upgrade = Box<dyn FnOnce(WebSocketStream<TcpStream>) -> BoxFuture<'static, ()> + Send>;

pub enum Answer {
    Json(u16, Value),
    /// A plain-text body, as pod logs are.
    Text(String),
    /// Switch to a `v4.channel.k8s.io` WebSocket and hand it over.
    WebSocket(Upgrade),
}

impl Answer {
    pub fn ok(body: Value) -> Self {
        Answer::Json(200, body)
    }

    /// The API server's 404 `Status`.
    pub fn not_found(seen: &Seen) -> Self {
        let message = format!("the server could not find {} {}", seen.method, seen.path);
        Answer::Json(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": "NotFound", "code": 404}),
        )
    }
}

pub struct FakeApiServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApiServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// Starts a server that records every request and answers it with `handler`.
pub async fn start(handler: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> FakeApiServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler = Arc::new(handler);
    let recorded = seen.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket, handler.clone(), recorded.clone()));
        }
    });
    FakeApiServer { addr, seen }
}

/// A server that answers `GET /version` and 404 to everything else.
pub async fn version_only() -> SocketAddr {
    start(|seen| match (seen.method.as_str(), seen.path.as_str()) {
        ("GET", "/version") => Answer::ok(version()),
        _ => Answer::not_found(seen),
    })
    .await
    .addr
}

pub fn version() -> Value {
    json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "", "gitTreeState": "",
        "buildDate": "", "goVersion": "", "compiler": "", "platform": "linux/amd64"})
}

/// A pod with the given readiness, as a list item.
pub fn pod(name: &str, ready: bool) -> Value {
    json!({"metadata": {"name": name}, "status": {"phase": "Running", "podIP": POD_IP, "podIPs": [{"ip": POD_IP}],
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

/// The address of every [`pod`].
pub const POD_IP: &str = "10.244.0.7";

/// An EndpointSlice list that routes to [`POD_IP`], as the controller manager keeps it for a Service whose one
/// pod is ready.
pub fn endpoints_to_the_pod() -> Value {
    crate::k8s::mock::list(
        "discovery.k8s.io/v1",
        "EndpointSliceList",
        vec![json!({"metadata": {"name": "s-1"}, "addressType": "IPv4",
                    "endpoints": [{"addresses": [POD_IP], "conditions": {"ready": true}}]})],
    )
}

async fn serve(
    mut socket: TcpStream,
    handler: Arc<impl Fn(&Seen) -> Answer + Send + Sync + 'static>,
    recorded: Arc<Mutex<Vec<Seen>>>,
) {
    let mut buffer = Vec::new();
    loop {
        let Some((seen, headers)) = read_request(&mut socket, &mut buffer).await else {
            return;
        };
        recorded.lock().expect("lock").push(seen.clone());
        let plain = |status: u16, content_type: &str, body: String| {
            format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
                if status < 400 { "OK" } else { "Error" },
                body.len()
            )
        };
        let response = match handler(&seen) {
            Answer::Json(status, body) => plain(status, "application/json", body.to_string()),
            Answer::Text(body) => plain(200, "text/plain", body),
            Answer::WebSocket(take) => {
                let key = headers.get("sec-websocket-key").expect("a WebSocket key");
                let response = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\
                     sec-websocket-accept: {}\r\nsec-websocket-protocol: v4.channel.k8s.io\r\n\r\n",
                    derive_accept_key(key.as_bytes())
                );
                socket.write_all(response.as_bytes()).await.expect("upgrade");
                take(WebSocketStream::from_raw_socket(socket, Role::Server, None).await).await;
                return;
            }
        };
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request (head and `content-length` body); `None` when the client closed the connection.
async fn read_request(socket: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<(Seen, HashMap<String, String>)> {
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
    buffer.drain(..end);
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: HashMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    assert!(
        !headers.contains_key("transfer-encoding"),
        "the fake API server reads content-length bodies only"
    );
    let length: usize = headers.get("content-length").map_or(0, |n| n.parse().expect("length"));
    while buffer.len() < length {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body = buffer.drain(..length).collect();
    let seen = Seen {
        method,
        path: path.to_string(),
        query: query.to_string(),
        content_type: headers.get("content-type").cloned(),
        body,
    };
    Some((seen, headers))
}

/// Opens port `port`'s data and error channels the way the API server does: channel 0 carries data, channel 1
/// errors, and each starts with a frame naming the port.
pub async fn open_channels(ws: &mut WebSocketStream<TcpStream>, port: u16) {
    let port = port.to_le_bytes();
    for channel in [0u8, 1] {
        ws.send(Message::binary(vec![channel, port[0], port[1]]))
            .await
            .expect("channel init");
    }
}

/// The first port of a `pods/portforward` request.
pub fn forwarded_port(seen: &Seen) -> u16 {
    let ports = seen.params().get("ports").cloned().expect("ports");
    ports.split(',').next().and_then(|p| p.parse().ok()).expect("a port")
}

/// Serves a port-forward WebSocket by bridging its data channel to `target`, as the kubelet does to the pod.
pub async fn bridge(mut ws: WebSocketStream<TcpStream>, port: u16, target: SocketAddr) {
    open_channels(&mut ws, port).await;
    let upstream = match TcpStream::connect(target).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let error = format!("error forwarding port {port} to pod restate-0: {e}");
            let _ = ws.send(Message::binary([&[1u8][..], error.as_bytes()].concat())).await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = upstream.into_split();
    let (mut sink, mut stream) = ws.split();
    let outward = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from_pod.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let frame = [&[0u8][..], &buf[..n]].concat();
                    if sink.send(Message::binary(frame)).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sink.close().await;
    };
    let inward = async move {
        while let Some(Ok(message)) = stream.next().await {
            let data = match &message {
                Message::Binary(frame) if frame.first() == Some(&0) => &frame[1..],
                Message::Close(_) => break,
                _ => continue,
            };
            if to_pod.write_all(data).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
    };
    tokio::join!(outward, inward);
}
