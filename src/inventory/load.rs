//! Loading an inventory CSV (per-device rows or a count table), in parallel.

use super::names::Names;
use super::table::Staged;
use super::{CountRow, DeviceInfo, Inventory};
use crate::decode::squash_name;
use crate::model::time::parse_date;
use crate::model::{DeviceId, DeviceType, Generation, Region};
use crate::source::pipeline::{self, Plan};
use crate::source::{Boundary, Input};
use std::io::BufRead;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Device,
    DeviceType,
    Region,
    Generation,
    Model,
    Firmware,
    Installed,
    Count,
    Date,
}

const COLS: [Col; 9] = [
    Col::Device,
    Col::DeviceType,
    Col::Region,
    Col::Generation,
    Col::Model,
    Col::Firmware,
    Col::Installed,
    Col::Count,
    Col::Date,
];

impl Col {
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Col::Device => &["deviceid", "device", "eui", "eui64", "deviceeui", "id"],
            Col::DeviceType => &["devicetype", "type"],
            Col::Region => &["region", "cspregion", "csp"],
            Col::Generation => &["generation", "smets", "gen", "smetsgeneration"],
            Col::Model => &["model", "devicemodel"],
            Col::Firmware => &[
                "firmwareversion",
                "firmware",
                "fw",
                "fwversion",
                "devicefirmwareversion",
            ],
            Col::Installed => &[
                "installdate",
                "installed",
                "installedon",
                "installationdate",
                "installdatetime",
                "datecommissioned",
                "commissioned",
                "commissioneddate",
                "commissiondate",
            ],
            Col::Count => &[
                "count",
                "devices",
                "numdevices",
                "devicecount",
                "installeddevices",
            ],
            Col::Date => &["date", "asof", "snapshotdate", "day"],
        }
    }
}

/// An inventory row that could not be read.
#[derive(Clone, Debug)]
pub struct InventoryReject {
    pub line: u64,
    pub reason: String,
    pub raw: String,
}

struct Layout {
    delim: u8,
    /// For each column, a bit per `Col` it feeds.
    by_column: Vec<u16>,
    ncols: usize,
    counts: bool,
}

fn layout(header: &[u8]) -> Result<Layout, String> {
    let header = header
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(header)
        .trim_ascii_end();
    let delim = crate::decode::csv::sniff_delimiter(header);
    let names: Vec<&[u8]> = header.split(|&b| b == delim).collect();
    let mut cols = [None; 9];
    for (i, n) in names.iter().enumerate() {
        let mut buf = [0u8; 48];
        let Some(k) = squash_name(n, &mut buf) else {
            continue;
        };
        for c in COLS {
            if c.aliases().iter().any(|a| a.as_bytes() == &buf[..k]) {
                cols[c as usize].get_or_insert(i);
            }
        }
    }
    let list = || {
        names
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let counts = cols[Col::Device as usize].is_none() && cols[Col::Count as usize].is_some();
    if !counts && cols[Col::Device as usize].is_none() {
        return Err(format!(
            "inventory has neither a device id column (device_id, eui, ...) nor a count column (count, devices); columns are: {}",
            list()
        ));
    }
    let attrs = [Col::Region, Col::DeviceType, Col::Generation];
    if !counts && attrs.iter().all(|&c| cols[c as usize].is_none()) {
        // Without an attribute every device would count as Unknown: most likely an alert
        // file given as the inventory.
        let lower = list().to_ascii_lowercase();
        let hint = if lower.contains("alert") || lower.contains("code") {
            " (it looks like an alert file: give it as an input, and the device list as --inventory)"
        } else {
            ""
        };
        return Err(format!(
            "an inventory needs a device id column and at least one of region, device_type, generation; columns are: {}{hint}",
            list()
        ));
    }
    if counts {
        for c in attrs {
            if cols[c as usize].is_none() {
                return Err(format!(
                    "count-table inventory needs a {:?} column; columns are: {}",
                    c,
                    list()
                ));
            }
        }
    }
    let mut by_column = vec![0u16; names.len()];
    for c in COLS {
        if let Some(i) = cols[c as usize] {
            by_column[i] |= 1 << c as u16;
        }
    }
    Ok(Layout {
        delim,
        by_column,
        ncols: names.len(),
        counts,
    })
}

#[derive(Default)]
struct Partial {
    entries: Vec<(u64, u64)>,
    models: Names,
    firmwares: Names,
    counts: Vec<CountRow>,
    rejects: Vec<InventoryReject>,
    rejected: u64,
    /// Entries are tagged with the chunk order so the merge keeps file order for repeated ids.
    order: Vec<(u64, usize, usize)>,
    /// The delimiters of the row being read (`each_row`), kept for the next chunk.
    cuts: Vec<usize>,
}

/// Calls `row(i, line, cuts)` for line `i` (from 0) of `data`, without its `\r\n`, with the
/// positions of the delimiter in it. Newlines and delimiters are found together, 64 bytes at
/// a time (`decode::line_and_field_ends`), where a `memchr` a line, then 16-byte blocks a row
/// for its delimiters and a byte loop for the row's tail took about 250 instructions a row; the
/// load now runs 8% fewer (`callgrind`). Quotes are not special here: an inventory field may be
/// quoted, but not hold the delimiter or a line break (`parse_row` strips the quotes).
fn each_row(
    data: &[u8],
    delim: u8,
    cuts: &mut Vec<usize>,
    mut row: impl FnMut(u64, &[u8], &[usize]),
) {
    let (mut line_start, mut i) = (0usize, 0u64);
    let mut line_of = |start: usize, end: usize, cuts: &[usize]| {
        let line = &data[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        row(i, line, cuts);
        i += 1;
    };
    cuts.clear();
    for (base, nl, de, _) in crate::decode::line_and_field_ends(data, delim) {
        let mut m = nl | de;
        while m != 0 {
            let at = base + m.trailing_zeros() as usize;
            if nl & m & m.wrapping_neg() != 0 {
                line_of(line_start, at, cuts);
                cuts.clear();
                line_start = at + 1;
            } else {
                cuts.push(at - line_start);
            }
            m &= m - 1;
        }
    }
    if line_start < data.len() {
        line_of(line_start, data.len(), cuts);
    }
}

/// The day of a date or a date-time (`what` names the column in the error). Called only for
/// a field that is not empty: as a closure called for every row it was 23 instructions a row
/// for inventories without install dates.
fn day_of_text(v: &[u8], what: &str) -> Result<Option<i32>, String> {
    let d = if v.len() > 10 {
        crate::model::time::parse_timestamp(v).map(crate::model::time::day_of)
    } else {
        parse_date(v)
    };
    d.map(Some)
        .ok_or_else(|| format!("invalid {what} `{}`", String::from_utf8_lossy(v)))
}

/// Reads one row, whose delimiters lie at `cuts`.
fn parse_row(lay: &Layout, line: &[u8], cuts: &[usize], p: &mut Partial) -> Result<(), String> {
    let n = cuts.len() + 1;
    if n != lay.ncols {
        return Err(format!(
            "expected {} fields as in the header, found {n}",
            lay.ncols
        ));
    }
    let mut f: [&[u8]; 9] = [b""; 9];
    for (i, &bits) in lay.by_column.iter().enumerate() {
        if bits == 0 {
            continue;
        }
        let start = if i == 0 { 0 } else { cuts[i - 1] + 1 };
        let end = cuts.get(i).copied().unwrap_or(line.len());
        let v = line[start..end].trim_ascii();
        let v = v
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v);
        let mut b = bits;
        while b != 0 {
            f[b.trailing_zeros() as usize] = v;
            b &= b - 1;
        }
    }
    let show = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
    let region = Region::parse(f[Col::Region as usize])
        .ok_or_else(|| format!("invalid region `{}`", show(f[Col::Region as usize])))?;
    let device_type = DeviceType::parse(f[Col::DeviceType as usize]).ok_or_else(|| {
        format!(
            "invalid device type `{}`",
            show(f[Col::DeviceType as usize])
        )
    })?;
    let generation = Generation::parse(f[Col::Generation as usize])
        .ok_or_else(|| format!("invalid generation `{}`", show(f[Col::Generation as usize])))?;
    if lay.counts {
        let c = f[Col::Count as usize];
        let count = std::str::from_utf8(c)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| format!("invalid count `{}`", show(c)))?;
        let date = match f[Col::Date as usize] {
            b"" => None,
            d => day_of_text(d, "date")?,
        };
        p.counts.push(CountRow {
            date,
            region,
            device_type,
            generation,
            count,
        });
        return Ok(());
    }
    let d = f[Col::Device as usize];
    let id = DeviceId::parse(d).ok_or_else(|| format!("invalid device id `{}`", show(d)))?;
    let info = DeviceInfo {
        region,
        device_type,
        generation,
        model: p.models.number_in(f[Col::Model as usize], line)?,
        firmware: p.firmwares.number_in(f[Col::Firmware as usize], line)?,
        installed: match f[Col::Installed as usize] {
            b"" => None,
            v => day_of_text(v, "install date")?,
        },
    };
    p.entries.push((id.0, info.pack()));
    Ok(())
}

/// Interns one worker's dictionary into the global one; index `i` of the result is the global
/// id of the worker's id `i` (0, "none", maps to 0).
fn global_ids(local: &Names, global: &mut Names) -> Result<Vec<u16>, String> {
    std::iter::once(Ok(0))
        .chain(local.list.iter().map(|m| global.number(m)))
        .collect::<Result<_, _>>()
}

/// Sorts a dictionary's names (numbered from 1 by their place in `list`) into byte order and
/// returns each old number's new one (0, no name, stays 0).
fn into_byte_order(list: &mut Vec<Vec<u8>>) -> Vec<u16> {
    let mut named: Vec<(Vec<u8>, usize)> = std::mem::take(list).into_iter().zip(0..).collect();
    named.sort_unstable();
    let mut new_number = vec![0u16; named.len() + 1];
    for (new, (name, old)) in named.into_iter().enumerate() {
        new_number[old + 1] = new as u16 + 1;
        list.push(name);
    }
    new_number
}

/// Gives each worker's entries the global model and firmware numbers (`maps[part]`: the global
/// number of each of the part's own), on `threads` threads. A part whose numbers already are
/// the global ones is left alone. Done serially for every entry, this was 15 ms of a
/// 5,000,000-device load with one core idle.
fn renumber(entries: &mut [Vec<(u64, u64)>], maps: &[(Vec<u16>, Vec<u16>)], threads: usize) {
    let same = |m: &[u16]| m.iter().enumerate().all(|(i, &g)| g as usize == i);
    let mut work = Vec::new();
    for (part, (models, firmwares)) in entries.iter_mut().zip(maps) {
        if same(models) && same(firmwares) {
            continue;
        }
        let share = part.len().div_ceil(threads.max(1)).max(1 << 16);
        work.extend(part.chunks_mut(share).map(|c| (c, models, firmwares)));
    }
    let apply = |(c, models, firmwares): (&mut [(u64, u64)], &Vec<u16>, &Vec<u16>)| {
        for e in c {
            let mut info = DeviceInfo::unpack(e.1);
            info.model = models[info.model as usize];
            info.firmware = firmwares[info.firmware as usize];
            e.1 = info.pack();
        }
    };
    super::table::fork_join(work, apply);
}

/// Why an inventory could not be loaded; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The file could not be opened or read, or its header is not an inventory's.
    #[error("{0}")]
    Unreadable(String),
    /// More distinct models or firmware versions than the compact table holds.
    #[error("{path}: {message}")]
    TooManyNames { path: String, message: String },
    /// Every row was rejected.
    #[error("{path}: the inventory has no usable rows ({rejected} rejected{first})")]
    NoRows {
        path: String,
        rejected: u64,
        /// `; line N: reason` of the first rejected row.
        first: String,
    },
}

/// How many rejected inventory rows are kept with their reason (the rest are only counted).
const KEEP_REJECTS: usize = 1000;

/// Loads an inventory file (plain, gzip or zstd) using `threads` workers.
pub fn load_inventory(
    path: &Path,
    threads: usize,
) -> Result<(Inventory, Vec<InventoryReject>, u64), InventoryError> {
    let input = Input::File(path.to_path_buf());
    let too_many = |message| InventoryError::TooManyNames {
        path: path.display().to_string(),
        message,
    };
    let plan =
        |_: usize, input: &Input, r: &mut dyn BufRead| -> Result<Option<Plan<Layout>>, String> {
            let mut header = Vec::new();
            crate::source::read_header(r, &mut header)
                .map_err(|e| format!("{}: {e}", input.name()))?;
            if header.trim_ascii().is_empty() {
                return Err(format!("{}: the inventory is empty", input.name()));
            }
            let lay = layout(&header).map_err(|e| format!("{}: {e}", input.name()))?;
            Ok(Some(Plan {
                boundary: Boundary::Line,
                first_line: 2,
                offset: header.len() as u64,
                meta: lay,
            }))
        };
    let inputs = [input];
    let (parts, errors) = pipeline::run(
        &inputs,
        threads,
        None,
        plan,
        Partial::default,
        |p: &mut Partial, lay, chunk| {
            let start = p.entries.len();
            let mut cuts = std::mem::take(&mut p.cuts);
            each_row(&chunk.data, lay.delim, &mut cuts, |i, line, cuts| {
                if line.trim_ascii().is_empty() {
                    return;
                }
                let line_no = chunk.first_line + i;
                if let Err(reason) = parse_row(lay, line, cuts, p) {
                    p.rejected += 1;
                    if p.rejects.len() < KEEP_REJECTS {
                        p.rejects.push(InventoryReject {
                            line: line_no,
                            reason,
                            raw: String::from_utf8_lossy(line).into_owned(),
                        });
                    }
                }
            });
            p.cuts = cuts;
            p.order.push((chunk.offset, start, p.entries.len()));
        },
    );
    if let Some(e) = errors.into_iter().next() {
        return Err(InventoryError::Unreadable(e.message));
    }
    // Merge: one global dictionary per column, then remap each part's ids.
    let mut inv = Inventory {
        source: path.display().to_string(),
        ..Default::default()
    };
    let (mut models, mut firmwares) = (Names::default(), Names::default());
    let mut rejects = Vec::new();
    let mut rejected = 0;
    let mut entries = Vec::new();
    let mut maps = Vec::new();
    let mut order: Vec<(u64, usize, usize, usize)> = Vec::new();
    for p in parts {
        maps.push((
            global_ids(&p.models, &mut models).map_err(too_many)?,
            global_ids(&p.firmwares, &mut firmwares).map_err(too_many)?,
        ));
        order.extend(
            p.order
                .iter()
                .map(|&(off, s, e)| (off, entries.len(), s, e)),
        );
        entries.push(p.entries);
        inv.counts.extend(p.counts);
        rejects.extend(p.rejects);
        rejected += p.rejected;
    }
    // The numbers in the names' byte order, not in the order the workers met them: which
    // chunks a worker takes depends on timing, so first-seen numbers (and the order of rows
    // grouped by model or firmware) changed from run to run.
    let model_numbers = into_byte_order(&mut models.list);
    let firmware_numbers = into_byte_order(&mut firmwares.list);
    for (m, f) in &mut maps {
        m.iter_mut().for_each(|g| *g = model_numbers[*g as usize]);
        f.iter_mut()
            .for_each(|g| *g = firmware_numbers[*g as usize]);
    }
    renumber(&mut entries, &maps, threads);
    // File order, so that of two rows for one device the later wins.
    order.sort_by_key(|o| o.0);
    let pieces: Vec<&[(u64, u64)]> = order
        .iter()
        .map(|&(_, part, s, e)| &entries[part][s..e])
        .collect();
    let staged = Staged::new(&pieces, threads);
    drop(pieces);
    // Freed before the table is built, not on a thread of its own afterwards: the two never
    // hold memory at once (see `Staged`).
    drop(entries);
    let (table, repeated) = staged.build(threads);
    inv.devices = table;
    inv.repeated_ids = repeated;
    inv.models = std::iter::once(String::new())
        .chain(
            models
                .list
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned()),
        )
        .collect();
    inv.firmwares = std::iter::once(String::new())
        .chain(
            firmwares
                .list
                .into_iter()
                .map(|m| String::from_utf8_lossy(&m).into_owned()),
        )
        .collect();
    rejects.sort_by_key(|r| r.line);
    if inv.devices.is_empty() && inv.counts.is_empty() {
        return Err(InventoryError::NoRows {
            path: path.display().to_string(),
            rejected,
            first: rejects
                .first()
                .map(|r| format!("; line {}: {}", r.line, r.reason))
                .unwrap_or_default(),
        });
    }
    Ok((inv, rejects, rejected))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `each_row` finds the lines `decode::lines` finds and, in each, the delimiters
        /// `memchr` finds: on chunks of every length, with `\r\n`, blank lines and no final
        /// newline.
        #[test]
        fn rows_and_delimiters_are_found_as_memchr_finds_them(
            data in proptest::collection::vec(proptest::sample::select(vec![b',', b';', b'a', b'\t', b'\n', b'\r', 0xFFu8]), 0..300),
            delim in proptest::sample::select(vec![b',', b';', b'\t']),
        ) {
            let want: Vec<(u64, Vec<u8>, Vec<usize>)> = crate::decode::lines(&data, 0, 0)
                .map(|(i, _, line)| (i, line.to_vec(), memchr::memchr_iter(delim, line).collect()))
                .collect();
            let mut got = Vec::new();
            each_row(&data, delim, &mut vec![7], |i, line, cuts| got.push((i, line.to_vec(), cuts.to_vec())));
            proptest::prop_assert_eq!(got, want);
        }
    }
    use std::io::Write;

    fn load(text: &str) -> (Inventory, Vec<InventoryReject>, u64) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        load_inventory(f.path(), 2).unwrap()
    }

    #[test]
    fn an_alert_file_is_not_an_inventory() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"timestamp,device_id,alert_code,message_id,count\n2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,81B8,1,1\n")
            .unwrap();
        let e = load_inventory(f.path(), 2).unwrap_err().to_string();
        assert!(
            e.contains(
                "needs a device id column and at least one of region, device_type, generation"
            ) && e.contains("columns are: timestamp, device_id, alert_code, message_id, count")
                && e.contains("looks like an alert file"),
            "{e}"
        );
    }

    #[test]
    fn per_device_rows_with_aliases() {
        let (inv, rej, n) = load(
            "device_id,device_type,region,smets,model,firmware_version,install_date\n\
             00-DB-12-34-56-78-90-A0,ESME,North,2,M1,1.0,2024-01-01\n\
             00db1234567890a1,GSME,4G South,1,M2,1.0,\n\
             bad,ESME,North,2,M1,1.0,2024-01-01\n\
             00-DB-12-34-56-78-90-A2,ESME,Mars,2,M1,1.0,2024-01-01\n",
        );
        assert_eq!(n, 2);
        assert_eq!(rej.iter().map(|r| r.line).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(inv.devices.len(), 2);
        let a = inv.lookup(DeviceId(0x00DB_1234_5678_90A0)).unwrap();
        assert_eq!(
            (a.region, a.device_type, a.generation),
            (Region::North, DeviceType::Esme, Generation::Smets2)
        );
        assert_eq!(inv.model_name(a.model), "M1");
        assert_eq!(a.installed, Some(19723));
        let b = inv.lookup(DeviceId(0x00DB_1234_5678_90A1)).unwrap();
        assert_eq!(
            (b.region, b.generation, b.installed),
            (Region::South4G, Generation::Smets1, None)
        );
        assert_eq!(inv.firmware_name(b.firmware), "1.0");
    }

    /// Several chunks read by two workers, each numbering the names in the order it meets
    /// them (the file's second half names the models in reverse): every device keeps the
    /// model and firmware of its own row once the numbers are made global.
    #[test]
    fn names_keep_their_devices_across_workers() {
        const ROWS: u64 = 200_000; // about 11 MB: several 4 MiB chunks
        let model = |i: u64| {
            let k = if i < ROWS / 2 { i % 50 } else { 49 - i % 50 };
            format!("MODEL-{k}")
        };
        let firmware = |i: u64| format!("{}.{}", i % 7, (ROWS - i) % 11);
        let mut text = String::from("device_id,device_type,region,smets,model,firmware_version\n");
        for i in 0..ROWS {
            let id = DeviceId(0x00DB_1200_0000_0000 | i);
            text.push_str(&format!("{id},ESME,North,2,{},{}\n", model(i), firmware(i)));
        }
        let (inv, rejects, _) = load(&text);
        assert!(rejects.is_empty());
        assert_eq!(inv.devices.len() as u64, ROWS);
        for i in (0..ROWS).step_by(97) {
            let d = inv.lookup(DeviceId(0x00DB_1200_0000_0000 | i)).unwrap();
            assert_eq!(inv.model_name(d.model), model(i), "row {i}");
            assert_eq!(inv.firmware_name(d.firmware), firmware(i), "row {i}");
        }
        // The numbers follow the names' byte order, whichever worker met a name first, so
        // every load of the file numbers them alike.
        for names in [&inv.models, &inv.firmwares] {
            assert_eq!(names[0], "", "0 is no name");
            assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        }
        assert_eq!(inv.models.len(), 51);
    }

    #[test]
    fn names_are_numbered_in_byte_order() {
        let mut list: Vec<Vec<u8>> = ["b", "a", "c", "B"].map(|s| s.as_bytes().to_vec()).into();
        let numbers = into_byte_order(&mut list);
        assert_eq!(list, ["B", "a", "b", "c"].map(|s| s.as_bytes().to_vec()));
        // Old number (1-based, 0 no name) -> new: "b" 1 -> 3, "a" 2 -> 2, "c" 3 -> 4, "B" 4 -> 1.
        assert_eq!(numbers, [0, 3, 2, 4, 1]);
    }

    #[test]
    fn count_table() {
        let (inv, _, _) = load(
            "date,region,device_type,generation,count\n2024-01-01,North,ESME,SMETS2,1000\n2024-01-01,South,ESME,SMETS2,500\n",
        );
        assert!(inv.is_count_table());
        assert_eq!(inv.device_count(), 1500);
    }

    #[test]
    fn missing_id_column_is_explained() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"who,what\nx,y\n").unwrap();
        let e = load_inventory(f.path(), 1).unwrap_err().to_string();
        assert!(e.contains("columns are: who, what"), "{e}");
    }
}
