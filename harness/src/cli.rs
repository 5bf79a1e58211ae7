//! Command-line arguments, resolved into a validated configuration before
//! anything runs (ripgrep's split between raw args and config).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::{Device, ALL_BACKENDS};

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
    /// Comma-separated lanes (ort,tch,candle,reference); overrides the cases'.
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
    /// Comma-separated backends (tch,candle) that also run an idiomatic-port
    /// lane `<backend>:port` (every Resize lowered the naive way); overrides the cases' `port`.
    #[arg(long, value_delimiter = ',')]
    pub port: Option<Vec<String>>,
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
}

impl RunArgs {
    /// Checks names and devices; the error is one line for exit code 2.
    pub fn resolve(self) -> Result<RunConfig, String> {
        if let Some(bs) = &self.backends {
            for b in bs {
                if !ALL_BACKENDS.contains(&b.as_str()) {
                    return Err(format!(
                        "--backends: unknown backend `{b}` (expected ort, tch, candle, reference)"
                    ));
                }
            }
        }
        if let Some(ps) = &self.port {
            for p in ps {
                if !crate::case::PORT_BACKENDS.contains(&p.as_str()) {
                    return Err(format!(
                        "--port: `{p}` has no idiomatic-port lane (expected tch or candle)"
                    ));
                }
            }
        }
        let device = match &self.device {
            None => None,
            Some(d) => Some(Device::parse(d).ok_or_else(|| {
                format!("--device: `{d}` is not a device (expected cpu or cuda:N)")
            })?),
        };
        Ok(RunConfig {
            paths: self.paths,
            backends: self.backends,
            device,
            format: self.format,
            out: self.out,
            all: self.all,
            port: self.port,
        })
    }
}
