//! The bad-input suite: each bad record gets a clear reject with its line, and every good
//! record around it is still counted.

mod common;
use common::*;
use std::path::Path;

const GOOD_ROW: &str = "2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,81B8";

fn rejects(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("fleetwatch-rejects.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn alerts_in(dir: &Path, file: &str) -> Run {
    let inv = data("hand/inventory.csv");
    run_in(
        dir,
        &["alerts", file, "-i", s(&inv), "--by", "region", "-f", "csv"],
        None,
    )
}

#[test]
fn csv_with_bom_crlf_junk_and_bad_fields() {
    let dir = tempfile::tempdir().unwrap();
    let mut f: Vec<u8> = b"\xEF\xBB\xBFtimestamp,device_id,alert_code\r\n".to_vec();
    f.extend(format!("{GOOD_ROW}\r\n").as_bytes()); // line 2
    f.extend(b"2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,81BZ\r\n"); // 3 invalid code
    f.extend(b"2024-01-01T00:00:00Z,00-DB-12-34-56-78-90,81B8\r\n"); // 4 invalid id
    f.extend(b"\x00\x01\x02\xff\xfe binary junk \x1b\r\n"); // 5 junk
    f.extend(b"2024-13-01T00:00:00Z,00-DB-12-34-56-78-90-A0,81B8\r\n"); // 6 invalid time
    f.extend(format!("{GOOD_ROW}\n").as_bytes()); // 7 (LF only: mixed line ends)
    f.extend(b"2024-01-01T00:00:00Z,00-DB-12-34-56-78-90-A0,81B8,extra\r\n"); // 8 extra field
    f.extend(GOOD_ROW.as_bytes()); // 9, no final newline
    std::fs::write(dir.path().join("bad.csv"), &f).unwrap();
    let r = alerts_in(dir.path(), "bad.csv");
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("records read 8 = accepted 3 + duplicates 0 + rejected 5"),
        "{}",
        r.stderr
    );
    // North has A0 and A1 installed on 01-01 (A5 comes on 01-03): 3 alerts / 2 devices.
    assert!(r.stdout.contains("North,3,3,1,true,2,1500"), "{}", r.stdout);
    let rej = rejects(dir.path());
    let lines: Vec<u64> = rej.iter().map(|v| v["line"].as_u64().unwrap()).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 8]);
    let reason = |i: usize| rej[i]["reason"].as_str().unwrap().to_string();
    assert!(reason(0).contains("invalid alert code `81BZ`"));
    assert!(reason(1).contains("invalid device id"));
    assert!(
        reason(2).contains("expected 3 fields") || reason(2).contains("invalid"),
        "{}",
        reason(2)
    );
    assert!(reason(3).contains("invalid timestamp"));
    assert!(reason(4).contains("found 4"), "{}", reason(4));
    assert_eq!(rej[0]["source"], "bad.csv");
}

#[test]
fn huge_line_is_rejected_and_the_rest_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = format!("timestamp,device_id,alert_code\n{GOOD_ROW}\n").into_bytes();
    f.extend(std::iter::repeat_n(b'x', 65 << 20)); // line 3: longer than the 64 MiB limit
    f.extend(format!("\n{GOOD_ROW}\n").as_bytes()); // line 4
    std::fs::write(dir.path().join("huge.csv"), &f).unwrap();
    let r = alerts_in(dir.path(), "huge.csv");
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("records read 3 = accepted 2 + duplicates 0 + rejected 1"),
        "{}",
        r.stderr
    );
    let rej = rejects(dir.path());
    assert_eq!(rej[0]["line"], 3);
    assert!(
        rej[0]["reason"]
            .as_str()
            .unwrap()
            .contains("longer than 64 MiB")
    );
    assert_eq!(rej[0]["raw"].as_str().unwrap().len(), 512);
}

fn alert_doc(id: u32, code: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<sr:Response xmlns:sr=\"http://www.dccinterface.co.uk/ServiceUserGateway\" schemaVersion=\"5.4\">\n\
         <sr:Header><sr:ResponseID>00-DB-12-34-56-78-90-A0:90-B3-D5-1F-30-01-00-00:{id}</sr:ResponseID><sr:ResponseCode>I0</sr:ResponseCode>\
         <sr:ResponseDateTime>2024-01-01T00:00:0{}Z</sr:ResponseDateTime></sr:Header>\n\
         <sr:Body><sr:DeviceAlertMessage><sr:AlertCode>{code}</sr:AlertCode><sr:GBCSPayload>{}</sr:GBCSPayload></sr:DeviceAlertMessage></sr:Body>\n</sr:Response>\n",
        id % 10,
        gbcs_alert_b64(
            0x00DB_1234_5678_90A0,
            u16::from_str_radix(code, 16).unwrap_or(0x81B8)
        )
    )
}

#[test]
fn xml_truncated_junk_and_invalid_documents() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = String::new();
    f += &alert_doc(1, "81B8"); // lines 1-5: good
    let d2 = alert_doc(2, "81B8");
    f += &d2[..d2.find("<sr:Body>").unwrap()]; // lines 6-8: truncated before its Body
    f += &alert_doc(3, "81B8"); // good, despite the unclosed document before it
    f += "garbage between documents\n";
    f += &alert_doc(4, "XYZ1"); // invalid code
    f += &alert_doc(5, "81B8"); // good
    let d7 = alert_doc(7, "81B8");
    f += &d7[..d7.find("ResponseCode").unwrap() + 4]; // cut inside a start tag `<sr:Resp`
    f += "\n";
    f += &alert_doc(8, "81B8"); // good: the cut tag must not swallow it
    let d6 = alert_doc(6, "81B8");
    f += &d6[..d6.len() / 2]; // truncated at end of file
    std::fs::write(dir.path().join("bad.xml"), &f).unwrap();
    let r = alerts_in(dir.path(), "bad.xml");
    assert_eq!(r.status, 3, "{}", r.stderr);
    assert!(r.stderr.contains("rejected 5"), "{}", r.stderr);
    assert!(r.stderr.contains("accepted 4"), "{}", r.stderr);
    let rej = rejects(dir.path());
    let reasons: Vec<String> = rej
        .iter()
        .map(|v| v["reason"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rej[0]["line"], 6, "{reasons:?}");
    assert!(
        reasons[0].contains("truncated XML document (the next document starts before it ends)"),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("text outside any XML document")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("invalid alert code `XYZ1`")),
        "{reasons:?}"
    );
    assert!(
        reasons.last().unwrap().contains("truncated XML document"),
        "{reasons:?}"
    );
}

#[test]
fn jsonl_junk_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"timestamp":"2024-01-01T00:00:00Z","device_id":"00-DB-12-34-56-78-90-A0","alert_code":"81B8"}"#;
    let text = format!("{good}\n\u{1}\u{2}junk\n{}\n{good}\n", &good[..40]);
    std::fs::write(dir.path().join("bad.jsonl"), text).unwrap();
    let r = alerts_in(dir.path(), "bad.jsonl");
    assert_eq!(r.status, 3);
    assert!(
        r.stderr
            .contains("records read 4 = accepted 2 + duplicates 0 + rejected 2"),
        "{}",
        r.stderr
    );
    let lines: Vec<u64> = rejects(dir.path())
        .iter()
        .map(|v| v["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3]);
}

#[test]
fn empty_inputs_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.csv"), "").unwrap();
    std::fs::write(
        dir.path().join("header-only.csv"),
        "timestamp,device_id,alert_code\n",
    )
    .unwrap();
    let r = alerts_in(dir.path(), ".");
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("records read 0 = accepted 0"),
        "{}",
        r.stderr
    );
}

#[test]
fn unreadable_header_fails_that_source_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.csv"),
        format!("timestamp,device_id,alert_code\n{GOOD_ROW}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("b.csv"), "when,who\nx,y\n").unwrap();
    let r = alerts_in(dir.path(), ".");
    assert_eq!(r.status, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("b.csv: line 1: no column for `timestamp`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("--columns timestamp=NAME"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.contains("North,1,1"),
        "the good file is still counted: {}",
        r.stdout
    );
}
