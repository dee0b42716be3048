//! The `crank` CLI as a client of a running fleet: `workers`, `capabilities`,
//! `route` and `greet`, through the client library
//! ([`crank_client`]) with the client certificate. This file words
//! the answers and the errors; the library makes the calls.

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use awc::http::StatusCode;
use chrono::{DateTime, Utc};
use crank_client::{ClientError, Constraints, CrankClient, Request, RoutedWorker};
use crank_net::tls::TlsFiles;
use crank_proto::domain::field::is_unprintable;
use crank_proto::wire::{CapabilityList, ErrorBody, RouteResponse, WorkerList};
use crank_worker::hello::{GreetOptions, GreetRequest, GreetResponse};
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

/// The CLI's client: the library's [`CrankClient`] and how to print.
pub struct Client {
    pub fleet: CrankClient,
    pub json: bool,
}

impl Client {
    pub fn new(flags: &ClientFlags) -> Result<Self> {
        let files = TlsFiles::in_dir(&flags.cert_dir, &flags.cert);
        let fleet = CrankClient::new(&flags.controller_url, files)
            .map_err(flat)
            .with_context(|| {
                format!(
                    "no usable certificate {:?} (make certificates with `crank certs init --dir {}`)",
                    flags.cert,
                    flags.cert_dir.display()
                )
            })?;
        Ok(Client {
            fleet,
            json: flags.json,
        })
    }

    /// `GET` on the controller; the answer as `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.fleet
            .get(path)
            .await
            .map_err(|e| self.controller_error(e))
    }

    /// `POST` of `body` on the controller; the answer as `T`.
    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<T> {
        self.fleet
            .post(path, body)
            .await
            .map_err(|e| self.controller_error(e))
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
        let url = format!("{}{path}", self.fleet.controller_url());
        let mut request = self.fleet.controller_http().get(&url);
        if let Some(id) = last_event_id {
            request = request.insert_header(("last-event-id", id));
        }
        let mut response = request.send().await.map_err(flat).with_context(|| {
            format!(
                "cannot reach {url} (is `crank controller` running at {}?)",
                self.fleet.controller_url()
            )
        })?;
        if !response.status().is_success() {
            let body = response.body().await.unwrap_or_default();
            let refused = refusal(response.status(), &body);
            if response.status() == StatusCode::NOT_FOUND {
                return Err(anyhow::Error::new(NoSuchStream).context(refused));
            }
            return Err(refused);
        }
        Ok(response)
    }

    /// A failed call to the controller as one line, with a hint when it is
    /// not there at all.
    fn controller_error(&self, error: ClientError) -> anyhow::Error {
        match error {
            ClientError::Unreachable { .. } => anyhow!(
                "{error} (is `crank controller` running at {}?)",
                self.fleet.controller_url()
            ),
            other => flat(other),
        }
    }
}

/// The controller has no such stream (404): an original controller, which
/// has no `/watch`.
#[derive(Debug, thiserror::Error)]
#[error("the controller has no such stream")]
pub struct NoSuchStream;

/// An error answer as one line: its `detail` if it is crank's [`ErrorBody`].
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

/// `text` with every character that [`is_unprintable`] written as its escape
/// (`\u{1b}`): what the controller sends is shown, never obeyed, so a name or
/// URL cannot clear the screen, move the cursor, set the window title or
/// reverse the text around it. The controller refuses such names, but URLs,
/// records of older controllers and other servers can still carry them.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unprintable(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// Left-aligned columns, two spaces apart, every cell [`printable`].
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| printable(cell)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
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
    let constraints = Constraints {
        version: version.map(str::to_owned),
        ..Constraints::any()
    };
    let routed = client
        .fleet
        .route(verb, capability, &constraints)
        .await
        .map_err(|e| client.controller_error(e))?;
    let RoutedWorker {
        worker_id,
        worker_url,
        capability,
        version,
    } = routed;
    Ok(RouteResponse {
        worker_id,
        worker_url,
        capability,
        version,
    })
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

/// Routes `invoke hello.greet` and has the chosen worker greet, through
/// [`CrankClient::call`]: the worker must prove it is the one routed to (a
/// worker may register any URL), and another provider is tried once if it
/// fails.
pub async fn greet(client: &Client, message: &str, options: GreetOptions) -> Result<String> {
    let request = Request::post(
        "/greet",
        &GreetRequest {
            message: message.to_owned(),
            options,
        },
    )
    .map_err(flat)?;
    let reply = client
        .fleet
        .call("invoke", "hello.greet", &Constraints::any(), &request)
        .await
        .map_err(|e| match e {
            ClientError::Worker { .. } => flat(e),
            other => client.controller_error(other),
        })?;
    let worker_id = reply.worker.worker_id.clone();
    let worker_url = reply.worker.worker_url.trim_end_matches('/').to_owned();
    let response: GreetResponse = reply
        .json()
        .await
        .map_err(flat)
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

    #[test]
    fn tables_escape_what_a_terminal_would_obey() {
        let hostile = [
            "x\u{1b}[2J",                      // ESC: clear the screen
            "https://w1\u{202e}lmth.exe:8500", // right-to-left override
            "bell\u{7}\u{0}\u{7f}",            // BEL, NUL, DEL
            "zero\u{200b}width",               // zero-width space
            "line\u{2028}sep",                 // line separator
        ];
        let out = table(
            &["NAME", "N"],
            &hostile
                .iter()
                .map(|h| vec![h.to_string(), "1".into()])
                .collect::<Vec<_>>(),
        );
        let lines: Vec<&str> = out.split('\n').collect();
        for line in &lines {
            assert!(!line.chars().any(is_unprintable), "{line:?}");
        }
        assert_eq!(lines.len(), 1 + hostile.len(), "{out}");
        // The widest cell, escapes counted: 31 characters, then two spaces.
        assert_eq!(lines[1], format!("{:<33}1", "x\\u{1b}[2J"));
        assert!(
            lines[2].starts_with("https://w1\\u{202e}lmth.exe:8500  1"),
            "{out}"
        );
        assert!(lines[3].starts_with("bell\\u{7}\\u{0}\\u{7f}"), "{out}");
        assert!(lines[4].starts_with("zero\\u{200b}width "), "{out}");
        assert!(lines[5].starts_with("line\\u{2028}sep "), "{out}");
        // The escapes are what the columns are aligned on.
        let column = lines[0].rfind('N').unwrap();
        for line in &lines[1..] {
            assert_eq!(line.rfind('1'), Some(column), "{out}");
        }
        // Printable text, accents and all, is left as it is.
        assert_eq!(printable("héllo wörld ✓"), "héllo wörld ✓");
    }
}
