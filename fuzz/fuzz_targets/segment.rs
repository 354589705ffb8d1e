//! The receiver's log segments: the bytes after the magic, read as the batch path reads them
//! (`Unframe`, fed in small reads) and as recovery does (`items`, `record_at`). Both must
//! find the same records and agree on whether anything was damaged; the records are then
//! decoded as DUIS XML.
#![no_main]

use fleetwatch::decode::{Collect, duis};
use fleetwatch::source::segment::{Item, LOG_MAGIC, Unframe, items, record_at};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// A reader that hands out at most `step` bytes per read (a pipe, a slow disk).
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(self.step).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut seg = LOG_MAGIC.to_vec();
    seg.extend_from_slice(data);

    let mut expected = Vec::new();
    let mut damaged = false;
    for item in items(&seg) {
        match item {
            Item::Record(body) => {
                expected.extend_from_slice(body);
                expected.push(b'\n');
            }
            Item::Damaged(d) => {
                assert!(d.bytes > 0, "an empty damaged stretch");
                damaged = true;
            }
        }
    }
    // record_at at every position never panics, whatever the length field says.
    for pos in 0..=seg.len() + 1 {
        if let Some((body, next)) = record_at(&seg, pos) {
            assert!(next <= seg.len() && !body.is_empty());
        }
    }

    let step = 1 + data.len() % 13;
    let mut u = Unframe::new(Trickle { data, step });
    let mut got = Vec::new();
    let err = u.read_to_end(&mut got).err();
    assert_eq!(got, expected, "Unframe and items disagree on the records");
    assert_eq!(
        err.is_some(),
        damaged,
        "Unframe and items disagree on damage: {err:?}"
    );

    let mut c = Collect::default();
    duis::decode(&got, 1, 0, &mut c);
});
