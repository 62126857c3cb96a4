//! Bakes build facts into the binary for `src/observability/version.rs`:
//!
//! - `PARLEY_GIT_COMMIT`: the variable of that name when the build sets it
//!   (a container build, whose context has no `.git`), else
//!   `git rev-parse --short=12 HEAD`, else `unknown` (a crate tarball, or
//!   `git` missing);
//! - `PARLEY_BUILD_TIME`: RFC 3339 UTC, from `SOURCE_DATE_EPOCH` when set
//!   (reproducible builds), else the time this script ran.
//!
//! The script reruns when HEAD moves, not on every build, so the build time
//! is that of the last commit change or clean build. It must never fail the
//! build: every lookup falls back to a placeholder.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo::rerun-if-env-changed=PARLEY_GIT_COMMIT");

    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let git_dir = git_dir(&root);
    let given = env::var("PARLEY_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.chars().all(|c| c.is_ascii_alphanumeric()));
    let commit = given
        .or_else(|| git_dir.as_ref().and_then(|_| git_commit(&root)))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=PARLEY_GIT_COMMIT={commit}");
    println!(
        "cargo::rustc-env=PARLEY_BUILD_TIME={}",
        rfc3339_utc(build_epoch())
    );

    if let Some(git_dir) = git_dir {
        watch_head(&git_dir);
    }
}

/// The repository's git directory: `.git` itself, or where a `.git` file
/// (worktree, submodule) points with `gitdir: <path>`.
fn git_dir(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let text = fs::read_to_string(&dot_git).ok()?;
    let dir = root.join(text.strip_prefix("gitdir:")?.trim());
    dir.is_dir().then_some(dir)
}

fn git_commit(root: &Path) -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root)
        .output()
        .ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

/// Asks Cargo to rerun this script when HEAD moves: on `.git/HEAD` (branch
/// switch) and on the file of the branch it names (commit). A branch without
/// a loose ref file (no commit yet, or packed) is watched through its folder
/// and `packed-refs`, because a missing watched file would rerun every build.
fn watch_head(git_dir: &Path) {
    let head = git_dir.join("HEAD");
    if !head.is_file() {
        return;
    }
    println!("cargo::rerun-if-changed={}", head.display());

    let Some(reference) = fs::read_to_string(&head)
        .ok()
        .and_then(|text| Some(text.strip_prefix("ref:")?.trim().to_owned()))
    else {
        return; // detached HEAD: the commit is in HEAD itself
    };
    // A worktree keeps its own HEAD but shares refs with the main repository.
    let common = fs::read_to_string(git_dir.join("commondir"))
        .map(|dir| git_dir.join(dir.trim()))
        .unwrap_or_else(|_| git_dir.to_owned());
    let ref_file = common.join(&reference);
    if ref_file.is_file() {
        println!("cargo::rerun-if-changed={}", ref_file.display());
        return;
    }
    let packed = common.join("packed-refs");
    if packed.is_file() {
        println!("cargo::rerun-if-changed={}", packed.display());
    }
    if let Some(folder) = ref_file.ancestors().skip(1).find(|dir| dir.is_dir()) {
        println!("cargo::rerun-if-changed={}", folder.display());
    }
}

/// Seconds since the Unix epoch to stamp: `SOURCE_DATE_EPOCH` if it parses,
/// else now (0 if the clock is before 1970).
fn build_epoch() -> u64 {
    env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |elapsed| elapsed.as_secs())
        })
}

/// Formats epoch seconds as `YYYY-MM-DDTHH:MM:SSZ`, with std only: days to a
/// civil date by Howard Hinnant's `civil_from_days` algorithm.
fn rfc3339_utc(epoch: u64) -> String {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month counted from March
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}
