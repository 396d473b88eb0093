//! SIGTERM and SIGINT, turned into a byte on a socket pair (the self-pipe trick, by
//! `signal-hook`), so that an ordinary thread can react to them.

use std::io;
use std::os::unix::net::UnixStream;

/// Installs the handlers for SIGTERM and SIGINT; returns the read end, which yields a
/// byte per signal.
pub fn install() -> io::Result<UnixStream> {
    let (read, write) = UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, write.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, write)?;
    Ok(read)
}
