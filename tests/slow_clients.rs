//! Clients that misbehave at the connection level, against a real controller
//! process: silent connections, headers dripped a byte at a time, and thousands of
//! idle TLS connections. Each must neither block nor starve an honest client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, path_str, Fleet};
use crank_net::tls::{self, TlsFiles};
use crank_proto::wire::{Capability, HeartbeatRequest, RegisterRequest, RouteRequest, WorkerList};

fn registration(id: &str) -> RegisterRequest {
    RegisterRequest {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:1"),
        capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
        instance: None,
        health_check: None,
    }
}

/// Starts a controller with the given client timeout and waits until it answers.
async fn controller(fleet: &mut Fleet, client_timeout: &str) -> common::Proc {
    controller_with(fleet, &["--client-timeout", client_timeout]).await
}

/// Starts a controller with `flags` and waits until it answers.
async fn controller_with(fleet: &mut Fleet, flags: &[&str]) -> common::Proc {
    let port = fleet.controller_port.to_string();
    let cert_dir = fleet.cert_dir();
    let mut args = vec![
        "controller",
        "--cert-dir",
        path_str(&cert_dir),
        "--port",
        &port,
    ];
    args.extend_from_slice(flags);
    let proc = fleet.spawn("controller", &args);
    eventually(
        "the controller answers",
        Duration::from_secs(10),
        || async { fleet.get("/health").await.ok() },
    )
    .await;
    proc
}

/// An honest admin registers and routes; both must succeed promptly.
async fn honest_client_is_served(fleet: &Fleet, id: &str) {
    let admin = fleet.client("admin");
    let base = fleet.controller_url();
    let reply = common::post(&admin, &format!("{base}/register"), &registration(id))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{reply}");
    let reply = fleet
        .post("/route", &RouteRequest::new("invoke", "hello.greet"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{reply}");
}

/// Blocks until the server closes `stream` (EOF, reset, or an answer such as 408),
/// polling reads every 100 ms; the time it took.
fn time_until_closed(stream: &mut impl Read, deadline: Duration) -> Duration {
    let start = Instant::now();
    let mut buffer = [0u8; 512];
    loop {
        match stream.read(&mut buffer) {
            Ok(_) => return start.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return start.elapsed(),
        }
        assert!(
            start.elapsed() < deadline,
            "the server kept a misbehaving connection for {deadline:?}"
        );
    }
}

fn tls_connection(
    fleet: &Fleet,
    cert: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let config = tls::client_config(&TlsFiles::in_dir(&fleet.cert_dir(), cert)).unwrap();
    let server_name = "localhost".try_into().unwrap();
    let mut connection = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", fleet.controller_port)).unwrap();
    while connection.is_handshaking() {
        connection.complete_io(&mut tcp).unwrap();
    }
    rustls::StreamOwned::new(connection, tcp)
}

#[actix_rt::test]
async fn a_silent_connection_is_dropped_after_the_timeout_without_blocking_others() {
    let mut fleet = Fleet::new();
    let controller = controller(&mut fleet, "1s").await;
    let mut silent = TcpStream::connect(("127.0.0.1", fleet.controller_port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();

    honest_client_is_served(&fleet, "w1").await;
    let took = time_until_closed(&mut silent, Duration::from_secs(10));
    assert!(
        took >= Duration::from_millis(500),
        "dropped after {took:?}, before its timeout"
    );
    eventually("the drop is logged", Duration::from_secs(5), || {
        let logged = controller.log_text().contains("no TLS handshake within 1s");
        async move { logged.then_some(()) }
    })
    .await;
}

#[actix_rt::test]
async fn headers_dripped_a_byte_at_a_time_are_cut_off_without_blocking_others() {
    let mut fleet = Fleet::new();
    let _controller = controller(&mut fleet, "1s").await;
    let mut slow = tls_connection(&fleet, "client");
    slow.sock
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let request = b"GET /workers HTTP/1.1\r\nHost: localhost\r\nX-Padding: ";

    let start = Instant::now();
    let mut closed = false;
    for byte in request.iter().chain(std::iter::repeat(&b'a')) {
        if slow.write_all(&[*byte]).and_then(|_| slow.flush()).is_err() {
            closed = true;
            break;
        }
        // One byte, then see whether the server gave up on us (a read of EOF,
        // a 408 answer, or a reset all mean it did).
        let mut buffer = [0u8; 512];
        match slow.read(&mut buffer) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            _ => {
                closed = true;
                break;
            }
        }
        if start.elapsed().as_millis() % 500 < 100 {
            honest_client_is_served(&fleet, "w2").await;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "a dripping client was kept for 10 s"
        );
    }
    assert!(closed);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "cut off after {took:?}, before its timeout"
    );
    honest_client_is_served(&fleet, "w3").await;
}

#[actix_rt::test]
async fn two_thousand_idle_tls_connections_do_not_stop_a_new_client() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    assert!(
        hard > 3000,
        "this test needs more than 3000 open files; the hard limit is {hard}"
    );

    let mut fleet = Fleet::new();
    // Eight identities with 250 connections each: under the per-identity cap,
    // so all 2000 are held.
    let identities: Vec<String> = (0..8).map(|i| format!("idle-{i}")).collect();
    for name in &identities {
        fleet.issue_worker(name);
    }
    let _controller = controller(&mut fleet, "60s").await;
    let fleet = Arc::new(fleet);
    let threads: Vec<_> = identities
        .chunks(2)
        .map(|names| {
            let fleet = fleet.clone();
            let names = names.to_vec();
            std::thread::spawn(move || {
                names
                    .iter()
                    .flat_map(|name| {
                        (0..250)
                            .map(|_| tls_connection(&fleet, name))
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let idle: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(idle.len(), 2000);
    let silent: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(("127.0.0.1", fleet.controller_port)).unwrap())
        .collect();

    let start = Instant::now();
    honest_client_is_served(&fleet, "w1").await;
    let reply = fleet.get("/workers").await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json::<WorkerList>().workers[0].worker_id, "w1");
    eprintln!(
        "registered and routed past 2000 idle TLS and 500 silent TCP connections in {:?}",
        start.elapsed()
    );
    drop((idle, silent));
}

/// A TLS connection as `cert` that sends a request head promising a
/// 60,000-byte body, then 10 bytes of it, and nothing more.
fn slow_body(
    fleet: &Fleet,
    cert: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut connection = tls_connection(fleet, cert);
    let head = "POST /register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"worker_i";
    // A refused connection may already be closed: that shows when reading.
    let _ = connection
        .write_all(head.as_bytes())
        .and_then(|_| connection.flush());
    connection
        .sock
        .set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    connection
}

/// Whether the server has closed (or answered on) `stream`: the bytes it sent,
/// or `None` while it is still open and silent.
fn closed(stream: &mut impl Read) -> Option<String> {
    let mut buffer = [0u8; 4096];
    match stream.read(&mut buffer) {
        Ok(n) => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => Some(format!("error: {e}")),
    }
}

/// The resident memory of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[actix_rt::test]
async fn slow_bodies_are_cut_off_and_one_identity_cannot_lock_out_the_others() {
    const CAP: usize = 8;
    const SLOW: usize = 12;
    const TIMEOUT: Duration = Duration::from_secs(2);
    let mut fleet = Fleet::new();
    // Its own identity: the readiness check's connection may still be open.
    fleet.issue_worker("flood");
    let controller = controller_with(
        &mut fleet,
        &[
            "--client-timeout",
            "2s",
            "--max-connections-per-identity",
            &CAP.to_string(),
        ],
    )
    .await;
    let pid = controller.child.pid();
    let rss_idle = rss_kib(pid);

    // One identity parks more slow bodies than it may hold connections.
    let start = Instant::now();
    let mut slow: Vec<_> = (0..SLOW).map(|_| slow_body(&fleet, "flood")).collect();
    // Another identity drips its body a byte at a time.
    let mut drip = slow_body(&fleet, "admin");
    let mut closed_early: Vec<Option<String>> = vec![None; SLOW];
    while start.elapsed() < Duration::from_millis(1200) {
        for (stream, seen) in slow.iter_mut().zip(closed_early.iter_mut()) {
            if seen.is_none() {
                *seen = closed(stream);
            }
        }
        let _ = drip.write_all(b"x").and_then(|_| drip.flush());
        std::thread::sleep(Duration::from_millis(50));
    }
    let refused = closed_early.iter().filter(|seen| seen.is_some()).count();
    assert_eq!(
        refused,
        SLOW - CAP,
        "connections past the cap must be refused at once, the others kept until their timeout: {closed_early:?}"
    );
    let rss_parked = rss_kib(pid);

    // Meanwhile a worker registers and heartbeats.
    let worker = fleet.client("hello-world-1");
    let base = fleet.controller_url();
    let served = Instant::now();
    let reply = common::post(
        &worker,
        &format!("{base}/register"),
        &registration("hello-world-1"),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{reply}");
    let beat = HeartbeatRequest {
        worker_id: "hello-world-1".into(),
        load: None,
        instance: None,
    };
    let reply = common::post(&worker, &format!("{base}/heartbeat"), &beat)
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{reply}");
    let served = served.elapsed();

    // Every slow body is cut off with a 408 within the timeout and some slack.
    let mut open: Vec<usize> = (0..SLOW).filter(|i| closed_early[*i].is_none()).collect();
    let mut answers = Vec::new();
    let mut drip_answer = None;
    let deadline = TIMEOUT + Duration::from_secs(3);
    while !open.is_empty() || drip_answer.is_none() {
        assert!(
            start.elapsed() < deadline,
            "{} slow bodies and the drip ({drip_answer:?}) still open after {:?}",
            open.len(),
            start.elapsed()
        );
        open.retain(|i| match closed(&mut slow[*i]) {
            Some(answer) => {
                answers.push(answer);
                false
            }
            None => true,
        });
        if drip_answer.is_none() {
            let _ = drip.write_all(b"x").and_then(|_| drip.flush());
            drip_answer = closed(&mut drip);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let took = start.elapsed();
    assert!(
        took >= TIMEOUT - Duration::from_millis(300),
        "cut off after {took:?}"
    );
    for answer in answers.iter().chain(drip_answer.iter()) {
        assert!(
            answer.starts_with("HTTP/1.1 408") && answer.contains("request_timeout"),
            "{answer}"
        );
    }
    // Their places are free again.
    let reply = common::get(&fleet.client("flood"), &format!("{base}/workers"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    eprintln!(
        "controller RSS {rss_idle} KiB idle, {rss_parked} KiB with {CAP} slow bodies held; worker registered and heartbeat in {served:?}; slow bodies cut off after {took:?}"
    );
    let log = controller.log_text();
    let refusals = log
        .lines()
        .filter(|l| {
            l.contains("identity worker/flood") && l.contains("max_connections_per_identity")
        })
        .count();
    assert_eq!(refusals, 1, "one line for the burst of refusals:\n{log}");
}
