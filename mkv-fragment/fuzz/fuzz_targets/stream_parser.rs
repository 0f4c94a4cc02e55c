//! Fuzzes the StreamParser and GetMediaReader: no input may panic, and the events must not
//! depend on how the input is split into pushes (a divergence aborts like a crash).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mkv_fragment::{Event, GetMediaReader, ParseError, ParserLimits, StreamParser};

fn run(data: &[u8], piece: usize, limits: ParserLimits) -> (Vec<Event>, Option<ParseError>) {
    let mut parser = StreamParser::new(limits);
    let mut events = Vec::new();
    for chunk in data.chunks(piece.max(1)) {
        parser.push(chunk);
        loop {
            match parser.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    loop {
        match parser.finish() {
            Ok(Some(e)) => events.push(e),
            Ok(None) => return (events, None),
            Err(e) => return (events, Some(e)),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: piece size for the split run; second: whether to use tiny limits.
    let [piece, tiny, data @ ..] = input else {
        return;
    };
    let limits = if tiny & 1 == 1 {
        ParserLimits {
            max_element_size: 300,
            max_header_size: 200,
        }
    } else {
        ParserLimits::default()
    };
    let whole = run(data, data.len(), limits);
    let split = run(data, usize::from(*piece % 64) + 1, limits);
    assert_eq!(whole, split, "events depend on the split");
    for (events, _) in [&whole] {
        for e in events {
            if let Event::Cluster(c) = e {
                for b in &c.blocks {
                    assert!(b.data.start <= b.data.end && b.data.end <= c.body.len());
                }
            }
        }
    }

    let mut reader = GetMediaReader::with_limits(limits);
    for chunk in data.chunks(usize::from(*piece % 17) + 1) {
        reader.push(chunk);
        while let Ok(Some(_)) = reader.next_fragment() {}
    }
    while let Ok(Some(_)) = reader.finish() {}
});
