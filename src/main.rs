//! The `debless` binary: parse the command line, run it (see [`cli`]), print an error as
//! one line with its causes, and map it to the exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match cli::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and each cause the line does not already say.
            eprintln!("error: {}", debless::text::error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
