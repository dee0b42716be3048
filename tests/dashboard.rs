//! The dashboard (`GET /ui`) in a real browser: headless Chromium, driven over
//! WebDriver (chromedriver + fantoccini), holding the client certificate the
//! way a person would have it: `client.p12` (from `crank certs init`) imported
//! into an NSS database in a throwaway HOME with `pk12util`, the dev CA trusted
//! with `certutil`, and the `AutoSelectCertificateForUrls` policy choosing it
//! for localhost without a prompt.
//!
//! Needs Debian's `chromium`, `chromium-driver` and `libnss3-tools` (`.ci/run`
//! installs them) and root for the policy file; set `CRANK_SKIP_BROWSER_TESTS=1`
//! to skip it on a machine without them. The screenshot it takes is written to
//! the test's output directory, and to `docs/dashboard.png` (the README's) when
//! `CRANK_UPDATE_SCREENSHOT=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::child::Child;
use common::{eventually, free_port, Fleet};
use crank_proto::wire::{Capability, RegisterRequest};
use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const POLICY_DIR: &str = "/etc/chromium/policies/managed";
const POLICY_FILE: &str = "/etc/chromium/policies/managed/crank-test.json";
/// Chromium picks the first certificate of the NSS database for any
/// localhost port, without asking.
const POLICY: &str =
    r#"{"AutoSelectCertificateForUrls": ["{\"pattern\":\"https://localhost:*\",\"filter\":{}}"]}"#;
/// What a headless Chromium needs on a closed machine in a container.
const CHROMIUM_FLAGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1360,900",
];

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A HOME whose NSS database trusts the fleet's CA and holds `client.p12`.
fn browser_home(cert_dir: &Path, home: &Path) {
    let db = home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    run("certutil", &["-d", &db, "-N", "--empty-password"]);
    let ca = cert_dir.join("ca.crt");
    run(
        "certutil",
        &[
            "-d",
            &db,
            "-A",
            "-t",
            "C,,",
            "-n",
            "crank-ca",
            "-i",
            ca.to_str().unwrap(),
        ],
    );
    let bundle = cert_dir.join("client.p12");
    run(
        "pk12util",
        &[
            "-d",
            &db,
            "-i",
            bundle.to_str().unwrap(),
            "-W",
            crank_net::bundle::PKCS12_PASSWORD,
        ],
    );
}

/// The managed policy that lets headless Chromium present a certificate.
fn ensure_policy() {
    if std::fs::read_to_string(POLICY_FILE).is_ok_and(|text| text.trim() == POLICY) {
        return;
    }
    std::fs::create_dir_all(POLICY_DIR)
        .and_then(|()| std::fs::write(POLICY_FILE, POLICY))
        .unwrap_or_else(|e| {
            panic!("cannot write {POLICY_FILE} ({e}); as root: echo '{POLICY}' > {POLICY_FILE}")
        });
}

/// chromedriver on a free port, with `home` as its (and Chromium's) HOME.
async fn chromedriver(home: &Path, log: &Path) -> (Child, u16) {
    let port = free_port();
    let mut command = Command::new(CHROMEDRIVER);
    command
        .arg(format!("--port={port}"))
        .env("HOME", home)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::null());
    let child = Child::spawn("chromedriver", command).unwrap();
    eventually(
        "chromedriver listens",
        Duration::from_secs(20),
        || async move { std::net::TcpStream::connect(("127.0.0.1", port)).ok() },
    )
    .await;
    (child, port)
}

async fn browser(driver_port: u16, profile: &Path) -> Client {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .expect("a Chromium session through chromedriver")
}

/// `data-state` of the dashboard's row for `worker`, if it shows one.
async fn row_state(page: &Client, worker: &str) -> Option<String> {
    let script = "const row = document.querySelector(`tr[data-worker=\"${arguments[0]}\"]`); \
                  return row ? row.dataset.state : null;";
    page.execute(script, vec![json!(worker)])
        .await
        .ok()?
        .as_str()
        .map(str::to_owned)
}

/// Registers an extra worker (never heartbeating) as admin: more to look at.
async fn register_extra(fleet: &Fleet, id: &str, capabilities: &[(&str, &str)]) {
    let request = RegisterRequest {
        worker_id: id.into(),
        worker_url: format!("https://{id}.fleet.local:8500"),
        capabilities: capabilities
            .iter()
            .map(|(name, version)| Capability::new("invoke", name, version))
            .collect(),
        instance: None,
        health_check: None,
    };
    let reply = common::post(
        &fleet.client("admin"),
        &format!("{}/register", fleet.controller_url()),
        &request,
    )
    .await
    .unwrap();
    assert_eq!(reply.status, 200, "{reply}");
}

fn screenshot_path() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png")
}

#[actix_rt::test]
async fn the_dashboard_shows_the_fleet_live_in_a_real_browser() {
    if std::env::var_os("CRANK_SKIP_BROWSER_TESTS").is_some() {
        eprintln!("CRANK_SKIP_BROWSER_TESTS is set: not driving a browser");
        return;
    }
    for tool in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: apt-get install -y chromium chromium-driver libnss3-tools (as .ci/run does), or set CRANK_SKIP_BROWSER_TESTS=1"
        );
    }
    ensure_policy();
    let mut fleet = Fleet::new();
    let home = fleet.dir.path().join("browser-home");
    browser_home(&fleet.cert_dir(), &home);
    let _controller = fleet.start_controller("2s");
    let mut first = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually(
        "hello-world-1 is registered",
        Duration::from_secs(15),
        || async { fleet.worker("hello-world-1").await },
    )
    .await;
    register_extra(&fleet, "resize-eu-1", &[("image.resize", "2.1.0")]).await;
    register_extra(
        &fleet,
        "ocr-1",
        &[("doc.ocr", "1.4.2"), ("image.resize", "2.0.0")],
    )
    .await;

    let (mut driver, driver_port) =
        chromedriver(&home, &fleet.dir.path().join("chromedriver.log")).await;
    let page = browser(driver_port, &fleet.dir.path().join("profile")).await;
    let ui = format!("{}/ui", fleet.controller_url());
    page.goto(&ui).await.unwrap();
    eventually(
        "the dashboard lists hello-world-1 as healthy",
        Duration::from_secs(20),
        || async { (row_state(&page, "hello-world-1").await? == "healthy").then_some(()) },
    )
    .await;
    // Set once, gone if the page reloads.
    page.execute("window.crankLoadedOnce = true; return true;", vec![])
        .await
        .unwrap();

    // A worker that registers after the page loaded appears without a reload.
    fleet.issue_worker("hello-world-2");
    let _second = fleet.start_worker("hello-world-2", free_port(), "200ms");
    eventually(
        "hello-world-2 appears on the open page",
        Duration::from_secs(20),
        || async { (row_state(&page, "hello-world-2").await? == "healthy").then_some(()) },
    )
    .await;

    // A stopped worker changes state: killed, it goes stale after 2 s.
    first.signal(Signal::SIGKILL);
    eventually(
        "hello-world-1 shows as stale",
        Duration::from_secs(20),
        || async { (row_state(&page, "hello-world-1").await? == "stale").then_some(()) },
    )
    .await;
    let kept = page
        .execute("return window.crankLoadedOnce === true;", vec![])
        .await
        .unwrap();
    assert_eq!(kept, json!(true), "the page was reloaded");

    // A worker's full record on click.
    page.find(Locator::Css(r#"tr[data-worker="hello-world-2"]"#))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(
        "the detail panel shows who registered hello-world-2",
        Duration::from_secs(10),
        || async {
            let text = page
                .find(Locator::Id("detail-fields"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.contains("worker/hello-world-2").then_some(())
        },
    )
    .await;
    let capabilities = page
        .find(Locator::Css(
            r#"#capabilities tr[data-capability="invoke:image.resize"] .total-count"#,
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(capabilities, "2");
    // The header names the store: the durable one, by default.
    eventually(
        "the header shows the store",
        Duration::from_secs(10),
        || async {
            let text = page
                .find(Locator::Id("store"))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            text.starts_with("store: file").then_some(())
        },
    )
    .await;
    // Some routes for the chart, over a few of its 2 s polls.
    let client = fleet.client("client");
    let route = crank_proto::wire::RouteRequest::new("invoke", "hello.greet");
    for round in 0..16u32 {
        for _ in 0..(round % 6) * 4 {
            let url = format!("{}/route", fleet.controller_url());
            let _ = common::post(&client, &url, &route).await;
        }
        actix_rt::time::sleep(Duration::from_millis(500)).await;
    }

    // A drained worker shows as draining, and no longer counts as healthy.
    let drained = common::post(
        &fleet.client("admin"),
        &format!("{}/drain/hello-world-2", fleet.controller_url()),
        &serde_json::json!({}),
    )
    .await
    .unwrap();
    assert_eq!(drained.status, 200, "{drained}");
    eventually(
        "hello-world-2 shows as draining",
        Duration::from_secs(10),
        || async { (row_state(&page, "hello-world-2").await? == "draining").then_some(()) },
    )
    .await;
    let summary = page
        .find(Locator::Id("summary"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(summary.contains("1 draining"), "{summary}");

    let png = page.screenshot().await.unwrap();
    std::fs::write(screenshot_path(), &png).unwrap();
    eprintln!("screenshot: {}", screenshot_path().display());
    if std::env::var_os("CRANK_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("dashboard.png"), &png).unwrap();
    }
    page.close().await.unwrap();
    driver.stop(Duration::from_secs(5)).await.unwrap();
    let _ = first.exits_within(Duration::from_secs(5)).await;
}
