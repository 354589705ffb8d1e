//! Progress on stderr: bytes read and rate, redrawn a few times a second, only on a terminal.

use fleetwatch::source::pipeline::Progress;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct ProgressDisplay {
    pub counters: Arc<Progress>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl ProgressDisplay {
    /// Starts a display if stderr is a terminal; `total` is the input size when known.
    pub fn start(total: Option<u64>) -> ProgressDisplay {
        let counters = Arc::new(Progress::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handle = std::io::stderr().is_terminal().then(|| {
            let (c, s) = (counters.clone(), stop.clone());
            std::thread::spawn(move || {
                let t0 = Instant::now();
                while !s.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    let bytes = c.bytes.load(Ordering::Relaxed);
                    let secs = t0.elapsed().as_secs_f64().max(1e-3);
                    let rate = bytes as f64 / secs / 1e6;
                    let mut line =
                        format!("\r  read {:.1} MB  {:.0} MB/s", bytes as f64 / 1e6, rate);
                    if let Some(t) = total.filter(|&t| t > 0 && bytes <= t) {
                        let eta = (t - bytes) as f64 / (bytes as f64 / secs).max(1.0);
                        line +=
                            &format!("  {:.0}%  ETA {:.0}s", bytes as f64 * 100.0 / t as f64, eta);
                    }
                    let _ = write!(std::io::stderr(), "{line}\x1b[K");
                }
                let _ = write!(std::io::stderr(), "\r\x1b[K");
            })
        });
        ProgressDisplay {
            counters,
            stop,
            handle,
        }
    }

    pub fn finish(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The engine's `Watch`: a progress display per read of the inputs.
#[derive(Default)]
pub struct Watcher(std::sync::Mutex<Option<ProgressDisplay>>);

impl fleetwatch::engine::Watch for Watcher {
    fn started(&self, total: Option<u64>) -> Arc<Progress> {
        let display = ProgressDisplay::start(total);
        let counters = display.counters.clone();
        if let Ok(mut slot) = self.0.lock()
            && let Some(old) = slot.replace(display)
        {
            old.finish();
        }
        counters
    }

    fn finished(&self) {
        if let Ok(mut slot) = self.0.lock()
            && let Some(d) = slot.take()
        {
            d.finish();
        }
    }
}
