//! A private network for the namespace tests: one network namespace per member, each
//! with a veth pair whose other end sits on a bridge in a namespace of its own, and
//! addresses 10.77.0.ID/24 that exist only inside these namespaces.
//!
//! Every name starts with `abcast-<test pid>-<case>`, so that nothing outside the
//! test is touched and two runs never meet. Dropping a [`Net`] kills whatever still
//! runs in its namespaces (by PID) and deletes them, which removes their veths and
//! the bridge too; it runs on a failing test as well.

use std::net::SocketAddr;
use std::process::Command;

/// The TCP port every member listens on, inside its own namespace.
pub const PORT: u16 = 7000;

/// Runs `ip ARGS...`; Err with its stderr if it fails.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Why this machine cannot run the namespace tests, if it cannot: they need root
/// and `ip` from iproute2, and a kernel that lets them make namespaces and veths.
pub fn unavailable() -> Option<String> {
    let probe = format!("abcast-{}-probe", std::process::id());
    match ip(&["netns", "add", &probe]) {
        Ok(()) => {
            let _ = ip(&["netns", "del", &probe]);
            None
        }
        Err(e) => Some(e),
    }
}

/// The namespaces, veths and bridge of one test case.
pub struct Net {
    prefix: String,
    members: Vec<u32>,
}

impl Net {
    /// Makes the network for `members` (ids 1..=254) of test case `case`.
    pub fn create(case: &str, members: &[u32]) -> Net {
        let net = Net {
            prefix: format!("abcast-{}-{case}", std::process::id()),
            members: members.to_vec(),
        };
        net.remove_namespaces();
        if let Err(e) = net.build() {
            panic!("setting up the test network: {e}");
        }
        net
    }

    fn build(&self) -> Result<(), String> {
        let br = self.bridge_ns();
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for &id in &self.members {
            let ns = self.member_ns(id);
            let port = format!("p{id}");
            let addr = format!("10.77.0.{id}/24");
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n", &ns, "link", "add", "eth0", "type", "veth", "peer", "name", &port, "netns",
                &br,
            ])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &port, "up"])?;
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }

    fn bridge_ns(&self) -> String {
        format!("{}-br", self.prefix)
    }

    /// The namespace member `id` runs in.
    pub fn member_ns(&self, id: u32) -> String {
        format!("{}-m{id}", self.prefix)
    }

    /// Member `id`'s address, reachable from the other members' namespaces.
    pub fn addr(id: u32) -> SocketAddr {
        SocketAddr::from(([10, 77, 0, id as u8], PORT))
    }

    /// Every member with its address, for `--members`.
    pub fn member_list(&self) -> Vec<(u32, SocketAddr)> {
        self.members.iter().map(|&id| (id, Net::addr(id))).collect()
    }

    /// Takes member `id`'s link down (`up == false`) or up again, at the bridge:
    /// its host drops off the network without a FIN or RST, and comes back.
    pub fn set_link(&self, id: u32, up: bool) {
        let port = format!("p{id}");
        let state = if up { "up" } else { "down" };
        if let Err(e) = ip(&["-n", &self.bridge_ns(), "link", "set", &port, state]) {
            panic!("link {state} for member {id}: {e}");
        }
    }

    /// Kills (SIGKILL, by PID) every process still inside the namespaces, then
    /// deletes them. Safe to call when some never existed.
    fn remove_namespaces(&self) {
        let mut names: Vec<String> = self.members.iter().map(|&id| self.member_ns(id)).collect();
        names.push(self.bridge_ns());
        for ns in &names {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.remove_namespaces();
    }
}
