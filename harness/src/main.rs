//! The `xdiff` binary: parse arguments, run, and map outcomes to exit codes
//! ([`exit`]: 0 = everything within tolerance or as declared, 1 = an
//! undeclared divergence or a declared one that no longer happens, 2 = bad
//! input, usage or environment). Errors are one line on stderr, never a
//! backtrace.
//!
//! Before a `run --isolation none`, the process re-executes itself once
//! with libgomp's `OMP_WAIT_POLICY=PASSIVE` when neither it nor
//! `GOMP_SPINCOUNT` is set ([`passive_openmp`]): libtorch's OpenMP workers
//! otherwise spin between ops and steal the cores of every other lane
//! (docs/performance.md). With `--isolation lane` the frameworks run in
//! lane workers, which are started with the policy set: no re-exec.

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
        Command::Run(r) => r.resolve().map_err(anyhow::Error::msg).and_then(|cfg| {
            // Lane workers get the policy in their environment instead.
            if cfg.isolation.is_none() {
                passive_openmp();
            }
            xdiff::app::run(&cfg)
        }),
        Command::Case(c) => xdiff::app::starter(c),
        Command::Merge(m) => xdiff::app::merge(m),
        Command::Backends => {
            println!("{}", xdiff::case::default_backends().join(","));
            Ok(true)
        }
        Command::LaneWorker => xdiff::isolate::worker_main()
            .map(|()| true)
            .map_err(anyhow::Error::from),
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

/// libgomp reads its wait policy once, when it loads (before `main`, as
/// libtorch links it): the only way to set it from here is to run this
/// binary again with it in the environment. Costs one more libtorch
/// start-up; scripts that export `OMP_WAIT_POLICY` skip it, and a user's
/// own setting (either variable) is kept. If the exec fails, run as is.
fn passive_openmp() {
    use std::os::unix::process::CommandExt;
    let Some((key, value)) = xdiff::isolate::passive_openmp_env() else {
        return;
    };
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let _ = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(key, value)
        .exec();
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
