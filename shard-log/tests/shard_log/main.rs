//! Integration tests of the shard log on real files in temporary directories. One test
//! binary (with modules) so that the crash test can re-run it as its child process.

mod basic;
mod common;
mod concurrency;
mod corruption;
mod crash;
mod recovery;
mod segments;
