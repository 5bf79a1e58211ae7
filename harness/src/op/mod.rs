//! The op layer: what an ONNX node *means*, decoded once for every backend.
//!
//! Each non-trivial op (or small family) has one file here headed by its spec
//! link and opset history. It decodes the node's attributes (and the host
//! values of parameter inputs such as Resize `scales`) into typed structs and
//! enums, with opset gating, defaults and validation, and computes the output
//! plan (shapes, index plans). Backend lowerings (`backend/<name>/`) start
//! from those typed values and contain only framework calls, so a question
//! like "what does Resize-10 nearest round with" has one answer, here.
//!
//! The float64 reference shares this decode. The check on the decode is then
//! ONNX Runtime (which decodes independently) and the ONNX node tests (whose
//! expected outputs come from ONNX's own Python reference); the reference's
//! *maths* (coordinate transforms, interpolation, accumulation) stays its own,
//! written from the spec in `backend/reference/`.
//!
//! This module sits below `backend/`: it knows the node, its opset and the
//! [`HostView`] of input values, never an engine.

use std::collections::BTreeMap;

use crate::graph::{Attr, Node};
use crate::options::{Device, EngineOptions};
use crate::tensor::Tensor;

pub mod activation;
pub mod attention;
pub mod einsum;
pub mod index;
pub mod loss;
pub mod resize;
pub mod softmax;
pub mod space;

/// How a backend lowered a node (shown per node in reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// The float64 reference, written from the ONNX spec.
    Spec,
    /// One framework op documented to have exactly these semantics.
    Native(String),
    /// Several framework ops, because no single op has these semantics.
    Composed(String),
    /// The idiomatic port's (`--port`) deliberate other convention, built
    /// from framework ops where the ported library's op is not in the
    /// framework (torchvision's roi_align): a departure is the port's, as a
    /// native port lowering's would be, not a bug in a faithful lowering.
    Port(String),
}

impl How {
    pub fn native(op: impl Into<String>) -> How {
        How::Native(op.into())
    }
    pub fn composed(ops: impl Into<String>) -> How {
        How::Composed(ops.into())
    }
    pub fn port(ops: impl Into<String>) -> How {
        How::Port(ops.into())
    }
    pub fn label(&self) -> String {
        match self {
            How::Spec => "spec".into(),
            How::Native(op) => format!("native: {op}"),
            How::Composed(ops) => format!("composed: {ops}"),
            How::Port(ops) => format!("port: {ops}"),
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

/// What a lowering can see of its node.
pub struct OpCtx<'a> {
    pub node: &'a Node,
    pub opset: u32,
    pub device: Device,
    pub options: &'a EngineOptions,
    /// The running session's own state, for the lowerings of the backend
    /// that owns it (e.g. candle's device and its bool side table); `&()`
    /// where a backend has none. Travels with the node instead of living in
    /// thread-locals, so two sessions never see each other's state.
    pub scope: &'a dyn std::any::Any,
}

/// Runs `f` with a context for `node` outside any session (CPU, default
/// options, no scope): decodes for fingerprint spaces, bounds and tests.
pub fn with_node<R>(node: &Node, opset: u32, f: impl FnOnce(&OpCtx) -> R) -> R {
    let options = EngineOptions::default();
    f(&OpCtx {
        node,
        opset,
        device: Device::Cpu,
        options: &options,
        scope: &(),
    })
}

impl OpCtx<'_> {
    pub fn attr_error(&self, name: &str, what: impl std::fmt::Display) -> OpError {
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

    /// A failure (bad attribute or input); the report names the node.
    pub fn fail(&self, why: impl std::fmt::Display) -> OpError {
        OpError::Failed(why.to_string())
    }

    /// Normalizes a possibly negative `axis` for a tensor of `rank` (ONNX
    /// accepts `[-r, r-1]`; a rank-0 tensor accepts 0).
    pub fn axis(&self, axis: i64, rank: usize) -> OpResult<usize> {
        normalize_axis(axis, rank)
    }

    /// An `ints` attribute with one value per axis of `n` (`default` for each
    /// when absent); a length mismatch is one clear error naming it.
    pub fn per_axis(&self, name: &str, n: usize, default: i64) -> OpResult<Vec<i64>> {
        match self.ints(name)? {
            None => Ok(vec![default; n]),
            Some(v) if v.len() == n => Ok(v),
            Some(v) => Err(self.attr_error(
                name,
                format!("has {} values, expected {n} (one per axis)", v.len()),
            )),
        }
    }

    /// Whether the node asks for its `i`-th output.
    pub fn wants_output(&self, i: usize) -> bool {
        self.node.outputs.get(i).is_some_and(|o| !o.is_empty())
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

/// Normalizes a possibly negative `axis` for a tensor of `rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> OpResult<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r.max(1) {
        return Err(OpError::Failed(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(if axis < 0 {
        (axis + r) as usize
    } else {
        axis as usize
    })
}

/// What the op layer can read of a backend's value: its shape, and for small
/// parameter inputs (shapes, axes, pads, scales, sizes) its contents on the
/// host. Implemented by each lowering backend's tensor type.
pub trait HostView {
    fn dims(&self) -> Vec<usize>;
    /// Integer contents (an error for a float tensor).
    fn host_ints(&self) -> OpResult<Vec<i64>>;
    /// Contents widened to f64.
    fn host_floats(&self) -> OpResult<Vec<f64>>;
    fn is_float(&self) -> bool;
    fn numel(&self) -> usize {
        self.dims().iter().product()
    }
}

/// A host tensor, as the fingerprint search hands the reference's values to
/// the op layer (floats already widened to f64).
impl HostView for Tensor {
    fn dims(&self) -> Vec<usize> {
        self.shape().to_vec()
    }
    fn host_ints(&self) -> OpResult<Vec<i64>> {
        let dtype = self.dtype();
        if dtype.is_float() || dtype == crate::tensor::DType::Bool {
            return Err(OpError::Failed(format!(
                "expected an integer tensor, got {dtype}"
            )));
        }
        Ok(self
            .to_i64_vec()
            .unwrap_or_else(|| self.to_f64_vec().into_iter().map(|v| v as i64).collect()))
    }
    fn host_floats(&self) -> OpResult<Vec<f64>> {
        Ok(self.to_f64_vec())
    }
    fn is_float(&self) -> bool {
        self.dtype().is_float()
    }
}

/// The ops with a convention fingerprint space (issue 5), each built by its
/// op file from the decoded node; `fingerprint.rs` looks ops up here.
pub const FINGERPRINT_SPACES: &[(&str, space::SpaceFn)] = &[
    ("Resize", resize::space),
    ("MaxPool", window::pool_space),
    ("AveragePool", window::pool_space),
    ("BatchNormalization", norm::batch_norm_space),
    ("LayerNormalization", norm::layer_norm_space),
    ("Gelu", activation::gelu_space),
    ("Softmax", softmax::space),
    ("LogSoftmax", softmax::space),
    ("HardSigmoid", activation::hard_sigmoid_space),
    ("DepthToSpace", depth_to_space::space),
    ("GridSample", grid_sample::space),
    ("LSTM", recurrent::space),
    ("GRU", recurrent::space),
    ("QuantizeLinear", quant::space),
    ("RoiAlign", roi_align::space),
    ("NonMaxSuppression", nms::space),
];

/// An optional input that is present and non-empty (ONNX marks "absent" both
/// by `""` and, for inputs such as Resize `scales`/`sizes`, by an empty tensor).
pub fn optional<'t, T: HostView>(x: &[Option<&'t T>], i: usize) -> Option<&'t T> {
    x.get(i).copied().flatten().filter(|t| t.numel() > 0)
}

/// The ONNX operator page of `op`.
macro_rules! spec {
    ($op:literal) => {
        concat!("https://onnx.ai/onnx/operators/onnx__", $op, ".html")
    };
}

/// A coverage table literal: `cov!["when" => Label::Native("op"), ...]`.
macro_rules! cov {
    ($($when:expr => $label:expr),* $(,)?) => {{
        const C: &[$crate::op::Coverage] = &[$($crate::op::Coverage { when: $when, label: $label }),*];
        C
    }};
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

pub mod depth_to_space;
pub mod generate;
pub mod geometry;
pub mod grid_sample;
pub mod math;
pub mod nms;
pub mod norm;
pub mod norm2;
pub mod norm3;
pub mod pad;
pub mod pool2;
pub mod quant;
pub mod recurrent;
pub mod reduce;
pub mod reshape;
pub mod roi_align;
pub mod rotary;
pub mod scatter;
pub mod select;
pub mod signal;
pub mod slice;
pub mod tfidf;
pub mod window;
