//! [`FailoverLink`]: a worker's [`ControllerLink`] to several controllers of
//! one cluster. Calls go to the current controller; when it cannot be reached,
//! the link moves to another one picked at random (so the workers of a dead
//! controller spread over the survivors instead of all landing on the next in
//! the list), and the worker's next beat or retry goes there. Its record moves
//! with it: the controller it beats to takes it over.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crank_agent::link::{ControllerLink, LinkError};
use crank_proto::wire::{HeartbeatRequest, RegisterRequest, RegisterResponse};
use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use rustls::ClientConfig;

use crate::link::HttpControllerLink;

/// Which controller a worker talks to, shared by its registration and
/// heartbeat links so both follow the same failover.
#[derive(Debug, Clone, Default)]
pub struct Cursor(Rc<Cell<usize>>);

/// Several controllers, one at a time.
pub struct FailoverLink {
    links: Vec<HttpControllerLink>,
    /// Each link's [`ControllerLink::describe`], for the failover's log line.
    names: Rc<[String]>,
    current: Cursor,
}

impl FailoverLink {
    /// A link to each of `urls`, following `current`.
    pub fn new(
        urls: &[String],
        tls: Arc<ClientConfig>,
        timeout: Duration,
        current: Cursor,
    ) -> Self {
        let links: Vec<HttpControllerLink> = urls
            .iter()
            .map(|url| HttpControllerLink::new(url, tls.clone(), timeout))
            .collect();
        FailoverLink {
            names: links.iter().map(|link| link.describe()).collect(),
            links,
            current,
        }
    }

    fn link(&self) -> &HttpControllerLink {
        &self.links[self.current.0.get() % self.links.len()]
    }

    /// After a failure to reach the controller at `failed`: moves to another
    /// one at random, unless another call already moved.
    fn fail_over(current: &Cursor, failed: usize, names: &[String]) {
        let count = names.len();
        if count < 2 || current.0.get() != failed {
            return;
        }
        let next = (failed + 1 + rand::random_range(0..count - 1)) % count;
        current.0.set(next);
        log::warn!(
            "controller {} cannot be reached; moving to {} (one of the {count} configured)",
            names[failed],
            names[next]
        );
    }

    /// Runs `call` on the current controller and fails over if it could not
    /// be reached.
    fn call<T: 'static>(
        &self,
        call: impl FnOnce(&HttpControllerLink) -> LocalBoxFuture<'static, Result<T, LinkError>>,
    ) -> LocalBoxFuture<'static, Result<T, LinkError>> {
        let index = self.current.0.get() % self.links.len();
        let names = self.names.clone();
        let current = self.current.clone();
        let sent = call(self.link());
        async move {
            let result = sent.await;
            if matches!(
                result,
                Err(LinkError::Unreachable(_) | LinkError::Timeout(_))
            ) {
                FailoverLink::fail_over(&current, index, &names);
            }
            result
        }
        .boxed_local()
    }
}

impl ControllerLink for FailoverLink {
    fn register(
        &self,
        request: RegisterRequest,
    ) -> LocalBoxFuture<'static, Result<RegisterResponse, LinkError>> {
        self.call(|link| link.register(request))
    }

    fn heartbeat(
        &self,
        request: HeartbeatRequest,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        self.call(|link| link.heartbeat(request))
    }

    fn deregister(
        &self,
        worker_id: &str,
        instance: Option<&str>,
    ) -> LocalBoxFuture<'static, Result<(), LinkError>> {
        self.call(|link| link.deregister(worker_id, instance))
    }

    fn describe(&self) -> String {
        self.link().describe()
    }
}
