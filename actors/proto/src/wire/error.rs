//! [`ErrorBody`]: the JSON of every error answer.

use serde::{Deserialize, Serialize};

/// `{"error": "<code>", "detail": "<sentence>", "field": "<path>"}`: a client
/// branches on `error`, a person reads `detail`, and `field` names the request
/// field that was refused (422 and some 400s).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
