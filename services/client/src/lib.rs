//! The client library: route a capability and call the worker the controller
//! names, over mutual TLS, checking that the worker is who the route said.
//!
//! ```no_run
//! use crank_client::{Constraints, CrankClient, Request};
//! use crank_net::tls::TlsFiles;
//!
//! # async fn greet() -> Result<(), crank_client::ClientError> {
//! let client = CrankClient::new(
//!     "https://localhost:9000",
//!     TlsFiles::in_dir("certs".as_ref(), "client"),
//! )?;
//! let request = Request::post("/greet", &serde_json::json!({"message": "world"}))?;
//! let reply = client
//!     .call("invoke", "hello.greet", &Constraints::any(), &request)
//!     .await?;
//! println!("{} answered", reply.worker.worker_id);
//! let greeting: serde_json::Value = reply.json().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`CrankClient::call`] routes, calls, and on a worker's failure routes once
//! more excluding it and calls the next provider; each attempt is reported
//! to the controller (`POST /report`, with the latency and the `crank-load`
//! header the worker answered with), and its [`CallOutcome`] goes to an
//! [`OutcomeSink`] if one is given. With [`Balance::Local`] the client
//! chooses the worker itself, from the controller's watch stream.
//!
//! | file | what |
//! |---|---|
//! | [`fleet`] | [`CrankClient`], [`CrankClient::route`], [`Constraints`], [`RoutedWorker`], the fleet's lists |
//! | [`call`] | [`CrankClient::call`], [`CrankClient::send`], [`Request`], [`Reply`] |
//! | [`events`] | [`Event`]: a streaming answer's Server-Sent Events |
//! | [`providers`] | [`Providers`](providers::Providers): local mode's view of the fleet and its choice ([`Balance::Local`]) |
//! | `watcher` | the task that keeps local mode's view live from `GET /watch` |
//! | [`outcome`] | [`CallOutcome`], [`OutcomeSink`] |
//! | `report` | each attempt's `POST /report`, paused for a `429`'s `Retry-After`; [`CrankClient::flush_reports`] |
//! | [`error`] | [`ClientError`] |

pub mod call;
pub mod error;
pub mod events;
pub mod fleet;
pub mod outcome;
pub mod providers;
mod report;
mod watcher;

pub use call::{Reply, Request};
pub use error::ClientError;
pub use events::Event;
pub use fleet::{Balance, Constraints, CrankClient, RoutedWorker, DEFAULT_TIMEOUT};
pub use outcome::{CallOutcome, OutcomeSink};
