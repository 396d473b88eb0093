//! Reading `/proc`: a process's peak resident set and CPU time, and the CPUs each
//! thread of this process may run on.

use std::io;

/// A process's peak resident set size (VmHWM), from `/proc/PID/status` (or
/// `/proc/self/status` when `pid` is `None`).
pub fn peak_rss_bytes(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The user and system CPU time a process has used so far (`utime + stime` of
/// `/proc/PID/stat`, or `/proc/self/stat` when `pid` is `None`), in ns; every thread
/// of it counts, ended ones too.
pub fn cpu_time_ns(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let ticks = stat_cpu_ticks(&std::fs::read_to_string(path).ok()?)?;
    // SAFETY: sysconf only reads a configuration value.
    let per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_sec = u64::try_from(per_sec).ok().filter(|t| *t > 0)?;
    Some(ticks.saturating_mul(1_000_000_000) / per_sec)
}

/// `utime + stime`, in clock ticks, from the text of a `/proc/PID/stat` file (the
/// fields after the command name, which is in parentheses and may hold spaces).
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line; `rest` starts at field 3.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Every thread of this process, by name, with the CPUs it may run on.
pub fn threads_cpus() -> io::Result<Vec<(String, Vec<usize>)>> {
    let mut v = Vec::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let dir = task?.path();
        let status = match std::fs::read_to_string(dir.join("status")) {
            Ok(s) => s,
            // A thread that ended meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_string())
        };
        let name = field("Name:").unwrap_or_default();
        let list = field("Cpus_allowed_list:")
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Cpus_allowed_list"))?;
        let cpus = parse_cpu_list(&list).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, format!("CPU list {list:?}"))
        })?;
        v.push((name, cpus));
    }
    Ok(v)
}

/// Parses a kernel CPU list such as `0-2,5` into `[0, 1, 2, 5]`; `None` if malformed
/// or over 1024 CPUs.
fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a.parse().ok()?, b.parse().ok()?),
            None => {
                let c: usize = part.parse().ok()?;
                (c, c)
            }
        };
        if a > b || b >= 1024 {
            return None;
        }
        cpus.extend(a..=b);
    }
    Some(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_from_a_stat_line() {
        let line = "4242 (abcast (x) y) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0 100";
        assert_eq!(stat_cpu_ticks(line), Some(325));
        assert_eq!(stat_cpu_ticks("4242 (abcast) S 1 2"), None);
        assert_eq!(stat_cpu_ticks("no parenthesis"), None);
        // This process has used some CPU, and the figure never goes back.
        let a = cpu_time_ns(None).expect("own CPU time");
        let b = cpu_time_ns(Some(std::process::id())).expect("own CPU time by PID");
        assert!(b >= a);
    }

    #[test]
    fn cpu_lists_parse_as_the_kernel_writes_them() {
        let cases: &[(&str, Option<Vec<usize>>)] = &[
            ("0", Some(vec![0])),
            ("0-1", Some(vec![0, 1])),
            ("0-2,5,7-8", Some(vec![0, 1, 2, 5, 7, 8])),
            ("", Some(vec![])),
            ("3-1", None),
            ("0-1024", None),
            ("x", None),
            ("1-", None),
        ];
        for (list, want) in cases {
            assert_eq!(&parse_cpu_list(list), want, "{list:?}");
        }
    }
}
