//! Server-Sent Events: [`Event`], and [`events`], the stream of a streaming
//! answer's events, read with crank's one SSE codec ([`SseParser`]).

use std::collections::VecDeque;

use awc::ClientResponse;
use futures_util::stream::{self, LocalBoxStream};
use futures_util::StreamExt;

use crank_net::sse::{SseMessage, SseParser};

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

impl From<SseMessage> for Event {
    fn from(message: SseMessage) -> Self {
        Event {
            event: (message.event != "message").then_some(message.event),
            data: message.data,
            id: message.id,
        }
    }
}

/// The events of `response`, a `text/event-stream` from `url`, as they arrive;
/// the stream ends when the answer does.
pub fn events(
    response: ClientResponse,
    url: String,
) -> LocalBoxStream<'static, Result<Event, ClientError>> {
    let state = Some((response, SseParser::default(), VecDeque::new()));
    stream::unfold(state, move |state| {
        let url = url.clone();
        async move {
            let (mut response, mut parser, mut ready) = state?;
            loop {
                if let Some(event) = ready.pop_front() {
                    return Some((Ok(event), Some((response, parser, ready))));
                }
                match response.next().await {
                    Some(Ok(bytes)) => {
                        ready.extend(parser.feed(&bytes).into_iter().map(Event::from))
                    }
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
        let mut parser = SseParser::default();
        let mut events = Vec::new();
        for chunk in chunks {
            events.extend(parser.feed(chunk.as_bytes()).into_iter().map(Event::from));
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
