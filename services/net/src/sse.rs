//! Server-Sent Events, both ways, for every crank process: [`frame`] writes
//! one message as the controller's watch stream and the streaming worker send
//! it, and [`SseParser`] reads a stream of them back (the CLI, the client
//! library, the bench and the tests; browsers have `EventSource`).
//!
//! The reader follows the HTML standard's rules: lines end with `\n` or
//! `\r\n`; a blank line ends a message; `field: value` (one space after the
//! colon dropped); `:` starts a comment; `data:` lines join with `\n`; a
//! message without data is not dispatched; unknown fields (`retry:`) are
//! ignored.

/// One message as sent: `id:` (if any), `event:`, `data:`, a blank line.
pub fn frame(out: &mut String, event: &str, id: Option<u64>, data: &str) {
    use std::fmt::Write;
    if let Some(id) = id {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "id: {id}");
    }
    let _ = write!(out, "event: {event}\ndata: {data}\n\n");
}

/// One message of the default type (`message`): `data:` and a blank line.
pub fn data_frame(data: &str) -> String {
    format!("data: {data}\n\n")
}

/// One message as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseMessage {
    /// `message` when the sender named none.
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Reads messages out of a stream's chunks, however the chunks split them.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    current: SseMessage,
    has_data: bool,
}

impl SseParser {
    /// Feeds `chunk`; returns the messages it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseMessage> {
        let mut done = Vec::new();
        for &byte in chunk {
            if byte != b'\n' {
                self.line.push(byte);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = String::from_utf8_lossy(&line);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if line.is_empty() {
                let mut message = std::mem::take(&mut self.current);
                if std::mem::take(&mut self.has_data) {
                    if message.event.is_empty() {
                        message.event = "message".into();
                    }
                    done.push(message);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "event" => self.current.event = value,
                "id" => self.current.id = Some(value),
                "data" => {
                    if self.has_data {
                        self.current.data.push('\n');
                    }
                    self.current.data.push_str(&value);
                    self.has_data = true;
                }
                _ => {}
            }
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_back_whatever_the_chunks() {
        let mut text = String::from("retry: 2000\n\n: keep-alive\n\n");
        frame(&mut text, "registered", Some(7), r#"{"id":7}"#);
        frame(&mut text, "resync", None, r#"{"missed":3}"#);
        for split in 0..text.len() {
            let mut parser = SseParser::default();
            let mut messages = parser.feed(&text.as_bytes()[..split]);
            messages.extend(parser.feed(&text.as_bytes()[split..]));
            assert_eq!(
                messages,
                [
                    SseMessage {
                        event: "registered".into(),
                        id: Some("7".into()),
                        data: r#"{"id":7}"#.into()
                    },
                    SseMessage {
                        event: "resync".into(),
                        id: None,
                        data: r#"{"missed":3}"#.into()
                    }
                ],
                "split at {split}"
            );
        }
    }
}
