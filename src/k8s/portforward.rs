//! A port-forward from 127.0.0.1 to a pod picked by label, for clusters whose ports the host cannot reach
//! directly (minikube, an existing context). Unlike `kubectl port-forward`, which dies with its pod, each new
//! connection goes to a ready pod: the last one used while it answers, else a fresh pick, so the forward
//! survives a Restate restart without being started again. A connection open across the restart breaks, as
//! any TCP connection to a restarted server does.
//!
//! A forward lives as long as the process holding it: `up` and `smoke` hold theirs for registration and
//! verification only. Keeping ingress and admin reachable afterwards is a foreground process's job (until
//! Ctrl-C), which can publish [`PortForward::status`] for `status` to show.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::{Context, Error, Result};
use crate::k8s::diagnose::api_message;

/// What `status` shows about a forward.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForwardStatus {
    /// `127.0.0.1:PORT`.
    pub local: String,
    /// `NAMESPACE/SELECTOR:PORT`.
    pub target: String,
    /// The pod the last connection went to.
    pub pod: Option<String>,
    pub connections: u64,
    pub last_error: Option<String>,
}

/// A byte stream to a pod's port.
pub trait Upstream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Upstream for T {}

/// An open stream to a pod's port, and what the API server says if forwarding it fails later (the container
/// stopped listening, the pod is going away): `Some(message)` on failure, `None` when the stream just ends.
pub struct Connection {
    pub stream: Box<dyn Upstream>,
    pub failed: BoxFuture<'static, Option<String>>,
}

/// Opens a stream to a port of a named pod. The kube API in production; a plain socket in tests.
pub trait Dial: Send + Sync + 'static {
    fn dial(&self, pod: &str, port: u16) -> BoxFuture<'static, std::result::Result<Connection, String>>;
}

/// Dials through the API server's `pods/portforward` subresource (a WebSocket per connection).
struct KubeDial {
    pods: Api<Pod>,
}

impl Dial for KubeDial {
    fn dial(&self, pod: &str, port: u16) -> BoxFuture<'static, std::result::Result<Connection, String>> {
        let pods = self.pods.clone();
        let pod = pod.to_string();
        Box::pin(async move {
            let mut forwarder = pods.portforward(&pod, &[port]).await.map_err(|e| api_message(&e))?;
            let stream = forwarder
                .take_stream(port)
                .ok_or_else(|| format!("the API server opened no stream for port {port}"))?;
            let failed = match forwarder.take_error(port) {
                Some(error) => Box::pin(error) as BoxFuture<'static, Option<String>>,
                None => Box::pin(std::future::pending()),
            };
            Ok(Connection {
                stream: Box::new(stream),
                failed,
            })
        })
    }
}

pub struct PortForward {
    local: SocketAddr,
    status: Arc<Mutex<ForwardStatus>>,
    task: JoinHandle<()>,
}

impl PortForward {
    /// Listens on 127.0.0.1:`local_port` (0 for any free port) and forwards to `remote_port` of a ready pod
    /// matching `selector` in `namespace`.
    pub async fn start(
        client: kube::Client,
        namespace: &str,
        selector: &str,
        remote_port: u16,
        local_port: u16,
    ) -> Result<Self> {
        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let dial = KubeDial { pods: pods.clone() };
        Self::start_with(pods, Arc::new(dial), namespace, selector, remote_port, local_port).await
    }

    async fn start_with(
        pods: Api<Pod>,
        dial: Arc<dyn Dial>,
        namespace: &str,
        selector: &str,
        remote_port: u16,
        local_port: u16,
    ) -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", local_port)).await.map_err(|e| {
            Error::prerequisite(format!("cannot listen on 127.0.0.1:{local_port} for the port-forward"))
                .source(e)
                .hint("choose another port (--ingress-port / --admin-port), or stop what uses it")
        })?;
        let local = listener
            .local_addr()
            .failed(|| "cannot read the forward's local address".into())?;
        let status = Arc::new(Mutex::new(ForwardStatus {
            local: local.to_string(),
            target: format!("{namespace}/{selector}:{remote_port}"),
            pod: None,
            connections: 0,
            last_error: None,
        }));
        let forward = Forwarder {
            pods,
            dial,
            selector: selector.to_string(),
            port: remote_port,
            status: status.clone(),
        };
        let task = tokio::spawn(forward.accept_loop(listener));
        Ok(PortForward { local, status, task })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub fn status(&self) -> ForwardStatus {
        self.status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Forwarder {
    pods: Api<Pod>,
    dial: Arc<dyn Dial>,
    selector: String,
    port: u16,
    status: Arc<Mutex<ForwardStatus>>,
}

impl Forwarder {
    async fn accept_loop(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((socket, _)) => {
                    let forwarder = self.clone();
                    tokio::spawn(async move { forwarder.serve(socket).await });
                }
                Err(e) => self.update(|s| s.last_error = Some(format!("accept failed: {e}"))),
            }
        }
    }

    /// Connects one local connection to the pod: the last pod if it still answers, else a freshly picked one.
    async fn serve(self, mut socket: TcpStream) {
        let Connection { mut stream, failed } = match self.connect().await {
            Ok(connection) => connection,
            Err(e) => {
                self.update(|s| s.last_error = Some(e));
                return;
            }
        };
        self.update(|s| s.connections += 1);
        tokio::select! {
            copied = tokio::io::copy_bidirectional(&mut socket, &mut stream) => {
                if let Err(e) = copied {
                    self.update(|s| s.last_error = Some(format!("connection to the pod broke: {e}")));
                }
            }
            // Dropping the socket tells the local client; the next connection picks a pod again.
            Some(message) = failed => self.update(|s| {
                s.last_error = Some(message);
                s.pod = None;
            }),
        }
    }

    async fn connect(&self) -> std::result::Result<Connection, String> {
        let cached = self.status.lock().ok().and_then(|s| s.pod.clone());
        if let Some(pod) = cached {
            match self.dial.dial(&pod, self.port).await {
                Ok(upstream) => return Ok(upstream),
                // The pod restarted or went away: pick again.
                Err(e) => self.update(|s| {
                    s.last_error = Some(format!("pod {pod}: {e}"));
                    s.pod = None;
                }),
            }
        }
        let pod = self.pick_pod().await?;
        let upstream = self
            .dial
            .dial(&pod, self.port)
            .await
            .map_err(|e| format!("pod {pod}: {e}"))?;
        self.update(|s| s.pod = Some(pod));
        Ok(upstream)
    }

    async fn pick_pod(&self) -> std::result::Result<String, String> {
        let list = self
            .pods
            .list(&ListParams::default().labels(&self.selector))
            .await
            .map_err(|e| format!("cannot list pods {}: {}", self.selector, api_message(&e)))?;
        let mut ready: Vec<String> = list
            .items
            .iter()
            .filter(|p| is_ready(p))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        ready.sort();
        ready
            .into_iter()
            .next()
            .ok_or_else(|| format!("no ready pod matches {}", self.selector))
    }

    fn update(&self, change: impl FnOnce(&mut ForwardStatus)) {
        match self.status.lock() {
            Ok(mut status) => change(&mut status),
            Err(poisoned) => change(&mut poisoned.into_inner()),
        }
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::k8s::mock;

    /// Stands in for the kube API's pod streams: each pod is a local server answering `POD:` + what it read.
    #[derive(Default)]
    struct FakePods {
        running: Mutex<HashMap<String, SocketAddr>>,
        /// The API server's error for every stream opened from now on.
        failing: Mutex<Option<String>>,
    }

    impl FakePods {
        async fn start(&self, pod: &str) {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let name = pod.to_string();
            tokio::spawn(async move {
                while let Ok((mut socket, _)) = listener.accept().await {
                    let name = name.clone();
                    tokio::spawn(async move {
                        let mut buf = [0u8; 64];
                        let n = socket.read(&mut buf).await.expect("read");
                        let answer = format!("{name}:{}", String::from_utf8_lossy(&buf[..n]));
                        socket.write_all(answer.as_bytes()).await.expect("write");
                    });
                }
            });
            self.running.lock().expect("lock").insert(pod.to_string(), addr);
        }

        fn stop(&self, pod: &str) {
            self.running.lock().expect("lock").remove(pod);
        }
    }

    impl Dial for FakePods {
        fn dial(&self, pod: &str, port: u16) -> BoxFuture<'static, std::result::Result<Connection, String>> {
            assert_eq!(port, 8080);
            let addr = self.running.lock().expect("lock").get(pod).copied();
            let failing = self.failing.lock().expect("lock").clone();
            let pod = pod.to_string();
            Box::pin(async move {
                let addr = addr.ok_or_else(|| format!("pods \"{pod}\" not found"))?;
                let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
                let failed: BoxFuture<'static, Option<String>> = match failing {
                    Some(message) => Box::pin(async move { Some(message) }),
                    None => Box::pin(std::future::pending()),
                };
                Ok(Connection {
                    stream: Box::new(stream),
                    failed,
                })
            })
        }
    }

    fn pod(name: &str, ready: bool) -> Value {
        json!({"metadata": {"name": name}, "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
    }

    async fn ask(forward: &PortForward, text: &str) -> String {
        let mut socket = TcpStream::connect(forward.local_addr())
            .await
            .expect("connect to the forward");
        socket.write_all(text.as_bytes()).await.expect("write");
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn forwards_to_a_ready_pod_and_follows_it_to_its_replacement() {
        let (client, server) = mock::client();
        let listed: Arc<Mutex<Vec<Value>>> =
            Arc::new(Mutex::new(vec![pod("greeter-a", true), pod("greeter-b", false)]));
        let answer = listed.clone();
        let serving = tokio::spawn(server.serve(move |seen| {
            assert_eq!(
                (seen.method.as_str(), seen.path.as_str()),
                ("GET", "/api/v1/namespaces/restate/pods")
            );
            assert_eq!(seen.query.get("labelSelector").map(String::as_str), Some("app=restate"));
            (200, mock::list("v1", "PodList", answer.lock().expect("lock").clone()))
        }));
        let fakes = Arc::new(FakePods::default());
        fakes.start("greeter-a").await;
        let pods: Api<Pod> = Api::namespaced(client, "restate");
        let forward = PortForward::start_with(pods, fakes.clone(), "restate", "app=restate", 8080, 0)
            .await
            .expect("forward starts");

        assert_eq!(ask(&forward, "one").await, "greeter-a:one");
        assert_eq!(ask(&forward, "two").await, "greeter-a:two");

        // The pod is replaced: the old one is gone, a new one is ready.
        fakes.stop("greeter-a");
        fakes.start("greeter-c").await;
        *listed.lock().expect("lock") = vec![pod("greeter-c", true)];
        assert_eq!(ask(&forward, "three").await, "greeter-c:three");

        let status = forward.status();
        assert_eq!(status.local, forward.local_addr().to_string());
        assert_eq!(status.target, "restate/app=restate:8080");
        assert_eq!(status.pod.as_deref(), Some("greeter-c"));
        assert_eq!(status.connections, 3);
        assert_eq!(
            status.last_error.as_deref(),
            Some("pod greeter-a: pods \"greeter-a\" not found")
        );
        drop(forward);
        let seen = serving.await.expect("server");
        // One pick at the start, one after the restart; none while the pod answered.
        assert_eq!(seen.len(), 2);
    }

    #[tokio::test]
    async fn a_forwarding_error_closes_the_connection_and_the_next_one_picks_again() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|_| (200, mock::list("v1", "PodList", vec![pod("restate-0", true)]))));
        let fakes = Arc::new(FakePods::default());
        fakes.start("restate-0").await;
        let pods: Api<Pod> = Api::namespaced(client, "restate");
        let forward = PortForward::start_with(pods, fakes.clone(), "restate", "app=restate", 8080, 0)
            .await
            .expect("forward starts");

        let refused = "error forwarding port 8080 to pod restate-0: connection refused";
        *fakes.failing.lock().expect("lock") = Some(refused.to_string());
        let mut socket = TcpStream::connect(forward.local_addr())
            .await
            .expect("connect to the forward");
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.expect("closed cleanly");
        assert!(answer.is_empty());
        let status = forward.status();
        assert_eq!((status.last_error.as_deref(), status.pod), (Some(refused), None));

        *fakes.failing.lock().expect("lock") = None;
        assert_eq!(ask(&forward, "again").await, "restate-0:again");
        drop(forward);
        assert_eq!(
            serving.await.expect("server").len(),
            2,
            "a pod pick per connection after the error"
        );
    }

    /// An API server speaking the `pods/portforward` WebSocket protocol (v4.channel.k8s.io) for port 8080: it
    /// opens the port's data and error channels with their initial frames, then either reports `error` on the
    /// error channel or answers each data frame with `restate-0:` + the data. Records each upgrade's path.
    async fn portforward_apiserver(error: Option<&'static str>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;

        use crate::k8s::fake_apiserver::{self, Answer};

        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        let server = fake_apiserver::start(move |request| {
            seen.lock()
                .expect("lock")
                .push(format!("{}?{}", request.path, request.query));
            Answer::WebSocket(Box::new(move |mut ws| {
                Box::pin(async move {
                    fake_apiserver::open_channels(&mut ws, 8080).await;
                    if let Some(error) = error {
                        let frame = [&[1u8][..], error.as_bytes()].concat();
                        ws.send(Message::binary(frame)).await.expect("error frame");
                    }
                    while let Some(Ok(Message::Binary(frame))) = ws.next().await {
                        if frame.first() == Some(&0) && frame.len() > 1 {
                            let reply = [&b"\0restate-0:"[..], &frame[1..]].concat();
                            ws.send(Message::binary(reply)).await.expect("reply");
                        }
                    }
                })
            }))
        })
        .await;
        (server.addr, paths)
    }

    /// Forwards through [`KubeDial`] to [`portforward_apiserver`]; pods are picked through the mock.
    async fn forward_through_websocket(error: Option<&'static str>) -> (PortForward, Arc<Mutex<Vec<String>>>) {
        let (addr, paths) = portforward_apiserver(error).await;
        let config = kube::Config::new(format!("http://{addr}").parse().expect("uri"));
        let real = kube::Client::try_from(config).expect("client");
        let dial = KubeDial {
            pods: Api::namespaced(real, "restate"),
        };
        let (client, server) = mock::client();
        tokio::spawn(server.serve(|_| (200, mock::list("v1", "PodList", vec![pod("restate-0", true)]))));
        let pods: Api<Pod> = Api::namespaced(client, "restate");
        let forward = PortForward::start_with(pods, Arc::new(dial), "restate", "app=restate", 8080, 0)
            .await
            .expect("forward starts");
        (forward, paths)
    }

    #[tokio::test]
    async fn forwards_over_the_api_servers_websocket_protocol() {
        let (forward, paths) = forward_through_websocket(None).await;
        let mut socket = TcpStream::connect(forward.local_addr())
            .await
            .expect("connect to the forward");
        socket.write_all(b"hello").await.expect("write");
        let mut answer = vec![0u8; "restate-0:hello".len()];
        socket.read_exact(&mut answer).await.expect("answer");
        assert_eq!(answer, b"restate-0:hello");
        assert_eq!(
            paths.lock().expect("lock").as_slice(),
            ["/api/v1/namespaces/restate/pods/restate-0/portforward?&ports=8080"]
        );
        assert_eq!(forward.status().pod.as_deref(), Some("restate-0"));
    }

    #[tokio::test]
    async fn the_api_servers_forwarding_error_reaches_the_status() {
        let refused = "error forwarding port 8080 to pod restate-0, uid : connection refused";
        let (forward, _) = forward_through_websocket(Some(refused)).await;
        let mut socket = TcpStream::connect(forward.local_addr())
            .await
            .expect("connect to the forward");
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.expect("closed");
        assert!(answer.is_empty());
        let status = forward.status();
        assert_eq!((status.last_error.as_deref(), status.pod), (Some(refused), None));
    }

    #[tokio::test]
    async fn without_a_ready_pod_the_connection_closes_and_status_says_why() {
        let (client, server) = mock::client();
        let serving = tokio::spawn(server.serve(|_| (200, mock::list("v1", "PodList", vec![pod("restate-0", false)]))));
        let pods: Api<Pod> = Api::namespaced(client, "restate");
        let forward = PortForward::start_with(pods, Arc::new(FakePods::default()), "restate", "app=restate", 8080, 0)
            .await
            .expect("forward starts");
        let mut socket = TcpStream::connect(forward.local_addr())
            .await
            .expect("connect to the forward");
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.expect("closed cleanly");
        assert!(answer.is_empty());
        let status = forward.status();
        assert_eq!(status.last_error.as_deref(), Some("no ready pod matches app=restate"));
        assert_eq!((status.pod, status.connections), (None, 0));
        drop(forward);
        serving.await.expect("server");
    }

    #[tokio::test]
    async fn a_busy_local_port_is_a_prerequisite_error() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let (client, _server) = mock::client();
        let pods: Api<Pod> = Api::namespaced(client, "restate");
        let error = PortForward::start_with(
            pods,
            Arc::new(FakePods::default()),
            "restate",
            "app=restate",
            8080,
            port,
        )
        .await
        .err()
        .expect("port in use");
        assert_eq!(error.kind, crate::error::Kind::Prerequisite);
        assert_eq!(
            error.message,
            format!("cannot listen on 127.0.0.1:{port} for the port-forward")
        );
    }
}
