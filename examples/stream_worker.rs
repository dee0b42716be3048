//! The streaming worker, a port of the original system's streaming service:
//! `stream:text_events` (`POST /stream/text` streams a text back word by word
//! as Server-Sent Events) and `stream:sse_events` (`GET /events`, a periodic
//! event stream), two capabilities in one worker on crank's worker library.
//! Its code is [`crank_worker::stream`]; this example runs it, as
//! `crank stream-worker` does, with `crank worker`'s flags:
//!
//! ```sh
//! crank certs issue --role service --name stream
//! cargo run --example stream_worker -- --worker-id stream.1 --cert stream \
//!     --port 8600 --controller-url https://localhost:9000
//! ```

fn main() -> std::process::ExitCode {
    crank_worker::stream::worker().main()
}
