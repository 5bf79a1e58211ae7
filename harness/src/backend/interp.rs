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

use super::engine::{Bridge, EngineError, NodeRun, NodeStatus, Trace, TransferError};
use crate::graph::{Graph, Node};
use crate::options::{Device, EngineOptions};
use crate::tensor::{DType, Tensor};

pub use crate::op::{test_node, Coverage, How, Label, Lowered, OpCtx, OpError, OpResult};

/// A lowering function: the node context and its inputs (`None` = omitted optional input).
pub type OpFn<T> = fn(&OpCtx<'_>, &[Option<&T>]) -> OpResult<Lowered<T>>;

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

    /// An op definition for the opsets `since..=until`.
    pub fn range(
        &mut self,
        op: &'static str,
        since: u32,
        until: u32,
        run: OpFn<T>,
        spec: &'static str,
        coverage: &'static [Coverage],
    ) {
        self.add(OpDef {
            op,
            since,
            until,
            run,
            spec,
            coverage,
        });
    }

    /// Shorthand for an op whose lowering does not change across opsets.
    pub fn op(
        &mut self,
        op: &'static str,
        run: OpFn<T>,
        spec: &'static str,
        coverage: &'static [Coverage],
    ) {
        self.range(op, 1, u32::MAX, run, spec, coverage);
    }

    /// The definition for `op` at `opset`, or why there is none.
    /// Runs one node through this registry on the CPU with default options:
    /// for tests and for the fingerprint search, which re-runs a node under
    /// other attribute values.
    pub fn run_node(&self, node: &Node, opset: u32, inputs: &[Option<&T>]) -> OpResult<Lowered<T>> {
        self.run_node_in(&(), node, opset, inputs)
    }

    /// [`OpRegistry::run_node`] with a backend's session scope ([`OpCtx::scope`]).
    pub fn run_node_in(
        &self,
        scope: &dyn std::any::Any,
        node: &Node,
        opset: u32,
        inputs: &[Option<&T>],
    ) -> OpResult<Lowered<T>> {
        let def = self
            .lookup(&node.op_type, opset)
            .map_err(|e| OpError::Unsupported(e.to_string()))?;
        let opts = EngineOptions::default();
        let ctx = OpCtx {
            node,
            opset,
            device: Device::Cpu,
            options: &opts,
            scope,
        };
        (def.run)(&ctx, inputs)
    }

    pub fn lookup(&self, op: &str, opset: u32) -> Result<&OpDef<T>, LookupError> {
        let defs = self
            .defs
            .get(op)
            .ok_or_else(|| LookupError::NoOp { op: op.to_string() })?;
        defs.iter()
            .find(|d| d.since <= opset && opset <= d.until)
            .ok_or_else(|| LookupError::NoOpset {
                op: op.to_string(),
                opset,
            })
    }

    /// All definitions, sorted by op name then opset, for the coverage table.
    pub fn all(&self) -> Vec<&OpDef<T>> {
        let mut v: Vec<&OpDef<T>> = self.defs.values().flatten().collect();
        v.sort_by(|a, b| (a.op, a.since).cmp(&(b.op, b.since)));
        v
    }
}

/// Why a registry has no lowering for a node (an `unsupported` verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("{op}: no lowering for this op")]
    NoOp { op: String },
    #[error("{op}: no lowering for opset {opset}")]
    NoOpset { op: String, opset: u32 },
}

/// What an interpreting backend provides to the shared driver.
pub trait Interpreter {
    type T;
    const NAME: &'static str;
    fn registry(&self) -> &OpRegistry<Self::T>;
    /// Host tensor -> framework tensor on the session's device.
    fn upload(&self, t: &Tensor) -> Result<Self::T, TransferError>;
    /// The graph's weight `name` on the session's device (`None`: no such
    /// weight): by default converted to a host tensor for the upload alone
    /// ([`Initializers::with`](crate::graph::Initializers::with)), so the
    /// framework's copy is the only one kept.
    fn upload_initializer(
        &self,
        inits: &crate::graph::Initializers,
        name: &str,
    ) -> Option<Result<Self::T, TransferError>> {
        inits.with(name, |t| self.upload(t))
    }
    /// Framework tensor -> host tensor (native dtype).
    fn download(&self, t: &Self::T) -> Result<Tensor, TransferError>;
    /// The ONNX dtype a value has (for backends that store values wider); default none.
    fn logical_dtype(&self, _t: &Self::T) -> Option<DType> {
        None
    }
    /// The session state lowerings see as [`OpCtx::scope`]; default none.
    fn scope(&self) -> &dyn std::any::Any {
        &()
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

/// Runs `graph` node by node on `interp`. A node that does not run takes
/// its outputs from `bridge` when it has them all, so the nodes after it
/// still run (see [`NodeRun::bridged`]).
///
/// Values live in the framework only while a node still needs them: an
/// initializer is uploaded when its first consumer runs, and every value
/// is dropped after its last consumer (an output nobody reads, as soon as
/// it is copied to the trace). So the framework holds the graph's working
/// set rather than every weight and activation at once: on swin_t the
/// reference's float64 weights alone were 226 MB held for the whole run.
/// After each node, `bridge.finished` may judge it and take values out of
/// the trace (the parent's stepping judge, `crate::run`); its time is not
/// the lane's.
pub fn run_graph<I: Interpreter>(
    interp: &I,
    graph: &Graph,
    opts: &EngineOptions,
    inputs: &BTreeMap<String, Tensor>,
    bridge: &dyn Bridge,
) -> Result<Trace, EngineError> {
    install_quiet_hook();
    let start = Instant::now();
    let mut elsewhere = std::time::Duration::ZERO;
    let last_use = graph.last_uses();
    let mut live: HashMap<&str, I::T> = HashMap::new();
    let mut trace = Trace::default();
    // Who failed to produce a value, for "skipped" messages.
    let mut missing: HashMap<&str, String> = HashMap::new();
    for (name, t) in inputs {
        let v = interp.upload(t).map_err(|why| EngineError::Input {
            name: name.clone(),
            why: format!("{}: {why}", I::NAME),
        })?;
        live.insert(name.as_str(), v);
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        bridge.started(i);
        let mut run = match upload_initializers(interp, graph, node, &mut live) {
            Ok(()) => run_node(
                interp,
                graph,
                opts,
                node,
                &mut live,
                &mut missing,
                &mut trace,
            ),
            Err(why) => {
                mark_missing(
                    node,
                    &mut missing,
                    &format!("upstream `{}` failed", node.name),
                );
                NodeRun {
                    status: NodeStatus::Error(why),
                    lowering: None,
                    bridged: None,
                }
            }
        };
        if run.status != NodeStatus::Ran {
            run.bridged = bridge_node(interp, node, bridge, &mut live, &mut missing, &mut trace);
        }
        trace.nodes.push(run);
        release(node, i, &last_use, &mut live);
        // What the bridge does with the node now is not this lane's time.
        let hook = Instant::now();
        bridge.finished(i, &mut trace);
        elsewhere += hook.elapsed();
    }
    trace.wall = start.elapsed().saturating_sub(elsewhere);
    Ok(trace)
}

/// Uploads the initializers `node` reads that are not live yet (a graph
/// input of the same name overrides an initializer, and is live already).
/// A weight not converted yet is converted for the upload alone
/// ([`Interpreter::upload_initializer`]): the framework's copy is the only
/// one kept.
fn upload_initializers<'g, I: Interpreter>(
    interp: &I,
    graph: &'g Graph,
    node: &'g Node,
    live: &mut HashMap<&'g str, I::T>,
) -> Result<(), String> {
    for name in &node.inputs {
        if live.contains_key(name.as_str()) {
            continue;
        }
        let Some(key) = graph.initializers.key(name) else {
            continue;
        };
        let uploaded = interp.upload_initializer(&graph.initializers, name);
        if let Some(uploaded) = uploaded {
            let failed = |why: String| format!("uploading initializer `{name}`: {why}");
            live.insert(key, uploaded.map_err(|why| failed(why.to_string()))?);
        }
    }
    Ok(())
}

/// Drops the values node `i` read for the last time and the outputs it
/// made that no node reads.
fn release<T>(node: &Node, i: usize, last_use: &HashMap<&str, usize>, live: &mut HashMap<&str, T>) {
    for name in node.inputs.iter().chain(&node.outputs) {
        if last_use.get(name.as_str()).is_none_or(|&last| last <= i) {
            live.remove(name.as_str());
        }
    }
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
    let status = |status, lowering| NodeRun {
        status,
        lowering,
        bridged: None,
    };
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
            return status(NodeStatus::Unsupported(why.to_string()), None);
        }
    };
    let ctx = OpCtx {
        node,
        opset: graph.opset,
        device: opts.device,
        options: opts,
        scope: interp.scope(),
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

/// Takes every output of `node` from `bridge` (uploaded and kept for the
/// next nodes; recorded in [`Trace::bridged`], not in its values: they are
/// not this lane's results); the lane they came from, or `None` when the
/// bridge lacks one of them or an upload fails (they then stay missing).
fn bridge_node<'g, I: Interpreter>(
    interp: &I,
    node: &'g Node,
    bridge: &dyn Bridge,
    live: &mut HashMap<&'g str, I::T>,
    missing: &mut HashMap<&'g str, String>,
    trace: &mut Trace,
) -> Option<String> {
    let mut values = Vec::new();
    let mut source = None;
    for name in node.outputs.iter().filter(|o| !o.is_empty()) {
        let (t, from) = bridge.value(name)?;
        let v = interp.upload(&t).ok()?;
        values.push((name.as_str(), v, t));
        source.get_or_insert(from);
    }
    for (name, v, host) in values {
        missing.remove(name);
        live.insert(name, v);
        trace.bridged.insert(name.to_string(), host);
    }
    source
}

fn mark_missing<'g>(node: &'g Node, missing: &mut HashMap<&'g str, String>, why: &str) {
    for o in node.outputs.iter().filter(|o| !o.is_empty()) {
        missing.entry(o.as_str()).or_insert_with(|| why.to_string());
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::backend::engine::NoBridge;
    use crate::onnx;

    thread_local! {
        /// Values alive in the counting framework, and the most at once.
        static LIVE: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    }

    /// A framework value that counts itself alive.
    struct Counted(f32);

    impl Counted {
        fn new(v: f32) -> Counted {
            LIVE.with(|l| {
                let (now, most) = l.get();
                l.set((now + 1, most.max(now + 1)));
            });
            Counted(v)
        }
    }

    impl Drop for Counted {
        fn drop(&mut self) {
            LIVE.with(|l| l.set((l.get().0 - 1, l.get().1)));
        }
    }

    fn add(_: &OpCtx<'_>, args: &[Option<&Counted>]) -> OpResult<Lowered<Counted>> {
        let sum = args.iter().flatten().map(|c| c.0).sum();
        Ok(Lowered::one(Counted::new(sum), How::Spec))
    }

    struct Counting(OpRegistry<Counted>);

    impl Interpreter for Counting {
        type T = Counted;
        const NAME: &'static str = "counting";
        fn registry(&self) -> &OpRegistry<Counted> {
            &self.0
        }
        fn upload(&self, t: &Tensor) -> Result<Counted, TransferError> {
            match t.to_f64_vec().first() {
                Some(&v) if v >= 0.0 => Ok(Counted::new(v as f32)),
                _ => Err(TransferError::NoDtype("negative".into())),
            }
        }
        fn download(&self, t: &Counted) -> Result<Tensor, TransferError> {
            Ok(Tensor::from_f64(DType::F32, &[1], &[t.0 as f64]))
        }
    }

    /// `y_i = Add(y_{i-1}, w_i)` for `weights.len()` nodes, from input `x`,
    /// each `w_i` an initializer holding `weights[i]`.
    fn chain(weights: &[f64]) -> Graph {
        let name = |i: usize| {
            if i == 0 {
                "x".to_string()
            } else {
                format!("y{i}")
            }
        };
        let node = (0..weights.len())
            .map(|i| onnx::NodeProto {
                op_type: "Add".into(),
                name: format!("add{i}"),
                input: vec![name(i), format!("w{i}")],
                output: vec![name(i + 1)],
                ..Default::default()
            })
            .collect();
        let initializer = weights
            .iter()
            .enumerate()
            .map(|(i, &w)| Tensor::from_f64(DType::F32, &[1], &[w]).to_proto(&format!("w{i}")))
            .collect();
        let vi = |n: String| onnx::ValueInfoProto {
            name: n,
            ..Default::default()
        };
        let graph = onnx::GraphProto {
            name: "chain".into(),
            node,
            initializer,
            input: vec![vi("x".into())],
            output: vec![vi(name(weights.len()))],
            ..Default::default()
        };
        let model = onnx::ModelProto::of_graph(graph, 13);
        Graph::from_model(model).expect("valid chain")
    }

    fn run(weights: &[f64]) -> Trace {
        run_on(&chain(weights))
    }

    fn run_on(graph: &Graph) -> Trace {
        let mut registry = OpRegistry::new();
        registry.op("Add", add, "", &[]);
        let inputs =
            BTreeMap::from([("x".to_string(), Tensor::from_f64(DType::F32, &[1], &[1.0]))]);
        LIVE.with(|l| l.set((0, 0)));
        run_graph(
            &Counting(registry),
            graph,
            &EngineOptions::default(),
            &inputs,
            &NoBridge,
        )
        .expect("runs")
    }

    #[test]
    fn values_live_only_while_a_node_still_needs_them() {
        let trace = run(&[1.0; 50]);
        let last = trace.values["y50"].to_f64_vec();
        assert_eq!(last, vec![51.0]);
        assert!(trace.nodes.iter().all(|n| n.status == NodeStatus::Ran));
        let (now, most) = LIVE.with(Cell::get);
        assert_eq!(now, 0, "every value is dropped by the end of the run");
        // A node's two inputs and its output: never the 50 weights and 50
        // activations a run that keeps everything holds.
        assert!(most <= 3, "{most} values alive at once");
    }

    #[test]
    fn an_initializer_that_cannot_be_uploaded_fails_only_its_readers() {
        // w1 is negative, which the counting framework refuses.
        let trace = run(&[1.0, -1.0, 1.0]);
        let status = |i: usize| trace.nodes[i].status.clone();
        assert_eq!(status(0), NodeStatus::Ran);
        assert!(
            matches!(status(1), NodeStatus::Error(ref why) if why.contains("initializer `w1`")),
            "{:?}",
            status(1)
        );
        assert!(
            matches!(status(2), NodeStatus::Skipped(_)),
            "{:?}",
            status(2)
        );
    }

    #[test]
    fn a_run_keeps_no_host_copy_of_the_weights() {
        // Each weight is converted for its upload alone: after the run the
        // graph holds none as a host tensor, and one it already held (a
        // reader kept it) is used as is, with the same values.
        let fresh = chain(&[1.0, 2.0, 3.0]);
        assert_eq!(fresh.initializers.kept(), 0);
        let a = run_on(&fresh);
        assert_eq!(fresh.initializers.kept(), 0);
        let held = chain(&[1.0, 2.0, 3.0]);
        assert!(held.initializers.get("w2").is_some());
        let b = run_on(&held);
        assert_eq!(held.initializers.kept(), 1);
        assert_eq!(a.values, b.values);
        assert_eq!(a.values["y3"].to_f64_vec(), vec![7.0]);
        assert!(LIVE.with(Cell::get).1 <= 3);
    }
}
