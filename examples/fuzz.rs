//! The fuzz targets on the stable toolchain: each target runs on inputs mutated
//! from its corpus (`fuzz/corpus/TARGET/`) for a time budget, from one seed.
//!
//! ```text
//! cargo run --release --example fuzz -- [--seconds S] [--seed N] [--save] [TARGET...]
//! ```
//!
//! A panicking input is written to `target/fuzz-crashes/TARGET-SEED-N` and the run
//! fails, printing the seed and the input's path (`fuzz/` replays any input with
//! cargo-fuzz; `tests/fuzz_corpus.rs` replays the corpus). `--save` adds to the
//! corpus inputs of new lengths (the corpus stays small: this finder has no
//! coverage feedback, which cargo-fuzz adds).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use abcast::fuzz::TARGETS;

/// A small, fast, seeded generator (xorshift64*): not for secrets.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The most bytes an input grows to.
const MAX_INPUT_BYTES: usize = 4096;

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = [0, 1, 0x7F, 0x80, 0xFF, rng.next() as u8][rng.below(6)];
            }
            2 if input.len() < MAX_INPUT_BYTES => {
                let i = rng.below(input.len() + 1);
                input.insert(i, rng.next() as u8);
            }
            3 if !input.is_empty() => {
                let i = rng.below(input.len());
                let n = 1 + rng.below((input.len() - i).min(16));
                input.drain(i..i + n);
            }
            4 if !corpus.is_empty() => {
                // Splice a piece of another input in.
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = a + rng.below(other.len() - a) + 1;
                    let at = rng.below(input.len() + 1);
                    let piece: Vec<u8> = other[a..b].to_vec();
                    input.splice(at..at, piece);
                    input.truncate(MAX_INPUT_BYTES);
                }
            }
            5 if input.len() >= 4 => {
                // A big-endian length or count somewhere: set it to an edge value.
                let i = rng.below(input.len() - 3);
                let v: u32 = [0, 1, 0xFFFF, u32::MAX, rng.next() as u32][rng.below(5)];
                input[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ => input.truncate(rng.below(input.len() + 1)),
        }
    }
}

fn corpus_of(dir: &Path) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
}

fn main() -> ExitCode {
    let mut seconds = 10.0;
    let mut seed: u64 = 0x5EED;
    let mut save = false;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            "--save" => save = true,
            t => only.push(t.to_string()),
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Panics are the findings: keep their messages short.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    let mut failed = false;
    for (name, target) in TARGETS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let dir = root.join("fuzz/corpus").join(name);
        let mut corpus = corpus_of(&dir);
        if corpus.is_empty() {
            corpus.push(Vec::new());
        }
        let mut rng = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
        let started = Instant::now();
        let budget = Duration::from_secs_f64(seconds);
        let mut runs: u64 = 0;
        let mut lengths: std::collections::BTreeSet<usize> = corpus.iter().map(Vec::len).collect();
        while started.elapsed() < budget {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &corpus, &mut input);
            runs += 1;
            if std::panic::catch_unwind(|| target(&input)).is_err() {
                let out = root.join("target/fuzz-crashes");
                let _ = std::fs::create_dir_all(&out);
                let path = out.join(format!("{name}-{seed}-{runs}"));
                let _ = std::fs::write(&path, &input);
                eprintln!(
                    "{name}: input {runs} (seed {seed}) panicked; saved to {}",
                    path.display()
                );
                failed = true;
                break;
            }
            if save && lengths.insert(input.len()) && lengths.len() <= 64 {
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(dir.join(format!("mutated-{seed}-{runs}")), &input);
                corpus.push(input);
            }
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{name}: {runs} inputs in {secs:.1} s ({:.0}/s), seed {seed}, corpus {}",
            runs as f64 / secs,
            corpus.len()
        );
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
