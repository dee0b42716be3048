//! Free loopback ports for processes that are not listening yet: never one
//! handed out before in this process, since the OS readily gives a
//! just-released port again.

use std::net::TcpListener;

/// Every port [`free_port`] and [`free_ports_in_a_row`] handed out.
static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());

/// A free loopback port, never one this test binary handed out before: the
/// OS readily gives a just-released port again, and a controller and a worker
/// of one test, both not yet listening, were seen to get the same one.
pub fn free_port() -> u16 {
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The first of `count` consecutive free loopback ports (`crank up --port P`
/// takes P and the ports after it), each bound at once to check it, and
/// none handed out before by [`free_port`] or this.
pub fn free_ports_in_a_row(count: u16) -> u16 {
    loop {
        let first = free_port();
        let Some(last) = first.checked_add(count - 1) else {
            continue;
        };
        let held: Vec<TcpListener> = (first..=last)
            .map_while(|port| TcpListener::bind(("127.0.0.1", port)).ok())
            .collect();
        if held.len() == usize::from(count) {
            let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
            if (first + 1..=last).all(|port| !given.contains(&port)) {
                given.extend(first + 1..=last);
                return first;
            }
        }
    }
}
