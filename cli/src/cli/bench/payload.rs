//! The header every benchmark payload starts with: what kind of message it is, who
//! sent it, its number and its send time.

/// Bytes of the header every benchmark payload starts with: kind (1), origin (4),
/// per-sender number `k` (8), send time in ns since the Unix epoch (8).
pub const HEADER_BYTES: usize = 21;
/// A data message: `k` counts from 1 per sender.
pub const KIND_DATA: u8 = 0;
/// The sender's last message: `k` is how many data messages it sent.
pub const KIND_END: u8 = 1;

/// Writes the header into `buf` (at least [`HEADER_BYTES`] long).
pub fn write_header(buf: &mut [u8], kind: u8, origin: u32, k: u64, t_ns: u64) {
    buf[0] = kind;
    buf[1..5].copy_from_slice(&origin.to_le_bytes());
    buf[5..13].copy_from_slice(&k.to_le_bytes());
    buf[13..21].copy_from_slice(&t_ns.to_le_bytes());
}

/// Reads a header: `(kind, origin, k, t_ns)`.
pub fn read_header(buf: &[u8]) -> Option<(u8, u32, u64, u64)> {
    if buf.len() < HEADER_BYTES {
        return None;
    }
    let origin = u32::from_le_bytes(buf[1..5].try_into().ok()?);
    let k = u64::from_le_bytes(buf[5..13].try_into().ok()?);
    let t = u64::from_le_bytes(buf[13..21].try_into().ok()?);
    Some((buf[0], origin, k, t))
}
