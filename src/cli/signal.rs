//! SIGTERM and SIGINT, turned into a byte on a pipe (the self-pipe trick), so that an
//! ordinary thread can react to them.

use std::fs::File;
use std::io;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

/// The pipe's write end, for the handler.
static PIPE_WRITE_FD: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(_signal: libc::c_int) {
    let fd = PIPE_WRITE_FD.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = 1u8;
        // SAFETY: write(2) is async-signal-safe; the buffer is a live local byte and
        // the descriptor stays open for the life of the process. A full pipe (the
        // write end is non-blocking) or any error is ignored: one byte is enough.
        let _ = unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
}

/// Installs the handler for SIGTERM and SIGINT; returns the pipe's read end, which
/// yields a byte per signal.
pub fn install() -> io::Result<File> {
    let mut fds = [-1 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fds[1] is the pipe's write end, just created and owned by us.
    unsafe {
        let flags = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    PIPE_WRITE_FD.store(fds[1], Ordering::Relaxed);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: a zeroed sigaction is a valid starting value; we set a handler
        // that only does async-signal-safe work, with SA_RESTART so that blocking
        // reads in other threads are resumed rather than failed.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: fds[0] is the pipe's read end, just created; the File takes ownership.
    Ok(unsafe { File::from_raw_fd(fds[0]) })
}
