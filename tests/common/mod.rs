//! Helpers shared by the runtime and CLI integration tests.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use abcast::{Config, Event, Node};

/// `n` loopback addresses with free ports (bound to port 0 and released).
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr"))
        .collect()
}

/// Members 1..=n on free loopback ports.
pub fn members(n: usize) -> Vec<(u32, SocketAddr)> {
    free_addrs(n)
        .into_iter()
        .enumerate()
        .map(|(i, a)| (i as u32 + 1, a))
        .collect()
}

/// `ID=ADDR,...` for the command line.
pub fn members_arg(members: &[(u32, SocketAddr)]) -> String {
    members
        .iter()
        .map(|(id, a)| format!("{id}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One delivered application message: position, origin, payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub seq: u64,
    pub origin: u32,
    pub payload: String,
}

/// Starts every member of `members` in this process, each with the configuration
/// `configure` makes of `Config::new(id, members)`. The starts run in parallel (each
/// waits for the others to connect).
pub fn start_nodes(
    members: &[(u32, SocketAddr)],
    configure: impl Fn(Config) -> Config,
) -> Vec<Arc<Node>> {
    let handles: Vec<_> = members
        .iter()
        .map(|(id, _)| {
            let cfg = configure(Config::new(*id, members.to_vec()));
            std::thread::spawn(move || Node::start(cfg).expect("start"))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| Arc::new(h.join().expect("start thread")))
        .collect()
}

/// Starts one thread per node that broadcasts `payload(id, 1..=per_member)`, pausing
/// `pace` after each message; join the handles to wait for them.
pub fn broadcast_from_all(
    nodes: &[Arc<Node>],
    per_member: u64,
    pace: Duration,
) -> Vec<std::thread::JoinHandle<()>> {
    nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            std::thread::spawn(move || {
                for k in 1..=per_member {
                    node.broadcast(payload(node.id(), k).as_bytes())
                        .expect("broadcast");
                    if !pace.is_zero() {
                        std::thread::sleep(pace);
                    }
                }
            })
        })
        .collect()
}

/// Collects `node`'s events until `deliveries` application messages arrived; panics,
/// naming what it got, if `deadline` passes first. Returns the deliveries and the
/// other events.
pub fn collect(node: &Node, deliveries: usize, deadline: Instant) -> (Vec<Delivery>, Vec<Event>) {
    let mut log = Vec::new();
    let mut others = Vec::new();
    while log.len() < deliveries {
        let left = deadline.saturating_duration_since(Instant::now());
        match node.recv_timeout(left) {
            Ok(Event::Deliver {
                seq,
                origin,
                payload,
            }) => log.push(Delivery {
                seq,
                origin,
                payload: String::from_utf8(payload.to_vec()).expect("utf8"),
            }),
            Ok(other) => others.push(other),
            Err(e) => panic!(
                "member {}: {e} after {} of {deliveries} deliveries; events {others:?}",
                node.id(),
                log.len()
            ),
        }
    }
    (log, others)
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

/// Payloads are `m<origin>-<k>`, `k` counting from 1 per sender.
pub fn payload(origin: u32, k: u64) -> String {
    format!("m{origin}-{k}")
}

fn parse_payload(p: &str) -> Option<(u32, u64)> {
    let rest = p.strip_prefix('m')?;
    let (o, k) = rest.split_once('-')?;
    Some((o.parse().ok()?, k.parse().ok()?))
}

/// Checks the properties of DESIGN.md section 1 on the delivery logs of members
/// that all survived from the start: identical sequences (one a prefix of the
/// other when `allow_prefix`), no duplicates, payload origin matches, FIFO per sender,
/// and for each `complete` sender every message 1..=n delivered.
pub fn check_logs(
    logs: &BTreeMap<u32, Vec<Delivery>>,
    complete: &BTreeMap<u32, u64>,
    allow_prefix: bool,
) {
    let longest = logs
        .values()
        .max_by_key(|l| l.len())
        .expect("at least one log");
    for (id, log) in logs {
        if allow_prefix {
            assert_eq!(
                &longest[..log.len()],
                &log[..],
                "member {id}'s log is not a prefix of the longest"
            );
        } else {
            assert_eq!(longest, log, "member {id}'s log differs");
        }
    }
    // Sequence numbers strictly increase (gaps are membership events).
    for w in longest.windows(2) {
        assert!(
            w[0].seq < w[1].seq,
            "sequence numbers not increasing: {w:?}"
        );
    }
    let mut seen = HashSet::new();
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    for d in longest {
        assert!(seen.insert(d.payload.clone()), "duplicate delivery {d:?}");
        let (o, k) = parse_payload(&d.payload).unwrap_or_else(|| panic!("bad payload {d:?}"));
        assert_eq!(
            o, d.origin,
            "payload origin differs from the delivered origin: {d:?}"
        );
        let l = last.entry(o).or_insert(0);
        assert!(k > *l, "FIFO violated for sender {o}: {k} after {l}");
        if complete.contains_key(&o) {
            assert_eq!(k, *l + 1, "gap in sender {o}'s messages: {k} after {l}");
        }
        *l = k;
    }
    for (o, n) in complete {
        assert_eq!(
            last.get(o).copied().unwrap_or(0),
            *n,
            "not every message of sender {o} was delivered"
        );
    }
}

// ---------------------------------------------------------------------------
// `abcast node` child processes

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
        let mut child = Command::new(env!("CARGO_BIN_EXE_abcast"))
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

    /// SIGSTOP, by PID: the process stays, silent (Drop still kills it).
    pub fn freeze(&self) {
        let status = Command::new("kill")
            .arg("-STOP")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -STOP {} failed", self.pid());
    }

    /// SIGTERM, by PID.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
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

/// Parses a stdout line `SEQ ORIGIN PAYLOAD`.
pub fn parse_delivery(line: &str) -> Delivery {
    let mut it = line.splitn(3, ' ');
    let seq = it.next().and_then(|s| s.parse().ok());
    let origin = it.next().and_then(|s| s.parse().ok());
    let payload = it.next().unwrap_or("").to_string();
    match (seq, origin) {
        (Some(seq), Some(origin)) => Delivery {
            seq,
            origin,
            payload,
        },
        _ => panic!("malformed delivery line {line:?}"),
    }
}
