//! [`OnDemand`]: a service built when the first connection of a thread
//! arrives, kept while any of that thread's connections is open, and dropped
//! when the last one closes.
//!
//! Why: actix-http starts a task that wakes every 500 ms to refresh the `Date`
//! header for as long as an HTTP service configuration lives, and it offers no
//! way to turn it off (see `DateService` in actix-http's `date.rs`; every
//! `ServiceConfig` makes one). Built once per thread at start, as usual, it
//! wakes an idle worker 120 times a minute for nothing. Built on demand, a
//! worker with no open connection has no such timer; a busy one has one per
//! HTTP thread, as before.

use std::cell::{Cell, RefCell};
use std::future::{ready, Ready};
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_service::{Service, ServiceFactory};
use futures_util::future::LocalBoxFuture;

/// Builds the factory `make` returns, and its service, when a connection
/// needs it, and drops them after the last connection that used them.
#[derive(Clone)]
pub struct OnDemand<M> {
    make: M,
}

impl<M> OnDemand<M> {
    /// A factory of services made, on demand, from the factory `make` builds.
    pub fn new(make: M) -> Self {
        OnDemand { make }
    }
}

impl<M, F, Req> ServiceFactory<Req> for OnDemand<M>
where
    M: Fn() -> F + Clone + 'static,
    F: ServiceFactory<Req, Config = (), Error = (), InitError = ()> + 'static,
    F::Service: 'static,
    Req: 'static,
{
    type Response = F::Response;
    type Error = ();
    type Config = ();
    type Service = OnDemandService<M, F::Service>;
    type InitError = ();
    type Future = Ready<Result<Self::Service, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        ready(Ok(OnDemandService {
            make: self.make.clone(),
            shared: Rc::new(Shared {
                service: RefCell::new(None),
                open: Cell::new(0),
            }),
        }))
    }
}

/// The service of one thread, shared by its open connections.
struct Shared<S> {
    service: RefCell<Option<Rc<S>>>,
    open: Cell<usize>,
}

/// Counts a connection open; the last one to close drops the service.
struct Open<S>(Rc<Shared<S>>);

impl<S> Open<S> {
    fn enter(shared: &Rc<Shared<S>>) -> Self {
        shared.open.set(shared.open.get() + 1);
        Open(shared.clone())
    }
}

impl<S> Drop for Open<S> {
    fn drop(&mut self) {
        let open = self.0.open.get() - 1;
        self.0.open.set(open);
        if open == 0 {
            self.0.service.borrow_mut().take();
        }
    }
}

/// [`OnDemand`]'s service on one thread.
pub struct OnDemandService<M, S> {
    make: M,
    shared: Rc<Shared<S>>,
}

impl<M, F, Req> Service<Req> for OnDemandService<M, F::Service>
where
    M: Fn() -> F + Clone + 'static,
    F: ServiceFactory<Req, Config = (), Error = (), InitError = ()> + 'static,
    F::Service: 'static,
    Req: 'static,
{
    type Response = F::Response;
    type Error = ();
    type Future = LocalBoxFuture<'static, Result<F::Response, ()>>;

    /// Always ready: the service is made for the connection that needs it.
    fn poll_ready(&self, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&self, request: Req) -> Self::Future {
        let shared = self.shared.clone();
        let make = self.make.clone();
        // Counted from the start, so a connection that arrives while the
        // service is being built does not build another.
        let open = Open::enter(&shared);
        Box::pin(async move {
            let existing = shared.service.borrow().clone();
            let service = match existing {
                Some(service) => service,
                None => {
                    let built = Rc::new(make().new_service(()).await?);
                    let mut slot = shared.service.borrow_mut();
                    slot.get_or_insert(built).clone()
                }
            };
            let answered = service.call(request).await;
            drop(open);
            answered
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_service::fn_service;

    /// A factory that counts the services alive.
    fn counting(
        alive: Rc<Cell<usize>>,
    ) -> impl Fn() -> actix_service::boxed::BoxServiceFactory<(), u32, u32, (), ()> + Clone {
        move || {
            let alive = alive.clone();
            actix_service::boxed::factory(actix_service::fn_factory(move || {
                let alive = alive.clone();
                alive.set(alive.get() + 1);
                let guard = Rc::new(Gone(alive));
                async move {
                    Ok::<_, ()>(fn_service(move |n: u32| {
                        let _guard = guard.clone();
                        async move {
                            actix_rt::time::sleep(std::time::Duration::from_millis(u64::from(n)))
                                .await;
                            Ok::<_, ()>(n)
                        }
                    }))
                }
            }))
        }
    }

    struct Gone(Rc<Cell<usize>>);

    impl Drop for Gone {
        fn drop(&mut self) {
            self.0.set(self.0.get() - 1);
        }
    }

    #[actix_rt::test]
    async fn one_service_while_connections_are_open_and_none_after() {
        let alive = Rc::new(Cell::new(0));
        let service = OnDemand::new(counting(alive.clone()))
            .new_service(())
            .await
            .unwrap();
        assert_eq!(alive.get(), 0, "nothing is built before a connection");
        let (a, b) = tokio::join!(service.call(30), service.call(10));
        assert_eq!((a, b), (Ok(30), Ok(10)));
        assert_eq!(alive.get(), 0, "dropped after the last connection");
        let slow = actix_rt::spawn(service.call(20));
        tokio::task::yield_now().await;
        assert_eq!(alive.get(), 1, "one service for the open connection");
        assert_eq!(slow.await.unwrap(), Ok(20));
        assert_eq!(alive.get(), 0);
    }
}
