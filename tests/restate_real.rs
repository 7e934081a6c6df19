//! The Restate client and the sample service against the real thing: `$RESTATE_SERVER_BIN` (installed by
//! scripts/install-deps.sh) on loopback ports, and `restate-dev serve-sample`. Every test starts its own server,
//! with its own ports and data directory, so they run in parallel; guards kill what they started, by PID.

use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use restate_dev::error::Kind;

#[path = "support/restate_server.rs"]
mod restate_server;
use restate_dev::restate::{Admin, Ingress, prove, verify_sample};
use restate_server::{RestateServer, free_ports};

/// Generous bounds for a shared 2-core machine; Restate itself is healthy in well under a second.
const START: Duration = Duration::from_secs(60);
const REGISTER: Duration = Duration::from_secs(30);

/// A child process that is killed (by its PID) when the test ends, however it ends.
struct Guard {
    child: Child,
}

impl Guard {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid());
    }

    /// Waits up to `bound` for the process to exit on its own.
    fn exit_within(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real server, with the clients under test pointed at it.
struct Server {
    admin: Admin,
    ingress: Ingress,
    process: RestateServer,
}

impl Server {
    /// Starts restate-server on loopback with known ports and waits until admin and ingress answer.
    async fn start() -> Server {
        let process = RestateServer::start();
        let server = Server {
            admin: Admin::new(&format!("http://127.0.0.1:{}", process.admin)).expect("admin URL"),
            ingress: Ingress::new(&format!("http://127.0.0.1:{}", process.ingress)).expect("ingress URL"),
            process,
        };
        let started = Instant::now();
        if let Err(e) = server.admin.wait_healthy(START).await {
            panic!("{e}\n{}", server.process.log_tail());
        }
        if let Err(e) = server.ingress.wait_ready(START).await {
            panic!("{e}\n{}", server.process.log_tail());
        }
        eprintln!("restate-server healthy after {:?}", started.elapsed());
        server
    }
}

/// Starts `restate-dev serve-sample` on 127.0.0.1:`port`.
fn start_sample(port: u16) -> Guard {
    let child = Command::new(env!("CARGO_BIN_EXE_restate-dev"))
        .arg("serve-sample")
        .env("BIND_ADDRESS", "127.0.0.1")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .spawn()
        .expect("start restate-dev serve-sample");
    Guard { child }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port`.
fn wait_listening(port: u16) {
    let deadline = Instant::now() + START;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn uri(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
async fn registers_invokes_and_keeps_state() {
    let server = Server::start().await;
    let [port] = free_ports::<1>();
    let mut sample = start_sample(port);
    wait_listening(port);

    let first = server
        .admin
        .register(&uri(port), REGISTER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.created, "{first:?}");
    assert!(first.id.starts_with("dp_"), "{first:?}");
    assert_eq!(first.services, ["Counter", "Greeter"]);
    let again = server
        .admin
        .register(&uri(port), REGISTER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!again.created, "{again:?}");
    assert_eq!(again.id, first.id);
    assert_eq!(server.admin.services().await.unwrap(), ["Counter", "Greeter"]);

    assert_eq!(
        verify_sample(&server.admin, &server.ingress, REGISTER).await.unwrap(),
        "Hello, restate-dev!"
    );
    assert_eq!(
        server.ingress.invoke("Greeter/greet", "\"Ada\"").await.unwrap(),
        "Hello, Ada!"
    );

    assert_eq!(server.ingress.invoke("Counter/apples/add", "2").await.unwrap(), 2);
    assert_eq!(server.ingress.invoke("Counter/apples/add", "3").await.unwrap(), 5);
    assert_eq!(server.ingress.invoke("Counter/apples/get", "null").await.unwrap(), 5);
    assert_eq!(server.ingress.invoke("Counter/pears/get", "").await.unwrap(), 0);
    assert_eq!(server.ingress.invoke("Counter/apples/add", "-7").await.unwrap(), -2);

    let e = server.ingress.invoke("Greeter/shout", "\"x\"").await.unwrap_err();
    assert_eq!(e.kind, Kind::Failed);
    assert!(e.message.contains("/Greeter/shout") && e.message.contains("404"), "{e}");
    assert!(e.details[0].contains("'shout' was not found"), "{e}");
    assert!(e.hint.as_deref().unwrap().contains("registered"), "{e}");
    let e = server.ingress.invoke("Shouter/shout", "\"x\"").await.unwrap_err();
    assert!(e.details[0].contains("'Shouter' not found"), "{e}");
    let e = server
        .ingress
        .invoke("Counter/apples/add", "\"many\"")
        .await
        .unwrap_err();
    assert!(e.message.contains("400"), "{e}");

    // Restate now holds an HTTP/2 connection to the sample; SIGTERM must still stop it promptly and cleanly.
    sample.signal("TERM");
    let status = sample
        .exit_within(Duration::from_secs(10))
        .expect("serve-sample ignored SIGTERM");
    assert!(status.success(), "serve-sample exited with {status}");
}

/// An older build of the sample, served in-process: its Greeter has a `wave` handler and there is no Counter.
mod older {
    use restate_sdk::prelude::*;

    pub struct Greeter;

    #[restate_sdk::service]
    impl Greeter {
        #[handler]
        async fn wave(&self, _ctx: Context<'_>) -> Result<String, HandlerError> {
            Ok("o/".into())
        }
    }
}

#[tokio::test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
async fn re_registering_a_changed_service_updates_its_handlers() {
    use restate_sdk::prelude::{Endpoint, HttpServer};

    let server = Server::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let stop = tokio_util::sync::CancellationToken::new();
    let endpoint = Endpoint::builder().bind(older::Greeter).build();
    let old_build = tokio::spawn(HttpServer::new(endpoint).serve_with_cancel(listener, stop.clone().cancelled_owned()));
    let first = server
        .admin
        .register(&uri(port), REGISTER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(first.created);
    assert_eq!(first.services, ["Greeter"]);
    assert_eq!(server.ingress.invoke("Greeter/wave", "null").await.unwrap(), "o/");
    stop.cancel();
    old_build.await.expect("old build stopped");

    // The new build at the same URI: registering again must make Restate discover it again.
    let _sample = start_sample(port);
    wait_listening(port);
    let second = server
        .admin
        .register(&uri(port), REGISTER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!second.created, "{second:?}");
    assert_eq!(second.id, first.id);
    assert_eq!(second.services, ["Counter", "Greeter"]);
    assert_eq!(server.ingress.invoke("Counter/k/add", "1").await.unwrap(), 1);
    assert_eq!(
        verify_sample(&server.admin, &server.ingress, REGISTER).await.unwrap(),
        "Hello, restate-dev!"
    );
}

/// A service whose handlers fail: `retry` with a retryable error (Restate tries again and again), `stop` with a
/// terminal one (Restate gives up at once).
mod failing {
    use restate_sdk::prelude::*;

    pub struct Flaky;

    #[restate_sdk::service]
    impl Flaky {
        #[handler]
        async fn retry(&self, _ctx: Context<'_>) -> Result<String, HandlerError> {
            Err(std::io::Error::other("the flaky handler failed on purpose").into())
        }

        #[handler]
        async fn stop(&self, _ctx: Context<'_>) -> Result<String, HandlerError> {
            Err(TerminalError::new("the flaky handler gave up on purpose").into())
        }
    }
}

#[tokio::test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
async fn a_failing_proof_says_what_restate_knows_within_its_bound_and_is_killed() {
    use restate_sdk::prelude::{Endpoint, HttpServer};

    let server = Server::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let endpoint = Endpoint::builder().bind(failing::Flaky).build();
    let _service = tokio::spawn(HttpServer::new(endpoint).serve(listener));
    server
        .admin
        .register(&uri(port), REGISTER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let started = Instant::now();
    let e = prove(
        &server.admin,
        &server.ingress,
        "Flaky/retry",
        "null",
        Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    let took = started.elapsed();
    // A handler that keeps failing is a failed verification (exit 1), not a wait that ran out (4).
    assert_eq!(e.kind, Kind::Failed, "{e}");
    assert!(
        took < Duration::from_secs(8),
        "the bound was 3 s, the proof took {took:?}"
    );
    assert!(e.message.contains("Flaky/retry kept failing for 3s"), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("the flaky handler failed on purpose"),
        "Restate's failure is missing: {text}"
    );
    assert!(text.contains("killed invocation inv_"), "{text}");
    let id = e.message.split("invocation ").nth(1).unwrap().trim_end_matches(')');
    let state = server.admin.invocation(id).await.unwrap().expect("Restate knows it");
    assert_eq!(
        state.status, "completed",
        "the killed proof must not go on retrying: {state:?}"
    );

    // A terminal failure is Restate's answer itself, at once.
    let started = Instant::now();
    let e = prove(
        &server.admin,
        &server.ingress,
        "Flaky/stop",
        "null",
        Duration::from_secs(30),
    )
    .await
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(e.kind, Kind::Failed, "{e}");
    assert!(e.to_string().contains("the flaky handler gave up on purpose"), "{e}");
}

#[tokio::test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
async fn registration_waits_for_a_service_that_starts_late() {
    let server = Server::start().await;
    let [port] = free_ports::<1>();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(1)).await;
        start_sample(port)
    });
    let started = Instant::now();
    let registration = server
        .admin
        .register(&uri(port), REGISTER)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let waited = started.elapsed();
    let _sample = late.await.expect("sample task");
    assert!(registration.created);
    assert_eq!(registration.services, ["Counter", "Greeter"]);
    // It cannot have succeeded before the service existed, so it must have retried.
    assert!(waited >= Duration::from_secs(1), "registered after {waited:?}");
    assert_eq!(
        verify_sample(&server.admin, &server.ingress, REGISTER).await.unwrap(),
        "Hello, restate-dev!"
    );
}

#[tokio::test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
async fn an_unreachable_service_fails_within_the_bound() {
    let server = Server::start().await;
    let [closed] = free_ports::<1>();
    let bound = Duration::from_secs(4);
    let started = Instant::now();
    let e = server.admin.register(&uri(closed), bound).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, Kind::Timeout, "{e}");
    assert!(e.message.contains(&uri(closed)) && e.message.contains("4s"), "{e}");
    assert!(e.details.iter().any(|d| d.contains("Connection refused")), "{e}");
    assert!(e.hint.as_deref().unwrap().contains("h2c"), "{e}");
    assert!(took < bound + Duration::from_secs(5), "gave up only after {took:?}");

    let e = server.admin.register("not-a-uri", bound).await.unwrap_err();
    assert_eq!(e.kind, Kind::Failed, "{e}");
    assert!(e.message.contains("not-a-uri") && e.message.contains("400"), "{e}");
}

#[test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
fn serve_sample_stops_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let [port] = free_ports::<1>();
        let mut sample = start_sample(port);
        wait_listening(port);
        sample.signal(signal);
        let status = sample
            .exit_within(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("serve-sample did not stop on SIG{signal}"));
        if signal == "TERM" {
            assert!(status.success(), "SIGTERM: exited with {status}");
        }
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open"
        );
    }
}

#[test]
#[ignore = "needs the real restate-server: scripts/test.sh installs it and runs this tier"]
fn serve_sample_refuses_a_bad_port() {
    let output = Command::new(env!("CARGO_BIN_EXE_restate-dev"))
        .arg("serve-sample")
        .env("PORT", "ninety")
        .output()
        .expect("run serve-sample");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid PORT `ninety`") && stderr.contains("hint:"),
        "{stderr}"
    );
}
