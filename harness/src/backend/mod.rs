//! The engine abstraction every framework plugs into, after wasmtime's
//! differential oracles: an [`Engine`] prepares a [`Graph`] once for a
//! [`Device`], the prepared [`Session`] runs it and returns a [`Trace`] with
//! every node's outputs as host tensors and a status per node.
//!
//! "Unsupported" is a value here, never a crash: a backend that cannot run a
//! node says so (naming the op and the attribute that blocks it) and the nodes
//! that depend on it are reported as skipped, not silently fed from elsewhere.

pub mod ort;
pub mod reference;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::graph::Graph;
use crate::op::Coverage;
use crate::tensor::{DType, Tensor};
use interp::OpRegistry;

pub use crate::options::{Device, EngineOptions, OptLevel};

/// What happened to one node in one backend.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeStatus {
    /// The node ran; its outputs are in the trace.
    Ran,
    /// The backend cannot run this node: `<op> <attribute>: why`.
    Unsupported(String),
    /// The framework raised an error (bad shapes, unsupported dtype, a C++ exception).
    Error(String),
    /// Not run because an input came from a node that did not run.
    Skipped(String),
}

/// One node's outcome: its status and how the backend lowered it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRun {
    pub status: NodeStatus,
    /// `native: <op>`, `composed: <ops>`, `spec` (reference) or `graph` (ORT).
    pub lowering: Option<String>,
}

/// Everything one run produced.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Indexed like `Graph::nodes`.
    pub nodes: Vec<NodeRun>,
    /// Every produced value by name, in the backend's dtype.
    pub values: HashMap<String, Tensor>,
    /// The dtype ONNX semantics give each value, where the backend stores
    /// values wider than that (the float64 reference stores every float as f64).
    pub logical: HashMap<String, DType>,
    pub wall: Duration,
    /// Findings about the run itself (e.g. ORT: tapping changed final outputs).
    pub notes: Vec<String>,
}

/// Failures of a whole engine (as opposed to one node).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("{engine}: runtime not available: {why}")]
    Missing { engine: &'static str, why: String },
    #[error("{engine}: device {device} is not available: {why}")]
    Device {
        engine: &'static str,
        device: Device,
        why: String,
    },
    #[error("{engine}: {why}")]
    Failed { engine: &'static str, why: String },
    #[error("input `{name}`: {why}")]
    Input { name: String, why: String },
}

/// A framework (or the reference) that can run ONNX graphs.
pub trait Engine: Send + Sync {
    /// Short lane name in reports: `ort`, `tch`, `candle`, `reference`.
    fn name(&self) -> &'static str;
    /// Prepares `graph` once; the session may be run many times.
    fn prepare(&self, graph: &Graph, opts: &EngineOptions)
        -> Result<Box<dyn Session>, EngineError>;
}

/// A graph prepared by an engine for one device.
pub trait Session {
    /// Runs the graph on `inputs` (graph input name -> tensor).
    fn run(&mut self, inputs: &BTreeMap<String, Tensor>) -> Result<Trace, EngineError>;
    /// The settings that actually ran (optimization level, TF32, threads...).
    fn settings(&self) -> Vec<(String, String)>;
}

/// A backend's lowering coverage: every registered op definition (op, opset
/// range, coverage rows), for `xdiff ops` and docs/ops.md.
#[derive(Debug, Clone, Copy)]
pub struct OpEntry {
    pub op: &'static str,
    pub since: u32,
    /// Inclusive; `u32::MAX` means open-ended.
    pub until: u32,
    pub coverage: &'static [Coverage],
}

/// The op entries of a lowering registry.
pub fn op_entries<T>(registry: &OpRegistry<T>) -> Vec<OpEntry> {
    registry
        .all()
        .into_iter()
        .map(|d| OpEntry {
            op: d.op,
            since: d.since,
            until: d.until,
            coverage: d.coverage,
        })
        .collect()
}

/// Creates a backend's engine (or says why it cannot).
pub type BuildFn = fn() -> Result<Box<dyn Engine>, EngineError>;
/// Lists a lowering backend's op entries.
pub type CoverageFn = fn() -> Vec<OpEntry>;

/// One row of the backend table: everything xdiff knows about a backend by
/// name. CLI validation, case defaults, `xdiff backends`, `xdiff ops` and
/// docs/ops.md are all derived from [`BACKENDS`].
#[derive(Debug, Clone, Copy)]
pub struct BackendInfo {
    /// Lane name in reports and on the command line.
    pub name: &'static str,
    /// The cargo feature that compiles it in (`None`: always compiled in).
    pub feature: Option<&'static str>,
    /// Whether this binary was built with it.
    pub compiled: bool,
    /// Its engine; a compiled-out backend reports the missing feature.
    pub build: BuildFn,
    /// Its lowering registry's coverage; `None` for whole-graph runtimes
    /// (and compiled-out backends).
    pub coverage: Option<CoverageFn>,
    /// Whether it has an idiomatic-port lane (`<backend>:port`).
    pub port: bool,
}

/// A [`BackendInfo`] row. The second form is for a backend behind a cargo
/// feature: without the feature its engine and registry are not referenced.
macro_rules! backend {
    ($name:literal, $engine:expr, coverage: $coverage:expr, port: $port:expr) => {
        BackendInfo {
            name: $name,
            feature: None,
            compiled: true,
            build: || Ok(Box::new($engine)),
            coverage: $coverage,
            port: $port,
        }
    };
    ($name:literal, feature $feature:literal, $engine:expr, coverage: $coverage:expr, port: $port:expr) => {
        BackendInfo {
            name: $name,
            feature: Some($feature),
            compiled: cfg!(feature = $feature),
            build: {
                #[cfg(feature = $feature)]
                let build: BuildFn = || Ok(Box::new($engine));
                #[cfg(not(feature = $feature))]
                let build: BuildFn = || {
                    Err(EngineError::Missing {
                        engine: $name,
                        why: concat!(
                            "this xdiff was built without the `",
                            $feature,
                            "` cargo feature"
                        )
                        .into(),
                    })
                };
                build
            },
            coverage: {
                #[cfg(feature = $feature)]
                let coverage: Option<CoverageFn> = $coverage;
                #[cfg(not(feature = $feature))]
                let coverage: Option<CoverageFn> = None;
                coverage
            },
            port: $port,
        }
    };
}

/// Every backend, in the order reports show them. Adding a backend is its
/// module, one row here and one cargo feature.
pub const BACKENDS: &[BackendInfo] = &[
    backend!("ort", ort::OrtEngine, coverage: None, port: false),
    backend!("tch", feature "tch-backend", libtorch::TchEngine,
        coverage: Some(|| op_entries(libtorch::registry())), port: true),
    backend!("candle", feature "candle-backend", candle::CandleEngine,
        coverage: Some(|| op_entries(candle::registry())), port: true),
    backend!("reference", reference::ReferenceEngine,
        coverage: Some(|| op_entries(reference::registry())), port: false),
    // Test-only: absent from other builds, so it is in no default or message.
    #[cfg(feature = "identity-backend")]
    backend!("identity", feature "identity-backend", identity::IdentityEngine,
        coverage: None, port: false),
];

/// The table row of backend `name`.
pub fn info(name: &str) -> Option<&'static BackendInfo> {
    BACKENDS.iter().find(|b| b.name == name)
}

/// Whether `name` is a backend with an idiomatic-port lane.
pub fn has_port_lane(name: &str) -> bool {
    info(name).is_some_and(|b| b.port)
}

/// The names of the backends `keep` selects (compiled in or not), for
/// messages: joined by `, ` with `last` before the last one (`tch or candle`).
pub fn names_where(keep: impl Fn(&BackendInfo) -> bool, last: &str) -> String {
    let names: Vec<&str> = BACKENDS
        .iter()
        .filter(|b| keep(b))
        .map(|b| b.name)
        .collect();
    match names.split_last() {
        Some((tail, head)) if !head.is_empty() => format!("{}{last}{tail}", head.join(", ")),
        _ => names.join(""),
    }
}

/// Creates an engine by lane name. Backends compiled out report why.
pub fn engine(name: &str) -> Result<Box<dyn Engine>, EngineError> {
    match info(name) {
        Some(b) => (b.build)(),
        None => Err(EngineError::Failed {
            engine: "xdiff",
            why: format!(
                "unknown backend `{name}` (expected one of {})",
                names_where(|_| true, ", ")
            ),
        }),
    }
}

#[cfg(feature = "tch-backend")]
pub mod libtorch;

#[cfg(feature = "candle-backend")]
pub mod candle;

#[cfg(feature = "identity-backend")]
pub mod identity;

pub mod graph_runtime;
pub mod interp;
