//! `abcast demo --quick`: a 4-process group on loopback, the relayer SIGKILLed, the
//! survivors verified. It must exit 0 and print the verified line.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The demo's own deadlines are shorter; this only keeps a hung run from hanging CI.
const DEADLINE: Duration = Duration::from_secs(90);

#[test]
fn demo_quick_verifies_the_survivors() {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_abcast"))
        .args(["demo", "--quick"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn abcast demo");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break Some(st);
        }
        if started.elapsed() > DEADLINE {
            // SIGKILL by PID; its members see their stdin end and exit.
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out.join().expect("stdout reader");
    let stderr = err.join().expect("stderr reader");
    eprintln!("{stdout}\n{stderr}\n(demo ran {:?})", started.elapsed());
    let status = status.unwrap_or_else(|| panic!("abcast demo did not finish within {DEADLINE:?}"));
    assert!(status.success(), "abcast demo exited with {status}");
    for want in [
        "group formed",
        "SIGKILL member 1, the relayer",
        "relayer changed: member 2",
        "identical order: yes",
        "verified: identical order at the 3 survivors",
    ] {
        assert!(stdout.contains(want), "no {want:?} in the demo's output");
    }
}
