//! Server-Sent Events: [`Event`], the [`EventParser`] that reads them from a
//! byte stream, and [`events`], the stream of a streaming answer's events.

use std::collections::VecDeque;

use awc::ClientResponse;
use futures_util::stream::{self, LocalBoxStream};
use futures_util::StreamExt;

use super::ClientError;

/// One event of a `text/event-stream`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field: the event's type; `None` means `message`.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:` field.
    pub id: Option<String>,
}

/// Reads events from the bytes of a `text/event-stream` as they come, per
/// the HTML standard's rules: lines end with `\n` or `\r\n`; a blank line ends
/// an event; `field: value` (one space after the colon is dropped); lines
/// starting with `:` are comments; an event without data is not dispatched;
/// unknown fields are ignored.
#[derive(Debug, Default)]
pub struct EventParser {
    line: Vec<u8>,
    event: Event,
    has_data: bool,
    ready: VecDeque<Event>,
}

impl EventParser {
    /// Takes in the next bytes of the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                let mut line = std::mem::take(&mut self.line);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.line_ended(&String::from_utf8_lossy(&line));
            } else {
                self.line.push(byte);
            }
        }
    }

    /// The next complete event, if one has arrived.
    pub fn next_event(&mut self) -> Option<Event> {
        self.ready.pop_front()
    }

    fn line_ended(&mut self, line: &str) {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            if std::mem::take(&mut self.has_data) {
                self.ready.push_back(event);
            }
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event.event = Some(value.to_owned()),
            "id" => self.event.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

/// The events of `response`, a `text/event-stream` from `url`, as they arrive;
/// the stream ends when the answer does.
pub fn events(
    response: ClientResponse,
    url: String,
) -> LocalBoxStream<'static, Result<Event, ClientError>> {
    let state = Some((response, EventParser::default()));
    stream::unfold(state, move |state| {
        let url = url.clone();
        async move {
            let (mut response, mut parser) = state?;
            loop {
                if let Some(event) = parser.next_event() {
                    return Some((Ok(event), Some((response, parser))));
                }
                match response.next().await {
                    Some(Ok(bytes)) => parser.push(&bytes),
                    Some(Err(error)) => {
                        let failed = ClientError::Unreachable {
                            url,
                            detail: format!("the event stream broke off: {error}"),
                        };
                        return Some((Err(failed), None));
                    }
                    None => return None,
                }
            }
        }
    })
    .boxed_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&str]) -> Vec<Event> {
        let mut parser = EventParser::default();
        let mut events = Vec::new();
        for chunk in chunks {
            parser.push(chunk.as_bytes());
            events.extend(std::iter::from_fn(|| parser.next_event()));
        }
        events
    }

    fn data(text: &str) -> Event {
        Event {
            data: text.into(),
            ..Event::default()
        }
    }

    #[test]
    fn events_end_at_blank_lines_whatever_the_chunks() {
        let whole = parse(&["data: {\"a\":1}\n\ndata: two\n\n"]);
        assert_eq!(whole, [data("{\"a\":1}"), data("two")]);
        let split = parse(&["da", "ta: {\"a\"", ":1}\r", "\n\r\n", "data:two\n", "\n"]);
        assert_eq!(split, whole);
    }

    #[test]
    fn fields_comments_and_multi_line_data() {
        let events = parse(&[
            ": a comment\n",
            "event: tick\nid: 7\ndata: line one\ndata: line two\nretry: 10\n\n",
            "event: empty\n\n",
            "data\n\n",
        ]);
        assert_eq!(
            events,
            [
                Event {
                    event: Some("tick".into()),
                    data: "line one\nline two".into(),
                    id: Some("7".into()),
                },
                data(""),
            ]
        );
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert!(parse(&["data: half"]).is_empty());
    }
}
