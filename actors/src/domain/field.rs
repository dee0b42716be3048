//! [`FieldError`] and the rules every text field of the protocol follows.

/// Longest accepted short string field (names, verbs, runtime, …).
pub const MAX_SHORT_STRING_LEN: usize = 256;

/// A request field that failed validation: which one (its path, e.g.
/// `capabilities[0].version`), and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: String,
    pub problem: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Refuses a value longer than [`MAX_SHORT_STRING_LEN`].
pub fn short_string(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_SHORT_STRING_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_SHORT_STRING_LEN} characters"),
        ));
    }
    Ok(())
}

/// Checks a capability `verb` or `name`: non-empty, short, and free of whitespace
/// and `:` (which separates the two in routing keys).
pub fn capability_word(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    short_string(field, value)?;
    if value.chars().any(|c| c.is_whitespace() || c == ':') {
        return Err(FieldError::new(field, "must not contain whitespace or ':'"));
    }
    Ok(())
}
