//! Arbitrary frames through the broker's request decoder (DEPENDENCIES trap 1).
//!
//! Installs the same guarded allocator as the broker binary, so a huge reservation made from a
//! lying length is handled as it is in production rather than reported as an out-of-memory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_protocol::alloc_guard::GuardedAllocator;

#[global_allocator]
static ALLOC: GuardedAllocator = GuardedAllocator;

fuzz_target!(|data: &[u8]| {
    let _ = sluice_protocol::decode_request(bytes::Bytes::copy_from_slice(data));
});
