//! What `/proc` says about a process: CPU time used and memory held.
//!
//! * CPU time is `utime + stime` from `/proc/PID/stat` (fields 14 and 15, in clock
//!   ticks). The caller reads it before and after a phase and subtracts.
//! * Context switches are the sum over the process's threads of
//!   `voluntary_ctxt_switches + nonvoluntary_ctxt_switches` from
//!   `/proc/PID/task/TID/status` (the process's own `status` counts its main thread
//!   only). A thread that ended between two readings takes its count with it.
//! * Memory is `VmRSS` (now) and `VmHWM` (the peak RSS since the process started)
//!   from `/proc/PID/status`, in KiB.
//!
//! * The kernel's TCP memory, machine-wide, is the `mem` field (pages) of the `TCP:`
//!   line of `/proc/net/sockstat`: the memory of every TCP socket's queues, both ends
//!   of loopback connections included.
//!
//! Linux only; on any read or parse failure the caller gets an `io::Error` and
//! reports the figure as missing. The parsers are separate, pure functions.

use std::io;
use std::time::Duration;

/// Which process to read: a pid, or the bench itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    /// The bench's own process (`/proc/self`).
    This,
    /// Another process, such as the server.
    Other(u32),
}

impl Pid {
    fn path(self, file: &str) -> String {
        match self {
            Pid::This => format!("/proc/self/{file}"),
            Pid::Other(pid) => format!("/proc/{pid}/{file}"),
        }
    }
}

/// Memory figures, KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Memory {
    /// Resident set size now (`VmRSS`).
    pub rss_kb: u64,
    /// The highest resident set size so far (`VmHWM`).
    pub peak_rss_kb: u64,
}

/// User plus system CPU time the process has used so far.
pub fn cpu_time(pid: Pid) -> io::Result<Duration> {
    let (user, system) = cpu_times(pid)?;
    Ok(user + system)
}

/// User and system CPU time the process has used so far, apart.
pub fn cpu_times(pid: Pid) -> io::Result<(Duration, Duration)> {
    let stat = std::fs::read_to_string(pid.path("stat"))?;
    let (user, system) = parse_stat_user_system(&stat).ok_or_else(|| invalid("stat"))?;
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second)
        .ok()
        .filter(|&t| t > 0)
        .unwrap_or(100);
    let time = |ticks: u64| Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second);
    Ok((time(user), time(system)))
}

/// Context switches of every thread of the process so far (see the module doc).
pub fn context_switches(pid: Pid) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(pid.path("task"))? {
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue; // the thread ended meanwhile
        };
        total += parse_context_switches(&status).ok_or_else(|| invalid("task/TID/status"))?;
    }
    Ok(total)
}

/// `voluntary_ctxt_switches + nonvoluntary_ctxt_switches` from a `status` file.
pub fn parse_context_switches(status: &str) -> Option<u64> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..].trim().parse().ok()
    };
    Some(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

/// Current and peak resident memory.
pub fn memory(pid: Pid) -> io::Result<Memory> {
    let status = std::fs::read_to_string(pid.path("status"))?;
    parse_status(&status).ok_or_else(|| invalid("status"))
}

/// The kernel's TCP memory now (all sockets of the machine), KiB.
pub fn kernel_tcp_mem_kb() -> io::Result<u64> {
    let sockstat = std::fs::read_to_string("/proc/net/sockstat")?;
    let pages = parse_sockstat_tcp_mem(&sockstat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected /proc/net/sockstat contents",
        )
    })?;
    Ok(pages.saturating_mul(page_size()) / 1024)
}

/// The memory page size, bytes (4,096 when the system does not say).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// The `mem` field (pages) of the `TCP:` line of `/proc/net/sockstat`, e.g.
/// `TCP: inuse 5 orphan 0 tw 3 alloc 7 mem 139`.
pub fn parse_sockstat_tcp_mem(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line["TCP:".len()..].split_whitespace();
    while let Some(name) = words.next() {
        let value = words.next()?;
        if name == "mem" {
            return value.parse().ok();
        }
    }
    None
}

fn invalid(file: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected /proc/PID/{file} contents"),
    )
}

/// `utime + stime` in clock ticks from the contents of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may itself contain spaces and
/// parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    parse_stat_user_system(stat).map(|(user, system)| user + system)
}

/// `utime` and `stime` (clock ticks) from the contents of `/proc/PID/stat`.
pub fn parse_stat_user_system(stat: &str) -> Option<(u64, u64)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is index 0, so utime (14) is 11, stime (15) 12.
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// `VmRSS` and `VmHWM` from the contents of `/proc/PID/status`.
pub fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kb: field("VmRSS:")?,
        peak_rss_kb: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_name() {
        let stat = "4242 (chat server) (x) S 1 4242 4242 0 -1 4194560 \
                    300 0 0 0 125 37 0 0 20 0 5 0 900 12345678 2000";
        assert_eq!(parse_stat_ticks(stat), Some(162));
        assert_eq!(parse_stat_ticks("1 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_memory_lines() {
        let status = "Name:\tchat-server\nVmPeak:\t  20000 kB\nVmHWM:\t    9876 kB\n\
                      VmRSS:\t    5432 kB\nThreads:\t4\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kb: 5432,
                peak_rss_kb: 9876
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn context_switches_are_voluntary_plus_not() {
        let status = "Name:\tworker-0\nvoluntary_ctxt_switches:\t120\n\
                      nonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_context_switches(status), Some(127));
        assert_eq!(
            parse_context_switches("voluntary_ctxt_switches:\t1\n"),
            None
        );
        let me = context_switches(Pid::This).expect("this process's threads");
        assert!(me > 0, "a running test has been switched at least once");
    }

    #[test]
    fn sockstat_tcp_memory() {
        let sockstat = "sockets: used 10\nTCP: inuse 1 orphan 0 tw 3 alloc 1 mem 139\n\
                        UDP: inuse 0 mem 7\nUDPLITE: inuse 0\n";
        assert_eq!(parse_sockstat_tcp_mem(sockstat), Some(139));
        // The UDP line's mem is not the TCP one.
        assert_eq!(parse_sockstat_tcp_mem("UDP: inuse 0 mem 7\n"), None);
        assert_eq!(parse_sockstat_tcp_mem("TCP: inuse 1 orphan 0\n"), None);
        assert_eq!(parse_sockstat_tcp_mem("TCP: inuse 1 mem x\n"), None);
        assert_eq!(parse_sockstat_tcp_mem("TCP: mem\n"), None);
        assert!(
            kernel_tcp_mem_kb().is_ok(),
            "this machine has /proc/net/sockstat"
        );
        assert!(page_size() >= 4096);
    }

    #[test]
    fn reads_this_process() {
        assert!(cpu_time(Pid::This).is_ok());
        let mem = memory(Pid::This).unwrap();
        assert!(mem.rss_kb > 0 && mem.peak_rss_kb >= mem.rss_kb);
    }
}
