//! Opening inputs: directory walking, decompression and format sniffing.

use super::InputError;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One input: a file or standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    /// The name used in messages and in the quarantine file.
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "<stdin>".to_string(),
        }
    }
}

/// Turns command-line arguments into inputs: `-` is stdin, directories are walked recursively
/// (files in name order, hidden files skipped, and a log directory's `quarantine.jsonl`), and a
/// missing path is an error. Each file and
/// directory is read once however many links lead to it (a symlink loop ends), and what is
/// neither a file nor a directory (a FIFO, a socket, a device) is skipped in a directory with
/// a warning; named on the command line, it is read (`<(zcat a.gz)` is a FIFO).
pub fn expand_inputs(args: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for a in args {
        if a.as_os_str() == "-" {
            out.push(Input::Stdin);
        } else if a.is_dir() {
            walk(a, &mut out, &mut seen).map_err(InputError::io(a, "read directory"))?;
        } else if a.exists() {
            if first_visit(a, &mut seen) {
                out.push(Input::File(a.clone()));
            }
        } else {
            return Err(InputError::NotFound {
                path: a.display().to_string(),
            });
        }
    }
    Ok(out)
}

/// Whether a path's file (device and inode) is met for the first time.
fn first_visit(p: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> bool {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(p) {
        Ok(m) => seen.insert((m.dev(), m.ino())),
        Err(_) => true,
    }
}

fn walk(
    dir: &Path,
    out: &mut Vec<Input>,
    seen: &mut std::collections::HashSet<(u64, u64)>,
) -> io::Result<()> {
    if !first_visit(dir, seen) {
        eprintln!(
            "warning: {}: a directory already read (a symlink loop?): read once",
            dir.display()
        );
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    // A receiver's data directory (serve, consume): its quarantine file is not an input.
    let is_log = entries.iter().any(|e| {
        let n = e.file_name();
        let n = n.to_string_lossy();
        n.starts_with("segment-") && n.ends_with(".fwlog")
    });
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.')
            || (is_log && e.file_name() == "quarantine.jsonl")
        {
            continue;
        }
        let p = e.path();
        // Through symlinks: what the entry leads to.
        let Ok(meta) = std::fs::metadata(&p) else {
            eprintln!(
                "warning: {}: a broken link or unreadable entry: skipped",
                p.display()
            );
            continue;
        };
        if meta.is_dir() {
            walk(&p, out, seen)?;
        } else if !meta.is_file() {
            eprintln!(
                "warning: {}: not a regular file (a FIFO, socket or device): skipped; name it on the command line to read it",
                p.display()
            );
        } else if first_visit(&p, seen) {
            out.push(Input::File(p));
        }
    }
    Ok(())
}

/// The record formats fleetwatch decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    DuisXml,
    JsonLines,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::DuisXml => "DUIS XML",
            Format::JsonLines => "JSON lines",
            Format::Csv => "CSV",
        }
    }
}

/// Decides the format from the first bytes of the (decompressed) stream, after any BOM and
/// whitespace: `<` is XML, `{` is JSON lines, anything else is CSV with a header.
pub fn sniff_format(head: &[u8]) -> Format {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'<') => Format::DuisXml,
        Some(b'{') => Format::JsonLines,
        _ => Format::Csv,
    }
}

/// An opened input: a decompressed byte stream and what it was.
pub struct Opened {
    pub reader: Box<dyn BufRead + Send>,
    pub compression: &'static str,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// Opens an input and wraps it in the decompressor its magic bytes call for.
pub fn open_input(input: &Input) -> Result<Opened, InputError> {
    let raw: Box<dyn Read + Send> = match input {
        Input::File(p) => Box::new(File::open(p).map_err(InputError::io(p, "open"))?),
        Input::Stdin => Box::new(io::stdin()),
    };
    decompress(raw).map_err(InputError::io_named(input.name(), "read"))
}

/// Sniffs gzip/zstd magic and returns a buffered, decompressed stream.
pub fn decompress(mut raw: Box<dyn Read + Send>) -> io::Result<Opened> {
    // Read the magic bytes by hand (a pipe may deliver them one at a time), then put them back.
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match raw.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let head = &head[..n];
    let buf = BufReader::with_capacity(1 << 20, io::Cursor::new(head.to_vec()).chain(raw));
    if head.starts_with(GZIP_MAGIC) {
        // MultiGzDecoder: concatenated gzip members (as `cat a.gz b.gz` makes) are one stream.
        let dec = flate2::bufread::MultiGzDecoder::new(buf);
        return Ok(Opened {
            reader: Box::new(BufReader::with_capacity(1 << 20, dec)),
            compression: "gzip",
        });
    }
    if head.starts_with(crate::source::segment::LOG_MAGIC) {
        // A segment of the receiver's log: its records, unframed, are DUIS XML.
        let mut buf = buf;
        let mut magic = [0u8; 4];
        buf.read_exact(&mut magic)?;
        let records = crate::source::segment::Unframe::new(buf);
        return Ok(Opened {
            reader: Box::new(BufReader::with_capacity(1 << 20, records)),
            compression: "fleetwatch log",
        });
    }
    if head.starts_with(ZSTD_MAGIC) {
        let dec = zstd::stream::read::Decoder::with_buffer(buf)?;
        return Ok(Opened {
            reader: Box::new(BufReader::with_capacity(1 << 20, dec)),
            compression: "zstd",
        });
    }
    Ok(Opened {
        reader: Box::new(buf),
        compression: "none",
    })
}

/// The longest header line read (CSV headers are a few hundred bytes).
pub const MAX_HEADER: u64 = 64 << 10;

/// Reads a source's first line (its header) into `out`, at most `MAX_HEADER` bytes: a header
/// that does not end by then is binary data or a decompression bomb, and the source's error.
pub fn read_header(r: &mut dyn BufRead, out: &mut Vec<u8>) -> Result<(), String> {
    r.take(MAX_HEADER)
        .read_until(b'\n', out)
        .map_err(|e| format!("read error: {e}"))?;
    if out.len() as u64 >= MAX_HEADER && !out.ends_with(b"\n") {
        return Err(format!(
            "line 1: the header line is longer than {} KiB (binary data, or a decompression bomb?): not read",
            MAX_HEADER >> 10
        ));
    }
    Ok(())
}
