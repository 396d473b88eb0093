//! A file descriptor that is readable while events wait for the application (an
//! `eventfd` on Linux), so that a program can put a node in its own poll loop.

use std::io;

/// Readable (level-triggered) while it is set. Set and cleared by the delivery queue
/// under its lock; the application only polls it.
#[derive(Debug)]
pub(super) struct ReadyFd {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::OwnedFd,
}

impl ReadyFd {
    /// A new, clear descriptor; an `Unsupported` error elsewhere than Linux.
    pub(super) fn new() -> io::Result<ReadyFd> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::FromRawFd;
            // SAFETY: eventfd takes no pointers; a negative result is an error.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` is a new descriptor that nothing else owns.
            let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
            Ok(ReadyFd { fd })
        }
        #[cfg(not(target_os = "linux"))]
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "an event descriptor needs Linux (eventfd)",
        ))
    }

    /// The descriptor to poll for readability.
    pub(super) fn raw(&self) -> i32 {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            self.fd.as_raw_fd()
        }
        #[cfg(not(target_os = "linux"))]
        -1
    }

    /// Makes it readable (call once per clear → set change).
    pub(super) fn set(&self) {
        #[cfg(target_os = "linux")]
        {
            let one: u64 = 1;
            // SAFETY: writes the 8 bytes of `one`, which outlives the call.
            let _ = unsafe {
                libc::write(
                    self.raw(),
                    (&one as *const u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
    }

    /// Makes it unreadable again.
    pub(super) fn clear(&self) {
        #[cfg(target_os = "linux")]
        {
            let mut count: u64 = 0;
            // SAFETY: reads at most 8 bytes into `count`, which outlives the call; a
            // counter already at zero gives EAGAIN (non-blocking), which is fine.
            let _ = unsafe {
                libc::read(
                    self.raw(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
    }
}
