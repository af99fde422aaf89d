//! The subcommands: arguments in, library options out, results printed.

pub mod push;
