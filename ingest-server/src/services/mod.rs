//! API families. Each one turns typed, authenticated requests into store operations.

pub mod streams;
pub mod video;
