//! Repository hygiene: no large file is tracked outside `samples/` (a wheel, a data dump or a
//! build product committed by mistake makes every clone slower, and cannot be taken back out of
//! the history cheaply).

use std::path::Path;
use std::process::Command;

const LIMIT: u64 = 1_000_000;

#[test]
fn no_tracked_file_outside_samples_is_over_1_mb() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .expect("git must be installed to check the repository");
    assert!(
        out.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut big = Vec::new();
    for name in out.stdout.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name);
        if name.starts_with("samples/") {
            continue;
        }
        // A tracked file deleted in the working tree is not there to measure.
        if let Ok(m) = std::fs::metadata(root.join(name.as_ref()))
            && m.len() > LIMIT
        {
            big.push(format!("{name} ({} bytes)", m.len()));
        }
    }
    assert!(
        big.is_empty(),
        "tracked files over 1 MB outside samples/: {}",
        big.join(", ")
    );
}
