//! The `karl` command: parse arguments, dispatch to one function per subcommand, and turn
//! errors into a message on stderr and a non-zero exit code.
#![forbid(unsafe_code)]

mod args;
mod commands;
mod data;
mod dataset;
mod device;
mod image_io;
mod plot;
mod progress;
mod report;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut cli = args::Cli::parse();
    if let args::Command::Train(t) = &mut cli.command {
        t.steps_given = std::env::args().any(|a| a == "--steps" || a.starts_with("--steps="));
    }
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
