//! The text form: `ls -l` columns, UTC times, names shown by the toolkit's one rule
//! ([`seedkit::quote::name`]).

use std::fmt::Write as _;

use seedkit::quote;
use seedkit::records::{EntryKind, LsEntry, Timestamp};

/// `drwxr-xr-x`: the type letter and the 12 permission bits, setuid/setgid/sticky as
/// `s`/`S` and `t`/`T` the way `ls` shows them.
pub fn mode_string(kind: EntryKind, mode: u32) -> String {
    let mut s = String::with_capacity(10);
    s.push(match kind {
        EntryKind::File => '-',
        EntryKind::Directory => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Fifo => 'p',
        EntryKind::CharDevice => 'c',
        EntryKind::BlockDevice => 'b',
        EntryKind::Socket => 's',
    });
    for (shift, special, on, off) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        s.push(match (mode & special != 0, exec) {
            (true, true) => on,
            (true, false) => off,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Count in 400-year eras from 0000-03-01, where leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A time in UTC: `2026-11-30 12:34`, or with `full` `2026-11-30 12:34:56.123456789 +0000`.
pub fn time_string(t: Timestamp, full: bool) -> String {
    let (year, month, day) = civil_from_days(t.sec.div_euclid(86_400));
    let secs = t.sec.rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if full {
        format!(
            "{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{:09} +0000",
            t.nsec
        )
    } else {
        format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}")
    }
}

/// One `ls -l` line: mode, links, uid, gid, size (or `major, minor`), mtime, name, target.
pub fn long_line(e: &LsEntry, name: &[u8], full_time: bool) -> String {
    let size = match e.rdev {
        Some(r) => format!("{:>4}, {:>4}", r.major, r.minor),
        None => e.size.to_string(),
    };
    let mut line = format!(
        "{} {:>3} {:>5} {:>5} {:>10} {} {}",
        mode_string(e.kind, e.mode),
        e.links,
        e.uid,
        e.gid,
        size,
        time_string(e.mtime, full_time),
        quote::name(name)
    );
    if let Some(target) = &e.target {
        let _ = write!(line, " -> {}", quote::name(&target.0));
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(EntryKind::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(EntryKind::File, 0o2644), "-rw-r-Sr--");
        assert_eq!(mode_string(EntryKind::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(EntryKind::Directory, 0o1776), "drwxrwxrwT");
        assert_eq!(mode_string(EntryKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(EntryKind::CharDevice, 0), "c---------");
    }

    #[test]
    fn times_are_utc_civil_dates() {
        let t = |sec, nsec| Timestamp { sec, nsec };
        assert_eq!(time_string(t(0, 0), false), "1970-01-01 00:00");
        assert_eq!(
            time_string(t(1_700_000_000, 5), true),
            "2023-11-14 22:13:20.000000005 +0000"
        );
        assert_eq!(
            time_string(t(-1, 0), true),
            "1969-12-31 23:59:59.000000000 +0000"
        );
        // 2000-02-29 (a leap day of a century year) and 2100-03-01 (2100 is not leap).
        assert_eq!(time_string(t(951_782_400, 0), false), "2000-02-29 00:00");
        assert_eq!(time_string(t(4_107_542_400, 0), false), "2100-03-01 00:00");
        // ext4's widest times: 1901 and 2446.
        assert_eq!(time_string(t(-2_147_483_648, 0), false), "1901-12-13 20:45");
        assert_eq!(time_string(t(17_179_869_183, 0), false), "2514-05-30 01:53");
    }
}
