//! Runs the simulator from the command line.
//!
//! ```text
//! cargo run --release --example sim -- replay 'seed=42,members=5,buffering=replicated,profile=cascade'
//! cargo run --release --example sim -- replay '…' --trace     # every step, in the seed's words
//! cargo run --release --example sim -- sweep profile=cascade,members=5 --runs 10000 [--first-seed S]
//! ```

use std::process::ExitCode;

use abcast::sim::{run_and_check, Sim, SimConfig};

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
            for seed in first..first + runs {
                let c = SimConfig {
                    seed,
                    ..cfg.clone()
                };
                if let Err(f) = run_and_check(&c) {
                    failed += 1;
                    if failed <= 10 {
                        println!("{f}");
                    }
                }
            }
            println!("{runs} runs of {cfg} (seeds {first}..): {failed} failed");
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
