//! One module per subcommand: each turns parsed arguments into a run and an exit status.

pub mod commands;
pub mod progress;

use std::process::ExitCode;

/// Exit statuses, documented in `--help` and the README.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Every record was read.
    Ok = 0,
    /// The run could not complete (an input could not be opened or read, bad arguments to a
    /// file, an I/O error).
    Failed = 1,
    /// Bad command-line usage (from clap).
    Usage = 2,
    /// The run completed, but some records were rejected (see the quarantine file).
    CompletedWithRejects = 3,
}

impl From<Status> for ExitCode {
    fn from(s: Status) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

/// Buffered, locked stdout.
pub type Out<'a> = std::io::BufWriter<std::io::StdoutLock<'a>>;

/// Writes to stdout, ignoring a closed pipe (`fleetwatch ... | head`).
pub fn stdout_write(f: impl FnOnce(&mut Out) -> std::io::Result<()>) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut lock = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    match f(&mut lock).and_then(|_| std::io::Write::flush(&mut lock)) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}
