//! A record that could not be read: data, counted and written to the quarantine file.

/// A record that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub source: usize,
    pub line: u64,
    pub offset: u64,
    pub reason: String,
    pub raw: Vec<u8>,
}

impl Reject {
    /// A rejected line of a side input (no byte offset), keeping at most 512 bytes of it.
    pub fn new(source: usize, line: u64, reason: String, raw: &str) -> Reject {
        let mut end = raw.len().min(512);
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        Reject {
            source,
            line,
            offset: 0,
            reason,
            raw: raw.as_bytes()[..end].to_vec(),
        }
    }
}
