//! Who may call what, and how much, against a real controller over mTLS: an
//! enforcing access policy (denial, filtered lists, reload on change and on
//! SIGHUP, a bad file kept out), rate limits answered 429 with Retry-After,
//! SLO shedding of low-priority routes, and files refused at start.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{eventually, free_port, path_str, sample, Fleet, CRANK};
use crank_client::{ClientError, Constraints, CrankClient, Request};
use crank_net::tls::TlsFiles;
use crank_proto::wire::{CapabilityList, ErrorBody, ReportRequest, RouteRequest, SloList};

fn issue_client(fleet: &Fleet, name: &str) {
    let status = Command::new(CRANK)
        .args([
            "certs", "issue", "--role", "client", "--name", name, "--dir",
        ])
        .arg(fleet.cert_dir())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

const ENFORCE: &str = r#"mode = "enforce"
[[allow]]
identity = "client/client"
capabilities = ["invoke:hello.*"]
"#;

/// `POST /route` of `invoke:hello.greet` as `who`: status, `Retry-After`, body.
async fn route_as(
    fleet: &Fleet,
    who: &str,
    priority: Option<&str>,
) -> (u16, Option<String>, String) {
    let request = RouteRequest {
        priority: priority.map(|p| serde_json::Value::String(p.to_owned())),
        ..RouteRequest::new("invoke", "hello.greet")
    };
    let url = format!("{}/route", fleet.controller_url());
    let mut response = fleet
        .client(who)
        .post(url)
        .send_json(&request)
        .await
        .unwrap();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.body().await.unwrap();
    (
        response.status().as_u16(),
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn routable(fleet: &Fleet) -> Option<()> {
    let list: CapabilityList = fleet.get("/capabilities").await.ok()?.json();
    (list.capabilities.get("invoke:hello.greet")?.healthy_workers == 1).then_some(())
}

#[actix_rt::test]
async fn an_enforcing_policy_denies_filters_and_reloads_without_a_restart() {
    let mut fleet = Fleet::new();
    issue_client(&fleet, "other");
    let policy = fleet.dir.path().join("policy.toml");
    std::fs::write(&policy, ENFORCE).unwrap();
    let controller = fleet.start_controller_with("30s", &["--policy", path_str(&policy)]);
    let _worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually("the worker is routable", Duration::from_secs(15), || {
        routable(&fleet)
    })
    .await;

    assert_eq!(route_as(&fleet, "client", None).await.0, 200);
    let (status, _, body) = route_as(&fleet, "other", None).await;
    assert_eq!(status, 403, "{body}");
    let error: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(error.error, "policy_denied");
    assert!(error.detail.contains("client/other") && error.detail.contains("invoke:hello.greet"));
    // What it may not route to, it is not shown.
    let url = format!("{}/capabilities", fleet.controller_url());
    let list: CapabilityList = common::get(&fleet.client("other"), &url)
        .await
        .unwrap()
        .json();
    assert!(list.capabilities.is_empty(), "{list:?}");

    // A file that does not parse keeps the last good policy, and says so.
    std::fs::write(
        &policy,
        "mode = \"enforce\"\n[[allow]]\nidentity = \"robot/x\"\ncapabilities = [\"a:b\"]\n",
    )
    .unwrap();
    eventually(
        "the bad file is reported",
        Duration::from_secs(10),
        || async {
            controller
                .log_text()
                .contains("the last good policy and SLOs stay in force")
                .then_some(())
        },
    )
    .await;
    assert_eq!(route_as(&fleet, "other", None).await.0, 403);
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains("crank_protection_reload_failures_total 1"),
        "{text}"
    );
    assert!(text.contains(r#"crank_policy_decisions_total{decision="deny",mode="enforce"}"#));

    // The file changes: shadow mode decides but refuses nothing.
    std::fs::write(&policy, ENFORCE.replace("enforce", "shadow")).unwrap();
    eventually("shadow mode allows", Duration::from_secs(10), || async {
        (route_as(&fleet, "other", None).await.0 == 200).then_some(())
    })
    .await;
    assert!(controller
        .log_text()
        .contains("policy: no rule of the access policy allows client/other"));

    // SIGHUP reloads too.
    std::fs::write(&policy, ENFORCE).unwrap();
    controller.signal(nix::sys::signal::Signal::SIGHUP);
    eventually("enforcing again", Duration::from_secs(10), || async {
        (route_as(&fleet, "other", None).await.0 == 403).then_some(())
    })
    .await;
}

#[actix_rt::test]
async fn a_caller_over_its_rate_is_answered_429_with_retry_after_and_others_are_not() {
    let mut fleet = Fleet::new();
    issue_client(&fleet, "other");
    let _controller = fleet.start_controller_with("30s", &["--route-rate", "1/m"]);
    let _worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually("the worker is routable", Duration::from_secs(15), || {
        routable(&fleet)
    })
    .await;

    assert_eq!(route_as(&fleet, "client", None).await.0, 200);
    let (status, retry_after, body) = route_as(&fleet, "client", None).await;
    assert_eq!(status, 429, "{body}");
    let seconds: u64 = retry_after.expect("a Retry-After header").parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");
    let error: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(error.error, "rate_limit_exceeded");
    assert!(error.detail.contains("client/client") && error.detail.contains("/route"));
    // Another identity has a bucket of its own.
    assert_eq!(route_as(&fleet, "other", None).await.0, 200);

    // The client library waits as asked only when that fits in its call's
    // time; here it does not, and the error carries the wait.
    let client = CrankClient::with_timeout(
        &fleet.controller_url(),
        TlsFiles::in_dir(&fleet.cert_dir(), "client"),
        Duration::from_secs(2),
    )
    .unwrap();
    let error = client
        .route("invoke", "hello.greet", &Constraints::any())
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::Refused { status: 429, retry_after: Some(wait), .. } if *wait >= Duration::from_secs(1)),
        "{error:?}"
    );
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains(r#"crank_rate_limited_total{role="client",endpoint="/route"} 2"#),
        "{text}"
    );
    const HELD: &str = r#"crank_rate_limit_held_total{role="client",endpoint="/route"}"#;
    assert_eq!(sample(&text, HELD).unwrap_or(0.0), 0.0, "{text}");

    // A caller that keeps asking within the wait it was told: past its free
    // refusals, each further one is held.
    let free = 100;
    for _ in 0..free {
        assert_eq!(route_as(&fleet, "client", None).await.0, 429);
    }
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains(r#"crank_rate_limited_total{role="client",endpoint="/route"} 102"#),
        "{text}"
    );
    assert_eq!(sample(&text, HELD), Some(2.0), "{text}");
    // The other identity was refused nothing and is held nothing.
    assert_eq!(route_as(&fleet, "other", None).await.0, 429);
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert_eq!(sample(&text, HELD), Some(2.0), "{text}");
}

#[actix_rt::test]
async fn a_client_over_its_report_rate_drops_its_reports_for_the_wait_instead_of_asking_again() {
    let mut fleet = Fleet::new();
    let _controller = fleet.start_controller_with("30s", &["--report-rate", "1/m"]);
    let _worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually("the worker is routable", Duration::from_secs(15), || {
        routable(&fleet)
    })
    .await;
    let client = CrankClient::new(
        &fleet.controller_url(),
        TlsFiles::in_dir(&fleet.cert_dir(), "client"),
    )
    .unwrap();
    let request = Request::post("/greet", &common::greeting("reports")).unwrap();
    let calls = 30;
    for _ in 0..calls {
        client
            .call("invoke", "hello.greet", &Constraints::any(), &request)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    // One report admitted, then one refused with a wait of most of a minute.
    // Reports sent before that refusal's answer reached the client may be
    // refused too; the rest are not sent.
    let refused = eventually(
        "the refused report is counted",
        Duration::from_secs(10),
        || async {
            let metrics = fleet.get("/metrics").await.ok()?;
            let text = String::from_utf8_lossy(&metrics.body).into_owned();
            let refused = sample(
                &text,
                r#"crank_rate_limited_total{role="client",endpoint="/report"}"#,
            )?;
            (refused >= 1.0).then_some(refused)
        },
    )
    .await;
    assert!(refused <= 3.0, "{refused} of {} reports refused", calls - 1);
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let held = r#"crank_rate_limit_held_total{role="client",endpoint="/report"}"#;
    assert_eq!(sample(&text, held).unwrap_or(0.0), 0.0, "{text}");
}

const SLO: &str = "capability: {verb: invoke, name: hello.greet, version: \"1.0.0\"}
slo:
  latency: {p50_ms: 1, p95_ms: 5, p99_ms: 10}
  availability: {target: 0.99}
  error_budget: {monthly_pct: 1}
";

#[actix_rt::test]
async fn a_capability_over_its_p95_target_sheds_low_priority_routes_only() {
    let mut fleet = Fleet::new();
    let slos = fleet.dir.path().join("slos");
    std::fs::create_dir(&slos).unwrap();
    std::fs::write(slos.join("hello.greet.yml"), SLO).unwrap();
    let _controller = fleet.start_controller_with("30s", &["--slo-dir", path_str(&slos)]);
    let _worker = fleet.start_worker("hello-world-1", free_port(), "200ms");
    eventually("the worker is routable", Duration::from_secs(15), || {
        routable(&fleet)
    })
    .await;
    assert_eq!(route_as(&fleet, "client", Some("low")).await.0, 200);

    // Callers report 30 calls of 50 ms: the p95 is ten times the target.
    for _ in 0..30 {
        let report = ReportRequest {
            worker_id: "hello-world-1".into(),
            outcome: crank_proto::wire::Outcome::Success,
            latency_ms: Some(50.0),
            load: None,
            capability: Some("invoke:hello.greet".into()),
        };
        assert_eq!(fleet.post("/report", &report).await.unwrap().status, 200);
    }
    eventually(
        "low-priority routes are shed",
        Duration::from_secs(10),
        || async { (route_as(&fleet, "client", Some("low")).await.0 == 503).then_some(()) },
    )
    .await;
    let (_, retry_after, body) = route_as(&fleet, "client", Some("low")).await;
    assert_eq!(retry_after.as_deref(), Some("5"));
    let error: ErrorBody = serde_json::from_str(&body).unwrap();
    assert_eq!(error.error, "slo_violation");
    assert!(
        error
            .detail
            .contains("p95 is 50.0 ms, over the 5 ms target"),
        "{}",
        error.detail
    );
    for priority in [None, Some("normal"), Some("high")] {
        assert_eq!(
            route_as(&fleet, "client", priority).await.0,
            200,
            "{priority:?}"
        );
    }
    let (status, _, body) = route_as(&fleet, "client", Some("urgent")).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains(r#""field":"priority""#), "{body}");

    let slos: SloList = fleet.get("/slos").await.unwrap().json();
    let greet = &slos.slos[0];
    assert_eq!(
        (greet.capability.as_str(), greet.samples),
        ("invoke:hello.greet", 30)
    );
    assert!(
        greet.breach.is_some() && greet.error_budget_remaining == 1.0,
        "{greet:?}"
    );
    let metrics = fleet.get("/metrics").await.unwrap();
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains(r#"crank_slo_shed_total{capability="invoke:hello.greet",priority="low"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"crank_slo_p95_seconds{capability="invoke:hello.greet"} 0.05"#),
        "{text}"
    );
    assert!(text
        .contains(r#"crank_slo_error_budget_remaining_ratio{capability="invoke:hello.greet"} 1"#));
}

#[test]
fn bad_files_are_refused_at_start_naming_the_file_and_line() {
    let fleet = Fleet::new();
    let policy = fleet.dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "mode = \"enforce\"\n\n[[allow]]\nidentity = \"client/x\"\ncapabilities = [\"nocolon\"]\n",
    )
    .unwrap();
    let slos = fleet.dir.path().join("slos");
    std::fs::create_dir(&slos).unwrap();
    std::fs::write(
        slos.join("x.yml"),
        "capability: {verb: invoke, name: x}\nslo:\n  availability: {target: 99.9}\n",
    )
    .unwrap();
    let cert_dir = fleet.cert_dir();
    let port = free_port().to_string();
    let base = [
        "controller",
        "--cert-dir",
        path_str(&cert_dir),
        "--port",
        &port,
        "--store",
        "memory",
    ];
    for (flag, path, expected) in [
        (
            "--policy",
            &policy,
            "policy.toml: line 3: capability pattern \"nocolon\" is not verb:name",
        ),
        ("--slo-dir", &slos, "x.yml: slo.availability.target is 99.9"),
    ] {
        let output = Command::new(CRANK)
            .args(base)
            .args([flag, path_str(path)])
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}
