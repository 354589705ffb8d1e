//! The inventory loader, through its public entry point (a file: plain, gzip or zstd).
#![no_main]

use fleetwatch::inventory::load_inventory;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn path() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        // fuzz/run.sh names a scratch folder it removes afterwards: libFuzzer ends a timed
        // run with `exit`, so nothing here gets the chance to delete the file.
        let dir = if let Some(dir) = std::env::var_os("FLEETWATCH_FUZZ_SCRATCH") {
            PathBuf::from(dir)
        } else if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!(
            "fleetwatch-fuzz-inventory-{}.csv",
            std::process::id()
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    let p = path();
    std::fs::write(p, data).expect("write the fuzz input");
    if let Ok((inv, rejects, rejected)) = load_inventory(p, 1) {
        assert!(rejects.len() as u64 <= rejected);
        assert!(!(inv.devices.is_empty() && inv.counts.is_empty()));
    }
});
