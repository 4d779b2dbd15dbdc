//! HTTP plumbing shared by `hearth serve`, `hearth gateway` and hearth's clients: the accept
//! loop with connection limits, the request-body deadline, and a client that resends a
//! request once when its pooled connection had been closed by the server.

mod body;
mod client;
mod listen;

pub use body::{read_whole_body, BodyLimits};
pub use client::{is_stale_connection, Client};
pub use listen::{serve, ConnectionLimits, ConnectionStats};
