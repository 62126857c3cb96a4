//! The server's CPU time, read from `/proc/PID/stat` (user + system), so a
//! run reports what each delivery cost the server, beside the reference's.

use anyhow::Context;

/// Clock ticks per second of `/proc/PID/stat`: `USER_HZ`, fixed at 100 by
/// the Linux ABI on every architecture this runs on.
const TICKS_PER_S: f64 = 100.0;

/// CPU seconds `pid` has used so far, all threads, user and system.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_ticks(&stat)
        .map(|ticks| ticks as f64 / TICKS_PER_S)
        .with_context(|| format!("no utime/stime in {path}"))
}

/// utime + stime: fields 14 and 15, counted after the command name, which
/// is in parentheses and may itself hold spaces.
fn parse_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_user_and_system_ticks_after_a_name_with_spaces() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0";
        assert_eq!(parse_ticks(stat), Some(300));
        assert_eq!(parse_ticks("42 (x) S 1"), None);
    }

    #[test]
    fn reads_this_process() {
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
    }
}
