//! Host ports on 127.0.0.1: pick a free one, or check that a chosen one is free, before anything is created.

use std::net::{Ipv4Addr, TcpListener};

use crate::error::{Error, Result};

/// A port the kernel says is free now. Like kind, we choose it ourselves rather than letting Docker pick one,
/// so it stays the same when the container restarts.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::prerequisite("cannot find a free port on 127.0.0.1").source(e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::prerequisite("cannot find a free port on 127.0.0.1").source(e))?
        .port();
    Ok(port)
}

/// Whether `port` can be bound on 127.0.0.1 now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Fails with a Prerequisite error naming the port, its use (`what`, e.g. "ingress") and the flag to change it.
pub fn ensure_free(port: u16, what: &str, flag: &str) -> Result<()> {
    if is_free(port) {
        return Ok(());
    }
    Err(Error::prerequisite(format!(
        "port {port} on 127.0.0.1, wanted for {what}, is already in use"
    ))
    .hint(format!(
        "stop what listens there (`ss -ltnp 'sport = :{port}'` shows it), or choose another port with {flag}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_named() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let e = ensure_free(port, "ingress", "--ingress-port").unwrap_err();
        assert_eq!(e.exit_code(), 3);
        assert!(e.message.contains(&port.to_string()), "{e}");
        assert!(e.hint.unwrap().contains("--ingress-port"));
        drop(listener);
        let free = free_port().unwrap();
        assert!(ensure_free(free, "admin", "--admin-port").is_ok());
    }
}
