//! What a traced route records on its span: the route decision, as an
//! operator following one call from its trace wants to read it.

use crank_registry::{NoRoute, RouteChoice};
use crank_trace::{Array, KeyValue, StringValue, Value};

/// The providers passed over, per reason: `"2 providers: draining"`.
fn rejected(rejected: &[(usize, String)]) -> KeyValue {
    let reasons: Vec<StringValue> = rejected
        .iter()
        .map(|(count, reason)| {
            let noun = if *count == 1 { "provider" } else { "providers" };
            StringValue::from(format!("{count} {noun}: {reason}"))
        })
        .collect();
    KeyValue::new("crank.route.rejected", Value::Array(Array::String(reasons)))
}

/// A route that chose `choice`.
pub fn chosen(choice: &RouteChoice) -> Vec<KeyValue> {
    vec![
        KeyValue::new("crank.capability", choice.capability.clone()),
        KeyValue::new("crank.route.strategy", choice.strategy.as_str()),
        KeyValue::new("crank.route.candidates", choice.candidates as i64),
        rejected(&choice.rejected),
        KeyValue::new("crank.route.chosen", choice.worker_id.clone()),
        KeyValue::new("crank.route.worker_url", choice.worker_url.clone()),
    ]
}

/// A route that found no provider.
pub fn refused(no_route: &NoRoute) -> Vec<KeyValue> {
    let candidates: usize = no_route.rejected.iter().map(|(count, _)| count).sum();
    vec![
        KeyValue::new("crank.capability", no_route.capability.clone()),
        KeyValue::new("crank.route.candidates", candidates as i64),
        rejected(&no_route.rejected),
    ]
}
