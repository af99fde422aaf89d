//! The `debless` binary: parse the command line, run it (see [`cli`]), print an error as
//! one line with its causes (and, under `--json`, as a JSON object on stdout), and map it
//! to the exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.json();
    let failure = cli.failure();
    match cli::run(cli) {
        Ok(status) => status,
        Err(e) => {
            // One line: the error and each cause the line does not already say.
            eprintln!("error: {}", debless::text::error_line(e.as_ref()));
            // Where the document would have been, so a script reading stdout sees why.
            if json {
                println!("{}", cli::json::error(&e));
            }
            failure
        }
    }
}
