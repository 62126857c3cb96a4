//! Account fields: usernames, e-mail addresses, passwords, display names.

use super::Invalid;
use serde::Serialize;
use std::fmt;

/// 3 to 32 characters of ASCII letters, digits, `_`, `.` and `-`, starting
/// with a letter or digit. Case is kept but uniqueness ignores it, and
/// `@mentions` match it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let len = s.chars().count();
        if !(3..=32).contains(&len) {
            return Err(Invalid::Length { min: 3, max: 32 });
        }
        let mut chars = s.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !first_ok || !rest_ok {
            return Err(Invalid::UsernameCharacters);
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user search matches: the start of a username or display name,
/// 2 to 64 characters (one letter would list half the users), compared
/// ignoring case: kept lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPrefix(String);

impl SearchPrefix {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        if !(2..=64).contains(&s.chars().count()) || s.chars().any(char::is_control) {
            return Err(Invalid::LengthOrControl { min: 2, max: 64 });
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The smallest string greater than every string that starts with
    /// this prefix, in byte order: `prefix <= s < upper` is a range an
    /// index in byte order serves.
    pub fn upper_bound(&self) -> String {
        format!("{}\u{10FFFF}", self.0)
    }
}

/// An e-mail address, stored lower-cased. Deliberately loose (one `@`, a dot
/// in the domain, no spaces): the only real check of an address is mail.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let s = s.trim();
        let valid = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if !valid {
            return Err(Invalid::Email);
        }
        Ok(Self(s.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Redacted: an address is personal data and must never reach a log line.
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

/// A plain-text password on its way to the hasher: 8 to 128 characters,
/// no control characters. Neither `Debug` nor `Display` reveal it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let len = s.chars().count();
        if !(8..=128).contains(&len) {
            return Err(Invalid::Length { min: 8, max: 128 });
        }
        super::check_storable(s, false)?;
        Ok(Self(s.to_owned()))
    }

    /// A password being chosen: [`Password::parse`], and strong enough.
    /// Strength is zxcvbn's estimate of the guesses needed (dictionaries of
    /// common and breached passwords, names, keyboard walks, dates,
    /// l33t-speak, repeats), which must be at least 10^10 (score 3); the
    /// account's own `context` (username, e-mail) counts as known to an
    /// attacker. The message says why a password was refused.
    pub fn parse_new(s: &str, context: &[&str]) -> Result<Self, Invalid> {
        let password = Self::parse(s)?;
        let estimate = zxcvbn::zxcvbn(s, context);
        if estimate.score() >= zxcvbn::Score::Three {
            return Ok(password);
        }
        let why = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map_or_else(|| "it is too easy to guess".to_owned(), |w| w.to_string());
        let hint = estimate
            .feedback()
            .and_then(|f| f.suggestions().first())
            .map_or_else(
                || "Add another word or two; uncommon words are better.".to_owned(),
                |s| s.to_string(),
            );
        Err(Invalid::WeakPassword {
            why: why.trim_end_matches('.').to_owned() + ".",
            hint,
        })
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A profile's display name: up to 64 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.chars().count() > 64 || s.chars().any(char::is_control) {
            return Err(Invalid::TooLongOrControl { max: 64 });
        }
        Ok(Self(s.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A profile's free text: up to 500 characters; line breaks and tabs are
/// kept, other control characters refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bio(String);

impl Bio {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(s: &str) -> Result<Self, Invalid> {
        if s.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        super::check_storable(s, true)?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usernames_follow_the_documented_alphabet() {
        assert!(Username::parse("ada_l.97-x").is_ok());
        assert!(Username::parse("_ada").is_err());
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("ada lovelace").is_err());
    }

    #[test]
    fn emails_are_lowercased_and_never_debug_printed() {
        let e = Email::parse("Ada@Example.COM").unwrap();
        assert_eq!(e.as_str(), "ada@example.com");
        assert!(!format!("{e:?}").contains("ada"));
        assert!(Email::parse("ada@localhost").is_err());
        assert!(Email::parse("a da@example.com").is_err());
    }

    #[test]
    fn text_fields_refuse_nul_and_other_control_characters() {
        assert!(Email::parse("ada\u{0}@example.com").is_err());
        assert!(Password::parse("correct\u{0}horse").is_err());
        assert!(DisplayName::parse("Ada\u{0}").is_err());
        assert!(Bio::parse("bio\u{0}").is_err());
        assert!(Bio::parse("two\nlines\tand a tab").is_ok());
        assert!(Username::parse("ada\u{0}").is_err());
    }

    #[test]
    fn weak_and_breached_passwords_are_refused_saying_why() {
        for weak in [
            "password1",
            "qwertyuiop",
            "12345678",
            "iloveyou2",
            "ada@example.com1",
        ] {
            let err = Password::parse_new(weak, &["ada", "ada@example.com"])
                .err()
                .unwrap_or_else(|| panic!("{weak} was accepted"));
            assert!(err.to_string().starts_with("is too weak: "), "{err}");
        }
        for strong in [
            "correct horse battery",
            "loadtest-password",
            "k6-load-test-password",
            "Tr0ub4dor&3 staple quill",
        ] {
            assert!(Password::parse_new(strong, &["ada"]).is_ok(), "{strong}");
        }
    }

    #[test]
    fn passwords_are_never_debug_printed() {
        let p = Password::parse("correct horse").unwrap();
        assert!(!format!("{p:?}").contains("horse"));
    }

    proptest! {
        #[test]
        fn username_parse_never_panics_and_accepts_only_its_alphabet(s in ".{0,40}") {
            if let Ok(u) = Username::parse(&s) {
                prop_assert!(u.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)));
            }
        }

        #[test]
        fn email_parse_never_panics(s in ".{0,300}") {
            let _ = Email::parse(&s);
        }

        #[test]
        fn parsed_text_never_holds_nul(s in "(.|\\x00|\\x1b){0,80}") {
            for stored in [
                Email::parse(&s).map(|v| v.as_str().to_owned()),
                DisplayName::parse(&s).map(|v| v.as_str().to_owned()),
                Bio::parse(&s).map(|v| v.as_str().to_owned()),
                Username::parse(&s).map(|v| v.as_str().to_owned()),
            ].into_iter().flatten() {
                prop_assert!(!stored.contains('\0'));
            }
        }
    }
}
