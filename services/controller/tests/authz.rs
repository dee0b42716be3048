//! The authorization table over real mTLS: for each rule an allowed and a
//! forbidden call, asserting status, body, and that `/workers` did not change
//! when the call was refused.

use common::{client_in, start_controller};
use crank_net::certs;
use crank_net::identity::Role;
use serde_json::{json, Value};

mod common;

struct Controller {
    base: String,
    dir: tempfile::TempDir,
}

impl Controller {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        certs::init(dir.path(), false).unwrap();
        for name in ["w1", "w2", "w9"] {
            certs::issue(dir.path(), Role::Worker, name, false).unwrap();
        }
        let base = start_controller(dir.path());
        Controller { base, dir }
    }

    fn client(&self, cert: &str) -> awc::Client {
        client_in(self.dir.path(), cert)
    }

    async fn call(
        &self,
        cert: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = self.client(cert);
        let url = format!("{}{path}", self.base);
        let request = match method {
            "GET" => client.get(url),
            "POST" => client.post(url),
            "DELETE" => client.delete(url),
            _ => unreachable!(),
        };
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// `/workers` as the admin sees it.
    async fn workers(&self) -> Value {
        let (status, body) = self.call("admin", "GET", "/workers", None).await;
        assert_eq!(status, 200);
        body
    }

    /// A refused write: 403 identity_mismatch with the exact detail, nothing changed.
    async fn refused(
        &self,
        cert: &str,
        identity: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
        worker_id: &str,
    ) {
        let before = self.workers().await;
        let (status, answer) = self.call(cert, method, path, body).await;
        assert_eq!(status, 403, "{identity} {method} {path}: {answer}");
        assert_eq!(answer["error"], "identity_mismatch", "{answer}");
        assert_eq!(
            answer["detail"],
            format!("certificate {identity} may not act for worker {worker_id}"),
            "{answer}"
        );
        assert_eq!(
            self.workers().await,
            before,
            "{identity} {method} {path} changed the registry"
        );
    }
}

fn registration(id: &str) -> Value {
    json!({
        "worker_id": id,
        "worker_url": format!("https://{id}.local:8500"),
        "capabilities": [{"name": "hello.greet", "verb": "invoke", "version": "1.0.0"}]
    })
}

fn ids(workers: &Value) -> Vec<String> {
    workers["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_rt::test]
async fn a_worker_may_write_only_its_own_record() {
    let c = Controller::start();
    // register
    let (status, _) = c
        .call("w1", "POST", "/register", Some(registration("w1")))
        .await;
    assert_eq!(status, 200);
    c.refused(
        "w2",
        "worker/w2",
        "POST",
        "/register",
        Some(registration("w1")),
        "w1",
    )
    .await;
    // heartbeat
    let (status, body) = c
        .call("w1", "POST", "/heartbeat", Some(json!({"worker_id": "w1"})))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"status": "ok", "acknowledged": true}))
    );
    c.refused(
        "w2",
        "worker/w2",
        "POST",
        "/heartbeat",
        Some(json!({"worker_id": "w1"})),
        "w1",
    )
    .await;
    // deregister
    c.refused("w2", "worker/w2", "DELETE", "/deregister/w1", None, "w1")
        .await;
    let (status, _) = c.call("w1", "DELETE", "/deregister/w1", None).await;
    assert_eq!(status, 200);
    assert!(ids(&c.workers().await).is_empty());
}

#[actix_rt::test]
async fn an_admin_may_act_for_any_worker() {
    let c = Controller::start();
    let (status, _) = c
        .call("admin", "POST", "/register", Some(registration("w1")))
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call(
            "admin",
            "POST",
            "/heartbeat",
            Some(json!({"worker_id": "w1"})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = c
        .call("w2", "POST", "/register", Some(registration("w2")))
        .await;
    assert_eq!(status, 200);
    let (status, _) = c.call("admin", "DELETE", "/deregister/w2", None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&c.workers().await), vec!["w1"]);
}

#[actix_rt::test]
async fn clients_and_controllers_read_and_route_but_never_write() {
    let c = Controller::start();
    c.call("w1", "POST", "/register", Some(registration("w1")))
        .await;
    for (cert, identity) in [
        ("client", "client/client"),
        ("controller", "controller/controller"),
    ] {
        for path in ["/workers", "/capabilities", "/health", "/workers/w1"] {
            let (status, _) = c.call(cert, "GET", path, None).await;
            assert_eq!(status, 200, "{identity} GET {path}");
        }
        let (status, route) = c
            .call(
                cert,
                "POST",
                "/route",
                Some(json!({"verb": "invoke", "capability": "hello.greet"})),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(route["worker_id"], "w1");

        c.refused(
            cert,
            identity,
            "POST",
            "/register",
            Some(registration("w1")),
            "w1",
        )
        .await;
        c.refused(
            cert,
            identity,
            "POST",
            "/register",
            Some(registration("w3")),
            "w3",
        )
        .await;
        c.refused(
            cert,
            identity,
            "POST",
            "/heartbeat",
            Some(json!({"worker_id": "w1"})),
            "w1",
        )
        .await;
        c.refused(cert, identity, "DELETE", "/deregister/w1", None, "w1")
            .await;
    }
}

#[actix_rt::test]
async fn a_record_cannot_be_taken_over_by_another_identity() {
    let c = Controller::start();
    let (status, _) = c
        .call("w1", "POST", "/register", Some(registration("w1")))
        .await;
    assert_eq!(status, 200);
    let mut takeover = registration("w1");
    takeover["worker_url"] = json!("https://elsewhere:1");
    // Another worker, a client, a controller: refused, and the record unchanged.
    c.refused(
        "w2",
        "worker/w2",
        "POST",
        "/register",
        Some(takeover.clone()),
        "w1",
    )
    .await;
    c.refused(
        "client",
        "client/client",
        "POST",
        "/register",
        Some(takeover.clone()),
        "w1",
    )
    .await;
    let (_, detail) = c.call("admin", "GET", "/workers/w1", None).await;
    assert_eq!(detail["worker_url"], "https://w1.local:8500");
    assert_eq!(detail["registered_by"], "worker/w1");
    // The worker itself re-registers freely; an admin may replace any record.
    let (status, _) = c
        .call("w1", "POST", "/register", Some(registration("w1")))
        .await;
    assert_eq!(status, 200);
    let (status, _) = c.call("admin", "POST", "/register", Some(takeover)).await;
    assert_eq!(status, 200);
    let (_, detail) = c.call("admin", "GET", "/workers/w1", None).await;
    assert_eq!(detail["registered_by"], "admin/admin");
    // And the rightful worker is never locked out of its own id by an admin's record.
    let (status, _) = c
        .call("w1", "POST", "/register", Some(registration("w1")))
        .await;
    assert_eq!(status, 200);
    let (_, detail) = c.call("admin", "GET", "/workers/w1", None).await;
    assert_eq!(detail["registered_by"], "worker/w1");
}

#[actix_rt::test]
async fn a_service_certificate_acts_for_its_replicas_and_no_other_id() {
    let c = Controller::start();
    certs::issue(c.dir.path(), Role::Service, "hello", false).unwrap();
    // hello, hello.1, hello.a1b2: the service and its replicas, all on one certificate.
    for id in ["hello", "hello.1", "hello.a1b2"] {
        let (status, answer) = c
            .call("hello", "POST", "/register", Some(registration(id)))
            .await;
        assert_eq!(status, 200, "{id}: {answer}");
        let (status, _) = c
            .call(
                "hello",
                "POST",
                "/heartbeat",
                Some(json!({"worker_id": id})),
            )
            .await;
        assert_eq!(status, 200, "{id}");
        let (_, detail) = c
            .call("admin", "GET", &format!("/workers/{id}"), None)
            .await;
        assert_eq!(detail["registered_by"], "service/hello");
    }
    // Ids of another service that merely start with its name, or an empty suffix.
    for id in ["hello-world", "hello-world.1", "hellothere", "hello."] {
        c.refused(
            "hello",
            "service/hello",
            "POST",
            "/register",
            Some(registration(id)),
            id,
        )
        .await;
    }
    // A record of another service is out of reach, whoever registered it.
    certs::issue(c.dir.path(), Role::Service, "hello-world", false).unwrap();
    let (status, _) = c
        .call(
            "hello-world",
            "POST",
            "/register",
            Some(registration("hello-world.1")),
        )
        .await;
    assert_eq!(status, 200);
    c.refused(
        "hello",
        "service/hello",
        "POST",
        "/heartbeat",
        Some(json!({"worker_id": "hello-world.1"})),
        "hello-world.1",
    )
    .await;
    c.refused(
        "hello",
        "service/hello",
        "DELETE",
        "/deregister/hello-world.1",
        None,
        "hello-world.1",
    )
    .await;
    c.refused(
        "hello-world",
        "service/hello-world",
        "DELETE",
        "/deregister/hello.1",
        None,
        "hello.1",
    )
    .await;
    // A per-id worker certificate still acts for exactly its id.
    c.refused(
        "w1",
        "worker/w1",
        "POST",
        "/register",
        Some(registration("w1.1")),
        "w1.1",
    )
    .await;
    let (status, _) = c.call("hello", "DELETE", "/deregister/hello.1", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&c.workers().await),
        vec!["hello", "hello-world.1", "hello.a1b2"]
    );
}
