//! GBCS: a payload's bytes, and the same bytes written as text (hex or base64) the way an
//! export row carries them.
#![no_main]

use fleetwatch::decode::gbcs;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gbcs::decode(data);
    let mut buf = Vec::new();
    if let Ok(bytes) = gbcs::payload_bytes(data, &mut buf) {
        let _ = gbcs::decode(bytes);
    }
});
