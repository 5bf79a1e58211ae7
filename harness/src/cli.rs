//! Command-line arguments, resolved into a validated configuration before
//! anything runs (ripgrep's split between raw args and config).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::{self, Device};

#[derive(Debug, Parser)]
#[command(
    name = "xdiff",
    version,
    about = "Diff one ONNX graph node by node across ONNX Runtime, libtorch, candle and a float64 reference"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run case files (*.toml), ONNX backend-test directories, or directories of them.
    Run(RunArgs),
    /// Print the op × backend lowering table generated from the registries.
    Ops,
    /// Print the backends compiled into this binary, comma-separated.
    Backends,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for the terminal.
    Text,
    /// The full report (docs/report-json.md).
    Json,
    /// A pull-request comment.
    Markdown,
    /// JUnit XML: one test case per case variant × lane.
    Junit,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Case files or directories.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Comma-separated backends (`xdiff backends` lists them); overrides the cases'.
    #[arg(long, value_delimiter = ',')]
    pub backends: Option<Vec<String>>,
    /// Device for every backend but the reference: cpu or cuda:N; overrides the cases'.
    #[arg(long)]
    pub device: Option<String>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write every report format into this directory: report.json,
    /// report.txt, report.md, junit.xml, matrix.json, matrix.md.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Show every node and lane, not only the ones that matter.
    #[arg(long)]
    pub all: bool,
    /// Comma-separated backends that also run an idiomatic-port lane
    /// `<backend>:port` (every Resize lowered the naive way); overrides the cases' `port`.
    #[arg(long, value_delimiter = ',')]
    pub port: Option<Vec<String>>,
    /// Write an ONNX backend-test directory per introduced divergence into
    /// this directory: `<case>--<node>--<lane>/` with a one-node model, the
    /// lane's inputs and the reference's outputs on them.
    #[arg(long, value_name = "DIR")]
    pub repro: Option<PathBuf>,
}

/// Validated run configuration.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub paths: Vec<PathBuf>,
    pub backends: Option<Vec<String>>,
    pub device: Option<Device>,
    pub format: Format,
    pub out: Option<PathBuf>,
    pub all: bool,
    /// `--port`: replaces every case's `port` list when given.
    pub port: Option<Vec<String>>,
    /// `--repro`: where the repro directories go.
    pub repro: Option<PathBuf>,
}

/// A bad command-line value; one line for exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error(
        "--backends: unknown backend `{0}` (expected {expected})",
        expected = backend::names_where(|_| true, ", ")
    )]
    UnknownBackend(String),
    #[error(
        "--port: `{0}` has no idiomatic-port lane (expected {expected})",
        expected = backend::names_where(|b| b.port, " or ")
    )]
    NoPortLane(String),
    #[error("--device: `{0}` is not a device (expected cpu or cuda:N)")]
    NotADevice(String),
}

impl RunArgs {
    /// Checks names and devices.
    pub fn resolve(self) -> Result<RunConfig, ArgsError> {
        let names = self.backends.iter().flatten();
        if let Some(b) = names.into_iter().find(|b| backend::info(b).is_none()) {
            return Err(ArgsError::UnknownBackend(b.clone()));
        }
        let ports = self.port.iter().flatten();
        if let Some(p) = ports.into_iter().find(|p| !backend::has_port_lane(p)) {
            return Err(ArgsError::NoPortLane(p.clone()));
        }
        let device = match &self.device {
            None => None,
            Some(d) => Some(Device::parse(d).ok_or_else(|| ArgsError::NotADevice(d.clone()))?),
        };
        Ok(RunConfig {
            paths: self.paths,
            backends: self.backends,
            device,
            format: self.format,
            out: self.out,
            all: self.all,
            port: self.port,
            repro: self.repro,
        })
    }
}

#[cfg(all(test, feature = "tch-backend", feature = "candle-backend"))]
mod tests {
    use super::*;

    fn resolve(args: &[&str]) -> Result<RunConfig, ArgsError> {
        let args = [&["xdiff", "run", "case.toml"], args].concat();
        match Args::parse_from(args).command {
            Command::Run(r) => r.resolve(),
            other => panic!("not a run: {other:?}"),
        }
    }

    #[test]
    fn bad_names_are_told_what_the_backend_table_holds() {
        let bad = |args: &[&str]| resolve(args).unwrap_err().to_string();
        assert_eq!(
            bad(&["--backends", "ort,tensorflow"]),
            "--backends: unknown backend `tensorflow` (expected ort, tch, candle, reference)"
        );
        assert_eq!(
            bad(&["--port", "tch,ort"]),
            "--port: `ort` has no idiomatic-port lane (expected tch or candle)"
        );
        assert_eq!(
            bad(&["--device", "tpu"]),
            "--device: `tpu` is not a device (expected cpu or cuda:N)"
        );
        assert!(resolve(&["--backends", "ort,reference", "--port", "candle"]).is_ok());
    }
}
