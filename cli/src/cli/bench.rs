//! `abcast bench`: a local group on loopback under load, measured, beside the raw-TCP
//! limit of the same traffic shape measured in the same run.
//!
//! The group's members are `abcast bench-member` processes (threads with
//! `--in-process`). From a common start time every sender broadcasts `--size`-byte
//! messages, as fast as the runtime lets it or at a fixed `--rate` (open loop), for
//! `--duration` seconds; each payload carries its sender, its number and its send
//! time, so every member measures the latency from broadcast to its own delivery and
//! checks FIFO and exactly-once per sender, and keeps a running hash of the sequence
//! it delivered. Then every member broadcasts an end message; once a member has
//! delivered the end message of every member in its view, it reports; once every
//! member has reported, they all leave gracefully. Identical hashes at the last end
//! message mean an identical order.
//!
//! Figures: throughput counts the data messages a member delivered while the load ran
//! (after the warm-up), per second; latency is from the send time in the payload
//! (open loop: the time the message was due) to the delivery, over every member; the
//! fail-over gap runs from the SIGKILL to a survivor's first delivery of a message
//! ordered by the new relayer; peak RSS is each member's VmHWM; CPU per delivered
//! message is the user and system time of every process of the run over the
//! window, divided by the data messages every member delivered in it.
//!
//! `--plot DIR` draws the figures as SVG files; `--sweep-nodes` and `--sweep-sizes`
//! run the whole benchmark once per value.
//!
//! The raw-TCP baseline runs the same members, payloads and load against one
//! forwarding process that writes every frame to every member (batched, no
//! protocol): the limit a relayer-based group on this machine cannot beat.

use std::process::ExitCode;

pub use args::BenchArgs;

use coordinator::run_group;
use group::{GroupOutcome, GroupSpec, Mode};
use progress::ProgressLine;
use report::{describe, print_report};

// `abcast bench` itself: options, progress, what it prints.
mod args;
pub mod format;
mod json;
mod plot;
pub mod progress;
pub mod report;
mod sweep;

// The coordinator, which `abcast demo` uses too.
pub mod coordinator;
mod figures;
pub mod group;
mod handle;

// The processes it starts, and what they share with it.
mod clock;
mod cpu;
pub mod forwarder;
mod framing;
mod histogram;
pub mod member;
mod payload;
mod procfs;
pub mod protocol;
mod timeline;

/// Runs abcast's group of `spec`, then (if `baseline`) the raw-TCP baseline of the
/// same traffic, each with a progress line labelled from `label`.
fn measure(
    spec: &GroupSpec,
    baseline: bool,
    label: &str,
) -> Result<(GroupOutcome, Option<GroupOutcome>), String> {
    let abcast = run_group(spec, &mut ProgressLine::new(label))?;
    if !baseline {
        return Ok((abcast, None));
    }
    let b = GroupSpec {
        mode: Mode::RawTcp,
        kill_after: None,
        timeline: false,
        ..spec.clone()
    };
    let raw_label = label.replacen("abcast", "raw TCP", 1);
    let raw = run_group(&b, &mut ProgressLine::new(&raw_label))
        .map_err(|e| format!("raw-TCP baseline: {e}"))?;
    Ok((abcast, Some(raw)))
}

/// Runs `abcast bench`.
pub fn run(args: BenchArgs) -> ExitCode {
    // A sweep's runs each have a spec of their own, in place of --nodes and --size.
    let planned = if args::sweeping(&args) {
        sweep::plan(&args).map(|runs| (None, runs))
    } else {
        args::spec(&args).map(|s| (Some(s), Vec::new()))
    };
    let spec = match planned {
        Ok((Some(spec), _)) => spec,
        Ok((None, runs)) => return sweep::run(&args, runs),
        Err(e) => {
            eprintln!("abcast bench: {e}");
            return ExitCode::from(2);
        }
    };
    println!("{}", describe(&spec));
    let (abcast, baseline) = match measure(&spec, !args.no_baseline, "abcast") {
        Ok(r) => r,
        Err(e) => {
            eprintln!("abcast bench: {e}");
            return ExitCode::from(1);
        }
    };
    let fa = abcast.figures();
    let fb = baseline.as_ref().map(GroupOutcome::figures);
    print_report(&abcast, &fa, baseline.as_ref(), fb.as_ref());
    let mut code = ExitCode::SUCCESS;
    if let Some(path) = &args.json {
        let json = json::to_json(&spec, &abcast, &fa, fb.as_ref());
        if let Err(e) = std::fs::write(path, json) {
            eprintln!("abcast bench: write {}: {e}", path.display());
            return ExitCode::from(1);
        }
        println!("JSON written to {}", path.display());
    }
    if let Some(dir) = &args.plot {
        if !plot::announce(plot::write_run(dir, spec.size, &abcast, &fa, fb.as_ref())) {
            code = ExitCode::from(1);
        }
    }
    let baseline_ok = baseline
        .as_ref()
        .map_or(true, |b| b.errors.is_empty() && b.check_failures.is_empty());
    if fa.all_checks_passed && baseline_ok {
        code
    } else {
        ExitCode::from(1)
    }
}
