//! The headers of idempotent calls (the IETF httpapi draft's
//! `Idempotency-Key`), shared by the client library, which sends them, and
//! the worker library, which honours them. A key's syntax is checked by
//! [`idempotency_key`](crate::domain::field::idempotency_key).

/// The request header naming a call's key.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";
/// The answer header of a call answered from memory: `true`.
pub const IDEMPOTENT_REPLAY_HEADER: &str = "x-idempotent-replay";
