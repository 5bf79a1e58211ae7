//! Node-by-node execution shared by every backend that lowers ONNX nodes to
//! its own ops (the reference, libtorch, candle).
//!
//! Each backend fills an [`OpRegistry`] family by family (tract's
//! `register_all_ops`): one [`OpDef`] per ONNX op and opset range, whose
//! function lowers a node to the framework's tensors and says how it did so
//! ([`How`]). The [`Interpreter`] walks the graph in topological order, keeps
//! the framework's tensors for the next nodes, copies each output to the host
//! once for the trace, and turns lowering errors and panics into per-node
//! statuses so one bad node never aborts a run.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::Instant;

use super::{Device, EngineError, EngineOptions, NodeRun, NodeStatus, Trace};
use crate::graph::{Attr, Graph, Node};
use crate::tensor::{DType, Tensor};

/// How a backend lowered a node (shown per node in reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The float64 reference, written from the ONNX spec.
    Spec,
    /// One framework op documented to have exactly these semantics.
    Native(String),
    /// Several framework ops, because no single op has these semantics.
    Composed(String),
}

impl How {
    pub fn native(op: impl Into<String>) -> How {
        How::Native(op.into())
    }
    pub fn composed(ops: impl Into<String>) -> How {
        How::Composed(ops.into())
    }
    pub fn label(&self) -> String {
        match self {
            How::Spec => "spec".into(),
            How::Native(op) => format!("native: {op}"),
            How::Composed(ops) => format!("composed: {ops}"),
        }
    }
}

/// Why a lowering did not produce outputs.
#[derive(Debug, Clone, PartialEq)]
pub enum OpError {
    /// The backend has no faithful lowering for this node (message names the attribute).
    Unsupported(String),
    /// The framework (or the spec's preconditions) rejected the node.
    Failed(String),
}

impl From<String> for OpError {
    fn from(s: String) -> Self {
        OpError::Failed(s)
    }
}

pub type OpResult<T> = Result<T, OpError>;

/// What a lowering returns: one value per node output (`None` for optional
/// outputs it does not produce) and how it computed them.
pub struct Lowered<T> {
    pub outputs: Vec<Option<T>>,
    pub how: How,
}

impl<T> Lowered<T> {
    pub fn one(t: T, how: How) -> Self {
        Lowered {
            outputs: vec![Some(t)],
            how,
        }
    }
    pub fn many(ts: Vec<T>, how: How) -> Self {
        Lowered {
            outputs: ts.into_iter().map(Some).collect(),
            how,
        }
    }
}

/// A lowering function: the node context and its inputs (`None` = omitted optional input).
pub type OpFn<T> = fn(&OpCtx<'_>, &[Option<&T>]) -> OpResult<Lowered<T>>;

/// A row of the generated coverage table: under `when`, the op is lowered as `label`.
#[derive(Debug, Clone, Copy)]
pub struct Coverage {
    pub when: &'static str,
    pub label: Label,
}

/// Static classification for the coverage table (`xdiff ops`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Spec,
    Native(&'static str),
    Composed(&'static str),
    Unsupported(&'static str),
}

/// One ONNX op (for one opset range) in a backend's registry.
pub struct OpDef<T> {
    pub op: &'static str,
    /// Opset range this definition follows (inclusive).
    pub since: u32,
    pub until: u32,
    pub run: OpFn<T>,
    /// The ONNX spec link (opset history lives there).
    pub spec: &'static str,
    pub coverage: &'static [Coverage],
}

/// A backend's lowerings, filled per op family.
pub struct OpRegistry<T> {
    defs: HashMap<&'static str, Vec<OpDef<T>>>,
}

impl<T> Default for OpRegistry<T> {
    fn default() -> Self {
        OpRegistry {
            defs: HashMap::new(),
        }
    }
}

impl<T> OpRegistry<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, def: OpDef<T>) {
        self.defs.entry(def.op).or_default().push(def);
    }

    /// Shorthand for an op whose lowering does not change across opsets.
    pub fn op(
        &mut self,
        op: &'static str,
        run: OpFn<T>,
        spec: &'static str,
        coverage: &'static [Coverage],
    ) {
        self.add(OpDef {
            op,
            since: 1,
            until: u32::MAX,
            run,
            spec,
            coverage,
        });
    }

    /// The definition for `op` at `opset`, or why there is none.
    /// Runs one node through this registry on the CPU with default options:
    /// for tests and for the fingerprint search, which re-runs a node under
    /// other attribute values.
    pub fn run_node(&self, node: &Node, opset: u32, inputs: &[Option<&T>]) -> OpResult<Lowered<T>> {
        let def = self
            .lookup(&node.op_type, opset)
            .map_err(OpError::Unsupported)?;
        let opts = EngineOptions::default();
        let ctx = OpCtx {
            node,
            opset,
            device: Device::Cpu,
            options: &opts,
        };
        (def.run)(&ctx, inputs)
    }

    pub fn lookup(&self, op: &str, opset: u32) -> Result<&OpDef<T>, String> {
        let defs = self
            .defs
            .get(op)
            .ok_or_else(|| format!("{op}: no lowering for this op"))?;
        defs.iter()
            .find(|d| d.since <= opset && opset <= d.until)
            .ok_or_else(|| format!("{op}: no lowering for opset {opset}"))
    }

    /// All definitions, sorted by op name then opset, for the coverage table.
    pub fn all(&self) -> Vec<&OpDef<T>> {
        let mut v: Vec<&OpDef<T>> = self.defs.values().flatten().collect();
        v.sort_by(|a, b| (a.op, a.since).cmp(&(b.op, b.since)));
        v
    }
}

/// What a lowering can see of its node.
pub struct OpCtx<'a> {
    pub node: &'a Node,
    pub opset: u32,
    pub device: Device,
    pub options: &'a EngineOptions,
}

impl OpCtx<'_> {
    fn attr_error(&self, name: &str, what: impl std::fmt::Display) -> OpError {
        OpError::Failed(format!("attribute `{name}`: {what}"))
    }

    fn kind_error(&self, name: &str, want: &str, got: &Attr) -> OpError {
        self.attr_error(name, format!("expected {want}, got {}", got.kind()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.node.attrs.contains_key(name)
    }

    pub fn int(&self, name: &str, default: i64) -> OpResult<i64> {
        match self.node.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Int(v)) => Ok(*v),
            Some(a) => Err(self.kind_error(name, "int", a)),
        }
    }

    pub fn float(&self, name: &str, default: f32) -> OpResult<f32> {
        match self.node.attrs.get(name) {
            None => Ok(default),
            Some(Attr::Float(v)) => Ok(*v),
            Some(a) => Err(self.kind_error(name, "float", a)),
        }
    }

    pub fn string(&self, name: &str, default: &str) -> OpResult<String> {
        match self.node.attrs.get(name) {
            None => Ok(default.to_string()),
            Some(Attr::String(v)) => Ok(v.clone()),
            Some(a) => Err(self.kind_error(name, "string", a)),
        }
    }

    pub fn ints(&self, name: &str) -> OpResult<Option<Vec<i64>>> {
        match self.node.attrs.get(name) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v.clone())),
            Some(a) => Err(self.kind_error(name, "ints", a)),
        }
    }

    pub fn floats(&self, name: &str) -> OpResult<Option<Vec<f32>>> {
        match self.node.attrs.get(name) {
            None => Ok(None),
            Some(Attr::Floats(v)) => Ok(Some(v.clone())),
            Some(a) => Err(self.kind_error(name, "floats", a)),
        }
    }

    pub fn tensor(&self, name: &str) -> OpResult<Option<&Tensor>> {
        match self.node.attrs.get(name) {
            None => Ok(None),
            Some(Attr::Tensor(t)) => Ok(Some(t)),
            Some(a) => Err(self.kind_error(name, "tensor", a)),
        }
    }

    /// `Unsupported` naming the attribute (and its value) that blocks the lowering.
    pub fn unsupported(&self, attr: &str, why: impl std::fmt::Display) -> OpError {
        OpError::Unsupported(format!("{} {attr}: {why}", self.node.op_type))
    }

    /// A failure naming the node's op.
    pub fn fail(&self, why: impl std::fmt::Display) -> OpError {
        OpError::Failed(why.to_string())
    }

    /// The `i`-th input, or a failure naming it when a required input is absent.
    pub fn input<'t, T>(&self, inputs: &[Option<&'t T>], i: usize) -> OpResult<&'t T> {
        inputs
            .get(i)
            .copied()
            .flatten()
            .ok_or_else(|| OpError::Failed(format!("required input #{i} is missing")))
    }
}

/// A single node for unit tests and the fingerprint search.
pub fn test_node(op: &str, n_inputs: usize, n_outputs: usize, attrs: Vec<(&str, Attr)>) -> Node {
    Node {
        index: 0,
        name: format!("{op}_test"),
        op_type: op.to_string(),
        domain: String::new(),
        inputs: (0..n_inputs).map(|i| format!("in{i}")).collect(),
        outputs: (0..n_outputs).map(|i| format!("out{i}")).collect(),
        attrs: attrs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// What an interpreting backend provides to the shared driver.
pub trait Interpreter {
    type T;
    const NAME: &'static str;
    fn registry(&self) -> &OpRegistry<Self::T>;
    /// Host tensor -> framework tensor on the session's device.
    fn upload(&self, t: &Tensor) -> Result<Self::T, String>;
    /// Framework tensor -> host tensor (native dtype).
    fn download(&self, t: &Self::T) -> Result<Tensor, String>;
    /// The ONNX dtype a value has (for backends that store values wider); default none.
    fn logical_dtype(&self, _t: &Self::T) -> Option<DType> {
        None
    }
}

thread_local! {
    static IN_LOWERING: Cell<bool> = const { Cell::new(false) };
}

/// Keeps panics raised inside lowerings off stderr (they become `error`
/// verdicts); panics anywhere else still print as usual.
fn install_quiet_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_LOWERING.with(Cell::get) {
                default(info);
            }
        }));
    });
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked".into()
    }
}

/// Runs `graph` node by node on `interp`.
pub fn run_graph<I: Interpreter>(
    interp: &I,
    graph: &Graph,
    opts: &EngineOptions,
    inputs: &BTreeMap<String, Tensor>,
) -> Result<Trace, EngineError> {
    install_quiet_hook();
    let start = Instant::now();
    let mut live: HashMap<&str, I::T> = HashMap::new();
    let mut trace = Trace::default();
    // Who failed to produce a value, for "skipped" messages.
    let mut missing: HashMap<&str, String> = HashMap::new();
    for (name, t) in graph.initializers.iter().chain(inputs.iter()) {
        let v = interp.upload(t).map_err(|why| EngineError::Input {
            name: name.clone(),
            why: format!("{}: {why}", I::NAME),
        })?;
        live.insert(name.as_str(), v);
    }
    for node in &graph.nodes {
        let run = run_node(
            interp,
            graph,
            opts,
            node,
            &mut live,
            &mut missing,
            &mut trace,
        );
        trace.nodes.push(run);
    }
    trace.wall = start.elapsed();
    Ok(trace)
}

fn run_node<'g, I: Interpreter>(
    interp: &I,
    graph: &'g Graph,
    opts: &EngineOptions,
    node: &'g Node,
    live: &mut HashMap<&'g str, I::T>,
    missing: &mut HashMap<&'g str, String>,
    trace: &mut Trace,
) -> NodeRun {
    let mut skipped = None;
    let args: Vec<Option<&I::T>> = node
        .inputs
        .iter()
        .map(|name| {
            if name.is_empty() {
                return None;
            }
            let v = live.get(name.as_str());
            if v.is_none() && skipped.is_none() {
                skipped = Some(
                    missing
                        .get(name.as_str())
                        .cloned()
                        .unwrap_or_else(|| format!("input `{name}` unavailable")),
                );
            }
            v
        })
        .collect();
    let status = |status, lowering| NodeRun { status, lowering };
    if let Some(why) = skipped {
        mark_missing(node, missing, &why);
        return status(NodeStatus::Skipped(why), None);
    }
    let def = match interp.registry().lookup(&node.op_type, graph.opset) {
        Ok(d) => d,
        Err(why) => {
            mark_missing(
                node,
                missing,
                &format!("upstream `{}` unsupported", node.name),
            );
            return status(NodeStatus::Unsupported(why), None);
        }
    };
    let ctx = OpCtx {
        node,
        opset: graph.opset,
        device: opts.device,
        options: opts,
    };
    IN_LOWERING.with(|f| f.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| (def.run)(&ctx, &args)));
    IN_LOWERING.with(|f| f.set(false));
    let lowered = match result {
        Ok(Ok(l)) => l,
        Ok(Err(OpError::Unsupported(why))) => {
            mark_missing(
                node,
                missing,
                &format!("upstream `{}` unsupported", node.name),
            );
            return status(NodeStatus::Unsupported(why), None);
        }
        Ok(Err(OpError::Failed(why))) => {
            mark_missing(node, missing, &format!("upstream `{}` failed", node.name));
            return status(NodeStatus::Error(why), None);
        }
        Err(p) => {
            mark_missing(node, missing, &format!("upstream `{}` failed", node.name));
            return status(
                NodeStatus::Error(format!("panic: {}", panic_message(p))),
                None,
            );
        }
    };
    let how = Some(lowered.how.label());
    for (name, value) in node.outputs.iter().zip(lowered.outputs) {
        let Some(value) = value else { continue };
        if name.is_empty() {
            continue;
        }
        match interp.download(&value) {
            Ok(host) => {
                if let Some(d) = interp.logical_dtype(&value) {
                    trace.logical.insert(name.clone(), d);
                }
                trace.values.insert(name.clone(), host);
            }
            Err(why) => {
                return status(
                    NodeStatus::Error(format!("copying `{name}` to host: {why}")),
                    how,
                )
            }
        }
        live.insert(name.as_str(), value);
    }
    if let Some(absent) = node
        .outputs
        .iter()
        .find(|o| !o.is_empty() && !live.contains_key(o.as_str()))
    {
        let why = format!("lowering did not produce output `{absent}`");
        mark_missing(node, missing, &format!("upstream `{}` failed", node.name));
        return status(NodeStatus::Error(why), how);
    }
    status(NodeStatus::Ran, how)
}

fn mark_missing<'g>(node: &'g Node, missing: &mut HashMap<&'g str, String>, why: &str) {
    for o in node.outputs.iter().filter(|o| !o.is_empty()) {
        missing.entry(o.as_str()).or_insert_with(|| why.to_string());
    }
}
