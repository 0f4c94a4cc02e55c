//! API families. Each one turns typed, authenticated requests into store operations.

pub mod video;
