//! The `crank` CLI as a client of a running fleet: `workers`, `capabilities`,
//! `route` and `greet`, over mTLS with the client certificate.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crank_services::tls::{client_config, client_config_for, ExpectedPeer, TlsFiles};
use serde_json::{json, Value};

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
    pub fn new(flags: &ClientFlags) -> Result<Self, String> {
        let files = TlsFiles::in_dir(&flags.cert_dir, &flags.cert);
        let config = client_config(&files).map_err(|e| {
            format!(
                "{e} (make certificates with `crank certs init --dir {}`)",
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
    pub fn for_worker(&self, worker_id: &str) -> Result<Client, String> {
        let config = client_config_for(&self.files, ExpectedPeer::Worker(worker_id.to_owned()))
            .map_err(|e| e.to_string())?;
        Ok(Client {
            http: crank_services::link::mtls_client(Arc::new(config), Duration::from_secs(5)),
            files: self.files.clone(),
            controller_url: self.controller_url.clone(),
            json: self.json,
        })
    }

    /// One request to `url`; the status and JSON body. Transport failures name
    /// the URL and what to check.
    pub async fn call(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let request = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        };
        let sent = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        };
        let mut response = sent.map_err(|e| format!("cannot reach {url}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .body()
            .limit(16 * 1024 * 1024)
            .await
            .map_err(|e| format!("reading the answer of {url}: {e}"))?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|_| format!("{url} answered HTTP {status} with a body that is not JSON"))?;
        Ok((status, value))
    }

    /// A call to the controller that must succeed; an error answer becomes its detail.
    pub async fn controller(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let url = format!("{}{path}", self.controller_url);
        let (status, value) = self.call(method, &url, body).await.map_err(|e| {
            format!(
                "{e} (is `crank controller` running at {}?)",
                self.controller_url
            )
        })?;
        if (200..300).contains(&status) {
            Ok(value)
        } else {
            Err(error_line(status, &value))
        }
    }
}

/// One line for an error answer: its detail if it has one.
fn error_line(status: u16, body: &Value) -> String {
    match body["detail"].as_str() {
        Some(detail) => format!("{detail} (HTTP {status})"),
        None => format!("HTTP {status}: {body}"),
    }
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
pub fn age(stamp: &str, now: DateTime<Utc>) -> String {
    let Ok(then) = DateTime::parse_from_rfc3339(stamp) else {
        return stamp.to_owned();
    };
    let seconds = (now - then.with_timezone(&Utc)).num_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s => format!("{}h ago", s / 3600),
    }
}

pub async fn workers(client: &Client) -> Result<String, String> {
    let body = client.controller("GET", "/workers", None).await?;
    if client.json {
        return Ok(body.to_string());
    }
    let now = Utc::now();
    let rows: Vec<Vec<String>> = body["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            vec![
                w["worker_id"].as_str().unwrap_or("?").to_owned(),
                w["worker_url"].as_str().unwrap_or("?").to_owned(),
                w["status"].as_str().unwrap_or("?").to_owned(),
                age(w["last_heartbeat"].as_str().unwrap_or(""), now),
                w["capabilities"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
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

pub async fn capabilities(client: &Client) -> Result<String, String> {
    let body = client.controller("GET", "/capabilities", None).await?;
    if client.json {
        return Ok(body.to_string());
    }
    let rows: Vec<Vec<String>> = body["capabilities"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, counts)| {
            vec![
                name.clone(),
                counts["workers"].to_string(),
                counts["healthy_workers"].to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return Ok("no capabilities registered".into());
    }
    Ok(table(&["CAPABILITY", "WORKERS", "HEALTHY"], &rows))
}

pub async fn route(
    client: &Client,
    verb: &str,
    capability: &str,
    version: Option<&str>,
) -> Result<Value, String> {
    let mut request = json!({"verb": verb, "capability": capability});
    if let Some(version) = version {
        request["version"] = json!(version);
    }
    client.controller("POST", "/route", Some(&request)).await
}

pub fn describe_route(route: &Value) -> String {
    format!(
        "{}  {}  ({} {})",
        route["worker_id"].as_str().unwrap_or("?"),
        route["worker_url"].as_str().unwrap_or("?"),
        route["capability"].as_str().unwrap_or("?"),
        route["version"].as_str().unwrap_or("")
    )
}

/// Routes `invoke hello.greet`, then asks the chosen worker to greet.
pub async fn greet(client: &Client, message: &str, options: Value) -> Result<String, String> {
    let chosen = route(client, "invoke", "hello.greet", None).await?;
    let worker_id = chosen["worker_id"].as_str().unwrap_or("?").to_owned();
    let worker_url = chosen["worker_url"]
        .as_str()
        .unwrap_or("")
        .trim_end_matches('/')
        .to_owned();
    let url = format!("{worker_url}/greet");
    let (status, answer) = client
        .for_worker(&worker_id)?
        .call(
            "POST",
            &url,
            Some(&json!({"message": message, "options": options})),
        )
        .await
        .map_err(|e| format!("worker {worker_id}: {e}"))?;
    if status != 200 {
        return Err(format!(
            "worker {worker_id}: {}",
            error_line(status, &answer)
        ));
    }
    if client.json {
        return Ok(
            json!({"worker_id": worker_id, "worker_url": worker_url, "response": answer})
                .to_string(),
        );
    }
    Ok(format!(
        "{}\n(answered by {worker_id} at {worker_url})",
        answer["greeting"].as_str().unwrap_or("?")
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
        assert_eq!(age("2026-01-01T11:59:56Z", now), "4s ago");
        assert_eq!(age("2026-01-01T11:57:00Z", now), "3m ago");
        assert_eq!(age("2026-01-01T09:00:00Z", now), "3h ago");
        assert_eq!(age("garbage", now), "garbage");
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
