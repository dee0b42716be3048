//! `crank`: run a controller or a worker, make certificates, and talk to a
//! running fleet.

/// mimalloc rather than glibc's malloc: a registry is a great many small,
/// long-lived records allocated among short-lived request buffers, and glibc
/// left a controller with 100,000 workers at about twice its live heap
/// (`crank bench scale`: 158 MB resident with glibc).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bench;
mod call;
mod client;
mod error;
mod up;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use crank_controller::config::ControllerConfig;
use crank_net::config::{ProcessEnv, SettingFlags};
use crank_net::identity::Role;
use crank_worker::config::WorkerConfig;

#[derive(Parser)]
#[command(
    name = "crank",
    version,
    about = "An actor-based runtime for a fleet of workers behind a controller, over mutual TLS."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller: the registry of workers and the router.
    Controller(SettingFlags<ControllerConfig>),
    /// Run the hello-world worker (capability invoke:hello.greet@1.0.0).
    Worker(SettingFlags<WorkerConfig>),
    /// Run the streaming worker (stream:text_events, stream:sse_events); same flags as `worker`.
    #[command(disable_help_flag = true)]
    StreamWorker {
        /// `crank worker`'s flags (`crank stream-worker --help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Make a dev CA and certificates.
    Certs {
        #[command(subcommand)]
        action: CertsCommand,
    },
    /// Check or repair a controller's durable store (--store file).
    Store {
        #[command(subcommand)]
        action: StoreCommand,
    },
    /// Start a controller and N hello-world workers, live (dev certificates made if missing).
    Up(up::UpFlags),
    /// List the registered workers.
    Workers(client::ClientFlags),
    /// List the capabilities and how many workers serve each.
    Capabilities(client::ClientFlags),
    /// Ask the controller which worker serves a capability.
    Route {
        /// The verb, e.g. invoke.
        verb: String,
        /// The capability name, e.g. hello.greet.
        capability: String,
        /// A semver requirement, e.g. ^1.
        #[arg(long)]
        version: Option<String>,
        #[command(flatten)]
        client: client::ClientFlags,
    },
    /// Call a capability through the client library: the answer and who gave
    /// it, or with --count a latency summary.
    Call(call::CallFlags),
    /// Mark a worker draining (POST /drain/{id}): no new routes go to it.
    /// As the worker itself, its service, or an admin (--cert admin).
    Drain {
        worker_id: String,
        #[command(flatten)]
        client: client::ClientFlags,
    },
    /// Print the registry's changes as they happen (GET /watch), one line each.
    Watch(client::ClientFlags),
    /// Load a controller over mTLS and print throughput and latency per scenario.
    Bench(bench::BenchFlags),
    /// The bare mTLS endpoint `crank bench baseline` loads (started by the bench).
    #[command(hide = true)]
    BenchBaseline {
        #[arg(long)]
        port: u16,
        #[arg(long, default_value = "certs")]
        cert_dir: PathBuf,
    },
    /// Route invoke:hello.greet and have the chosen worker greet MESSAGE.
    Greet {
        message: String,
        #[arg(long)]
        uppercase: bool,
        #[arg(long)]
        reverse: bool,
        /// Number of '!' (0-10).
        #[arg(long, default_value_t = 1)]
        exclamations: u8,
        #[command(flatten)]
        client: client::ClientFlags,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Read the data directory as a controller would start on it, and say
    /// what it holds and whether it is whole.
    Check {
        #[arg(long, default_value = "state/controller")]
        data_dir: PathBuf,
    },
    /// Keep the records before the first damaged one, drop the rest.
    Repair {
        #[arg(long, default_value = "state/controller")]
        data_dir: PathBuf,
        /// Required: the changes after the damage are lost.
        #[arg(long)]
        discard_after_corruption: bool,
    },
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Create a CA and the controller, hello-world-1, client and admin certificates.
    Init {
        /// Where to write them.
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Replace an existing set (everything signed by the old CA stops working).
        #[arg(long)]
        force: bool,
    },
    /// Issue one more certificate from the CA in --dir, as NAME.crt and NAME.key.
    Issue {
        /// worker, service, client, admin or controller.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The identity's name; for a worker, its worker id; for a service, the
        /// name its replicas' ids start with (NAME, NAME.1, NAME.2…; no '.').
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
        /// Replace an existing NAME.crt/NAME.key.
        #[arg(long)]
        force: bool,
        /// A host name the certificate also serves on, besides localhost
        /// (repeatable): e.g. the host a worker's URL names.
        #[arg(long = "dns", value_name = "NAME")]
        dns: Vec<String>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("{text:?} is not one of controller, worker, service, client, admin"))
}

fn init_logging() {
    crank_trace::logging::init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        // A worker on the worker library is a whole program: its own command
        // line (crank worker's flags, its own defaults), logging and exit code.
        Command::StreamWorker { args } => {
            let program = std::iter::once("crank stream-worker".into()).chain(args);
            return crank_worker::stream::worker().main_from(program);
        }
        Command::Controller(flags) => {
            init_logging();
            flags
                .resolve(&ProcessEnv)
                .map_err(error::flat)
                .and_then(|config| {
                    actix_rt::System::new()
                        .block_on(crank_controller::process::run_controller(config))
                        .map_err(error::flat)
                })
                .context("crank controller")
        }
        Command::Worker(flags) => {
            init_logging();
            flags
                .resolve(&ProcessEnv)
                .map_err(error::flat)
                .and_then(|config| {
                    actix_rt::System::new()
                        .block_on(crank_worker::hello::worker().run(config))
                        .map_err(error::flat)
                })
                .context("crank worker")
        }
        Command::Certs { action } => certs(action).context("crank certs"),
        Command::Store { action } => store(action).context("crank store"),
        Command::Up(flags) => {
            init_logging();
            actix_rt::System::new()
                .block_on(up::up(flags))
                .context("crank up")
        }
        Command::Bench(flags) => bench::bench(flags).context("crank bench"),
        Command::BenchBaseline { port, cert_dir } => {
            init_logging();
            actix_rt::System::new()
                .block_on(bench::serve_baseline(port, cert_dir))
                .context("crank bench-baseline")
        }
        Command::Call(flags) => actix_rt::System::new()
            .block_on(call::call(flags))
            .map(|text| println!("{text}"))
            .context("crank call"),
        Command::Watch(flags) => client::Client::new(&flags)
            .and_then(|client| actix_rt::System::new().block_on(watch::watch(client)))
            .context("crank watch"),
        Command::Workers(flags) => client_command("workers", &flags, |c| {
            Box::pin(async move { client::workers(&c).await })
        }),
        Command::Capabilities(flags) => client_command("capabilities", &flags, |c| {
            Box::pin(async move { client::capabilities(&c).await })
        }),
        Command::Route {
            verb,
            capability,
            version,
            client: flags,
        } => client_command("route", &flags, |c| {
            Box::pin(async move {
                let route = client::route(&c, &verb, &capability, version.as_deref()).await?;
                if c.json {
                    client::json_line(&route)
                } else {
                    Ok(client::describe_route(&route))
                }
            })
        }),
        Command::Drain {
            worker_id,
            client: flags,
        } => client_command("drain", &flags, |c| {
            Box::pin(async move {
                let path = format!("/drain/{worker_id}");
                let answer: crank_proto::wire::DrainResponse =
                    c.post(&path, &serde_json::json!({})).await?;
                if c.json {
                    client::json_line(&answer)
                } else {
                    Ok(format!(
                        "worker {worker_id} is draining: no new routes go to it"
                    ))
                }
            })
        }),
        Command::Greet {
            message,
            uppercase,
            reverse,
            exclamations,
            client: flags,
        } => client_command("greet", &flags, |c| {
            Box::pin(async move {
                let options = crank_worker::hello::GreetOptions {
                    uppercase,
                    reverse,
                    exclamations: exclamations.into(),
                };
                client::greet(&c, &message, options).await
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}`: `crank <cmd>: <what failed>: <cause>`, the whole chain on one line.
            eprintln!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

type Output = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<String>>>>;

/// Runs one client command and prints its output.
fn client_command(
    name: &str,
    flags: &client::ClientFlags,
    run: impl FnOnce(client::Client) -> Output,
) -> anyhow::Result<()> {
    let text = client::Client::new(flags)
        .and_then(|client| actix_rt::System::new().block_on(run(client)))
        .with_context(|| format!("crank {name}"))?;
    println!("{text}");
    Ok(())
}

fn store(action: StoreCommand) -> anyhow::Result<()> {
    use crank_controller::file_store;
    match action {
        StoreCommand::Check { data_dir } => {
            let loaded = file_store::read(&data_dir)?;
            let tail = match loaded.dropped_torn_record_at {
                Some(offset) => format!("; its last change (at byte {offset}) was cut short by a crash and is dropped at the next start"),
                None => String::new(),
            };
            println!(
                "{}: {} workers, readable{tail}",
                data_dir.display(),
                loaded.workers.len()
            );
        }
        StoreCommand::Repair {
            data_dir,
            discard_after_corruption,
        } => {
            if !discard_after_corruption {
                anyhow::bail!("repair drops every change after the first damaged one: pass --discard-after-corruption to do it");
            }
            let cut = file_store::repair(&data_dir)?;
            println!(
                "{}: dropped {cut} bytes after the first damaged record",
                data_dir.display()
            );
        }
    }
    Ok(())
}

fn certs(action: CertsCommand) -> anyhow::Result<()> {
    let written = match action {
        CertsCommand::Init { dir, force } => crank_net::certs::init(&dir, force),
        CertsCommand::Issue {
            role,
            name,
            dir,
            force,
            dns,
        } => crank_net::certs::issue_with_dns(&dir, role, &name, &dns, force),
    }
    .map_err(error::flat)?;
    for path in &written {
        println!("wrote {}", path.display());
    }
    if let Some(bundle) = written
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "p12"))
    {
        let dir = bundle.parent().unwrap_or(std::path::Path::new("."));
        println!("{}", crank_net::bundle::import_hint(dir, bundle));
    }
    Ok(())
}
