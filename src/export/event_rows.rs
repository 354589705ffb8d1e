//! The events' rows as a worker buffers them before a file is written: 32 bytes a row, in
//! blocks of `BLOCK` rows, the message ids beside them only where a feed has them.
//!
//! A row is written once by the tap and read once when its file's columns are gathered;
//! both passes run at the speed the memory takes the rows. A row of 48 bytes (the packed
//! device description and the message id in it) was half as much again to write and read.
//! The partition (day and region) is the rows' key, so the row leaves the region out; CSV
//! feeds carry no message ids, so those live in a column of their own that a block fills
//! only once it meets one.

use crate::inventory::DeviceInfo;
use crate::model::{AlertCode, DeviceType, Generation};

/// One buffered row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// Milliseconds since 1970, UTC.
    pub ts: i64,
    /// The device's number; meaningful when `has_device`.
    pub device: u64,
    /// The alert code in the low `CODE_BITS` and, above it, the device type (`TYPE_SHIFT`),
    /// the generation (`GEN_SHIFT`), whether the record names a device (`HAS_DEVICE`) and
    /// whether the inventory knows it (`KNOWN`).
    code_kind: u32,
    pub count: u32,
    /// Numbers of the inventory's model and firmware names; meaningful when `known`.
    pub model: u16,
    pub firmware: u16,
    /// The input the record came from.
    pub source: u32,
}

const CODE_BITS: u32 = 24;
const TYPE_SHIFT: u32 = 24;
const GEN_SHIFT: u32 = 28;
const HAS_DEVICE: u32 = 1 << 30;
const KNOWN: u32 = 1 << 31;

// Every alert code fits in the low `CODE_BITS` (`AlertCode::MAX_BITS`: its kind above a
// 16-bit number).
const _: () = assert!(AlertCode::MAX_BITS <= CODE_BITS);

impl Row {
    /// `info`: the device as the inventory describes it (`known`), or as the record
    /// describes itself.
    #[inline]
    pub fn new(
        ts: i64,
        device: Option<u64>,
        code: AlertCode,
        count: u32,
        info: &DeviceInfo,
        known: bool,
        source: u32,
    ) -> Row {
        debug_assert!(
            code.0 >> CODE_BITS == 0,
            "an alert code wider than {CODE_BITS} bits"
        );
        let code_kind = code.0 & ((1 << CODE_BITS) - 1)
            | (info.device_type as u32 & 0xF) << TYPE_SHIFT
            | (info.generation as u32 & 0x3) << GEN_SHIFT
            | if device.is_some() { HAS_DEVICE } else { 0 }
            | if known { KNOWN } else { 0 };
        Row {
            ts,
            device: device.unwrap_or(0),
            code_kind,
            count,
            model: info.model,
            firmware: info.firmware,
            source,
        }
    }

    #[inline]
    pub fn code(&self) -> AlertCode {
        AlertCode(self.code_kind & ((1 << CODE_BITS) - 1))
    }

    #[inline]
    pub fn device_type(&self) -> DeviceType {
        DeviceType::from_index((self.code_kind >> TYPE_SHIFT & 0xF) as u8)
    }

    #[inline]
    pub fn generation(&self) -> Generation {
        Generation::from_index((self.code_kind >> GEN_SHIFT & 0x3) as u8)
    }

    /// Whether the record names a device (`device` is then meaningful).
    #[inline]
    pub fn has_device(&self) -> bool {
        self.code_kind & HAS_DEVICE != 0
    }

    /// Whether the inventory knows the device (`model` and `firmware` are then meaningful).
    #[inline]
    pub fn known(&self) -> bool {
        self.code_kind & KNOWN != 0
    }
}

/// Rows in a block.
pub const BLOCK: usize = 4096;

/// A block of rows and, once one of them had a message id, every row's (0 for none).
#[derive(Default)]
pub struct Block {
    rows: Vec<Row>,
    /// Empty, or as long as `rows`.
    messages: Vec<u64>,
}

impl Block {
    #[inline]
    fn push(&mut self, row: Row, message_id: u64) {
        if message_id != 0 || !self.messages.is_empty() {
            self.messages.resize(self.rows.len(), 0);
            self.messages.push(message_id);
        }
        self.rows.push(row);
    }

    fn is_full(&self) -> bool {
        self.rows.len() == self.rows.capacity()
    }

    fn piece(&self) -> Piece<'_> {
        Piece {
            rows: &self.rows,
            messages: &self.messages,
        }
    }
}

/// Emptied blocks, kept for the next partitions.
pub type Spare = Vec<Block>;

/// A partition's buffered rows: full blocks of `BLOCK` rows and the block filling.
#[derive(Default)]
pub struct Rows {
    full: Vec<Block>,
    filling: Block,
    pub len: usize,
}

impl Rows {
    /// Appends `row` (with its message id, 0 for none), taking a new block from `spare` (or
    /// the allocator) when the one filling is full.
    #[inline]
    pub fn push(&mut self, row: Row, message_id: u64, spare: &mut Spare) {
        if self.filling.is_full() {
            let next = spare.pop().unwrap_or_else(|| Block {
                rows: Vec::with_capacity(BLOCK),
                messages: Vec::new(),
            });
            let done = std::mem::replace(&mut self.filling, next);
            if !done.rows.is_empty() {
                self.full.push(done);
            }
        }
        self.filling.push(row, message_id);
        self.len += 1;
    }

    pub fn blocks(&self) -> impl Iterator<Item = Piece<'_>> {
        self.full
            .iter()
            .chain(std::iter::once(&self.filling))
            .map(Block::piece)
    }

    /// Gives the blocks back to `spare`, emptied.
    pub fn recycle(self, spare: &mut Spare) {
        let blocks = self.full.into_iter().chain(std::iter::once(self.filling));
        spare.extend(blocks.filter(|b| b.rows.capacity() > 0).map(|mut b| {
            b.rows.clear();
            b.messages.clear();
            b
        }));
    }

    /// Takes over `other`'s rows after these, its blocks as they are (a block not full
    /// before the last is fine: files are cut by rows).
    pub fn append(&mut self, other: Rows) {
        if !self.filling.rows.is_empty() {
            self.full.push(std::mem::take(&mut self.filling));
        }
        self.full.extend(other.full);
        self.filling = other.filling;
        self.len += other.len;
    }

    /// Calls `f` with the rows in runs of `n` (the last may be shorter), each as the pieces
    /// of blocks it lies in. Not copied: the rows of a file longer than a block were copied
    /// into one slice first. Stops when `f` returns false.
    pub fn runs(&self, n: usize, mut f: impl FnMut(Run<'_>) -> bool) {
        let n = n.max(1);
        let mut pieces: Vec<Piece<'_>> = Vec::new();
        let mut len = 0;
        for b in self.blocks() {
            let mut rest = b;
            while !rest.rows.is_empty() {
                let (piece, after) = rest.split_at(rest.rows.len().min(n - len));
                pieces.push(piece);
                len += piece.rows.len();
                rest = after;
                if len == n {
                    if !f(Run {
                        pieces: &pieces,
                        len,
                    }) {
                        return;
                    }
                    pieces.clear();
                    len = 0;
                }
            }
        }
        if len > 0 {
            f(Run {
                pieces: &pieces,
                len,
            });
        }
    }
}

/// Rows of one block, with their message ids (none, or one a row).
#[derive(Clone, Copy)]
pub struct Piece<'a> {
    pub rows: &'a [Row],
    /// Empty, or as long as `rows`.
    pub messages: &'a [u64],
}

impl<'a> Piece<'a> {
    fn split_at(self, at: usize) -> (Piece<'a>, Piece<'a>) {
        let (rows, rows_after) = self.rows.split_at(at);
        let (messages, messages_after) = match self.messages.is_empty() {
            true => (self.messages, self.messages),
            false => self.messages.split_at(at),
        };
        (
            Piece { rows, messages },
            Piece {
                rows: rows_after,
                messages: messages_after,
            },
        )
    }

    /// The message id of the row at `i` (0 for none).
    #[inline]
    pub fn message(&self, i: usize) -> u64 {
        self.messages.get(i).copied().unwrap_or(0)
    }
}

/// A file's rows: pieces of blocks, in order.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub pieces: &'a [Piece<'a>],
    pub len: usize,
}

impl Run<'_> {
    /// Whether a row has a message id.
    pub fn any_message(&self) -> bool {
        self.pieces
            .iter()
            .any(|p| p.messages.iter().any(|&m| m != 0))
    }

    /// Every row's message id, in order (0 for none).
    pub fn messages(&self) -> impl Iterator<Item = u64> + '_ {
        self.pieces
            .iter()
            .flat_map(|p| (0..p.rows.len()).map(move |i| p.message(i)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Region;

    fn info(device_type: usize, generation: usize, model: u16, firmware: u16) -> DeviceInfo {
        DeviceInfo {
            region: Region::North,
            device_type: DeviceType::ALL[device_type],
            generation: Generation::ALL[generation],
            model,
            firmware,
            installed: None,
        }
    }

    fn row(ts: i64) -> Row {
        Row::new(
            ts,
            None,
            AlertCode::device(0x8F35),
            1,
            &info(0, 0, 0, 0),
            false,
            0,
        )
    }

    /// The message id `filled` gives the row at `t` of rows from `from`: every third row has
    /// one (its time), but not the first five.
    fn message_of(t: i64, from: i64) -> u64 {
        if t % 3 == 0 && t - from >= 5 {
            t as u64
        } else {
            0
        }
    }

    fn filled(from: i64, n: i64, spare: &mut Spare) -> Rows {
        let mut r = Rows::default();
        (from..from + n).for_each(|t| r.push(row(t), message_of(t, from), spare));
        r
    }

    /// A row gives back what it was made of, for every type, generation and flag, and the
    /// widest codes of each kind.
    #[test]
    fn a_row_keeps_what_it_was_made_of() {
        assert_eq!(std::mem::size_of::<Row>(), 32);
        let codes = [
            AlertCode::device(0),
            AlertCode::device(0xFFFF),
            "N999".parse().expect("a DCC code"),
            "AD1".parse().expect("a DCC code"),
        ];
        for (t, g, code, has, known) in every_kind_of_row(&codes) {
            let device = has.then_some(0xFFFF_FFFF_FFFF_FFFE);
            let r = Row::new(-5, device, code, 7, &info(t, g, 65_535, 3), known, 99);
            assert_eq!(r.code(), code);
            assert_eq!(r.device_type(), DeviceType::ALL[t]);
            assert_eq!(r.generation(), Generation::ALL[g]);
            assert_eq!(r.has_device(), has);
            assert_eq!(r.known(), known);
            assert_eq!(
                (r.ts, r.count, r.model, r.firmware, r.source),
                (-5, 7, 65_535, 3, 99)
            );
            if has {
                assert_eq!(r.device, 0xFFFF_FFFF_FFFF_FFFE);
            }
        }
    }

    fn every_kind_of_row(
        codes: &[AlertCode],
    ) -> impl Iterator<Item = (usize, usize, AlertCode, bool, bool)> + '_ {
        (0..DeviceType::ALL.len()).flat_map(move |t| {
            (0..Generation::ALL.len()).flat_map(move |g| {
                codes.iter().flat_map(move |&c| {
                    [(false, false), (true, false), (false, true), (true, true)]
                        .into_iter()
                        .map(move |(h, k)| (t, g, c, h, k))
                })
            })
        })
    }

    /// Runs of any length over blocks (full, partial in the middle after a merge, the last
    /// filling) give every row once, in order, each run `n` long but the last, with each
    /// row's message id beside it.
    #[test]
    fn runs_cut_the_rows_in_order_across_blocks() {
        let mut spare = Vec::new();
        let mut rows = filled(0, 2 * BLOCK as i64 + 100, &mut spare);
        rows.append(filled(20_000, 7, &mut spare));
        rows.append(filled(30_000, BLOCK as i64 + 3, &mut spare));
        let want: Vec<i64> = (0..2 * BLOCK as i64 + 100)
            .chain(20_000..20_007)
            .chain(30_000..30_000 + BLOCK as i64 + 3)
            .collect();
        let message = |t: i64| {
            let from = [0, 20_000, 30_000].into_iter().rfind(|&f| f <= t).unwrap();
            message_of(t, from)
        };
        assert_eq!(rows.len, want.len());
        for n in [
            1,
            5,
            100,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK,
            10 * BLOCK,
        ] {
            let mut got = Vec::new();
            let mut got_messages = Vec::new();
            let mut lens = Vec::new();
            rows.runs(n, |run| {
                lens.push(run.len);
                let pieces: usize = run.pieces.iter().map(|p| p.rows.len()).sum();
                assert_eq!(pieces, run.len);
                for p in run.pieces {
                    assert!(p.messages.is_empty() || p.messages.len() == p.rows.len());
                    got.extend(p.rows.iter().map(|r| r.ts));
                }
                got_messages.extend(run.messages());
                assert_eq!(
                    run.any_message(),
                    run.messages().any(|m| m != 0),
                    "runs of {n}"
                );
                true
            });
            assert_eq!(got, want, "runs of {n}");
            let want_messages: Vec<u64> = want.iter().map(|&t| message(t)).collect();
            assert_eq!(got_messages, want_messages, "runs of {n}");
            let (last, whole) = lens.split_last().unwrap();
            assert!(
                whole.iter().all(|&l| l == n) && *last <= n,
                "runs of {n}: {lens:?}"
            );
        }
        // The first five rows have no message id, and no run of them says it has.
        rows.runs(5, |run| {
            assert!(!run.any_message());
            false
        });
        // A run stops when asked to.
        let mut calls = 0;
        rows.runs(10, |_| {
            calls += 1;
            calls < 3
        });
        assert_eq!(calls, 3);
    }

    /// Blocks written out are used again, their message ids emptied: a worker's row memory
    /// does not grow with the partitions it has written.
    #[test]
    fn written_blocks_are_used_again() {
        let mut spare = Vec::new();
        let first = filled(0, 3 * BLOCK as i64, &mut spare);
        first.recycle(&mut spare);
        assert_eq!(spare.len(), 3);
        let at: Vec<*const Row> = spare.iter().map(|b| b.rows.as_ptr()).collect();
        let mut second = Rows::default();
        for t in 0..2 * BLOCK as i64 + 1 {
            second.push(row(t), 0, &mut spare);
        }
        assert_eq!(spare.len(), 0);
        let used: Vec<*const Row> = second.blocks().map(|b| b.rows.as_ptr()).collect();
        assert!(used.iter().all(|p| at.contains(p)));
        assert!(second.blocks().all(|b| b.messages.is_empty()));
    }
}
