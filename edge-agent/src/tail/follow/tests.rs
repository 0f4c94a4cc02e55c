//! The follower on real files in a temporary directory.

use std::fs::OpenOptions;
use std::io::Write;

use super::*;

const MAX: usize = 1 << 20;

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Polls until nothing more comes; returns the lines as text.
fn drain(f: &mut Follower) -> Vec<String> {
    drain_lines(f)
        .into_iter()
        .map(|l| String::from_utf8(l.data).unwrap())
        .collect()
}

fn drain_lines(f: &mut Follower) -> Vec<Line> {
    let mut out = Vec::new();
    let mut idle = 0;
    // Twice idle: the first poll at the end may only notice a truncation or rotation.
    while idle < 2 {
        let polled = f.poll(7).unwrap(); // a small budget: lines cross read boundaries
        idle = if polled.read == 0 && polled.lines.is_empty() {
            idle + 1
        } else {
            0
        };
        out.extend(polled.lines);
    }
    out
}

/// Polls across the rotation grace period.
fn drain_through_rotation(f: &mut Follower) -> Vec<String> {
    let mut out = drain(f);
    std::thread::sleep(ROTATE_GRACE + Duration::from_millis(100));
    out.extend(drain(f));
    out
}

#[test]
fn starts_at_the_end_and_returns_only_complete_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "old 1\nold 2\nhalf of ");
    let mut f = Follower::new(path.clone(), Start::End, MAX).unwrap();
    assert_eq!(f.first_open().unwrap().offset, 12);
    assert_eq!(drain(&mut f), Vec::<String>::new());
    append(&path, "a line\r\nnew 1\nnew 2 without newline");
    assert_eq!(drain(&mut f), ["half of a line", "new 1"]);
    append(&path, " yet\n\n");
    assert_eq!(drain(&mut f), ["new 2 without newline yet", ""]);
    assert_eq!(
        f.position().unwrap().offset,
        std::fs::metadata(&path).unwrap().len()
    );
}

#[test]
fn from_start_reads_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "1\n2\n3\n");
    let mut f = Follower::new(path, Start::Beginning, MAX).unwrap();
    assert_eq!(drain(&mut f), ["1", "2", "3"]);
}

#[test]
fn waits_for_a_file_that_does_not_exist_yet_then_reads_all_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.log");
    let mut f = Follower::new(path.clone(), Start::End, MAX).unwrap();
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.first_open(), None);
    append(&path, "first\nsecond\n");
    assert_eq!(drain(&mut f), ["first", "second"]);
    assert_eq!(f.first_open().unwrap().offset, 0);
}

#[test]
fn rotation_by_rename_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut f = Follower::new(path.clone(), Start::End, MAX).unwrap();
    append(&path, "a1\na2\n");
    assert_eq!(drain(&mut f), ["a1", "a2"]);
    // The writer holds the old file open: what it writes before reopening still counts.
    let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
    writer.write_all(b"a3\n").unwrap();
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    writer.write_all(b"a4\nlast without newline").unwrap();
    append(&path, "b1\nb2\n");
    let lines = drain_through_rotation(&mut f);
    assert_eq!(lines, ["a3", "a4", "last without newline", "b1", "b2"]);
    append(&path, "b3\n");
    assert_eq!(drain(&mut f), ["b3"]);
}

#[test]
fn copytruncate_reads_the_file_again_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut f = Follower::new(path.clone(), Start::End, MAX).unwrap();
    append(&path, "one long line before truncation\nanother one\n");
    assert_eq!(
        drain(&mut f),
        ["one long line before truncation", "another one"]
    );
    std::fs::copy(&path, dir.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    assert!(drain(&mut f).is_empty());
    append(&path, "after 1\nafter 2\n");
    assert_eq!(drain(&mut f), ["after 1", "after 2"]);
}

#[test]
fn resumes_from_a_checkpoint_of_the_same_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut f = Follower::new(path.clone(), Start::End, MAX).unwrap();
    append(&path, "1\n2\n");
    let lines = drain_lines(&mut f);
    let checkpoint = lines[0].end.unwrap(); // only "1" was acknowledged
    drop(f);
    append(&path, "3\n");
    let mut f = Follower::new(path, Start::At(checkpoint), MAX).unwrap();
    assert_eq!(drain(&mut f), ["2", "3"]);
}

#[test]
fn a_file_rotated_while_stopped_is_finished_before_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut f = Follower::new(path.clone(), Start::End, MAX).unwrap();
    append(&path, "1\n2\n");
    let checkpoint = drain_lines(&mut f)[0].end.unwrap();
    drop(f);
    append(&path, "3\n");
    std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
    append(&path, "new 1\n");
    let mut f = Follower::new(path, Start::At(checkpoint), MAX).unwrap();
    assert_eq!(drain_through_rotation(&mut f), ["2", "3", "new 1"]);
}

#[test]
fn a_checkpoint_beyond_the_end_means_truncated_while_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut f = Follower::new(path.clone(), Start::End, MAX).unwrap();
    append(&path, "a fairly long line\n");
    let checkpoint = drain_lines(&mut f)[0].end.unwrap();
    drop(f);
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, "x\n");
    let mut f = Follower::new(path, Start::At(checkpoint), MAX).unwrap();
    assert_eq!(drain(&mut f), ["x"]);
}

#[test]
fn long_lines_are_split_and_only_the_last_piece_ends_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    append(&path, "");
    let mut f = Follower::new(path.clone(), Start::End, 10).unwrap();
    // Longer than a record before its newline: pieces go early.
    append(&path, "0123456789abcdefghijKLM");
    let early = drain_lines(&mut f);
    assert_eq!(early.len(), 2);
    assert!(early.iter().all(|l| l.end.is_none() && l.data.len() == 10));
    append(&path, "NOP\nshort\n");
    let rest = drain_lines(&mut f);
    let text: Vec<_> = rest
        .iter()
        .map(|l| String::from_utf8_lossy(&l.data))
        .collect();
    assert_eq!(text, ["KLMNOP", "short"]);
    assert!(rest.iter().all(|l| l.end.is_some()));
    // A multi-byte character is not cut in two.
    append(&path, "ééééééé\n");
    let pieces = drain_lines(&mut f);
    assert!(pieces.iter().all(|l| std::str::from_utf8(&l.data).is_ok()));
    assert_eq!(
        pieces
            .iter()
            .flat_map(|l| l.data.clone())
            .collect::<Vec<_>>(),
        "ééééééé".as_bytes()
    );
}
