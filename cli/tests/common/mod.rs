//! `abcast` child processes for the CLI tests: one-shot runs and `abcast node` members.
//! The helpers that need no child process come from the library's `tests/common`.
#![allow(dead_code)]

#[path = "../../../tests/common/mod.rs"]
mod shared;
pub use shared::*;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// Lines read from a child's stream, each with the moment it was read.
pub type Lines = Arc<Mutex<Vec<(Instant, String)>>>;

/// One `abcast node` process. Dropping it kills the process (by PID) and reaps it.
pub struct NodeProc {
    pub id: u32,
    pub child: Child,
    pub stdout: Lines,
    pub stderr: Lines,
    /// How many lines the feeder wrote to stdin (its messages 1..=fed).
    pub fed: Arc<AtomicU64>,
    pub stop_feeding: Arc<AtomicBool>,
    feeder: Option<std::thread::JoinHandle<()>>,
}

fn read_lines(stream: impl std::io::Read + Send + 'static, lines: Lines) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines.lock().unwrap().push((Instant::now(), line));
        }
    });
}

impl NodeProc {
    /// Starts `abcast node --id ID --members ... EXTRA...`.
    pub fn spawn(id: u32, members: &[(u32, SocketAddr)], extra: &[&str]) -> NodeProc {
        Self::spawn_under(&[], id, members, extra)
    }

    /// Starts `abcast node` as [`NodeProc::spawn`] does, under `wrapper` (such as
    /// `ip netns exec NS`, which execs in place: the PID is the member's own).
    pub fn spawn_under(
        wrapper: &[&str],
        id: u32,
        members: &[(u32, SocketAddr)],
        extra: &[&str],
    ) -> NodeProc {
        let program = env!("CARGO_BIN_EXE_abcast");
        let mut command = match wrapper.split_first() {
            None => Command::new(program),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
        };
        let mut child = command
            .arg("node")
            .arg("--id")
            .arg(id.to_string())
            .arg("--members")
            .arg(members_arg(members))
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn abcast node");
        let stdout: Lines = Arc::default();
        let stderr: Lines = Arc::default();
        read_lines(child.stdout.take().expect("stdout"), stdout.clone());
        read_lines(child.stderr.take().expect("stderr"), stderr.clone());
        NodeProc {
            id,
            child,
            stdout,
            stderr,
            fed: Arc::default(),
            stop_feeding: Arc::default(),
            feeder: None,
        }
    }

    /// Writes `m<id>-1` ... `m<id>-<total>` to stdin, one line every `pace`, from a
    /// thread; closes stdin after the last (or when told to stop, or on a write
    /// error: the process died).
    pub fn feed(&mut self, total: u64, pace: Duration) {
        let mut stdin: ChildStdin = self.child.stdin.take().expect("stdin");
        let (id, fed, stop) = (self.id, self.fed.clone(), self.stop_feeding.clone());
        self.feeder = Some(std::thread::spawn(move || {
            for k in 1..=total {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                if writeln!(stdin, "{}", payload(id, k))
                    .and_then(|_| stdin.flush())
                    .is_err()
                {
                    break;
                }
                fed.store(k, Ordering::SeqCst);
                std::thread::sleep(pace);
            }
        }));
    }

    /// Waits for the feeder to finish (stdin is then closed).
    pub fn join_feeder(&mut self) {
        if let Some(f) = self.feeder.take() {
            f.join().expect("feeder");
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (a name for `kill`, such as `STOP`) to the process, by PID.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.pid());
    }

    /// SIGSTOP, by PID: the process stays, silent (Drop still kills it).
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    /// SIGCONT, by PID: a frozen process carries on.
    pub fn thaw(&self) {
        self.signal("CONT");
    }

    /// SIGTERM, by PID.
    pub fn terminate(&self) {
        self.signal("TERM");
    }

    /// Waits for the process to exit; returns its exit code (None if it did not).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The delivered messages so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| parse_delivery(l))
            .collect()
    }

    /// Delivered messages with the moment each line was read.
    pub fn timed_deliveries(&self) -> Vec<(Instant, Delivery)> {
        self.stdout
            .lock()
            .unwrap()
            .iter()
            .map(|(t, l)| (*t, parse_delivery(l)))
            .collect()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The sequence number of the `relayer-changed` event naming `relayer`, if seen.
    pub fn relayer_changed_seq(&self, relayer: u32) -> Option<u64> {
        let want = "relayer-changed epoch=";
        let tail = format!(" relayer={relayer}");
        self.stderr.lock().unwrap().iter().find_map(|(_, l)| {
            let rest = l.strip_prefix("event seq=")?;
            if !l.contains(want) || !l.ends_with(&tail) {
                return None;
            }
            rest.split_whitespace().next()?.parse().ok()
        })
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.stop_feeding.store(true, Ordering::SeqCst);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `abcast` program with `args` (stdin closed) and returns its stdout once it
/// exited successfully. A run that exceeds `deadline` is killed by PID and fails the
/// test; so does a non-zero exit. Both outputs are echoed for the test log.
pub fn run_abcast<I, S>(args: I, deadline: Duration) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::io::Read;
    use std::process::{Command, Stdio};
    let started = Instant::now();
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let label = format!(
        "abcast {}",
        args.first().map_or("", |a| a.to_str().unwrap_or("?"))
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_abcast"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {label}: {e}"));
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if started.elapsed() > deadline {
            // SIGKILL by PID; its member processes see their stdin end and exit.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    eprintln!("{stdout}\n{stderr}\n({label} ran {:?})", started.elapsed());
    let status = status.unwrap_or_else(|| panic!("{label} did not finish within {deadline:?}"));
    assert!(status.success(), "{label} exited with {status}");
    stdout
}

/// A key file of its own for each test, removed at the end.
pub struct KeyFile(std::path::PathBuf);

impl KeyFile {
    pub fn new(name: &str) -> KeyFile {
        let path =
            std::env::temp_dir().join(format!("abcast-test-key-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_abcast"))
            .arg("keygen")
            .arg(&path)
            .output()
            .expect("run abcast keygen");
        assert!(out.status.success(), "keygen: {out:?}");
        KeyFile(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temporary path")
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether the other end of `stream` closes it within `within`, reading (and
/// dropping) what it writes meanwhile: a read of end of stream or an error counts
/// as closed.
pub fn closes_within(stream: &mut std::net::TcpStream, within: Duration) -> bool {
    use std::io::Read;
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 16 * 1024];
    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// The `--quorum` a group with `buffering` runs with: distributed buffering needs
/// `none`.
pub fn quorum_for(buffering: &str) -> &'static str {
    if buffering == "distributed" {
        "none"
    } else {
        "majority"
    }
}
