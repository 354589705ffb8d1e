//! Throughput of each decoder over in-memory data (no I/O), with a sink that only counts.
//! Run: cargo bench --bench decode

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fleetwatch::decode::csv::{CsvLayout, CsvScratch};
use fleetwatch::decode::jsonl::JsonScratch;
use fleetwatch::decode::{ColumnMap, Sink, duis, jsonl};
use fleetwatch::model::Event;
use std::hint::black_box;

#[derive(Default)]
struct Count(u64, u64);
impl Sink for Count {
    fn event(&mut self, ev: &Event) {
        self.0 += ev.count as u64;
    }
    fn reject(&mut self, _: u64, _: u64, _: String, _: &[u8]) {
        self.1 += 1;
    }
}

const N: u64 = 100_000;
const CODES: [&str; 6] = ["81B8", "8F35", "8F3F", "8F1C", "8F72", "8F66"];

fn device(i: u64) -> String {
    let x = (i.wrapping_mul(0x009E_3779_B97F) & 0xFF_FFFF_FFFF) | 0x00DB_1200_0000_0000;
    let b = x.to_be_bytes();
    b.iter()
        .map(|v| format!("{v:02X}"))
        .collect::<Vec<_>>()
        .join("-")
}

/// A signed DLMS alert (the GBCS payload) from device `i` with its code, as base64.
fn payload(i: u64) -> String {
    let code = u16::from_str_radix(CODES[i as usize % 6], 16).unwrap();
    let mut body = vec![0x0F, 0, 0, 0, 1, 0x00, 0x02, 0x02, 0x12];
    body.extend_from_slice(&code.to_be_bytes());
    body.extend_from_slice(&[0x09, 0x0C, 0x07, 0xE8, 1, 1, 1, 1, 0, 0, 0, 0x80, 0, 0xFF]);
    let mut m = vec![0xDF, 0x09, 0x03];
    m.extend_from_slice(&i.to_be_bytes());
    m.push(0x08);
    let dev: String = device(i).replace('-', "");
    m.extend_from_slice(&u64::from_str_radix(&dev, 16).unwrap().to_be_bytes());
    m.extend_from_slice(&[
        0x08, 0x90, 0xB3, 0xD5, 0x1F, 0x30, 0x01, 0x00, 0x00, 0x00, 0x02, 0x10, 0x01,
    ]);
    m.push(body.len() as u8);
    m.extend_from_slice(&body);
    m.push(0x40);
    m.extend(std::iter::repeat_n(0xA5, 64)); // a signature's worth of bytes
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in m.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |a, (i, &x)| a | (x as u32) << (16 - 8 * i));
        for k in 0..4 {
            s.push(if k <= c.len() {
                A[(n >> (18 - 6 * k) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

fn ts(i: u64) -> String {
    format!(
        "2024-01-{:02}T{:02}:{:02}:{:02}Z",
        1 + i % 28,
        i / 3600 % 24,
        i / 60 % 60,
        i % 60
    )
}

fn csv_data() -> Vec<u8> {
    (0..N)
        .flat_map(|i| format!("{},{},{}\n", ts(i), device(i), CODES[i as usize % 6]).into_bytes())
        .collect()
}

fn jsonl_data() -> Vec<u8> {
    (0..N)
        .flat_map(|i| {
            format!(
                "{{\"timestamp\":\"{}\",\"device_id\":\"{}\",\"alert_code\":\"{}\"}}\n",
                ts(i),
                device(i),
                CODES[i as usize % 6]
            )
            .into_bytes()
        })
        .collect()
}

fn xml_data() -> Vec<u8> {
    (0..N)
        .flat_map(|i| {
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\"><sr:Header><sr:ResponseID>{}:90-B3-D5-1F-30-01-00-00:{}</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode><sr:ResponseDateTime>{}</sr:ResponseDateTime></sr:Header><sr:Body><sr:DeviceAlertMessage><sr:AlertCode>{}</sr:AlertCode><sr:GBCSPayload>{}</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body></sr:Response>\n",
                device(i), 1_700_000_000_000u64 + i, ts(i), CODES[i as usize % 6], payload(i)
            )
            .into_bytes()
        })
        .collect()
}

fn decoders(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let csv = csv_data();
    let layout =
        CsvLayout::from_header(b"timestamp,device_id,alert_code\n", &ColumnMap::default()).unwrap();
    g.throughput(Throughput::Bytes(csv.len() as u64));
    g.bench_function("csv", |b| {
        let mut scratch = CsvScratch::default();
        b.iter(|| {
            let mut sink = Count::default();
            fleetwatch::decode::csv::decode(
                &layout,
                black_box(&csv),
                2,
                0,
                &mut scratch,
                &mut sink,
            );
            assert_eq!((sink.0, sink.1), (N, 0));
        })
    });
    let js = jsonl_data();
    g.throughput(Throughput::Bytes(js.len() as u64));
    g.bench_function("jsonl", |b| {
        let mut scratch = JsonScratch::default();
        b.iter(|| {
            let mut sink = Count::default();
            jsonl::decode(black_box(&js), 1, 0, &mut scratch, &mut sink);
            assert_eq!((sink.0, sink.1), (N, 0));
        })
    });
    let xml = xml_data();
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("duis_xml", |b| {
        b.iter(|| {
            let mut sink = Count::default();
            duis::decode(black_box(&xml), 1, 0, &mut sink);
            assert_eq!((sink.0, sink.1), (N, 0));
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = decoders
}
criterion_main!(benches);
