//! Test-only (feature `fault-injection`): an answer lost after the handler
//! ran. `CRANK_FAULT_LOSE_ANSWER=<path>` holds the first answer the
//! [`Idempotency`](crate::idempotency::Idempotency) middleware keeps for a
//! request to `path` for [`HOLD`], longer than a caller waits: the caller
//! times out with the work done and its answer kept, as when a response is
//! lost on the way back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long the lost answer is held.
pub const HOLD: Duration = Duration::from_secs(10);

static FIRED: AtomicBool = AtomicBool::new(false);

/// Holds this answer to `path` if it is the one to lose.
pub async fn lose_answer(path: &str) {
    let asked = std::env::var("CRANK_FAULT_LOSE_ANSWER").is_ok_and(|p| p == path);
    if asked && !FIRED.swap(true, Ordering::Relaxed) {
        log::warn!("fault injection: the answer to {path} is held {HOLD:?}, as if lost");
        actix_rt::time::sleep(HOLD).await;
    }
}
