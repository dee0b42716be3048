//! The `crank` CLI against real processes: `greet` through the controller,
//! `crank up` from start to Ctrl-C, names a terminal would obey refused, and
//! absurd timings refused at start.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, free_port, free_ports_in_a_row, path_str, run_cli, Fleet, CRANK};
use crank_proto::domain::field::is_unprintable;
use crank_proto::wire::{Capability, ErrorBody, RegisterRequest, WorkerStatus};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[actix_rt::test]
async fn greet_answers_from_a_live_worker_and_fails_cleanly_when_none_is() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("1s");
    let port = free_port();
    let worker = fleet.start_worker("hello-world-1", port, "200ms");
    eventually("the worker is healthy", Duration::from_secs(15), || async {
        fleet.worker("hello-world-1").await.filter(|w| w.is_healthy)
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

    // `--json` prints the answers as `crank` always has: compact, keys sorted.
    let mut args = vec!["route", "invoke", "hello.greet", "--json"];
    args.extend(flags);
    let (ok, out, err) = run_cli(&args);
    assert!(ok, "crank route failed: {err}");
    assert_eq!(
        out.trim(),
        format!(
            r#"{{"capability":"invoke:hello.greet","version":"1.0.0","worker_id":"hello-world-1","worker_url":"https://localhost:{port}"}}"#
        )
    );
    let mut args = vec!["greet", "crank", "--reverse", "--json"];
    args.extend(flags);
    let (ok, out, err) = run_cli(&args);
    assert!(ok, "crank greet failed: {err}");
    let printed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(out.trim(), printed.to_string(), "compact, keys sorted");
    assert_eq!(printed["worker_id"], "hello-world-1");
    assert_eq!(printed["worker_url"], format!("https://localhost:{port}"));
    assert_eq!(printed["response"]["greeting"], "Hello, knarc!");
    assert_eq!(
        printed["response"]["metadata"]["options_applied"],
        serde_json::json!(["reverse"])
    );

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
                .filter(|w| w.status == WorkerStatus::Stale)
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

#[actix_rt::test]
async fn up_starts_a_fleet_and_ctrl_c_leaves_nothing_behind() {
    let mut fleet = Fleet::new();
    // A directory of its own: `up` makes the dev certificates it needs.
    let certs = fleet.dir.path().join("up-certs");
    // A controller and two workers.
    let port = free_ports_in_a_row(3).to_string();
    let mut up = fleet.spawn(
        "up",
        &[
            "up",
            "--workers",
            "2",
            "--port",
            &port,
            "--cert-dir",
            path_str(&certs),
        ],
    );
    let output = eventually(
        "up says 2 workers registered",
        Duration::from_secs(60),
        || {
            let output = up.log_text();
            async move { output.contains("2 workers registered").then_some(output) }
        },
    )
    .await;
    // "controller     pid 1234    https://localhost:9000" and one such line per worker.
    let pids: Vec<Pid> = output
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            (words.get(1) == Some(&"pid")).then(|| Pid::from_raw(words[2].parse().unwrap()))
        })
        .collect();
    assert_eq!(pids.len(), 3, "a controller and two workers: {output}");
    // The happy path warns about nothing: workers start once the controller
    // listens, so no first registration fails.
    let warnings: Vec<&str> = output.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(
        warnings.is_empty(),
        "warnings on the happy path: {warnings:#?}"
    );
    for pid in &pids {
        assert!(kill(*pid, None).is_ok(), "child {pid} is running");
    }

    up.signal(Signal::SIGINT);
    let status = up.exits_within(Duration::from_secs(30)).await;
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
        .env("CONTROLLER_DATA_DIR", fleet.dir.path().join("state"))
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

#[actix_rt::test]
async fn a_capability_named_with_a_terminal_escape_is_refused_naming_the_field() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller("5s");
    let url = format!("{}/register", fleet.controller_url());
    // ESC [2J: "clear the screen" in a terminal listing the capabilities.
    let request = RegisterRequest {
        worker_id: "hello-world-1".into(),
        worker_url: "https://localhost:8500".into(),
        capabilities: vec![Capability::new("invoke", "x\u{1b}[2J", "1.0.0")],
        instance: None,
        health_check: None,
    };
    // As admin, who may register any worker: the name is the only thing wrong.
    let admin = fleet.client("admin");
    let reply = eventually(
        "the controller answers",
        Duration::from_secs(15),
        || async { common::post(&admin, &url, &request).await.ok() },
    )
    .await;
    assert_eq!(reply.status, 422, "{reply}");
    let error: ErrorBody = reply.json();
    assert_eq!(error.error, "invalid_field", "{reply}");
    assert_eq!(
        error.field.as_deref(),
        Some("capabilities[0].name"),
        "{reply}"
    );
    // The answer names the character without carrying it.
    assert!(!error.detail.chars().any(is_unprintable), "{reply}");

    // Nothing was registered, and what the CLI prints carries no escape.
    let cert_dir = fleet.cert_dir();
    let controller_url = fleet.controller_url();
    let flags = [
        "--controller-url",
        &controller_url,
        "--cert-dir",
        path_str(&cert_dir),
    ];
    for command in ["capabilities", "workers"] {
        let mut args = vec![command];
        args.extend(flags);
        let (ok, out, err) = run_cli(&args);
        assert!(ok, "crank {command} failed: {err}");
        assert!(out.starts_with("no "), "crank {command}: {out}");
        assert!(
            !out.trim_end().chars().any(is_unprintable),
            "crank {command}: {out:?}"
        );
    }
}

/// Runs `crank <args>` and waits `deadline` for it to exit: its exit success and
/// stderr; panics if it is still running then (it accepted the settings).
fn exits_at_once(args: &[&str], deadline: Duration) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(CRANK)
        .args(args)
        .env("CONTROLLER_DATA_DIR", data.path())
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`crank {}` is still running after {deadline:?}: it accepted the setting",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.success(), err)
}

#[test]
fn absurd_timings_stop_a_process_at_once_naming_the_setting_and_its_minimum() {
    let fleet = Fleet::new();
    let cert_dir = fleet.cert_dir();
    let port = free_port().to_string();
    // Everything else would let each process start: only the timing is wrong.
    let cases = [
        (
            vec!["controller", "--stale-after", "4ms"],
            "stale_after",
            "at least 1s",
        ),
        (
            vec!["worker", "--heartbeat-interval", "1ms"],
            "heartbeat_interval",
            "at least 100ms",
        ),
    ];
    for (mut args, setting, minimum) in cases {
        args.extend(["--port", &port, "--cert-dir", path_str(&cert_dir)]);
        let (ok, err) = exits_at_once(&args, Duration::from_secs(10));
        assert!(!ok, "`crank {}` must fail: {err}", args.join(" "));
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(
            err.contains(setting) && err.contains(minimum),
            "`crank {}` must name {setting} and its minimum: {err}",
            args.join(" ")
        );
    }
}
