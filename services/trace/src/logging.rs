//! Log lines as `env_logger` writes them, with ` trace_id=…` at the end of a
//! line written inside a traced request, so a log search finds the request a
//! trace shows.

use std::io::Write;

use crate::spans;

/// Logs to stderr by `RUST_LOG` (default `info`), timestamps in
/// milliseconds, trace ids on the lines of traced requests. A second call
/// (a test, an embedding program) changes nothing.
pub fn init() {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let timestamp = buf.timestamp_millis();
            let level = record.level();
            let style = buf.default_level_style(level);
            write!(
                buf,
                "[{timestamp} {style}{level:<5}{style:#} {}] {}",
                record.target(),
                record.args()
            )?;
            match spans::current_trace_id() {
                Some(trace_id) => writeln!(buf, " trace_id={trace_id}"),
                None => writeln!(buf),
            }
        })
        .try_init();
}
