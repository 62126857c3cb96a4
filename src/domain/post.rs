//! Feed posts.

use serde::Serialize;

/// 1 to 5,000 characters, not blank, no control characters but tab,
/// newline and carriage return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PostBody(String);

impl PostBody {
    pub const MAX_CHARS: usize = 5_000;

    pub fn parse(s: &str) -> Result<Self, super::Invalid> {
        if s.trim().is_empty() {
            return Err(super::Invalid::Blank);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(super::Invalid::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        super::check_storable(s, true)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
