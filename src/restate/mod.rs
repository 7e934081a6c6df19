//! The client for a running Restate server, used by every runtime: the admin API (health, registering the
//! service deployment, what Restate knows about an invocation) and the ingress (invoking handlers, proving the
//! sample works). HTTP/1.1 is enough for both; only the service endpoint itself needs HTTP/2. Every request is
//! bounded, and every wait too.

mod admin;
mod http;
mod ingress;
mod logs;
mod prove;

pub use admin::{Admin, InvocationState, Registration};
pub use ingress::{Ingress, verify_sample};
pub use logs::logged_about;
pub use prove::prove;
