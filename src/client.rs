//! The `crank` CLI as a client of a running fleet: `workers`, `capabilities`,
//! `route` and `greet`, over mTLS with the client certificate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use awc::http::StatusCode;
use chrono::{DateTime, Utc};
use crank_actors::wire::{CapabilityList, ErrorBody, RouteRequest, RouteResponse, WorkerList};
use crank_services::hello::{GreetOptions, GreetRequest, GreetResponse};
use crank_services::tls::{client_config, client_config_for, ExpectedPeer, TlsFiles};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::flat;

/// How to reach and authenticate to the controller.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientFlags {
    /// The controller's URL.
    #[arg(long, env = "CONTROLLER_URL", default_value = "https://localhost:9000")]
    pub controller_url: String,
    /// Directory of ca.crt and the client certificate.
    #[arg(long, env = "CERT_DIR", default_value = "certs")]
    pub cert_dir: PathBuf,
    /// Base name of the client certificate and key in the cert dir.
    #[arg(long, default_value = "client")]
    pub cert: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// An mTLS client bound to one controller.
pub struct Client {
    http: awc::Client,
    files: TlsFiles,
    pub controller_url: String,
    pub json: bool,
}

impl Client {
    pub fn new(flags: &ClientFlags) -> Result<Self> {
        let files = TlsFiles::in_dir(&flags.cert_dir, &flags.cert);
        let config = client_config(&files).map_err(flat).with_context(|| {
            format!(
                "no usable certificate {:?} (make certificates with `crank certs init --dir {}`)",
                flags.cert,
                flags.cert_dir.display()
            )
        })?;
        Ok(Client {
            http: crank_services::link::mtls_client(Arc::new(config), Duration::from_secs(5)),
            files,
            controller_url: flags.controller_url.trim_end_matches('/').to_owned(),
            json: flags.json,
        })
    }

    /// The same certificate, for calling the worker `worker_id`: the server
    /// must present that worker's certificate, not the controller's.
    pub fn for_worker(&self, worker_id: &str) -> Result<Client> {
        let config = client_config_for(&self.files, ExpectedPeer::Worker(worker_id.to_owned()))
            .map_err(flat)?;
        Ok(Client {
            http: crank_services::link::mtls_client(Arc::new(config), Duration::from_secs(5)),
            files: self.files.clone(),
            controller_url: self.controller_url.clone(),
            json: self.json,
        })
    }

    /// `GET` on the controller; the answer as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.exchange(
            &self.controller_path(path),
            None::<&()>,
            &self.controller_hint(),
        )
        .await
    }

    /// `POST` of `body` to the controller; the answer as `T`.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.exchange(
            &self.controller_path(path),
            Some(body),
            &self.controller_hint(),
        )
        .await
    }

    /// `GET` on the controller for a stream (`/watch`), resuming after
    /// `last_event_id` if given: the answer, once its head is in, with no
    /// deadline on its body.
    pub async fn stream(
        &self,
        path: &str,
        last_event_id: Option<&str>,
    ) -> Result<
        awc::ClientResponse<
            impl futures_util::Stream<Item = Result<actix_web::web::Bytes, awc::error::PayloadError>>,
        >,
    > {
        let url = self.controller_path(path);
        let mut request = self.http.get(&url);
        if let Some(id) = last_event_id {
            request = request.insert_header(("last-event-id", id));
        }
        let mut response = request
            .send()
            .await
            .map_err(flat)
            .with_context(|| format!("cannot reach {url}{}", self.controller_hint()))?;
        if !response.status().is_success() {
            let body = response.body().await.unwrap_or_default();
            return Err(refusal(response.status(), &body));
        }
        Ok(response)
    }

    fn controller_path(&self, path: &str) -> String {
        format!("{}{path}", self.controller_url)
    }

    fn controller_hint(&self) -> String {
        format!(
            " (is `crank controller` running at {}?)",
            self.controller_url
        )
    }

    /// One exchange with `url`: a `POST` of `body` as JSON, or a `GET` without
    /// one. A 2xx answer is read as `T`; any other becomes the error it says.
    /// `hint` follows the URL when it cannot be reached.
    async fn exchange<T: DeserializeOwned>(
        &self,
        url: &str,
        body: Option<&impl Serialize>,
        hint: &str,
    ) -> Result<T> {
        let sent = match body {
            Some(body) => self.http.post(url).send_json(body).await,
            None => self.http.get(url).send().await,
        };
        let mut response = sent
            .map_err(flat)
            .with_context(|| format!("cannot reach {url}{hint}"))?;
        let status = response.status();
        let bytes = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(flat)
            .with_context(|| format!("reading the answer of {url}"))?;
        if !status.is_success() {
            return Err(refusal(status, &bytes));
        }
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{url} answered HTTP {} with a body crank cannot read",
                status.as_u16()
            )
        })
    }
}

/// An error answer as one line: its [`ErrorBody::detail`], or its text.
fn refusal(status: StatusCode, body: &[u8]) -> anyhow::Error {
    let status = status.as_u16();
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) => anyhow!("{} (HTTP {status})", error.detail),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let words: Vec<&str> = text.split_whitespace().collect();
            anyhow!("HTTP {status}: {}", words.join(" "))
        }
    }
}

/// `value` as `--json` prints it: compact, with keys sorted (by way of
/// [`serde_json::Value`]), as `crank` has always printed answers.
pub fn json_line(value: &impl Serialize) -> Result<String> {
    Ok(serde_json::to_value(value)?.to_string())
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.iter().map(|row| line(row.clone())));
    out.join("\n")
}

/// "4s ago", "3m ago", "2h ago".
pub fn age(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - then).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s => format!("{}h ago", s / 3600),
    }
}

/// `crank workers`: the [`WorkerList`] as a table.
pub async fn workers(client: &Client) -> Result<String> {
    let list: WorkerList = client.get("/workers").await?;
    if client.json {
        return json_line(&list);
    }
    let now = Utc::now();
    let rows: Vec<Vec<String>> = list
        .workers
        .iter()
        .map(|w| {
            vec![
                w.worker_id.clone(),
                w.worker_url.clone(),
                w.status.as_str().to_owned(),
                age(w.last_heartbeat, now),
                w.capabilities.join(","),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok("no workers registered".into());
    }
    Ok(table(
        &["WORKER", "URL", "STATUS", "LAST HEARTBEAT", "CAPABILITIES"],
        &rows,
    ))
}

/// `crank capabilities`: the [`CapabilityList`] as a table.
pub async fn capabilities(client: &Client) -> Result<String> {
    let list: CapabilityList = client.get("/capabilities").await?;
    if client.json {
        return json_line(&list);
    }
    let rows: Vec<Vec<String>> = list
        .capabilities
        .iter()
        .map(|(name, counts)| {
            vec![
                name.clone(),
                counts.workers.to_string(),
                counts.healthy_workers.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok("no capabilities registered".into());
    }
    Ok(table(&["CAPABILITY", "WORKERS", "HEALTHY"], &rows))
}

/// Asks the controller which worker serves `verb` `capability` (`version`, a
/// semver requirement, if given).
pub async fn route(
    client: &Client,
    verb: &str,
    capability: &str,
    version: Option<&str>,
) -> Result<RouteResponse> {
    let request = RouteRequest {
        version: version.map(str::to_owned),
        ..RouteRequest::new(verb, capability)
    };
    client.post("/route", &request).await
}

pub fn describe_route(route: &RouteResponse) -> String {
    format!(
        "{}  {}  ({} {})",
        route.worker_id,
        route.worker_url,
        route.capability,
        route.version.as_deref().unwrap_or("")
    )
}

/// What `crank greet --json` prints: the greeting and who gave it.
#[derive(Serialize)]
struct Greeted {
    worker_id: String,
    worker_url: String,
    response: GreetResponse,
}

/// Routes `invoke hello.greet`, then asks the chosen worker to greet.
pub async fn greet(client: &Client, message: &str, options: GreetOptions) -> Result<String> {
    let chosen = route(client, "invoke", "hello.greet", None)
        .await
        .context("routing invoke hello.greet")?;
    let worker_id = chosen.worker_id;
    let worker_url = chosen.worker_url.trim_end_matches('/').to_owned();
    let request = GreetRequest {
        message: message.to_owned(),
        options,
    };
    // The routed worker must prove it is that worker, not merely one of the
    // fleet: a worker may register any URL.
    let response: GreetResponse = client
        .for_worker(&worker_id)?
        .exchange(&format!("{worker_url}/greet"), Some(&request), "")
        .await
        .with_context(|| format!("worker {worker_id}"))?;
    if client.json {
        return json_line(&Greeted {
            worker_id,
            worker_url,
            response,
        });
    }
    Ok(format!(
        "{}\n(answered by {worker_id} at {worker_url})",
        response.greeting
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |stamp: &str| {
            DateTime::parse_from_rfc3339(stamp)
                .unwrap()
                .with_timezone(&Utc)
        };
        assert_eq!(age(at("2026-01-01T11:59:56Z"), now), "4s ago");
        assert_eq!(age(at("2026-01-01T11:57:00Z"), now), "3m ago");
        assert_eq!(age(at("2026-01-01T09:00:00Z"), now), "3h ago");
    }

    #[test]
    fn tables_align_columns() {
        let out = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "yy".into()],
            ],
        );
        assert_eq!(out, "A     BB\nlong  x\ns     yy");
    }
}
