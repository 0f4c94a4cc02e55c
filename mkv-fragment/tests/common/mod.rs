//! Helpers shared by the integration tests: fixtures, split feeding, a tiny PRNG, Adler-32.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

use mkv_fragment::{Event, GetMediaFragment, GetMediaReader, ParseError, StreamParser};

/// Where CI puts the real GetMedia captures: `shared/` beside the repository root.
pub fn fixture_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fixtures/kvs-getmedia"
    ))
}

/// Every `.mkv` fixture, sorted by name. Panics if the directory is missing: the golden tests
/// must not pass silently without their data.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = fixture_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "fixture directory {} is missing ({e}); CI places shared/ beside the repo root",
            dir.display()
        )
    });
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| e.expect("readable fixture dir").path())
        .filter(|p| p.extension().is_some_and(|x| x == "mkv"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&p).expect("readable fixture");
            (name, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no .mkv fixtures in {}", dir.display());
    out
}

/// One fixture by name.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_dir().join(name)).expect("fixture")
}

/// xorshift64*: deterministic, dependency-free randomness for split points.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// Split points for `len` bytes: chunk sizes drawn from 1..=max_chunk.
pub fn random_splits(len: usize, seed: u64, max_chunk: usize) -> Vec<usize> {
    let mut rng = Rng(seed | 1);
    let mut sizes = Vec::new();
    let mut done = 0;
    while done < len {
        let n = (1 + rng.below(max_chunk as u64) as usize).min(len - done);
        sizes.push(n);
        done += n;
    }
    sizes
}

/// Everything a parser run produced: the events, then the error that stopped it (if any).
pub type Run<T> = (Vec<T>, Option<ParseError>);

/// Feeds `data` to a StreamParser in pieces of the given sizes and collects all events and the
/// first error (the error ends the run).
pub fn parse_events(data: &[u8], sizes: &[usize]) -> Run<Event> {
    let mut parser = StreamParser::default();
    let mut events = Vec::new();
    let mut at = 0;
    for &n in sizes {
        parser.push(&data[at..at + n]);
        at += n;
        loop {
            match parser.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(err) => return (events, Some(err)),
            }
        }
    }
    parser.push(&data[at..]);
    loop {
        match parser.finish() {
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, None),
            Err(err) => return (events, Some(err)),
        }
    }
}

/// Feeds `data` to a GetMediaReader in pieces and collects the fragments and the first error.
pub fn read_fragments(data: &[u8], sizes: &[usize]) -> Run<GetMediaFragment> {
    let mut reader = GetMediaReader::new();
    let mut out = Vec::new();
    let mut at = 0;
    for &n in sizes {
        reader.push(&data[at..at + n]);
        at += n;
        loop {
            match reader.next_fragment() {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(err) => return (out, Some(err)),
            }
        }
    }
    reader.push(&data[at..]);
    loop {
        match reader.finish() {
            Ok(Some(f)) => out.push(f),
            Ok(None) => return (out, None),
            Err(err) => return (out, Some(err)),
        }
    }
}

/// Adler-32 (RFC 1950), what `mkvinfo -c` prints for each frame.
pub fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

/// Runs `mkvinfo` with the given arguments if it is installed; `None` (after printing why) if not.
pub fn mkvinfo(args: &[&str]) -> Option<String> {
    match std::process::Command::new("mkvinfo").args(args).output() {
        Ok(out) => Some(
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        ),
        Err(e) => {
            println!("skipping the mkvinfo cross-check: mkvinfo is not runnable ({e})");
            None
        }
    }
}
