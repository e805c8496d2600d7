//! Ports for servers a test starts as separate processes, which must be told their port before they bind.
//!
//! A port from `bind("127.0.0.1:0")` is in the kernel's ephemeral range (32768–60999 by default), the
//! range every outgoing connection's local port comes from too: between the pick and the server's bind,
//! a client of another test running in parallel (the abuse tests open hundreds of connections) can take
//! it, and the server exits with "Address already in use". Ports are picked instead from 20000–32767,
//! below that range, where only another test's pick can collide; callers retry that rare case.

use std::hash::{BuildHasher, RandomState};
use std::net::TcpListener;

const FIRST: u16 = 20_000;
const LAST: u16 = 32_767;

/// A port on 127.0.0.1 outside the ephemeral range that nothing listens on right now.
pub fn free_port() -> u16 {
    let seed = RandomState::new();
    for attempt in 0u32..1_000 {
        let span = u64::from(LAST - FIRST) + 1;
        let offset = seed.hash_one((std::process::id(), attempt)) % span;
        let port = FIRST + u16::try_from(offset).expect("below the span");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {FIRST}-{LAST} after 1,000 tries")
}
