//! [`FieldError`] and the rules every text field of the protocol follows.

use icu_properties::props::GeneralCategory;
use icu_properties::CodePointMapData;

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

/// Whether `c` shows nothing by itself or changes how text around it shows:
/// control characters (ESC, BEL, NUL, DEL…), format characters (U+202E
/// right-to-left override, zero-width spaces…), line and paragraph separators,
/// private-use and unassigned code points. Such a character in a name would
/// let a registration rewrite an operator's terminal or disguise itself.
pub fn is_unprintable(c: char) -> bool {
    matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Surrogate
            | GeneralCategory::Unassigned
    )
}

/// Refuses a value longer than [`MAX_SHORT_STRING_LEN`], or with a character
/// that [`is_unprintable`].
pub fn short_string(field: &str, value: &str) -> Result<(), FieldError> {
    if value.len() > MAX_SHORT_STRING_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_SHORT_STRING_LEN} characters"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| is_unprintable(*c)) {
        return Err(FieldError::new(
            field,
            format!(
                "must not contain control or format characters, found U+{:04X}",
                bad as u32
            ),
        ));
    }
    Ok(())
}

/// Refuses an `Idempotency-Key` that is not 1 to 255 printable ASCII
/// characters (the IETF httpapi draft's bound).
pub fn idempotency_key(field: &str, key: &str) -> Result<(), FieldError> {
    if (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Ok(());
    }
    Err(FieldError::new(
        field,
        "is not 1 to 255 printable ASCII characters",
    ))
}

/// Checks a capability `verb` or `name`: non-empty, short, and free of whitespace
/// and `:` (which separates the two in routing keys).
pub fn capability_word(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    // Whitespace first: a newline is both, and "whitespace" says it plainer.
    if value.chars().any(|c| c.is_whitespace() || c == ':') {
        return Err(FieldError::new(field, "must not contain whitespace or ':'"));
    }
    short_string(field, value)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_1_to_255_printable_ascii_characters() {
        assert!(idempotency_key("k", "a").is_ok());
        assert!(idempotency_key("k", &"x".repeat(255)).is_ok());
        for bad in ["", " ", "a b", "é", "\u{0}", &"x".repeat(256)] {
            assert_eq!(idempotency_key("k", bad).unwrap_err().field, "k", "{bad:?}");
        }
    }

    #[test]
    fn names_with_control_or_format_characters_are_refused() {
        for bad in [
            "x\u{1b}[2J",
            "bell\u{7}",
            "nul\u{0}",
            "del\u{7f}",
            "evil\u{202e}txt",
            "zero\u{200b}width",
            "bom\u{feff}",
        ] {
            let error = capability_word("capabilities[0].name", bad).unwrap_err();
            assert_eq!(error.field, "capabilities[0].name", "{bad:?}");
            assert!(short_string("runtime", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ordinary_names_in_any_script_pass() {
        for good in ["hello.greet", "größe", "名前", "a-b_c.d", "emoji😀"] {
            assert_eq!(capability_word("name", good), Ok(()), "{good:?}");
        }
    }
}
