//! The `fleetwatch` command line: parse the arguments, resolve and run the command, map the
//! outcome to an exit status. Everything else is in `cli/` (the command line) and the library.

mod cli;

use clap::Parser;
use cli::Status;
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::allocator::one_arena_a_core();
    let parsed = match cli::args::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Status::Usage.into()
            } else {
                Status::Ok.into()
            };
        }
    };
    match cli::run(parsed.command) {
        Ok(status) => status.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Status::Failed.into()
        }
    }
}
