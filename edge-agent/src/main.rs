//! `edge-agent`: camera -> H.264 -> MKV fragments -> disk spool -> TLS PutMedia.
#![allow(dead_code)] // skeleton while the modules land

mod capture;
mod fragmenter;
mod metadata;
mod spool;

fn main() {}
