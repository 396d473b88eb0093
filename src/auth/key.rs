//! The group key: a secret every member holds, kept in a key file.
//!
//! A key file is one line: `abcast-group-key-v1 ` and 64 hexadecimal digits (32
//! random bytes), as `abcast keygen` writes it, with mode 0600. The key never appears
//! in a log or a `Debug` string; its [`fingerprint`](GroupKey::fingerprint) does,
//! so that two members can tell whether they hold the same key.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of secret in a group key.
pub const GROUP_KEY_BYTES: usize = 32;

/// What a key file starts with.
const KEY_FILE_PREFIX: &str = "abcast-group-key-v1 ";

/// The largest key file read (a valid one is 85 bytes).
const KEY_FILE_MAX_BYTES: u64 = 4096;

/// The secret shared by a group's members: with it, every connection proves that
/// both ends hold it, and every frame is authenticated (see the crate's `auth`
/// module).
#[derive(Clone, PartialEq, Eq)]
pub struct GroupKey {
    secret: [u8; GROUP_KEY_BYTES],
}

/// Why a group key could not be made, read or written.
#[derive(Debug)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    Io {
        /// The path.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The file is not a key file (what is wrong).
    Malformed {
        /// The path.
        path: String,
        /// What is wrong.
        what: &'static str,
    },
    /// A key given as bytes is not [`GROUP_KEY_BYTES`] long (the length given).
    WrongLength(usize),
    /// The operating system's random number generator failed.
    NoRandomness,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Io { path, source } => write!(f, "key file {path}: {source}"),
            KeyError::Malformed { path, what } => write!(f, "key file {path}: {what}"),
            KeyError::WrongLength(n) => {
                write!(f, "a group key is {GROUP_KEY_BYTES} bytes, not {n}")
            }
            KeyError::NoRandomness => write!(f, "the system's random number generator failed"),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl GroupKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<GroupKey, KeyError> {
        let mut secret = [0u8; GROUP_KEY_BYTES];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| KeyError::NoRandomness)?;
        Ok(GroupKey { secret })
    }

    /// A key from its [`GROUP_KEY_BYTES`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<GroupKey, KeyError> {
        let secret = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(GroupKey { secret })
    }

    /// The secret (for the handshake's key derivation).
    pub(crate) fn secret(&self) -> &[u8; GROUP_KEY_BYTES] {
        &self.secret
    }

    /// The first 8 bytes of the SHA-256 of the key, in hexadecimal: safe to log,
    /// and the same on every member that holds the same key.
    pub fn fingerprint(&self) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, &self.secret);
        hex(&d.as_ref()[..8])
    }

    /// Writes a new random key to a new file at `path`, readable and writable by its
    /// owner only (mode 0600). An existing file is never overwritten.
    pub fn write_new_file(path: &Path) -> Result<GroupKey, KeyError> {
        let key = GroupKey::generate()?;
        let io_err = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(io_err)?;
        let line = format!("{KEY_FILE_PREFIX}{}\n", hex(&key.secret));
        f.write_all(line.as_bytes()).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        Ok(key)
    }

    /// Reads a key file (see the module docs).
    pub fn read_file(path: &Path) -> Result<GroupKey, KeyError> {
        let shown = path.display().to_string();
        let io_err = |source| KeyError::Io {
            path: shown.clone(),
            source,
        };
        let malformed = |what| KeyError::Malformed {
            path: shown.clone(),
            what,
        };
        let f = std::fs::File::open(path).map_err(io_err)?;
        let mut text = String::new();
        io::Read::read_to_string(&mut io::Read::take(f, KEY_FILE_MAX_BYTES), &mut text)
            .map_err(|_| malformed("not a text file"))?;
        GroupKey::parse(&text).map_err(malformed)
    }

    /// Parses a key file's text.
    fn parse(text: &str) -> Result<GroupKey, &'static str> {
        let line = text.trim_end_matches(['\n', '\r']);
        let digits = line
            .strip_prefix(KEY_FILE_PREFIX)
            .ok_or("not an abcast group key file (it must start with abcast-group-key-v1)")?;
        if digits.len() != 2 * GROUP_KEY_BYTES {
            return Err("the key must be 64 hexadecimal digits");
        }
        let mut secret = [0u8; GROUP_KEY_BYTES];
        for (i, pair) in digits.as_bytes().chunks(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or("the key has a character that is not hexadecimal")?;
            let lo = hex_value(pair[1]).ok_or("the key has a character that is not hexadecimal")?;
            secret[i] = hi << 4 | lo;
        }
        Ok(GroupKey { secret })
    }
}

impl fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey(fingerprint {})", self.fingerprint())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_reads_back_as_the_key_written() {
        let dir = std::env::temp_dir().join(format!("abcast-key-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let written = GroupKey::write_new_file(&dir).unwrap();
        let read = GroupKey::read_file(&dir).unwrap();
        assert_eq!(written, read);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = GroupKey::write_new_file(&dir);
        assert!(matches!(again, Err(KeyError::Io { .. })), "{again:?}");
        assert_eq!(
            GroupKey::read_file(&dir).unwrap(),
            written,
            "not overwritten"
        );
        std::fs::remove_file(&dir).unwrap();
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let good = format!("{KEY_FILE_PREFIX}{}\n", "ab".repeat(32));
        assert!(GroupKey::parse(&good).is_ok());
        for bad in [
            String::new(),
            "ab".repeat(32),
            format!("{KEY_FILE_PREFIX}{}", "ab".repeat(31)),
            format!("{KEY_FILE_PREFIX}{}", "ab".repeat(33)),
            format!("{KEY_FILE_PREFIX}{}zz", "ab".repeat(31)),
            format!("{KEY_FILE_PREFIX}{} ", "ab".repeat(32)),
        ] {
            assert!(GroupKey::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_shows_the_fingerprint_not_the_key() {
        let k = GroupKey::from_bytes(&[7u8; 32]).unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains(&k.fingerprint()));
        assert!(!shown.contains("0707070707"));
        assert!(GroupKey::from_bytes(&[1u8; 31]).is_err());
    }
}
