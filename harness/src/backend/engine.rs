//! The engine vocabulary every backend speaks, after wasmtime's differential
//! oracles: an [`Engine`] prepares a [`Graph`] once for a device, the
//! prepared [`Session`] runs it and returns a [`Trace`] with every node's
//! outputs as host tensors and a status per node. It sits below the backends
//! (each imports it) and below the backend table in `backend/mod.rs` (which
//! constructs them), so the two never import each other.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::graph::{Graph, Weights};
use crate::options::{Device, EngineOptions};
use crate::tensor::{DType, Tensor};

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
    /// The node did not run here, but its outputs were taken from this lane
    /// (a [`Bridge`]) so that the nodes after it still run.
    pub bridged: Option<String>,
}

/// Values another lane computed, offered to an engine for the nodes it
/// cannot run: one node a lane (or the reference) cannot run must not leave
/// everything after it unrun. Engines that run a whole graph at once (ORT)
/// ignore it.
pub trait Bridge: Sync {
    /// The value of `name` in its ONNX dtype, and the lane it comes from.
    fn value(&self, name: &str) -> Option<(Tensor, String)>;
    /// Node `index` (of `Graph::nodes`) is about to start: a lane run in a
    /// child process reports it so that a crash names the node
    /// (`crate::isolate`). Engines that run a whole graph at once never call it.
    fn started(&self, _index: usize) {}
    /// Node `index` finished and `trace` holds what the run produced so
    /// far: the parent's judge may judge the node now and take out of
    /// `trace` the values no lane needs any more (`crate::run`'s stepping
    /// judge). Engines that run a whole graph at once never call it.
    fn finished(&self, _index: usize, _trace: &mut Trace) {}
}

/// No values to bridge with.
pub struct NoBridge;

impl Bridge for NoBridge {
    fn value(&self, _name: &str) -> Option<(Tensor, String)> {
        None
    }
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
    /// The values this lane took from a [`Bridge`] for the nodes it could
    /// not run, as it received them (its inputs to the nodes after them).
    pub bridged: HashMap<String, Tensor>,
    /// The graph outputs as the model runs when deployed, where they may
    /// differ from `values` (ORT: the untapped model, whose fusions tapping
    /// blocks); empty where `values` already are that.
    pub deployed: HashMap<String, Tensor>,
}

/// What [`Session::deployed`] gives: the graph outputs as the model runs
/// when deployed, apart from the traced run.
#[derive(Debug, Clone, Default)]
pub struct Deployed {
    pub outputs: HashMap<String, Tensor>,
    /// How they differ from the traced run's (first among the lane's notes).
    pub effects: Vec<String>,
    /// What the runtime logged for the deployed model.
    pub log: Vec<String>,
}

impl Trace {
    /// Takes in the deployed outputs of [`Session::deployed`]: its notes on
    /// them first, then the run's, then the deployed model's log lines not
    /// already among them.
    pub fn settle(&mut self, deployed: Deployed) {
        self.deployed = deployed.outputs;
        let mut notes = deployed.effects;
        for line in self.notes.drain(..).chain(deployed.log) {
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
        self.notes = notes;
    }
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
    /// What the engine needs of the model's weights in a graph it is
    /// given: host tensors ([`Graph::initializers`], each converted where
    /// it is read) by default. ORT's lane worker keeps external data in its
    /// files, which ORT maps itself.
    fn weights(&self) -> Weights {
        Weights::Tensors
    }
    /// Loads what the engine loads on first use (a framework library),
    /// ahead of the first job: a lane worker started before the cases
    /// load does it meanwhile. A failure is left to `prepare` to report.
    fn warm(&self) {}
}

/// A graph prepared by an engine for one device.
pub trait Session {
    /// Runs the graph on `inputs` (graph input name -> tensor).
    fn run(&mut self, inputs: &BTreeMap<String, Tensor>) -> Result<Trace, EngineError> {
        self.run_bridged(inputs, &NoBridge)
    }
    /// [`Session::run`], taking the outputs of a node this engine cannot run
    /// from `bridge` where it has them (the node is still reported as not
    /// run, with [`NodeRun::bridged`] set).
    fn run_bridged(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        bridge: &dyn Bridge,
    ) -> Result<Trace, EngineError>;
    /// After a run: the graph outputs of the model as deployed on the same
    /// `inputs`, where the engine runs it apart from the traced model (a
    /// whole-graph runtime's untapped model, `graph_runtime`), to be taken
    /// into the trace ([`Trace::settle`]). Apart, so that the lanes waiting
    /// for the trace's values need not wait for this too. `None` (the
    /// default) where the trace already holds them.
    fn deployed(
        &mut self,
        _inputs: &BTreeMap<String, Tensor>,
    ) -> Result<Option<Deployed>, EngineError> {
        Ok(None)
    }
    /// After a run: whether its trace holds the deployed outputs already,
    /// so that [`Session::deployed`] would be `None` without running
    /// anything (a lane worker then says so with the trace, and sends no
    /// frame after it). An engine that overrides `deployed` overrides this.
    fn settled(&self) -> bool {
        true
    }
    /// [`Session::run_bridged`], then [`Session::deployed`] taken into the
    /// trace: the whole result at once.
    fn run_settled(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        bridge: &dyn Bridge,
    ) -> Result<Trace, EngineError> {
        let mut trace = self.run_bridged(inputs, bridge)?;
        if let Some(deployed) = self.deployed(inputs)? {
            trace.settle(deployed);
        }
        Ok(trace)
    }
    /// The settings that actually ran (optimization level, TF32, threads...).
    fn settings(&self) -> Vec<(String, String)>;
}

/// Moving a value between the host and a framework failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransferError {
    /// One side has no dtype with the value's semantics (the message names both).
    #[error("{0}")]
    NoDtype(String),
    /// The framework raised an error while copying or placing the value.
    #[error("{0}")]
    Framework(String),
}
