//! The reference reader (quick-xml's `NsReader`) and recovery after a broken document: where
//! a document may start or end (`marks`), and reading a broken stretch only up to the next
//! such place, so rejects do not depend on where a read's chunks end.

use memchr::memmem;
use quick_xml::events::Event as X;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;
use std::borrow::Cow;

use super::{
    BOM, EndsAt, NEXT_DOCUMENT, NS_DUIS, NS_MMC, Positions, ROOT_END_INSIDE, Sink, Walk, finish,
};

/// A place where a document starts or may end, as recovery and the chunker know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    /// An `<?xml` declaration at this offset.
    Decl(usize),
    /// A root start tag (`<sr:Response`) at this offset.
    RootStart(usize),
    /// A root end tag (`</sr:Response>`) that ends at this offset.
    RootEnd(usize),
}

impl Mark {
    /// Where reading may resume at this mark.
    fn at(self) -> usize {
        match self {
            Mark::Decl(i) | Mark::RootStart(i) | Mark::RootEnd(i) => i,
        }
    }
}

/// The marks at or after `from`, in order: one pass over the `<` bytes, so finding the first
/// costs the distance to it, never the rest of the chunk (recovery asks after every broken
/// document: a search to the end each time made a stretch of broken documents quadratic).
fn marks(data: &[u8], from: usize) -> impl Iterator<Item = Mark> + '_ {
    let from = from.min(data.len());
    memchr::memchr_iter(b'<', &data[from..]).filter_map(move |k| {
        #[cfg(test)]
        super::tests::MARKS_SEEN.with(|n| n.set(n.get() + 1));
        let i = from + k;
        let rest = &data[i + 1..];
        if rest.starts_with(b"?xml") {
            return Some(Mark::Decl(i));
        }
        if rest.first() == Some(&b'/') {
            return crate::source::root_end_at(data, i).map(Mark::RootEnd);
        }
        // A start tag's name ends at whitespace, `>` or `/`; a `<` first means it is no tag.
        let end = rest
            .iter()
            .position(|b| b.is_ascii_whitespace() || matches!(b, b'>' | b'/' | b'<'))?;
        let name = &rest[..end];
        (rest[end] != b'<' && crate::source::is_root_name(name)).then_some(Mark::RootStart(i))
    })
}

/// Where to look for the next document after a broken one starting at `start`: past its own
/// root start tag when it opened with a declaration, so the same document is not found again.
fn after_own_root(data: &[u8], start: usize) -> usize {
    if data[start..].starts_with(b"<?xml")
        && let Some(end) = memmem::find(&data[start..], b"?>")
        && let Some(lt) = memchr::memchr(b'<', &data[start + end..])
    {
        return start + end + lt + 1;
    }
    start + 1
}

/// Where a broken document starting at `start` really ends: at the next document start after
/// its own, if that comes before `found` (where the problem surfaced). A document cut inside a
/// tag (`<sr:Respo`, then the next `<?xml`) makes the reader swallow the documents after it as
/// children; those must be read again, not rejected with it.
pub(super) fn end_of_broken(data: &[u8], start: usize, found: usize) -> usize {
    next_boundary(data, after_own_root(data, start)).map_or(found, |next| next.min(found))
}

/// Where reading may start again after a broken document or junk: the next document's start,
/// or just after the first root end tag (`</sr:Response>`), whichever comes first. Those are
/// the places the chunker cuts (`Boundary::last_cut`), so a broken stretch splits into the same
/// rejects however a read's chunks fall (fuzz finding 5).
pub(super) fn next_boundary(data: &[u8], from: usize) -> Option<usize> {
    marks(data, from).next().map(Mark::at)
}

/// Where the piece of `data` that starts at `from` ends: at the next place a chunk may end
/// (`Boundary::last_cut`): before the next `<?xml` after `from`, or after the first root end
/// tag (`</sr:Response>`). Whether it ends at a root end tag, and where.
pub(super) fn unit_end(data: &[u8], from: usize) -> (usize, bool) {
    marks(data, from)
        .find_map(|m| match m {
            Mark::Decl(i) if i > from => Some((i, false)),
            Mark::RootEnd(e) => Some((e, true)),
            _ => None,
        })
        .unwrap_or((data.len(), false))
}

/// The piece the reference reader last read in (`unit_end`), kept while reading stays in it:
/// a piece with many documents the scanner gives up on (comments, say) is searched once.
#[derive(Clone, Copy, Default)]
pub(super) struct Unit {
    from: usize,
    end: usize,
    at_root_end: bool,
}

/// Reads with the reference reader from `pos` (where the scanner gave up) to the end of the
/// piece it is in (`unit_end`), and returns where reading goes on.
///
/// Nothing past that end is looked at. A chunk ends only at such places, so a broken stretch
/// splits into the same rejects, with the same reasons, however a read's chunks fall (fuzz
/// findings 3, 5 and 7): every `<?xml` begins a document, and a root end tag ends whatever
/// was open, even an inner element of the same name, or a comment that holds one.
pub(super) fn decode_unit(
    data: &[u8],
    pos: usize,
    unit: &mut Unit,
    at: &mut Positions,
    sink: &mut impl Sink,
    scratch: &mut Vec<u8>,
) -> usize {
    let from = pos
        + data[pos..]
            .iter()
            .take_while(|b| b.is_ascii_whitespace())
            .count();
    // Reading never stops inside a root end tag, so every position of a piece after its
    // start lies in the same piece.
    if !(unit.from <= from && from < unit.end) {
        let (end, at_root_end) = unit_end(data, from);
        *unit = Unit {
            from,
            end,
            at_root_end,
        };
    }
    let (limit, at_root_end) = (unit.end, unit.at_root_end);
    let end = at.offset + limit as u64;
    let piece = &data[..limit];
    if data[from..].starts_with(BOM) && at.offset + from as u64 > 0 {
        // A byte-order mark belongs at the start of the stream only; a fresh reader would
        // skip one here, where a read's chunks happen to start, so it is junk as it is for a
        // reader that reads on.
        let resume = next_boundary(piece, from + 1).unwrap_or(limit);
        at.reject(sink, from, resume, "text outside any XML document".into());
        return resume;
    }
    let reason = if at_root_end {
        ROOT_END_INSIDE
    } else if limit == data.len() {
        // The chunk's own end: its sink knows whether a document follows it.
        return decode_slow(data, pos, at, sink, scratch);
    } else {
        NEXT_DOCUMENT
    };
    let mut ends = EndsAt {
        sink: &mut *sink,
        end,
        reason,
    };
    decode_slow(piece, pos, at, &mut ends, scratch)
}

/// Whether the scanner may take over at `pos`, just after a document the reference reader
/// finished: its reader there is in the state a fresh reader starts in, unless a fresh one
/// would skip a byte-order mark (so only whitespace, markup or the end qualify).
pub(super) fn resumable(data: &[u8], pos: usize) -> bool {
    data.get(pos)
        .is_none_or(|&b| b == b'<' || b.is_ascii_whitespace())
}

/// The reference reader: quick-xml's `NsReader` from `base`. Returns where reading goes on:
/// after the first document it completes when `resumable`, at the next document after a
/// reject, or at the end of the chunk.
fn decode_slow(
    data: &[u8],
    base: usize,
    at: &mut Positions,
    sink: &mut impl Sink,
    scratch: &mut Vec<u8>,
) -> usize {
    let mut reader = NsReader::from_reader(&data[base..]);
    reader.config_mut().check_end_names = true;
    let mut walk = Walk::new();
    let mut doc_start: Option<usize> = None;
    loop {
        let before = base + reader.buffer_position() as usize;
        let res = reader.read_resolved_event();
        let (ns, event) = match res {
            Ok(pair) => pair,
            Err(e) => {
                let err_at = base + reader.buffer_position() as usize;
                let start = doc_start.unwrap_or(before);
                // Resume at the next document after the broken one's start: an error
                // found at the end of input may belong to a document cut short much earlier.
                let resume = end_of_broken(data, start, data.len());
                let reason = if resume < err_at && resume < data.len() {
                    NEXT_DOCUMENT.to_string()
                } else if err_at >= data.len() {
                    format!("truncated XML document (the input ends inside it): {e}")
                } else {
                    format!("malformed XML: {e}")
                };
                at.reject(sink, start, resume, reason);
                return resume;
            }
        };
        let accepted_ns = match &ns {
            ResolveResult::Bound(n) => {
                n.as_ref().as_bytes() == NS_DUIS || n.as_ref().as_bytes() == NS_MMC
            }
            ResolveResult::Unbound => true,
            ResolveResult::Unknown(_) => false,
        };
        let closed = match event {
            X::Start(ref e) | X::Empty(ref e) => {
                if walk.depth == 0 {
                    doc_start.get_or_insert(before);
                }
                let is_empty = matches!(event, X::Empty(_));
                walk.start(accepted_ns, e.local_name().as_ref().as_bytes(), is_empty)
            }
            X::End(_) => walk.end(),
            X::Text(t) => {
                if let Cow::Borrowed(v) = t.into_inner() {
                    if walk.depth == 0 && !v.as_bytes().iter().all(u8::is_ascii_whitespace) {
                        // Junk between documents: reject it as one record and move on.
                        let start = before
                            + data[before..]
                                .iter()
                                .take_while(|b| b.is_ascii_whitespace())
                                .count();
                        let resume = next_boundary(data, start + 1).unwrap_or(data.len());
                        at.reject(sink, start, resume, "text outside any XML document".into());
                        return resume;
                    }
                    walk.text(v.as_bytes());
                }
                false
            }
            X::CData(t) => {
                if let Cow::Borrowed(v) = t.into_inner() {
                    walk.text(v.as_bytes());
                }
                false
            }
            X::DocType(_) | X::Decl(_) | X::PI(_) | X::Comment(_) if walk.depth == 0 => {
                doc_start.get_or_insert(before);
                false
            }
            X::Decl(_) | X::DocType(_) => {
                // A declaration inside an open document: the document was cut short, and
                // the next one begins here, or earlier if the cut swallowed it.
                let start = doc_start.unwrap_or(before);
                let resume = end_of_broken(data, start, before);
                at.reject(sink, start, resume, NEXT_DOCUMENT.into());
                return resume;
            }
            X::Eof => {
                let Some(start) = doc_start else {
                    return data.len();
                };
                let resume = end_of_broken(data, start, data.len());
                let reason = if resume < data.len() {
                    NEXT_DOCUMENT
                } else {
                    "truncated XML document (ends before its root element closes)"
                };
                at.reject(sink, start, resume, reason.into());
                return resume;
            }
            _ => false,
        };
        if closed {
            let end = base + reader.buffer_position() as usize;
            let start = doc_start.take().unwrap_or(before);
            finish(&walk.doc, start, end, at, sink, scratch);
            if resumable(data, end) {
                return end;
            }
        }
    }
}
