//! `restate-dev serve-sample` (hidden): serves the built-in sample on `$BIND_ADDRESS:$PORT`. It is the entry point
//! of the sample image, where it runs as PID 1: the kernel ignores SIGTERM for PID 1 unless the process handles
//! it, so both SIGTERM and SIGINT are handled here.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use restate_sdk::http_server::HttpServer;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::commands::Ctx;
use crate::error::{Context, Error, Kind, Result};

const DEFAULT_BIND_ADDRESS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
const DEFAULT_PORT: u16 = 9080;
/// How long open connections may finish after a stop signal. Restate keeps its HTTP/2 connections open, so the
/// SDK's own 10 s drain would make every container stop slow.
const DRAIN: Duration = Duration::from_secs(2);

pub async fn run(ctx: &Ctx) -> Result<()> {
    let addr = listen_address(std::env::var("BIND_ADDRESS").ok(), std::env::var("PORT").ok())?;
    let listener = TcpListener::bind(addr).await.context(Kind::Prerequisite, || {
        format!("the sample service cannot listen on {addr}")
    })?;
    let stop = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate()).failed(|| "cannot handle SIGTERM".into())?;
    let mut interrupt = signal(SignalKind::interrupt()).failed(|| "cannot handle SIGINT".into())?;
    let bound = listener.local_addr().unwrap_or(addr);
    ctx.ui.info(format!(
        "sample service (Greeter, Counter) listening on {bound} (HTTP/2 cleartext)"
    ));

    let serve = HttpServer::new(crate::sample::endpoint()).serve_with_cancel(listener, stop.clone().cancelled_owned());
    tokio::pin!(serve);
    tokio::select! {
        () = &mut serve => return Ok(()),
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    stop.cancel();
    if tokio::time::timeout(DRAIN, serve).await.is_err() {
        ctx.ui.warn(format!(
            "connections still open after {}s; stopping anyway",
            DRAIN.as_secs()
        ));
    }
    ctx.ui.info("sample service stopped");
    Ok(())
}

/// The socket address from `$BIND_ADDRESS` and `$PORT`, with the defaults for a container.
fn listen_address(bind: Option<String>, port: Option<String>) -> Result<SocketAddr> {
    let ip = match bind.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => DEFAULT_BIND_ADDRESS,
        Some(text) => text.parse().map_err(|_| {
            Error::usage(format!("invalid BIND_ADDRESS `{text}`: it is not an IP address"))
                .hint("set BIND_ADDRESS to an address such as 0.0.0.0 or 127.0.0.1, or unset it")
        })?,
    };
    let port = match port.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => DEFAULT_PORT,
        Some(text) => text.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            Error::usage(format!("invalid PORT `{text}`: it must be a number from 1 to 65535"))
                .hint("set PORT to a free port such as 9080, or unset it")
        })?,
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn defaults_suit_a_container() {
        assert_eq!(listen_address(None, None).unwrap().to_string(), "0.0.0.0:9080");
        assert_eq!(listen_address(s(""), s(" ")).unwrap().to_string(), "0.0.0.0:9080");
    }

    #[test]
    fn environment_overrides() {
        assert_eq!(
            listen_address(s("127.0.0.1"), s("9123")).unwrap().to_string(),
            "127.0.0.1:9123"
        );
        assert_eq!(listen_address(s("::1"), s("80")).unwrap().to_string(), "[::1]:80");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for (bind, port, needle) in [
            (s("localhost"), None, "BIND_ADDRESS `localhost`"),
            (None, s("0"), "PORT `0`"),
            (None, s("70000"), "PORT `70000`"),
            (None, s("http"), "PORT `http`"),
        ] {
            let e = listen_address(bind, port).unwrap_err();
            assert_eq!(e.kind, Kind::Usage);
            assert!(e.message.contains(needle), "{}", e.message);
            assert!(e.hint.is_some());
        }
    }
}
