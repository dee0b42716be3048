//! The `crank` CLI against real processes: `greet` through the controller, and
//! `crank up` from start to Ctrl-C.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{eventually, free_port, path_str, run_cli, Fleet, CRANK};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[actix_rt::test]
async fn greet_answers_from_a_live_worker_and_fails_cleanly_when_none_is() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("1s");
    let worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually("the worker is healthy", Duration::from_secs(15), || async {
        fleet
            .worker("hello-world-1")
            .await
            .filter(|w| w["is_healthy"] == true)
    })
    .await;

    let cert_dir = fleet.cert_dir();
    let controller_url = fleet.controller_url();
    let flags = [
        "--controller-url",
        &controller_url,
        "--cert-dir",
        path_str(&cert_dir),
    ];
    let mut args = vec!["greet", "crank", "--uppercase", "--exclamations", "2"];
    args.extend(flags);
    let (ok, out, err) = run_cli(&args);
    assert!(ok, "crank greet failed: {err}");
    assert!(out.contains("Hello, CRANK!!"), "{out}");
    assert!(out.contains("answered by hello-world-1"), "{out}");

    let mut args = vec!["workers"];
    args.extend(flags);
    let (ok, out, _) = run_cli(&args);
    assert!(ok);
    assert!(out.lines().next().unwrap().starts_with("WORKER"), "{out}");
    assert!(
        out.contains("hello-world-1") && out.contains("healthy") && out.contains("s ago"),
        "{out}"
    );

    worker.signal(Signal::SIGKILL);
    drop(worker);
    eventually(
        "the only worker turns stale",
        Duration::from_secs(10),
        || async {
            fleet
                .worker("hello-world-1")
                .await
                .filter(|w| w["status"] == "stale")
        },
    )
    .await;
    let mut args = vec!["greet", "crank"];
    args.extend(flags);
    let (ok, out, err) = run_cli(&args);
    assert!(!ok, "greet must fail with no live worker: {out}");
    assert!(err.to_lowercase().contains("no worker available"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one clear line: {err}");
}

#[test]
fn cli_errors_are_one_line_and_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let (ok, _, err) = run_cli(&["workers", "--cert-dir", path_str(&missing)]);
    assert!(!ok);
    assert!(
        err.contains("client.crt") && err.contains("crank certs init"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let certs = dir.path().join("certs");
    assert!(run_cli(&["certs", "init", "--dir", path_str(&certs)]).0);
    let unused = free_port().to_string();
    let url = format!("https://localhost:{unused}");
    let (ok, _, err) = run_cli(&[
        "workers",
        "--cert-dir",
        path_str(&certs),
        "--controller-url",
        &url,
    ]);
    assert!(!ok);
    assert!(err.contains("cannot reach") && err.contains(&url), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn up_starts_a_fleet_and_ctrl_c_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let port = free_port().to_string();
    let mut up = Command::new(CRANK)
        .args([
            "up",
            "--workers",
            "2",
            "--port",
            &port,
            "--cert-dir",
            path_str(&certs),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = up.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pids = Vec::new();
    let mut seen = Vec::new();
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(remaining)
            .unwrap_or_else(|_| panic!("no '2 workers registered' within 60 s; output: {seen:#?}"));
        if let Some(pid) = line.split_whitespace().skip_while(|w| *w != "pid").nth(1) {
            pids.push(Pid::from_raw(pid.parse().unwrap()));
        }
        let done = line.contains("2 workers registered");
        seen.push(line);
        if done {
            break;
        }
    }
    assert_eq!(pids.len(), 3, "a controller and two workers: {seen:#?}");
    for pid in &pids {
        assert!(kill(*pid, None).is_ok(), "child {pid} is running");
    }

    kill(Pid::from_raw(up.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = up.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "crank up did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "crank up exited with {status}");
    for pid in pids {
        assert!(kill(pid, None).is_err(), "child {pid} was left behind");
    }
}

/// The `starting service` line of a controller started with `env`.
fn controller_start_line(fleet: &Fleet, env: &[(&str, &str)]) -> String {
    let log_path = fleet.dir.path().join("controller.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut controller = Command::new(CRANK)
        .arg("controller")
        .envs(env.iter().copied())
        .env("CONTROLLER_HTTPS_PORT", free_port().to_string())
        .env("CERT_DIR", fleet.cert_dir())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let started = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("starting service")) {
            break line.to_owned();
        }
        if Instant::now() > deadline || controller.try_wait().unwrap().is_some() {
            let _ = controller.kill();
            panic!("the controller did not start:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = controller.kill();
    let _ = controller.wait();
    started
}

#[test]
fn controller_http_workers_from_the_environment_sets_its_http_threads() {
    let fleet = Fleet::new();
    for threads in ["1", "3"] {
        let started = controller_start_line(&fleet, &[("CONTROLLER_HTTP_WORKERS", threads)]);
        assert!(
            started.contains(&format!("workers: {threads},")),
            "{started}"
        );
    }
}
