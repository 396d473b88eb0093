//! Calls into the operating system that the standard library does not wrap, for the
//! runtime. Kept here so that `unsafe` stays in this module.

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
