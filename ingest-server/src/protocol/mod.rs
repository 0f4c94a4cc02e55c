//! The wire layer: authentication, request decoding, routing and AWS error shapes.
//! Nothing here touches storage; services receive typed, validated input.

pub mod body;
pub mod error;
pub mod router;
pub mod rpc;
pub mod sigv4;
pub mod validate;
