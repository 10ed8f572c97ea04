//! The `karl` command: parse arguments, dispatch to one function per subcommand, and turn
//! errors into a message on stderr and a non-zero exit code.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod image_io;
mod progress;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
