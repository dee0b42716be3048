//! What happens when an actor fails: crank's supervision policy.
//!
//! A panic inside an actix handler ends the actor's future, not its thread:
//! the thread goes on serving HTTP while every message to the actor answers
//! "Mailbox has closed". That zombie is what this module rules out. Every
//! handler of crank's actors (and every long-running task of the cluster
//! store) marks what it is handling with [`handling`]; the panic hook that a
//! crank process installs with [`install_panic_policy`] reads that mark and,
//! for a panic inside an actor, logs one line naming the actor and the
//! message and **exits the process with [`EXIT_ACTOR_FAILED`]**, so the
//! process supervisor (systemd, Kubernetes, `crank up`) restarts it.
//!
//! Why exit rather than restart the actor in place: the registry's state is
//! the actor's state. A registry whose handler panicked half-way may hold an
//! index that disagrees with its records, and everything derived from it (the
//! watch stream's numbering, the cluster replica, the metrics) would have to
//! be rebuilt with it; a fresh process rebuilds all of it at once, from the
//! store. Panics are kept off the request path by parsing every peer value
//! into a bounded domain type at the edge, by the lints in `lib.rs`, and by
//! the simulation of the core; this is the backstop.
//!
//! A panic outside any actor (an HTTP handler, a connection task) ends only
//! that request's task: it is logged as one line and counted in
//! [`panics_outside_actors`], and the process goes on.

#[cfg(feature = "test-logs")]
pub mod test_logs;

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// The exit status of a process whose actor failed (EX_SOFTWARE).
pub const EXIT_ACTOR_FAILED: i32 = 70;

thread_local! {
    static HANDLING: Cell<Option<(&'static str, &'static str)>> = const { Cell::new(None) };
}

static PANICS_OUTSIDE_ACTORS: AtomicU64 = AtomicU64::new(0);

/// While alive, marks this thread as running `actor`'s handler of `message`.
#[must_use = "the mark lasts as long as the guard"]
pub struct Handling {
    previous: Option<(&'static str, &'static str)>,
}

/// Marks the current thread as handling `message` in `actor` until the
/// returned guard drops. Cheap: two thread-local writes.
pub fn handling(actor: &'static str, message: &'static str) -> Handling {
    let mark = Handling {
        previous: HANDLING.with(|h| h.replace(Some((actor, message)))),
    };
    #[cfg(feature = "fault-injection")]
    fault::maybe_panic(actor, message);
    mark
}

impl Drop for Handling {
    fn drop(&mut self) {
        HANDLING.with(|h| h.set(self.previous));
    }
}

/// Runs `task` (a long-lived future: the cluster store's writer, watcher,
/// session) with its polls marked as `actor` handling `poll`, so a panic in
/// it falls under the same policy as an actor's.
pub async fn supervised<F: std::future::Future>(actor: &'static str, task: F) -> F::Output {
    let mut task = std::pin::pin!(task);
    std::future::poll_fn(move |cx| {
        let _handling = handling(actor, "poll");
        task.as_mut().poll(cx)
    })
    .await
}

/// The actor and message being handled on this thread, if any.
pub fn current() -> Option<(&'static str, &'static str)> {
    HANDLING.with(Cell::get)
}

/// Panics seen outside any actor since the process started.
pub fn panics_outside_actors() -> u64 {
    PANICS_OUTSIDE_ACTORS.load(Ordering::Relaxed)
}

/// Installs the policy of the [module](self) for this process; `process`
/// names it in the log line (`controller`, `worker hello-world-1`).
pub fn install_panic_policy(process: String) {
    std::panic::set_hook(Box::new(move |info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        match current() {
            Some((actor, message)) => {
                log::error!(
                    "actor {actor} failed handling {message}: {payload} (at {location}); the {process} exits with status {EXIT_ACTOR_FAILED} so its supervisor restarts it"
                );
                log::logger().flush();
                std::process::exit(EXIT_ACTOR_FAILED);
            }
            None => {
                PANICS_OUTSIDE_ACTORS.fetch_add(1, Ordering::Relaxed);
                log::error!(
                    "a request task of the {process} failed: {payload} (at {location}); that request was dropped, the {process} goes on"
                );
            }
        }
    }));
}

/// Test-only fault injection: `CRANK_FAULT_PANIC=<actor>:<message>` makes that
/// handler panic, so tests can watch the policy act on a real process.
/// Release builds leave the `fault-injection` feature off.
#[cfg(feature = "fault-injection")]
mod fault {
    use std::sync::OnceLock;

    static TARGET: OnceLock<Option<(String, String)>> = OnceLock::new();

    pub fn maybe_panic(actor: &str, message: &str) {
        let target = TARGET.get_or_init(|| {
            let value = std::env::var("CRANK_FAULT_PANIC").ok()?;
            let (actor, message) = value.split_once(':')?;
            Some((actor.to_owned(), message.to_owned()))
        });
        if let Some((a, m)) = target {
            if a == actor && m == message {
                #[allow(clippy::panic)]
                {
                    panic!("injected fault (CRANK_FAULT_PANIC={a}:{m})");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_names_the_innermost_handler_and_is_restored() {
        assert_eq!(current(), None);
        {
            let _outer = handling("registry", "Route");
            {
                let _inner = handling("watch_hub", "Publish");
                assert_eq!(current(), Some(("watch_hub", "Publish")));
            }
            assert_eq!(current(), Some(("registry", "Route")));
        }
        assert_eq!(current(), None);
    }

    #[test]
    fn a_panic_unwinding_through_a_handler_clears_its_mark() {
        let result = std::panic::catch_unwind(|| {
            let _mark = handling("registry", "Route");
            std::panic::resume_unwind(Box::new("boom"));
        });
        assert!(result.is_err());
        assert_eq!(current(), None);
    }
}
