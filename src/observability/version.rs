//! Which build of parley this is: the package version, and the git commit and
//! build time that `build.rs` bakes in at compile time.
//!
//! Use [`current`] wherever a response, a log line or a metric label needs to
//! name the build; the constants are there for `const` contexts.

use serde::Serialize;
use utoipa::ToSchema;

/// The package version from `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit built, abbreviated to 12 hex digits, or `unknown` when built
/// outside a git checkout.
pub const GIT_COMMIT: &str = env!("PARLEY_GIT_COMMIT");
/// When it was built, RFC 3339 UTC; `SOURCE_DATE_EPOCH` when that was set.
pub const BUILD_TIME: &str = env!("PARLEY_BUILD_TIME");

/// The build of this process, as served to clients and operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct VersionInfo {
    /// The package version.
    #[schema(example = "0.1.0")]
    pub version: &'static str,
    /// The abbreviated commit, or `unknown`.
    #[schema(example = "3f2a9c1d0b7e")]
    pub git_commit: &'static str,
    /// The build time, RFC 3339 UTC.
    #[schema(example = "2025-01-31T12:00:00Z")]
    pub build_time: &'static str,
}

/// The build of the running binary.
pub fn current() -> VersionInfo {
    VersionInfo {
        version: VERSION,
        git_commit: GIT_COMMIT,
        build_time: BUILD_TIME,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_time_is_rfc3339_utc() {
        let time = current().build_time;
        assert_eq!(time.len(), "2025-01-31T12:00:00Z".len(), "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
    }

    #[test]
    fn git_commit_is_twelve_hex_digits_or_unknown() {
        let commit = current().git_commit;
        let is_hex = commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit());
        assert!(is_hex || commit == "unknown", "{commit}");
    }
}
