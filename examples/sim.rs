//! Runs the simulator from the command line.
//!
//! ```text
//! cargo run --release --example sim -- replay 'seed=42,members=5,buffering=replicated,profile=cascade'
//! cargo run --release --example sim -- replay '…' --trace     # every step, in the seed's words
//! cargo run --release --example sim -- sweep profile=cascade,members=5 --runs 10000 [--first-seed S]
//! ```

use std::process::ExitCode;

use std::collections::BTreeMap;
use std::fmt;

use abcast::sim::{run_and_check, LiveFaultCounts, Sim, SimConfig};

/// How many runs of a sweep reached each kind of fault.
#[derive(Default)]
struct FaultsReached {
    crash: u64,
    false_suspicion: u64,
    partition: u64,
    heal: u64,
    pause: u64,
    link_break: u64,
    reconnect: u64,
    raced_restart: u64,
}

impl FaultsReached {
    fn add(&mut self, crashes: usize, live: LiveFaultCounts) {
        self.crash += u64::from(crashes > 0);
        self.false_suspicion += u64::from(live.false_suspicions > 0);
        self.partition += u64::from(live.partitions > 0);
        self.heal += u64::from(live.heals > 0);
        self.pause += u64::from(live.pauses > 0);
        self.link_break += u64::from(live.link_breaks > 0);
        self.reconnect += u64::from(live.reconnects > 0);
        self.raced_restart += u64::from(live.raced_restarts > 0);
    }
}

impl fmt::Display for FaultsReached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash {}, suspicion of a live member {}, partition {}, heal {}, pause {}, \
             link break {}, reconnect {}, restart before the failure was noticed {}",
            self.crash,
            self.false_suspicion,
            self.partition,
            self.heal,
            self.pause,
            self.link_break,
            self.reconnect,
            self.raced_restart
        )
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let value = |name: &str| flag(name).and_then(|i| args.get(i + 1)).cloned();
    let (Some(cmd), Some(spec)) = (args.first(), args.get(1)) else {
        eprintln!("usage: sim replay SPEC [--trace] | sim sweep SPEC [--runs N] [--first-seed S]");
        return ExitCode::from(2);
    };
    let cfg: SimConfig = match spec.parse() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bad spec: {e}");
            return ExitCode::from(2);
        }
    };
    match cmd.as_str() {
        "replay" => {
            if flag("--trace").is_some() {
                for line in Sim::new(cfg.clone()).with_trace().run().trace {
                    println!("{line}");
                }
            }
            match run_and_check(&cfg) {
                Ok(o) => {
                    println!(
                        "{cfg}: all properties hold ({} steps, {} crashes)",
                        o.steps, o.crashes
                    );
                    ExitCode::SUCCESS
                }
                Err(f) => {
                    println!("{f}");
                    ExitCode::FAILURE
                }
            }
        }
        "sweep" => {
            let runs: u64 = value("--runs").and_then(|v| v.parse().ok()).unwrap_or(1000);
            let first: u64 = value("--first-seed")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut failed = 0;
            let mut by_property: BTreeMap<String, u64> = BTreeMap::new();
            let mut reached = FaultsReached::default();
            for seed in first..first + runs {
                let c = SimConfig {
                    seed,
                    ..cfg.clone()
                };
                match run_and_check(&c) {
                    Ok(o) => reached.add(o.crashes, o.live_faults),
                    Err(f) => {
                        reached.add(f.crashes, f.live_faults);
                        failed += 1;
                        *by_property
                            .entry(f.violation.property.to_string())
                            .or_default() += 1;
                        if failed <= 10 {
                            println!("{f}");
                        }
                    }
                }
            }
            println!("{runs} runs of {cfg} (seeds {first}..): {failed} failed {by_property:?}");
            println!("runs that reached each fault: {reached}");
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        _ => {
            eprintln!("unknown command {cmd:?}");
            ExitCode::from(2)
        }
    }
}
