//! Calls into the operating system that the standard library does not wrap, for the
//! runtime (and the C API's thread setters). `unsafe` stays in this module.

use std::io;

/// Puts the calling thread under Linux's `SCHED_BATCH` policy (nice value kept):
/// when it wakes up it does not preempt the thread running on its CPU. See
/// `Config::batch_scheduling`. Elsewhere than Linux, does nothing.
pub(crate) fn set_batch_scheduling() -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 names the calling thread; `param` is a valid `sched_param`
        // that outlives the call, which only reads it.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The highest `SCHED_FIFO` priority Linux accepts.
pub(crate) const MAX_REALTIME_PRIORITY: u8 = 99;

/// `priority` as a `SCHED_FIFO` priority (1 to [`MAX_REALTIME_PRIORITY`]), or why it
/// is not one: the one range check behind the runtime's configuration, the C API
/// and [`set_realtime_priority`].
pub(crate) fn realtime_priority(priority: i64) -> Result<u8, String> {
    u8::try_from(priority)
        .ok()
        .filter(|p| (1..=MAX_REALTIME_PRIORITY).contains(p))
        .ok_or_else(|| {
            format!("a real-time priority is 1 to {MAX_REALTIME_PRIORITY}, not {priority}")
        })
}

/// Puts the calling thread under Linux's `SCHED_FIFO` real-time policy at
/// `priority` (1 to [`MAX_REALTIME_PRIORITY`]); threads it starts afterwards
/// inherit it. Needs `CAP_SYS_NICE` or an `RLIMIT_RTPRIO` of at least `priority`
/// (the OS's refusal is a `PermissionDenied` error); a priority out of range is an
/// `InvalidInput` error. Either way the thread's policy is left as it was.
/// Elsewhere than Linux: an `Unsupported` error.
pub(crate) fn set_realtime_priority(priority: u8) -> io::Result<()> {
    realtime_priority(i64::from(priority))
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidInput, why))?;
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param {
            sched_priority: i32::from(priority),
        };
        // SAFETY: pid 0 names the calling thread; `param` is a valid `sched_param`
        // that outlives the call, which only reads it.
        let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "real-time scheduling is only supported on Linux",
        ))
    }
}

/// The number of CPUs a CPU set can name (`CPU_SETSIZE`): CPU numbers are below it.
pub(crate) const MAX_CPUS: usize = 1024;

/// Restricts the calling thread to the CPUs `cpus` (`sched_setaffinity`); threads it
/// starts afterwards inherit the restriction. An empty list, a CPU number of
/// [`MAX_CPUS`] or more, or (from the OS) a set with no CPU this thread may use is an
/// `InvalidInput` error, and the thread's affinity is left as it was. Elsewhere than
/// Linux: an `Unsupported` error.
pub(crate) fn set_cpu_affinity(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "an empty CPU list",
        ));
    }
    if let Some(&c) = cpus.iter().find(|&&c| c >= MAX_CPUS) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "CPU {c} is past the largest CPU number a CPU set holds ({})",
                MAX_CPUS - 1
            ),
        ));
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `cpu_set_t` is a plain bit array, for which all zeroes is a valid
        // (empty) value.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            // SAFETY: `c < MAX_CPUS`, the number of bits in `set` (checked above);
            // `set` is a valid, exclusively borrowed `cpu_set_t`.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        // SAFETY: pid 0 names the calling thread; the size is that of `set`, which
        // outlives the call, which only reads it.
        let rc =
            unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("none of CPUs {cpus:?} is online and allowed to this thread"),
                ));
            }
            return Err(e);
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "CPU affinity is only supported on Linux",
        ))
    }
}

/// The CPUs the calling thread may run on, in increasing order (`sched_getaffinity`).
/// Elsewhere than Linux: an `Unsupported` error.
pub(crate) fn cpu_affinity() -> io::Result<Vec<usize>> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: all zeroes is a valid `cpu_set_t` (see `set_cpu_affinity`).
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 names the calling thread; the kernel writes at most the given
        // size into `set`, which is exclusively borrowed for the call.
        let rc =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: every `c < MAX_CPUS` is within `set`, a valid `cpu_set_t`.
        Ok((0..MAX_CPUS)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "CPU affinity is only supported on Linux",
        ))
    }
}

/// Reads from `fd` once, up to `max` bytes, straight into the spare capacity at the
/// end of `buf` (reserving it first): no scratch buffer, no copy, no zeroing. As
/// `read(2)`: `Ok(0)` at end of stream.
#[cfg(unix)]
pub(crate) fn read_into(
    fd: std::os::fd::RawFd,
    buf: &mut bytes::BytesMut,
    max: usize,
) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let want = spare.len().min(max);
    // SAFETY: `spare` is `want` or more writable bytes owned by `buf`, valid for the
    // call; read(2) writes at most `want` bytes there and nothing else.
    let n = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), want) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // Not negative, and read(2) returns at most `want`.
    let n = n as usize;
    // SAFETY: read(2) initialised the first `n` bytes of the spare capacity, and
    // `n <= want <= capacity - len`.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realtime_priorities_are_one_to_ninety_nine() {
        for (given, want) in [(1, Some(1)), (99, Some(99)), (50, Some(50))] {
            assert_eq!(realtime_priority(given).ok(), want);
        }
        for bad in [0, 100, 255, 256, 300, -1, i64::MAX] {
            let why = realtime_priority(bad).expect_err("out of range");
            assert!(why.contains(&format!("not {bad}")), "{why}");
        }
    }
}
