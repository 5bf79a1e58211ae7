//! Command-line arguments, resolved into a validated configuration before
//! anything runs (ripgrep's split between raw args and config).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::backend::{self, Device};
use crate::case::model_file::{self, ModelSpec};
use crate::isolate::Isolation;
use crate::partition::{Partition, PartitionError};

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
    /// Run case files (*.toml), ONNX models (*.onnx), ONNX backend-test
    /// directories, or directories of case files and test directories.
    Run(RunArgs),
    /// Write a starter case file for an ONNX model to stdout: the case that
    /// `xdiff run` on the model with the same flags runs.
    Case(CaseArgs),
    /// Merge the JSON reports of the shards of one run (`run --partition`)
    /// into the unsharded run's reports.
    Merge(MergeArgs),
    /// Print the op × backend lowering table generated from the registries.
    Ops,
    /// Print the backends compiled into this binary, comma-separated.
    Backends,
    /// Internal: serve lane jobs for a parent `xdiff run` (`crate::isolate`).
    #[command(name = "__lane-worker", hide = true)]
    LaneWorker,
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
    #[command(flatten)]
    pub report: ReportArgs,
    /// Comma-separated backends that also run an idiomatic-port lane
    /// `<backend>:port` (every Resize lowered the naive way); overrides the cases' `port`.
    #[arg(long, value_delimiter = ',')]
    pub port: Option<Vec<String>>,
    /// Write an ONNX backend-test directory per introduced divergence into
    /// this directory: `<case>--<node>--<lane>/` with a one-node model, the
    /// lane's inputs and the reference's outputs on them.
    #[arg(long, value_name = "DIR")]
    pub repro: Option<PathBuf>,
    /// Run only shard K of N of the case variants: `hash:K/N` (by a stable
    /// hash of each variant's file and id) or `count:K/N` (round-robin over
    /// the run's order); `xdiff merge` puts the shards' reports together.
    #[arg(long, value_name = "SCHEME:K/N")]
    pub partition: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub isolation: IsolationArgs,
}

/// Where lanes run (docs/isolation.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationMode {
    /// Every lane in the xdiff process: fastest, but a framework crash ends the run.
    None,
    /// Each engine lane in a worker process: a crash or hang is that lane's error.
    Lane,
}

/// `--isolation` and `--lane-timeout`.
#[derive(Debug, Clone, clap::Args)]
pub struct IsolationArgs {
    /// Run each engine lane in a worker process (`lane`), so that a crash
    /// or hang becomes that lane's error verdict, or all in this one (`none`).
    #[arg(long, value_enum, default_value_t = IsolationMode::Lane)]
    pub isolation: IsolationMode,
    /// With `--isolation lane`: seconds one lane may run on one case before
    /// its worker is killed (an error verdict).
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    pub lane_timeout: f64,
}

impl IsolationArgs {
    /// The run's isolation, with the running binary as the worker (a program
    /// that is not xdiff, a test, sets `Isolation::exe` itself).
    fn resolve(&self) -> Result<Option<Isolation>, ArgsError> {
        if !(self.lane_timeout.is_finite() && self.lane_timeout > 0.0) {
            return Err(ArgsError::LaneTimeout(self.lane_timeout.to_string()));
        }
        if self.isolation == IsolationMode::None {
            return Ok(None);
        }
        let exe = std::env::current_exe().map_err(|e| ArgsError::NoExe(e.to_string()))?;
        Ok(Some(Isolation {
            exe,
            timeout: Duration::from_secs_f64(self.lane_timeout),
        }))
    }
}

/// `xdiff merge shard1/report.json ... [--out DIR] [--format F]`.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shards' JSON reports (`report.json` of each `run --partition --out`).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// Where and how `run` and `merge` report (`merge` writes no heatmaps: a
/// report holds no tensors).
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
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
}

/// How to make a model file's inputs (`xdiff run model.onnx`, `xdiff case`).
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// The shape of a model input, setting its symbolic dimensions:
    /// NAME=D0,D1,... (repeatable; model files only).
    #[arg(long = "shape", value_name = "NAME=DIMS", value_parser = parse_shape)]
    pub shapes: Vec<(String, Vec<usize>)>,
    /// A model input's values from a file: NAME=FILE, FILE an .npy, .npz
    /// (the array named NAME, or its only array) or .pb TensorProto
    /// (repeatable; model files only).
    #[arg(long = "input", value_name = "NAME=FILE", value_parser = parse_input)]
    pub inputs: Vec<(String, PathBuf)>,
    /// Seed of the generated inputs (default 0; model files only).
    #[arg(long)]
    pub seed: Option<u64>,
}

impl ModelArgs {
    pub fn spec(self) -> ModelSpec {
        ModelSpec {
            shapes: self.shapes,
            inputs: self.inputs,
            seed: self.seed.unwrap_or(0),
        }
    }

    fn is_given(&self) -> bool {
        !self.shapes.is_empty() || !self.inputs.is_empty() || self.seed.is_some()
    }
}

/// `xdiff case model.onnx [--shape ...] [--input ...] [--seed N]`.
#[derive(Debug, clap::Args)]
pub struct CaseArgs {
    /// The ONNX model.
    pub model: PathBuf,
    #[command(flatten)]
    pub spec: ModelArgs,
}

/// `NAME=D0,D1,...` (the last `=` splits, so a name may hold one).
fn parse_shape(s: &str) -> Result<(String, Vec<usize>), String> {
    let (name, dims) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=D0,D1,..."))?;
    let dims = dims
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("`{s}`: dimensions are non-negative integers ({e})"))?;
    Ok((name.to_string(), dims))
}

/// `NAME=FILE` (the first `=` splits, so a path may hold one).
fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, file)) if !name.is_empty() && !file.is_empty() => {
            Ok((name.to_string(), PathBuf::from(file)))
        }
        _ => Err(format!("`{s}` is not NAME=FILE")),
    }
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
    /// `--shape`, `--input`, `--seed`: how model files (`*.onnx`) make their inputs.
    pub model: ModelSpec,
    /// `None`: every lane in this process (`--isolation none`).
    pub isolation: Option<Isolation>,
    /// `--partition`: run only this shard of the case variants.
    pub partition: Option<Partition>,
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
    #[error("--shape, --input and --seed apply to model files (*.onnx); no path names one")]
    NoModelFile,
    #[error("--lane-timeout: `{0}` is not a positive number of seconds")]
    LaneTimeout(String),
    #[error("--isolation lane: cannot find the xdiff executable to start lane workers ({0})")]
    NoExe(String),
    #[error(transparent)]
    Partition(#[from] PartitionError),
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
        if self.model.is_given() && !self.paths.iter().any(|p| model_file::is_model_path(p)) {
            return Err(ArgsError::NoModelFile);
        }
        let isolation = self.isolation.resolve()?;
        let partition = self.partition.as_deref().map(str::parse).transpose()?;
        Ok(RunConfig {
            isolation,
            paths: self.paths,
            backends: self.backends,
            device,
            format: self.report.format,
            out: self.report.out,
            all: self.report.all,
            port: self.port,
            repro: self.repro,
            model: self.model.spec(),
            partition,
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
            "--backends: unknown backend `tensorflow` (expected ort, tch, candle, onnx-ref, reference)"
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
        assert_eq!(
            bad(&["--partition", "hash:4/3"]),
            "--partition: `hash:4/3` is not hash:K/N or count:K/N with 1 <= K <= N"
        );
        assert!(resolve(&["--partition", "count:3/3"]).is_ok());
    }

    #[test]
    fn model_flags_split_names_from_values() {
        assert_eq!(parse_shape("a=b=1,3, 8"), Ok(("a=b".into(), vec![1, 3, 8])));
        assert!(parse_shape("x").is_err());
        assert_eq!(
            parse_input("x=dir/a=b.npy"),
            Ok(("x".into(), PathBuf::from("dir/a=b.npy")))
        );
        assert!(parse_input("=x.npy").is_err());
        assert_eq!(
            resolve(&["--seed", "3"]).unwrap_err().to_string(),
            "--shape, --input and --seed apply to model files (*.onnx); no path names one"
        );
    }
}
