//! `crank`: run a controller or a worker, make certificates, and talk to a
//! running fleet.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use crank_services::config::{
    ControllerConfig, ControllerFlags, ProcessEnv, WorkerConfig, WorkerFlags,
};
use crank_services::identity::Role;

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
    Controller(ControllerFlags),
    /// Run the hello-world worker (capability invoke:hello.greet@1.0.0).
    Worker(WorkerFlags),
    /// Make a dev CA and certificates.
    Certs {
        #[command(subcommand)]
        action: CertsCommand,
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
        /// worker, client, admin or controller.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The identity's name; for a worker, its worker id.
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "certs")]
        dir: PathBuf,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("{text:?} is not one of controller, worker, client, admin"))
}

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format_timestamp_millis()
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Controller(flags) => {
            init_logging();
            ControllerConfig::resolve(&ProcessEnv, flags)
                .map_err(|e| e.to_string())
                .and_then(|config| {
                    actix_rt::System::new()
                        .block_on(crank_services::process::run_controller(config))
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| format!("crank controller: {e}"))
        }
        Command::Worker(flags) => {
            init_logging();
            WorkerConfig::resolve(&ProcessEnv, flags)
                .map_err(|e| e.to_string())
                .and_then(|config| {
                    actix_rt::System::new()
                        .block_on(crank_services::process::run_worker(config))
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| format!("crank worker: {e}"))
        }
        Command::Certs { action } => certs(action).map_err(|e| format!("crank certs: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn certs(action: CertsCommand) -> Result<(), String> {
    let written = match action {
        CertsCommand::Init { dir, force } => crank_services::certs::init(&dir, force),
        CertsCommand::Issue { role, name, dir } => crank_services::certs::issue(&dir, role, &name),
    }
    .map_err(|e| e.to_string())?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}
