//! [`Worker::main`]: a worker as a whole program, with `crank worker`'s
//! command line (each flag, variable and file key of
//! [`WorkerConfig`]'s settings), logging, and one line and a non-zero exit
//! code on failure.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Command;

use crate::config::WorkerConfig;
use crate::Worker;
use crank_net::config::{cli, Flags, Layered, ProcessEnv};

impl Worker {
    /// Runs this worker as the program: reads its configuration from the
    /// command line, the environment and `--config`'s file (see
    /// [`Worker::main_from`]), logs through `env_logger` (`RUST_LOG`, default
    /// `info`), and serves until SIGTERM or SIGINT.
    pub fn main(self) -> ExitCode {
        self.main_from(std::env::args_os())
    }

    /// [`Worker::main`] with the command line `args` (the program's name
    /// first). The flags are `crank worker`'s, with one difference: the worker
    /// id, and so the certificate name, defaults to the worker's name.
    pub fn main_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut program = Flags::default();
        program.default_to(WorkerConfig::setting("worker_id"), self.name());
        let command = cli::command(
            Command::new(self.name().to_owned()).about(format!(
                "The {} worker: registers its capabilities with a crank controller and serves them over mutual TLS.",
                self.name()
            )),
            WorkerConfig::SETTINGS,
            &program,
        );
        let matches = match command.try_get_matches_from(args) {
            Ok(matches) => matches,
            Err(error) => {
                // --help and --version are not failures.
                let _ = error.print();
                return ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2));
            }
        };
        crank_trace::logging::init();
        let name = self.name().to_owned();
        let flags = cli::flags(&matches, WorkerConfig::SETTINGS, program);
        let ran = WorkerConfig::resolve(&ProcessEnv, &flags)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                actix_rt::System::new()
                    .block_on(self.run(config))
                    .map_err(|e| e.to_string())
            });
        match ran {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("{name}: {error}");
                ExitCode::FAILURE
            }
        }
    }
}
