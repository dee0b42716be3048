//! Clients that misbehave at the connection level, against a real controller
//! process: silent connections, headers dripped a byte at a time, and thousands of
//! idle TLS connections. Each must neither block nor starve an honest client.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{eventually, path_str, Fleet};
use crank_actors::wire::{Capability, RegisterRequest, RouteRequest, WorkerList};
use crank_services::tls::{self, TlsFiles};

fn registration(id: &str) -> RegisterRequest {
    RegisterRequest {
        worker_id: id.into(),
        worker_url: format!("https://{id}.local:1"),
        capabilities: vec![Capability::new("invoke", "hello.greet", "1.0.0")],
        instance: None,
    }
}

/// Starts a controller with the given client timeout and waits until it answers.
async fn controller(fleet: &mut Fleet, client_timeout: &str) -> common::Proc {
    let port = fleet.controller_port.to_string();
    let cert_dir = fleet.cert_dir();
    let proc = fleet.spawn(
        "controller",
        &[
            "controller",
            "--cert-dir",
            path_str(&cert_dir),
            "--port",
            &port,
            "--client-timeout",
            client_timeout,
        ],
    );
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
    let _controller = controller(&mut fleet, "60s").await;
    let fleet = Arc::new(fleet);
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let fleet = fleet.clone();
            std::thread::spawn(move || {
                (0..500)
                    .map(|_| tls_connection(&fleet, "client"))
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
