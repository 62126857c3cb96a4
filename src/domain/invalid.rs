//! Why a value was refused by its parser. Each variant's text is the field
//! error a client sees (`errors[].message`, or the WebSocket `error`), so
//! it says what a valid value looks like.

use std::fmt;

/// A refused value: what was wrong, as data; `Display` words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("must not be blank")]
    Blank,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must be {min} to {max} characters")]
    Length { min: usize, max: usize },
    #[error("must be {min} to {max} characters without control characters")]
    LengthOrControl { min: usize, max: usize },
    #[error("must be at most {max} characters without control characters")]
    TooLongOrControl { max: usize },
    #[error("must be between {min} and {max}")]
    OutOfRange { min: i64, max: i64 },
    #[error("must be one of {}", OneOf(.0))]
    NotOneOf(&'static [&'static str]),
    /// C0 control characters (all of them in one-line text).
    #[error("must not contain control characters")]
    Control,
    /// C0 control characters other than tab, newline and carriage return.
    #[error("must not contain control characters other than tab, newline and carriage return")]
    ControlInMultiline,
    #[error(
        "may contain only ASCII letters, digits, '_', '.' and '-', and must start with a letter or digit"
    )]
    UsernameCharacters,
    #[error("must be an e-mail address such as ada@example.com")]
    Email,
    #[error("must be an instant in the future (RFC 3339)")]
    NotInFuture,
    #[error("must be an RFC 3339 instant such as 2030-01-31T12:00:00Z")]
    Timestamp,
    #[error("must be at most {max_days} days ahead; leave it out for no end")]
    TooFarAhead { max_days: i64 },
    #[error(
        "must be an https URL of a push service on a public address (as PushSubscription.endpoint gives it)"
    )]
    PushEndpoint,
    #[error("must be base64url of an uncompressed P-256 public key (65 bytes)")]
    P256Point,
    #[error("must be base64url of {bytes} bytes")]
    Base64Url { bytes: usize },
    /// A password zxcvbn scores below 3: its warning and a suggestion.
    #[error("is too weak: {why} {hint}")]
    WeakPassword { why: String, hint: String },
    #[error("must be an http or https URL with a host, at most 2000 characters")]
    WebhookUrl,
    #[error("must be 1 to 64 characters of lower-case ASCII letters, digits, '_', '.' and '-'")]
    NotificationKind,
    #[error("must be a JSON object of at most {max_bytes} bytes")]
    Payload { max_bytes: usize },
}

/// `"a", "b", "c"`.
struct OneOf(&'static [&'static str]);

impl fmt::Display for OneOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, choice) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{choice}\"")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Invalid;

    #[test]
    fn says_what_a_valid_value_looks_like() {
        assert_eq!(
            Invalid::NotOneOf(&["public", "private", "direct"]).to_string(),
            r#"must be one of "public", "private", "direct""#
        );
        assert_eq!(
            Invalid::OutOfRange { min: 1, max: 200 }.to_string(),
            "must be between 1 and 200"
        );
    }
}
