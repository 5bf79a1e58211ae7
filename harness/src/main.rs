//! The `xdiff` binary: parse arguments, run, and map outcomes to exit codes
//! ([`exit`]: 0 = everything within tolerance or as declared, 1 = an
//! undeclared divergence or a declared one that no longer happens, 2 = bad
//! input, usage or environment). Errors are one line on stderr, never a
//! backtrace.

use std::process::ExitCode;

use clap::Parser;
use xdiff::app::exit;
use xdiff::cli::{Args, Command};

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match args.command {
        Command::Run(r) => r
            .resolve()
            .map_err(anyhow::Error::msg)
            .and_then(|cfg| xdiff::app::run(&cfg)),
        Command::Case(c) => xdiff::app::starter(c),
        Command::Merge(m) => xdiff::app::merge(m),
        Command::Backends => {
            println!("{}", xdiff::case::default_backends().join(","));
            Ok(true)
        }
        Command::Ops => {
            print!("{}", xdiff::coverage::markdown());
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::from(exit::OK),
        Ok(false) => ExitCode::from(exit::FAILED),
        // A closed pipe (`xdiff run ... | head`) is the reader's choice, not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("xdiff: {}", one_line(&format!("{e:#}")));
            ExitCode::from(exit::BAD_INPUT)
        }
    }
}

/// Bad input gets one line: framework messages may span several (ORT) or
/// carry a backtrace (candle under `RUST_BACKTRACE`); keep the message only.
fn one_line(msg: &str) -> String {
    let msg = msg.split("\nStack backtrace").next().unwrap_or(msg);
    let msg = msg.split("\nstack backtrace").next().unwrap_or(msg);
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}
