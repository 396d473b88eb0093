//! Replays the committed fuzz corpus (`fuzz/corpus/TARGET/`) through the fuzz
//! targets (`abcast::fuzz`) on the stable toolchain: every input must run without a
//! panic. The seed inputs are valid frames of every kind, handshakes and core
//! scripts; `cargo run --release --example fuzz -- --save` adds mutated ones.

use std::path::Path;

#[test]
fn every_corpus_input_runs_clean_through_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in abcast::fuzz::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {name}");
        for f in &files {
            let input = std::fs::read(f).expect("read a corpus input");
            // A panic names the input through the test's output.
            eprintln!("{name}: {}", f.display());
            target(&input);
        }
    }
}

#[test]
fn the_frame_decoder_target_accepts_the_seed_frames_it_must() {
    // The seeds are valid frames: the target's canonical-encoding check runs on each
    // (it would not if they did not decode).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/frame_decoder");
    let bytes = std::fs::read(dir.join("stream")).expect("the seed stream");
    let mut buf = bytes::BytesMut::from(&bytes[..]);
    let mut frames = 0;
    while let Ok(Some(_)) = abcast::wire::decode(&mut buf, 1 << 20) {
        frames += 1;
    }
    assert_eq!(frames, 15, "every seed frame decodes");
    assert!(buf.is_empty());
}
