//! The command line shared by the two executables, `xdiff` and `xdiff-tch`
//! (the same program with libtorch linked, `backend::torch`): parse
//! arguments, run, and map outcomes to exit codes ([`exit`]: 0 = everything
//! within tolerance or as declared, 1 = an undeclared divergence or a
//! declared one that no longer happens, 2 = bad input, usage or
//! environment). Errors are one line on stderr, never a backtrace.
//!
//! `xdiff run --isolation none` runs every lane in one process: where a tch
//! lane may run, `xdiff` hands the command line to `xdiff-tch`, which
//! re-executes itself once with libtorch's environment
//! (`isolate::torch_env`: libgomp's `OMP_WAIT_POLICY=PASSIVE` unless it or
//! `GOMP_SPINCOUNT` is set, `ATEN_CPU_CAPABILITY=avx2` unless set) when a
//! variable of it is missing ([`torch_environment`]): libtorch's OpenMP
//! workers otherwise spin between ops and steal the cores of every other
//! lane (docs/performance.md), and its kernels would be the machine's
//! (docs/runtimes.md). With `--isolation lane` the frameworks run in lane
//! workers, which are started with that environment: no re-exec.

use std::process::ExitCode;

use crate::app::exit;
use crate::backend::torch;
use crate::cli::{Args, Command, RunConfig};
use clap::Parser;

/// The whole command line: parse, run, exit code.
pub fn main() -> ExitCode {
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
                in_one_process(&cfg);
            }
            crate::app::run(&cfg)
        }),
        Command::Case(c) => crate::app::starter(c),
        Command::Merge(m) => crate::app::merge(m),
        Command::Backends => {
            println!("{}", crate::case::default_backends().join(","));
            Ok(true)
        }
        Command::LaneWorker => crate::isolate::worker_main()
            .map(|()| true)
            .map_err(anyhow::Error::from),
        Command::Ops => {
            // The tch lowerings are in the program that links libtorch.
            if !torch::linked() {
                exec_torch();
            }
            print!("{}", crate::coverage::markdown());
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

/// `--isolation none`: every lane in this process. A run that may have a
/// tch lane needs libtorch here, so `xdiff` hands the whole command to
/// `xdiff-tch` ([`exec_torch`]); in `xdiff-tch`, libtorch's environment is
/// set ([`torch_environment`]). A run whose `--backends` and `--port` name no
/// tch lane stays in `xdiff`, which loads neither.
fn in_one_process(cfg: &RunConfig) {
    if torch::linked() {
        if !crate::isolate::torch_env().is_empty() {
            torch_environment();
        }
        return;
    }
    let names = cfg.backends.iter().chain(cfg.port.iter()).flatten();
    let no_torch = cfg.backends.is_some() && !names.into_iter().any(|b| torch::needs_torch(b));
    if !no_torch {
        exec_torch();
    }
}

/// Runs this command line in `xdiff-tch` instead (with libtorch's
/// environment, `isolate::torch_env`). If there is none or the exec
/// fails, go on here: a tch lane then runs in an `xdiff-tch` worker, or
/// reports that there is none.
fn exec_torch() {
    if let Some(exe) = torch::exe() {
        reexec(exe);
    }
}

/// libgomp reads its wait policy once, when it loads (before `main`, as
/// libtorch links it): the only way to set it from here is to run this
/// binary again with it (and libtorch's kernel set) in the environment.
/// Costs one more libtorch start-up; scripts that export both skip it, and
/// a user's own settings are kept. If the exec fails, run as is.
fn torch_environment() {
    if let Ok(exe) = std::env::current_exe() {
        reexec(exe);
    }
}

/// Replaces this process with `exe` and the same arguments, adding
/// libtorch's environment (`isolate::torch_env`). Returns only on failure.
fn reexec(exe: std::path::PathBuf) {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(exe);
    command.args(std::env::args_os().skip(1));
    command.envs(crate::isolate::torch_env());
    let _ = command.exec();
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
