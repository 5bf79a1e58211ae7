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
use crate::tensor::{DType, Tensor};

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
#[derive(Debug, thiserror::Error)]
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

/// Backend names in the order reports show them.
pub const ALL_BACKENDS: [&str; 4] = ["ort", "tch", "candle", "reference"];

#[allow(dead_code)]
fn compiled_out(engine: &'static str) -> EngineError {
    EngineError::Missing {
        engine,
        why: format!("this xdiff was built without the `{engine}-backend` cargo feature"),
    }
}

/// Creates an engine by lane name. Backends compiled out report why.
pub fn engine(name: &str) -> Result<Box<dyn Engine>, EngineError> {
    match name {
        "ort" => Ok(Box::new(ort::OrtEngine)),
        "reference" => Ok(Box::new(reference::ReferenceEngine)),
        #[cfg(feature = "tch-backend")]
        "tch" => Ok(Box::new(crate::backend::libtorch::TchEngine)),
        #[cfg(feature = "candle-backend")]
        "candle" => Ok(Box::new(crate::backend::candle::CandleEngine)),
        #[cfg(not(feature = "tch-backend"))]
        "tch" => Err(compiled_out("tch")),
        #[cfg(not(feature = "candle-backend"))]
        "candle" => Err(compiled_out("candle")),
        other => Err(EngineError::Failed {
            engine: "xdiff",
            why: format!("unknown backend `{other}` (expected one of ort, tch, candle, reference)"),
        }),
    }
}

#[cfg(feature = "tch-backend")]
pub mod libtorch;

#[cfg(feature = "candle-backend")]
pub mod candle;

pub mod interp;
