//! The coordinator's hold on what it started: each member, a child process or (in
//! process) a thread, and the raw-TCP baseline's forwarder process. Dropping a
//! [`Handle`] kills its process by PID ([`std::process::Child::kill`], a SIGKILL).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::member::{run_member, Ctrl, MemberArgs, Out};
use super::protocol::Report;

/// What reaches the coordinator from member `usize`: a report, or the end of its
/// output.
pub enum Msg {
    Report(usize, Report),
    Closed(usize),
}

/// A started member (or forwarder).
pub enum Handle {
    Process {
        child: Child,
        stdin: Option<ChildStdin>,
        stderr: Arc<Mutex<VecDeque<String>>>,
    },
    Thread {
        ctrl: Sender<Ctrl>,
        join: Option<JoinHandle<()>>,
    },
}

/// Lines of a member's stderr kept, the last ones, for the report.
const STDERR_TAIL: usize = 30;

/// Starts `abcast ARGS` as member `i`: its stdout lines reach `tx` as reports, the
/// last [`STDERR_TAIL`] lines of its stderr are kept.
pub fn spawn_process(args: &[String], i: usize, tx: &Sender<Msg>) -> Result<Handle, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", args[0]))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr_pipe = child.stderr.take().expect("piped stderr");
    let tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match Report::parse(&line) {
                Some(r) => {
                    let _ = tx.send(Msg::Report(i, r));
                }
                None => {
                    let _ = tx.send(Msg::Report(
                        i,
                        Report::Failed(format!("unexpected output line {line:?}")),
                    ));
                }
            }
        }
        let _ = tx.send(Msg::Closed(i));
    });
    let stderr = Arc::new(Mutex::new(VecDeque::new()));
    {
        let stderr = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut q) = stderr.lock() {
                    if q.len() == STDERR_TAIL {
                        q.pop_front();
                    }
                    q.push_back(line);
                }
            }
        });
    }
    Ok(Handle::Process {
        stdin: child.stdin.take(),
        child,
        stderr,
    })
}

/// Runs member `i` as a thread of this process, reporting to `tx`.
pub fn spawn_thread(args: MemberArgs, i: usize, tx: &Sender<Msg>) -> Result<Handle, String> {
    let (ctrl_tx, ctrl_rx) = crossbeam_channel::unbounded();
    let tx = tx.clone();
    let join = std::thread::Builder::new()
        .name(format!("bench-member-{}", args.id))
        .spawn(move || {
            let out: Out = {
                let tx = tx.clone();
                Arc::new(move |r| {
                    let _ = tx.send(Msg::Report(i, r));
                })
            };
            if let Err(e) = run_member(&args, &ctrl_rx, out) {
                let _ = tx.send(Msg::Report(i, Report::Failed(e)));
            }
            let _ = tx.send(Msg::Closed(i));
        })
        .map_err(|e| format!("spawn a member thread: {e}"))?;
    Ok(Handle::Thread {
        ctrl: ctrl_tx,
        join: Some(join),
    })
}

impl Handle {
    /// Its process id (None for a thread).
    pub fn pid(&self) -> Option<u32> {
        match self {
            Handle::Process { child, .. } => Some(child.id()),
            Handle::Thread { .. } => None,
        }
    }

    /// Tells the member `c` (a line on its stdin, or through its channel).
    pub fn send(&mut self, c: Ctrl) {
        match self {
            Handle::Process { stdin, .. } => {
                if let Some(s) = stdin {
                    let ok = match c {
                        Ctrl::Go { t_go, t_end } => writeln!(s, "go {t_go} {t_end}"),
                        Ctrl::Leave => writeln!(s, "leave"),
                        Ctrl::Abort => writeln!(s, "abort"),
                    };
                    if ok.and_then(|_| s.flush()).is_err() {
                        *stdin = None;
                    }
                }
            }
            Handle::Thread { ctrl, .. } => {
                let _ = ctrl.send(c);
            }
        }
    }

    /// SIGKILL (by PID) and reap.
    pub fn kill(&mut self) {
        if let Handle::Process { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `deadline` for the member to end; kills it then. Returns its exit
    /// code (None: killed, or a thread).
    pub fn finish(&mut self, deadline: Instant) -> Result<Option<i32>, String> {
        match self {
            Handle::Process { child, stdin, .. } => {
                *stdin = None;
                loop {
                    match child.try_wait() {
                        Ok(Some(st)) => return Ok(st.code()),
                        Ok(None) if Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        _ => {
                            let _ = child.kill();
                            let _ = child.wait();
                            return Err("did not exit in time: killed".into());
                        }
                    }
                }
            }
            Handle::Thread { join, .. } => {
                if let Some(j) = join.take() {
                    while !j.is_finished() {
                        if Instant::now() >= deadline {
                            return Err("its thread did not end in time".into());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    j.join().map_err(|_| "its thread panicked".to_string())?;
                }
                Ok(None)
            }
        }
    }

    /// The last lines it wrote to stderr.
    pub fn stderr_tail(&self) -> Vec<String> {
        match self {
            Handle::Process { stderr, .. } => stderr
                .lock()
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            Handle::Thread { .. } => Vec::new(),
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The forwarder process of the raw-TCP baseline.
pub struct Forwarder {
    pub handle: Handle,
    pub addr: SocketAddr,
}

/// Starts the forwarder for `nodes` members and reads the address it listens on.
/// Its threads run under SCHED_FIFO at `realtime_priority` if given: the same
/// scheduling as abcast's runtime threads in the same run.
pub fn start_forwarder(nodes: usize, realtime_priority: Option<u8>) -> Result<Forwarder, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let mut args = vec![
        "bench-forwarder".to_string(),
        "--nodes".into(),
        nodes.to_string(),
    ];
    if let Some(p) = realtime_priority {
        args.extend(["--realtime-priority".into(), p.to_string()]);
    }
    let mut child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("spawn bench-forwarder: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = crossbeam_channel::bounded(4);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let handle = Handle::Process {
        stdin: child.stdin.take(),
        child,
        stderr: Arc::default(),
    };
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the forwarder did not start within 10 s".to_string())?;
    let addr = line
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("the forwarder said {line:?}"))?;
    Ok(Forwarder { handle, addr })
}
