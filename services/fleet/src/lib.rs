//! The process harness `crank up`, `crank bench` and the end-to-end tests
//! share, so a fix to how crank starts and stops processes lands once.
//!
//! | module | holds |
//! |---|---|
//! | [`child`] | [`Child`](child::Child): a child process in its own group, stopped in order, killed when dropped |
//! | [`etcd`] | [`Etcd`](etcd::Etcd): the local etcd of `crank up --controllers N`, `crank bench cluster` and the cluster tests |
//! | [`ports`] | [`free_port`](ports::free_port), [`free_ports_in_a_row`](ports::free_ports_in_a_row): ports never handed out twice |

pub mod child;
pub mod etcd;
pub mod ports;
