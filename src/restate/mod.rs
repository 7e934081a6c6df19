//! The client for a running Restate server, used by every runtime: the admin API (health, registering the
//! service deployment) and the ingress (invoking handlers, proving the sample works). HTTP/1.1 is enough for
//! both; only the service endpoint itself needs HTTP/2. Every request is bounded, and every wait too.

mod admin;
mod http;
mod ingress;

pub use admin::{Admin, Registration};
pub use ingress::{Ingress, verify_sample};
