//! What the end-to-end benchmarks share: a group of in-process members on loopback.

use std::net::TcpListener;
use std::sync::Arc;

use abcast::{Buffering, Config, Node, Quorum};

/// Starts `n` in-process members on free loopback ports, all at once (each waits
/// for the others), with `buffering`, the quorum rule it needs, and whatever
/// `tweak` sets on each member's configuration.
pub fn start_group(
    n: usize,
    buffering: Buffering,
    tweak: &dyn Fn(Config) -> Config,
) -> Vec<Arc<Node>> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let members: Vec<(u32, std::net::SocketAddr)> = listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (i as u32 + 1, l.local_addr().expect("addr")))
        .collect();
    drop(listeners);
    let quorum = match buffering {
        Buffering::Replicated => Quorum::Majority,
        Buffering::Distributed => Quorum::None,
    };
    let starting: Vec<_> = members
        .iter()
        .map(|(id, _)| {
            let cfg = tweak(
                Config::new(*id, members.clone())
                    .with_buffering(buffering)
                    .with_quorum(quorum),
            );
            std::thread::spawn(move || Node::start(cfg).expect("start a member"))
        })
        .collect();
    starting
        .into_iter()
        .map(|h| Arc::new(h.join().expect("start")))
        .collect()
}
