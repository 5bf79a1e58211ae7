//! Error bounds by accuracy class: how far a lane's output of one node may
//! lie from the float64 reference evaluated on *that lane's own inputs* (the
//! local comparison, see `run.rs`) before the node itself departs from the
//! spec. Each op has a [`Class`]; the bound is per element and computed from
//! the reference: bit-exact, 1 ulp of the lane's dtype, a per-op ulp budget
//! relative to the result, or the forward-error bound of a length-K sum,
//! `c · γ(K) · Σ|terms| + 1 ulp`. The classes, constants and the
//! measurements behind them are in docs/tolerance.md. A case's `[tolerance]`
//! override (per op, or a per-dtype value other than the presets) replaces
//! the bound, and an op without a class keeps the case tolerance.

use std::borrow::Cow;

use ndarray::ArrayD;

use super::{compare_within, Comparison, PerElement, Tolerance, Tolerances};
use crate::backend::interp::OpError;
use crate::backend::reference::{self, RefTensor};
use crate::graph::{Attr, Node};
use crate::tensor::{DType, Tensor};

/// The safety factor `c` of the accumulating bound `c · γ(K) · Σ|terms|`.
pub const ACCUMULATING_C: f64 = 1.0;

/// How accurately an op can be computed in a lane's dtype.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Class {
    /// Copies, selections, comparisons: bit-exact.
    Exact,
    /// One correctly rounded operation: within 1 ulp of the result.
    Rounded,
    /// A library function: within this many ulps of the result (relative).
    Transcendental(f64),
    /// A sum of K terms: `c · γ(K) · Σ|terms| + 1 ulp`.
    Accumulating(Magnitude),
    /// No class yet: the case tolerance.
    Unclassed,
}

/// How the reference computes `Σ|terms|` of an accumulating op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Magnitude {
    /// The op itself on the absolute values of its float inputs.
    Multilinear,
    /// Resize: Σ|x| over each output's taps widened by one input each side.
    Resize,
    /// 0.5·|x|·(1 + |erf(x/√2)|): the sum `1 + erf` of the usual formula.
    Gelu,
    /// |s·x/σ| + |s·μ/σ| + |b|.
    BatchNorm,
    /// |α·x| + |β|.
    HardSigmoid,
    /// |x| · (|x|/6 + 1/2).
    HardSwish,
    /// |y| · (1 + (|x − max| + 4) / K): the sum of exps and the rounding of
    /// the exponent `x − max`, relative to the probability.
    Softmax,
    /// |s| · (|x − μ| + mean|x|) / σ + |b|.
    LayerNorm,
    /// |start| + i·|delta|: the product and the sum of `start + i·delta`.
    Range,
    /// SoftmaxCrossEntropyLoss: the NLL (|weights|) of `|x − max| + |lse| +
    /// 4`, each log-probability's own magnitude and rounding.
    SoftmaxLoss,
    /// Det: Π_i Σ_j |a_ij|, an upper bound of Σ over the Leibniz expansion's
    /// |terms| (the permanent of |A|).
    Det,
    /// DFT/STFT: Σ|x| (re and im) of the signal or windowed frame summed
    /// into each bin (divided by n for the inverse).
    Dft,
    /// The cosine windows: Σ_k |a_k|·(1 + k), the coefficients and the
    /// rounding of the phase `2πk·i/N` that cos(k·θ) amplifies k-fold.
    Window,
    /// |cos·x1| + |sin·x2| (and |sin·x1| + |cos·x2|) of each rotated pair.
    Rotary,
    /// Σ_j |theta_ij · base_j| of each grid coordinate.
    AffineGrid,
    /// GridSample: Σ|x| over each output's neighbours (padding read as 0).
    GridSample,
    /// RoiAlign: Σ|x| over each sample's four neighbours, over the sample
    /// count (avg) or of the largest sample (max).
    RoiAlign,
    /// Attention's `Y`: Σⱼ pⱼ|vⱼ| widened by the score error it carries
    /// (`reference::attention_bound_terms`).
    Attention,
}

/// Per-op ulp budgets of the transcendental class (docs/tolerance.md).
const TRANSCENDENTAL: &[(&str, f64)] = &[
    ("Exp", 4.0),
    ("Log", 4.0),
    ("Tanh", 8.0),
    ("Erf", 4.0),
    ("Sigmoid", 4.0),
    ("Pow", 8.0),
    ("Softplus", 4.0),
    ("Elu", 4.0),
    ("Selu", 4.0),
    ("Sin", 4.0),
    ("Cos", 4.0),
    ("Tan", 8.0),
    ("Asin", 4.0),
    ("Acos", 4.0),
    ("Atan", 4.0),
    ("Sinh", 4.0),
    ("Cosh", 4.0),
    ("Asinh", 4.0),
    ("Acosh", 4.0),
    ("Atanh", 4.0),
    ("Celu", 4.0),
    ("Mish", 8.0),
    ("Softsign", 4.0),
    ("Swish", 8.0),
];

/// Exact ops whose outputs are their inputs' elements moved, repeated or
/// picked, for every dtype (the reference's lowerings of them dispatch on
/// the tensor's dtype): the judge evaluates them on a lane's values without
/// widening them (`run::judging_form`).
pub const MOVES: &[&str] = &[
    "Identity",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "Expand",
    "Tile",
];

/// The other exact ops.
const EXACT: &[&str] = &[
    "OptionalHasElement",
    "OptionalGetElement",
    "GatherElements",
    "Scatter",
    "NonMaxSuppression",
    "OneHot",
    "NonZero",
    "Compress",
    "Unique",
    "ReverseSequence",
    "TensorScatter",
    "Shape",
    "Size",
    "Pad",
    "Dropout",
    "Relu",
    "Max",
    "Min",
    "Clip",
    "Equal",
    "Less",
    "Greater",
    "LessOrEqual",
    "GreaterOrEqual",
    "Not",
    "And",
    "Or",
    "Where",
    "MaxPool",
    "ReduceMax",
    "ReduceMin",
    "ArgMax",
    "ArgMin",
    "Constant",
    "ConstantOfShape",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "DepthToSpace",
    "SpaceToDepth",
    "Xor",
    "IsNaN",
    "IsInf",
    "BitShift",
    "EyeLike",
    "Mod",
    "ThresholdedRelu",
    "TopK",
    "GatherND",
    "Trilu",
    "Hardmax",
    "GlobalMaxPool",
    "MaxUnpool",
    "BitwiseAnd",
    "BitwiseOr",
    "BitwiseXor",
    "BitwiseNot",
    "CenterCropPad",
];

const ROUNDED: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Sqrt",
    "Neg",
    "Abs",
    "Reciprocal",
    "LeakyRelu",
    "PRelu",
    "Cast",
    "CastLike",
    "Shrink",
    "MelWeightMatrix",
    "TfIdfVectorizer",
    "DequantizeLinear",
];

const MULTILINEAR: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "ReduceSum",
    "ReduceMean",
    "ReduceSumSquare",
    "ReduceL1",
    "ReduceL2",
    "ReduceProd",
    "CumSum",
    "AveragePool",
    "GlobalAveragePool",
    "Sum",
    "Mean",
    "Einsum",
    "NegativeLogLikelihoodLoss",
    "Col2Im",
];

/// The accuracy class of `node`'s first output (Resize/Upsample: nearest is
/// exact, linear and cubic accumulate).
pub fn class(node: &Node) -> Class {
    let op = node.op_type.as_str();
    // ScatterND/ScatterElements copy rows (exact) unless a reduction
    // combines them: one correctly rounded operation per update.
    if matches!(op, "ScatterND" | "ScatterElements") {
        return match attr_str(node, "reduction", "none").as_str() {
            "none" | "max" | "min" => Class::Exact,
            _ => Class::Rounded,
        };
    }
    if let Some(&(_, ulps)) = TRANSCENDENTAL.iter().find(|(o, _)| *o == op) {
        return Class::Transcendental(ulps);
    }
    if MOVES.contains(&op) || EXACT.contains(&op) {
        return Class::Exact;
    }
    if ROUNDED.contains(&op) {
        return Class::Rounded;
    }
    if MULTILINEAR.contains(&op) {
        return Class::Accumulating(Magnitude::Multilinear);
    }
    let magnitude = match op {
        "Resize" | "Upsample" if attr_str(node, "mode", "nearest") == "nearest" => {
            return Class::Exact
        }
        "Resize" | "Upsample" => Magnitude::Resize,
        "BatchNormalization" => Magnitude::BatchNorm,
        "HardSigmoid" => Magnitude::HardSigmoid,
        "HardSwish" => Magnitude::HardSwish,
        "Gelu" => Magnitude::Gelu,
        "Softmax" => Magnitude::Softmax,
        "LayerNormalization" | "InstanceNormalization" | "GroupNormalization" => {
            Magnitude::LayerNorm
        }
        "Range" => Magnitude::Range,
        "SoftmaxCrossEntropyLoss" => Magnitude::SoftmaxLoss,
        "Det" => Magnitude::Det,
        "DFT" | "STFT" => Magnitude::Dft,
        "HannWindow" | "HammingWindow" | "BlackmanWindow" => Magnitude::Window,
        "RotaryEmbedding" => Magnitude::Rotary,
        "AffineGrid" => Magnitude::AffineGrid,
        "GridSample" if attr_str(node, "mode", "linear") == "nearest" => return Class::Exact,
        "GridSample" => Magnitude::GridSample,
        "RoiAlign" => Magnitude::RoiAlign,
        "Attention" => Magnitude::Attention,
        _ => return Class::Unclassed,
    };
    Class::Accumulating(magnitude)
}

impl Class {
    /// The class's name in reports and docs/tolerance.md.
    pub fn name(self) -> &'static str {
        match self {
            Class::Exact => "exact",
            Class::Rounded => "rounded",
            Class::Transcendental(_) => "transcendental",
            Class::Accumulating(_) => "accumulating",
            Class::Unclassed => "tolerance",
        }
    }
}

fn attr_str(node: &Node, name: &str, default: &str) -> String {
    match node.attrs.get(name) {
        Some(Attr::String(s)) => s.clone(),
        _ => default.to_string(),
    }
}

fn attr_int(node: &Node, name: &str, default: i64) -> i64 {
    match node.attrs.get(name) {
        Some(Attr::Int(v)) => *v,
        _ => default,
    }
}

fn attr_float(node: &Node, name: &str, default: f64) -> f64 {
    match node.attrs.get(name) {
        Some(Attr::Float(v)) => *v as f64,
        _ => default,
    }
}

/// Machine epsilon (2u) and smallest normal of a float dtype.
fn format(dtype: DType) -> Option<(f64, f64)> {
    match dtype {
        DType::F32 => Some((f32::EPSILON as f64, f32::MIN_POSITIVE as f64)),
        DType::F64 => Some((f64::EPSILON, f64::MIN_POSITIVE)),
        DType::F16 => Some((2f64.powi(-10), 2f64.powi(-14))),
        DType::BF16 => Some((2f64.powi(-7), 2f64.powi(-126))),
        _ => None,
    }
}

/// A dtype's [`format`], looked up once: the per-element rules below run
/// inside the comparison's inner loop, where a match on the dtype per
/// element kept the pass from vectorising (110 M elements/s against 460
/// for the plain comparison, 4 M float32 elements, one core).
#[derive(Debug, Clone, Copy)]
struct Format {
    /// Machine epsilon; 0 for an integer dtype.
    eps: f64,
    /// Smallest normal; 0 for an integer dtype.
    min_normal: f64,
    float: bool,
}

impl Format {
    fn of(dtype: DType) -> Format {
        let (eps, min_normal) = format(dtype).unwrap_or((0.0, 0.0));
        Format {
            eps,
            min_normal,
            float: format(dtype).is_some(),
        }
    }

    /// One ulp at `r` (see [`spacing`]).
    #[inline(always)]
    fn spacing(self, r: f64) -> f64 {
        if !self.float {
            return 0.0;
        }
        self.float_spacing(r)
    }

    /// [`Format::spacing`] of a float dtype, without a branch: ±Inf and
    /// NaN keep their all-ones exponent when the mantissa is cleared, so
    /// their spacing is +Inf as it should be.
    #[inline(always)]
    fn float_spacing(self, r: f64) -> f64 {
        let a = r.abs();
        // 2^exponent of |r|: its bits with the mantissa cleared (exact).
        let binade = f64::from_bits(a.to_bits() & 0x7ff0_0000_0000_0000) * self.eps;
        if a < self.min_normal {
            self.min_normal * self.eps
        } else {
            binade
        }
    }
}

/// One ulp of `dtype` at `r`: the spacing of the binade holding |r| (the
/// subnormal spacing below the smallest normal); 0 for integers.
pub fn spacing(dtype: DType, r: f64) -> f64 {
    Format::of(dtype).spacing(r)
}

/// γ(K) = K·u / (1 − K·u), the forward-error factor of a length-K sum.
pub fn gamma(k: usize, dtype: DType) -> f64 {
    let u = format(dtype).map_or(0.0, |(eps, _)| eps / 2.0);
    let ku = k as f64 * u;
    if ku >= 1.0 {
        f64::INFINITY
    } else {
        ku / (1.0 - ku)
    }
}

/// The per-element bound of one output in one lane's dtype.
#[derive(Debug, Clone)]
pub struct Bound {
    pub class: Class,
    dtype: DType,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// `n` ulps of the result; below the smallest normal, up to the
    /// smallest normal (a flush to zero).
    Ulps(f64),
    /// `coef · magnitude[i] + 1 ulp + underflow`; below the smallest
    /// normal, at least the smallest normal (a flush to zero).
    Accumulating {
        coef: f64,
        magnitude: Magnitudes,
        /// `K·η`: each of the K products may underflow into the subnormal
        /// range, where rounding is absolute (η, the subnormal spacing),
        /// not relative: fl(x·y) = x·y·(1 + δ) + ε, |ε| ≤ η/2.
        underflow: f64,
    },
    Tolerance(Tolerance),
    /// Per element: integer steps (QuantizeLinear near a tie, see
    /// [`quantize_steps`]).
    Steps(Vec<f64>),
}

impl Bound {
    /// The error allowed at flat index `i` where the reference is `r`.
    pub fn allowed(&self, i: usize, r: f64) -> f64 {
        match &self.kind {
            Kind::Ulps(n) => {
                let f = Format::of(self.dtype);
                ulps_allowed(*n, f, f.spacing(r), r)
            }
            Kind::Accumulating {
                coef,
                magnitude,
                underflow,
            } => {
                let f = Format::of(self.dtype);
                accumulating_allowed(*coef, magnitude.get(i), *underflow, f, f.spacing(r), r)
            }
            Kind::Tolerance(t) => t.allowed(r),
            Kind::Steps(v) => steps_allowed(v, i),
        }
    }

    /// Whether this bound is the case tolerance rather than a class bound.
    pub fn is_tolerance(&self) -> bool {
        matches!(self.kind, Kind::Tolerance(_))
    }
}

/// [`Kind::Ulps`]: `n` ulps of `r`, below the smallest normal up to it.
#[inline(always)]
fn ulps_allowed(n: f64, f: Format, spacing: f64, r: f64) -> f64 {
    let ulps = n * spacing;
    if (n > 0.0) & (r.abs() < f.min_normal) {
        f.min_normal
    } else {
        ulps
    }
}

/// The magnitudes of a [`Kind::Accumulating`] bound, one per element:
/// rounded up to float32 where every one fits (the bound only loosens, by
/// under 2^-23 of itself; half the memory: 17 MB of swin_t's shared
/// bounds), else as computed.
#[derive(Debug, Clone)]
enum Magnitudes {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

impl Magnitudes {
    fn compact(m: Vec<f64>) -> Magnitudes {
        let fits = |x: &f64| x.is_nan() || x.is_infinite() || x.abs() <= f64::from(f32::MAX);
        if !m.iter().all(fits) {
            return Magnitudes::F64(m);
        }
        Magnitudes::F32(m.into_iter().map(round_up).collect())
    }

    /// The magnitude at flat index `i` (infinite past the end: no bound).
    #[inline(always)]
    fn get(&self, i: usize) -> f64 {
        match self {
            Magnitudes::F32(v) => v.get(i).map_or(f64::INFINITY, |&x| f64::from(x)),
            Magnitudes::F64(v) => v.get(i).copied().unwrap_or(f64::INFINITY),
        }
    }
}

/// The least float32 not below `x` (`x` within float32's range).
fn round_up(x: f64) -> f32 {
    let f = x as f32;
    if f.is_nan() || f64::from(f) >= x {
        return f;
    }
    // The next float32 up from `f`, finite since `x` is in range (what
    // `f32::next_up` does, past this crate's minimum Rust).
    match f {
        0.0 => f32::from_bits(1),
        f if f > 0.0 => f32::from_bits(f.to_bits() + 1),
        f => f32::from_bits(f.to_bits() - 1),
    }
}

/// [`Kind::Accumulating`] at an element of magnitude `magnitude`.
#[inline(always)]
fn accumulating_allowed(
    coef: f64,
    magnitude: f64,
    underflow: f64,
    f: Format,
    spacing: f64,
    r: f64,
) -> f64 {
    let rounding = coef * magnitude + spacing + underflow;
    if r.abs() < f.min_normal {
        rounding.max(f.min_normal)
    } else {
        rounding
    }
}

/// [`Kind::Steps`] at flat index `i`.
#[inline(always)]
fn steps_allowed(steps: &[f64], i: usize) -> f64 {
    steps.get(i).copied().unwrap_or(0.0)
}

/// The tolerance a case sets for `op`/`dtype` on purpose: a per-op entry, or
/// a per-dtype value other than both presets.
fn override_of(tols: &Tolerances, op: &str, dtype: DType) -> Option<Tolerance> {
    if !dtype.is_float() {
        return None;
    }
    if let Some(t) = tols.per_op.get(op) {
        return Some(*t);
    }
    let t = tols.get(op, dtype);
    let presets = [Tolerances::default(), Tolerances::onnx_backend_test()];
    (!presets.iter().any(|p| p.get(op, dtype) == t)).then_some(t)
}

/// Why a bound could not be computed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no error bound for {op}: {why}")]
pub struct BoundError {
    pub op: String,
    pub why: Why,
}

/// What was missing to compute a bound.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Why {
    #[error("input {0} missing")]
    MissingInput(usize),
    #[error("AveragePool without kernel_shape")]
    NoKernelShape,
    #[error("no term count for {0}")]
    NoTermCount(String),
    /// The reference could not evaluate the magnitude (its message).
    #[error("{0}")]
    Reference(String),
    #[error("no output")]
    NoOutput,
}

impl From<OpError> for Why {
    fn from(e: OpError) -> Why {
        let (OpError::Unsupported(m) | OpError::Failed(m)) = e;
        Why::Reference(m)
    }
}

/// The bound of output `k` of `node` in a lane of dtype `dtype`, whose
/// inputs (as the reference evaluated them) are `inputs` and whose
/// reference value is `want` (as the reference holds it: float64 for a
/// float), borrowed: the shared bounds read it from the reference's trace.
pub fn bound_for(
    node: &Node,
    opset: u32,
    inputs: &[Option<&RefTensor>],
    k: usize,
    want: &Tensor,
    dtype: DType,
    tols: &Tolerances,
) -> Result<Bound, BoundError> {
    let class = class(node);
    let kind = if let Some(t) = override_of(tols, &node.op_type, dtype) {
        Kind::Tolerance(t)
    } else if node.op_type == "QuantizeLinear" && k == 0 && !dtype.is_float() {
        Kind::Steps(
            quantize_steps(node, opset, inputs).map_err(|why| BoundError {
                op: node.op_type.clone(),
                why,
            })?,
        )
    } else if !dtype.is_float() {
        Kind::Ulps(0.0)
    } else {
        match class {
            Class::Exact => Kind::Ulps(0.0),
            Class::Rounded => Kind::Ulps(1.0),
            Class::Transcendental(n) => Kind::Ulps(n),
            Class::Accumulating(m) if k == 0 => {
                let err = |why: Why| BoundError {
                    op: node.op_type.clone(),
                    why,
                };
                let terms = terms(node, opset, inputs, want.shape()).map_err(err)?;
                let magnitude = magnitude(m, node, opset, inputs, want, terms).map_err(err)?;
                Kind::Accumulating {
                    coef: ACCUMULATING_C * gamma(terms, dtype),
                    magnitude: Magnitudes::compact(magnitude),
                    underflow: terms as f64 * spacing(dtype, 0.0),
                }
            }
            Class::Accumulating(_) | Class::Unclassed => {
                Kind::Tolerance(tols.get(&node.op_type, dtype))
            }
        }
    };
    Ok(Bound { class, dtype, kind })
}

/// `got` compared with `want` under `bound`: the comparison, with
/// [`super::Metrics::bound_ratio`] set.
pub fn compare_bounded(got: &Tensor, want: &RefTensor, bound: &Bound) -> Comparison {
    compare_bounded_to(got, &want.data, want.dtype, bound)
}

/// [`compare_bounded`] against a reference value held as a host tensor
/// (`data`, float64 for a float) of logical dtype `dtype`.
pub fn compare_bounded_to(got: &Tensor, data: &Tensor, dtype: DType, bound: &Bound) -> Comparison {
    // The bound's kind, its dtype and its magnitudes' width are matched
    // once, outside the per-element loop, so that a float bound's rule
    // vectorises.
    let f = Format::of(bound.dtype);
    let (mut c, ratio) = match &bound.kind {
        _ if !f.float => compare_within(got, data, dtype, |i, r| bound.allowed(i, r)),
        Kind::Ulps(n) => compare_within(got, data, dtype, |_, r| {
            ulps_allowed(*n, f, f.float_spacing(r), r)
        }),
        Kind::Accumulating {
            coef,
            magnitude: Magnitudes::F32(m),
            underflow,
        } => {
            let allowed = PerElement {
                m,
                past: f32::INFINITY,
                rule: |m, r| accumulating_allowed(*coef, m, *underflow, f, f.float_spacing(r), r),
            };
            compare_within(got, data, dtype, allowed)
        }
        Kind::Accumulating {
            coef,
            magnitude,
            underflow,
        } => compare_within(got, data, dtype, |i, r| {
            accumulating_allowed(
                *coef,
                magnitude.get(i),
                *underflow,
                f,
                f.float_spacing(r),
                r,
            )
        }),
        Kind::Tolerance(t) => compare_within(got, data, dtype, |_, r| t.allowed(r)),
        Kind::Steps(v) => compare_within(got, data, dtype, |i, _| steps_allowed(v, i)),
    };
    if let Comparison::Metrics(m) = &mut c {
        m.bound_ratio = Some(ratio);
    }
    c
}

fn input<'a>(inputs: &[Option<&'a RefTensor>], i: usize) -> Result<&'a RefTensor, Why> {
    inputs.get(i).copied().flatten().ok_or(Why::MissingInput(i))
}

fn dims(inputs: &[Option<&RefTensor>], i: usize) -> Result<Vec<usize>, Why> {
    Ok(input(inputs, i)?.shape().to_vec())
}

/// Signed axis `a` of a rank-`r` tensor as an index.
fn axis(a: i64, r: usize) -> usize {
    if a < 0 {
        (a + r as i64).max(0) as usize
    } else {
        (a as usize).min(r)
    }
}

/// K: the number of terms summed into one output element (an upper bound).
fn terms(
    node: &Node,
    opset: u32,
    inputs: &[Option<&RefTensor>],
    out: &[usize],
) -> Result<usize, Why> {
    let present = |i: usize| inputs.get(i).copied().flatten().is_some();
    let per_out = |i: usize| -> Result<usize, Why> {
        let n: usize = dims(inputs, i)?.iter().product();
        Ok(n / out.iter().product::<usize>().max(1))
    };
    let k = match node.op_type.as_str() {
        "Conv" => dims(inputs, 1)?.iter().skip(1).product::<usize>() + present(2) as usize,
        "ConvTranspose" => {
            let w = dims(inputs, 1)?;
            let group = attr_int(node, "group", 1).max(1) as usize;
            w[0] / group * w.iter().skip(2).product::<usize>() + present(2) as usize
        }
        "MatMul" => *dims(inputs, 0)?.last().unwrap_or(&1),
        "Gemm" => {
            let a = dims(inputs, 0)?;
            let inner = if attr_int(node, "transA", 0) != 0 {
                a[0]
            } else {
                a[a.len() - 1]
            };
            inner + 2
        }
        "ReduceSum" | "ReduceMean" | "ReduceSumSquare" | "ReduceL1" | "ReduceL2" | "ReduceProd"
        | "GlobalAveragePool" => per_out(0)? + 1,
        "CumSum" => {
            let x = dims(inputs, 0)?;
            let a = input(inputs, 1)?.ints().map_err(Why::from)?;
            a.first()
                .map_or(1, |&a| x.get(axis(a, x.len())).copied().unwrap_or(1))
                + 1
        }
        "AveragePool" => match node.attrs.get("kernel_shape") {
            Some(Attr::Ints(k)) => k.iter().product::<i64>().max(1) as usize + 1,
            _ => return Err(Why::NoKernelShape),
        },
        "Resize" | "Upsample" => {
            let x = dims(inputs, 0)?;
            let taps: usize = if attr_str(node, "mode", "nearest") == "cubic" {
                4
            } else {
                2
            };
            // The terms, plus the rounding of each resized axis's source
            // coordinate (about 3 operations on a value up to its length).
            let resized: Vec<usize> = x
                .iter()
                .zip(out)
                .filter(|(a, b)| a != b)
                .map(|(a, _)| *a)
                .collect();
            taps.pow(resized.len() as u32) + 3 * resized.iter().sum::<usize>()
        }
        "Sum" | "Mean" => inputs.iter().flatten().count() + 1,
        "Einsum" => einsum_terms(node, opset, inputs)?,
        "NegativeLogLikelihoodLoss" => loss_terms(node, inputs)?,
        // the log-softmax's sum of C exps (and 4 roundings), then the NLL
        "SoftmaxCrossEntropyLoss" => dims(inputs, 0)?[1] + 4 + loss_terms(node, inputs)?,
        // LU with partial pivoting: backward error γ(3M)·|L||U| (Higham, thm 9.3)
        "Det" => 3 * dims(inputs, 0)?.last().copied().unwrap_or(1),
        "Range" => 2,
        "DFT" | "STFT" => {
            reference::dft_bound_terms(node, opset, inputs)
                .map_err(Why::from)?
                .0
        }
        // θ = i·(2π/N) and k·θ carry ≤ 3 roundings, ≤ 3·2πk·u through
        // cos(kθ); 24·Σ|a_k|(1 + k) covers it with the series' own sum.
        "HannWindow" | "HammingWindow" | "BlackmanWindow" => 24,
        // Each image element sums at most one entry per block element.
        "Col2Im" => input(inputs, 2)?
            .ints()
            .map_err(Why::from)?
            .iter()
            .product::<i64>()
            .max(1) as usize,
        "RotaryEmbedding" => 2,
        "Attention" => {
            reference::attention_bound_terms(node, opset, inputs)
                .map_err(Why::from)?
                .0
        }
        // k + 1 products, plus the base coordinate's own rounding
        // (`start + i·step`, two operations).
        "AffineGrid" => input(inputs, 1)?.shape().first().map_or(2, |&n| n) + 1,
        // The neighbours (2 or 4 per axis), plus the unnormalisation and
        // reflection of each coordinate (about 3 operations on a value up
        // to the axis's length, as Resize's source coordinate).
        "GridSample" => {
            let x = dims(inputs, 0)?;
            let taps: usize = if attr_str(node, "mode", "linear").contains("cubic") {
                4
            } else {
                2
            };
            taps.pow(x.len().saturating_sub(2) as u32) + 3 * x.iter().skip(2).sum::<usize>()
        }
        // Four neighbours per sample, plus the sample coordinate's own
        // rounding (a few operations on a value up to the axis's length).
        "RoiAlign" => {
            let x = dims(inputs, 0)?;
            4 * reference::roi_align_samples(node, opset, inputs).map_err(Why::from)?
                + 3 * x.iter().skip(2).sum::<usize>()
        }
        "BatchNormalization" => 5,
        "HardSigmoid" => 2,
        "HardSwish" => 3,
        // Five operations (x/√2, erf, 1 +, ·x, ·½), but erf evaluated as
        // 1 − P(t)·e^(−x²) (Abramowitz–Stegun 7.1.26, libtorch's vectorized
        // AVX2 kernel) cancels terms of size 1 down to erf: near x = 0 its
        // absolute error is several u, which the sum 1 + erf keeps. Measured
        // on libtorch 2.11 (AVX2) over 4M points of [−8, 8]: up to 7.3 u of
        // ½|x|·(1 + |erf|) beyond the result's ulp (1.36× a K = 5 bound;
        // 0.77 of this one; ONNX Runtime and candle reach 0.27 of K = 5 in
        // cases/planted.toml).
        "Gelu" => 10,
        "Softmax" => softmax_groups(node, opset, &dims(inputs, 0)?).1,
        "LayerNormalization" | "InstanceNormalization" | "GroupNormalization" => {
            norm_groups(node, &dims(inputs, 0)?).0 + 3
        }
        op => return Err(Why::NoTermCount(op.to_string())),
    };
    Ok(k.max(1))
}

/// Softmax's (outer, K, inner) split of `x` under its axis convention.
fn softmax_groups(node: &Node, opset: u32, x: &[usize]) -> (usize, usize, usize) {
    let default = if opset < 13 { 1 } else { -1 };
    let a = axis(attr_int(node, "axis", default), x.len()).min(x.len().saturating_sub(1));
    let outer = x[..a].iter().product();
    if opset < 13 {
        (outer, x[a..].iter().product(), 1)
    } else {
        (outer, x[a], x[a + 1..].iter().product())
    }
}

/// `Σ|terms|` per element of output 0, flat in logical order.
fn magnitude(
    m: Magnitude,
    node: &Node,
    opset: u32,
    inputs: &[Option<&RefTensor>],
    want: &Tensor,
    terms: usize,
) -> Result<Vec<f64>, Why> {
    let flat = |a: &ArrayD<f64>| a.iter().map(|v| v.abs()).collect::<Vec<f64>>();
    match m {
        Magnitude::Multilinear => {
            // An input already non-negative (the shared bounds hand in
            // |x|, see [`abs_in_place`]) is used as is, not copied.
            let abs: Vec<Option<Cow<RefTensor>>> = inputs.iter().map(|t| t.map(abs_cow)).collect();
            let abs: Vec<Option<&RefTensor>> = abs.iter().map(|t| t.as_deref()).collect();
            // Gemm's alpha and beta scale terms too: |alpha|, |beta|.
            let mut na = node.clone();
            for a in na.attrs.values_mut() {
                if let Attr::Float(v) = a {
                    *v = v.abs();
                }
            }
            flat_owned(run_first_of(&na, opset, &abs)?)
        }
        Magnitude::Resize => reference::resize_magnitude(node, opset, inputs)
            .map(|a| flat(&a))
            .map_err(Why::from),
        Magnitude::BatchNorm => {
            let mut abs: Vec<Option<RefTensor>> = inputs.iter().map(|t| t.map(abs_of)).collect();
            if let Some(Some(mean)) = abs.get_mut(3) {
                *mean = map_float(mean, |v| -v);
            }
            if let (Some(Some(var)), Some(orig)) =
                (abs.get_mut(4), inputs.get(4).copied().flatten())
            {
                *var = orig.clone();
            }
            abs.truncate(5);
            let mut nb = node.clone();
            nb.outputs.truncate(1);
            nb.attrs.remove("training_mode");
            Ok(flat(run_first(&nb, opset, &abs)?.f64()?))
        }
        Magnitude::HardSigmoid => {
            let (a, b) = (
                attr_float(node, "alpha", 0.2),
                attr_float(node, "beta", 0.5),
            );
            let x = float_input(inputs, 0)?;
            Ok(x.iter().map(|v| (a * v).abs() + b.abs()).collect())
        }
        Magnitude::Range => {
            let scalar = |i: usize| -> Result<f64, Why> {
                Ok(float_input(inputs, i)?
                    .iter()
                    .next()
                    .map_or(0.0, |v| v.abs()))
            };
            let (start, delta) = (scalar(0)?, scalar(2)?);
            Ok((0..want.len()).map(|i| start + i as f64 * delta).collect())
        }
        Magnitude::Dft => reference::dft_bound_terms(node, opset, inputs)
            .map(|t| t.1)
            .map_err(Why::from),
        Magnitude::Window => {
            let a = crate::op::signal::window_coef(&node.op_type);
            let m: f64 = a
                .iter()
                .enumerate()
                .map(|(k, a)| a.abs() * (1 + k) as f64)
                .sum();
            Ok(vec![m; want.len()])
        }
        Magnitude::HardSwish => {
            let x = float_input(inputs, 0)?;
            Ok(x.iter().map(|v| v.abs() * (v.abs() / 6.0 + 0.5)).collect())
        }
        Magnitude::Gelu => {
            let x = float_input(inputs, 0)?;
            let erf = |v: f64| libm::erf(v / std::f64::consts::SQRT_2).abs();
            Ok(x.iter().map(|v| 0.5 * v.abs() * (1.0 + erf(*v))).collect())
        }
        Magnitude::Rotary => {
            // cos·x1 − sin·x2 with every term made positive is one of the
            // two runs with |sin| or −|sin|; the larger is Σ|terms|.
            let mut abs: Vec<Option<RefTensor>> = inputs.iter().map(|t| t.map(abs_of)).collect();
            let plus = run_first(node, opset, &abs)?;
            if let Some(Some(sin)) = abs.get_mut(2) {
                *sin = map_float(sin, |v| -v);
            }
            let minus = run_first(node, opset, &abs)?;
            Ok(plus
                .f64()?
                .iter()
                .zip(minus.f64()?.iter())
                .map(|(a, b)| a.max(*b))
                .collect())
        }
        Magnitude::AffineGrid => reference::affine_grid_magnitude(node, opset, inputs)
            .map(|a| flat(&a))
            .map_err(Why::from),
        Magnitude::GridSample => reference::grid_sample_magnitude(node, opset, inputs)
            .map(|a| flat(&a))
            .map_err(Why::from),
        Magnitude::RoiAlign => reference::roi_align_magnitude(node, opset, inputs)
            .map(|a| flat(&a))
            .map_err(Why::from),
        Magnitude::Attention => reference::attention_bound_terms(node, opset, inputs)
            .map(|t| t.1)
            .map_err(Why::from),
        Magnitude::Softmax => softmax_magnitude(node, opset, inputs, want, terms),
        Magnitude::LayerNorm => layernorm_magnitude(node, inputs),
        Magnitude::SoftmaxLoss => softmax_loss_magnitude(node, opset, inputs),
        Magnitude::Det => det_magnitude(inputs),
    }
}

/// QuantizeLinear's integer output may move by the steps it takes when the
/// quotient `x / y_scale` moves by one machine epsilon of `x`'s dtype (the
/// rounding of one float32 division, or the two of a product with a float32
/// reciprocal scale): 1 near a tie, where the exact quotient and a rounded
/// one fall on different sides of a half-integer; 0 on exact ties (rounding
/// half to even is the convention), saturated elements and everywhere else.
fn quantize_steps(node: &Node, opset: u32, inputs: &[Option<&RefTensor>]) -> Result<Vec<f64>, Why> {
    let x = input(inputs, 0)?;
    let eps = format(x.dtype).map_or(0.0, |(eps, _)| eps);
    Ok(reference::quantize_steps(node, opset, inputs, eps)?)
}

/// `t` with `f` applied to each element when it is a float value.
fn map_float(t: &RefTensor, f: fn(f64) -> f64) -> RefTensor {
    match &t.data {
        Tensor::F64(a) if t.is_float() => RefTensor::float(a.mapv(f), t.dtype),
        _ => t.clone(),
    }
}

fn abs_of(t: &RefTensor) -> RefTensor {
    map_float(t, f64::abs)
}

/// `t` made its absolute value where it is a float value, in place. For a
/// caller that owns a multilinear node's inputs and has no other use for
/// them (the shared bounds): its magnitude then copies none of them.
pub fn abs_in_place(t: &mut RefTensor) {
    if let (true, Tensor::F64(a)) = (t.is_float(), &mut t.data) {
        a.mapv_inplace(f64::abs);
    }
}

/// [`abs_of`], borrowing `t` when it is its own absolute value (every
/// element's sign bit clear, so `abs` would change no bit).
fn abs_cow(t: &RefTensor) -> Cow<'_, RefTensor> {
    match &t.data {
        Tensor::F64(a) if t.is_float() && !sign_bits_clear(a) => Cow::Owned(abs_of(t)),
        // Not a float value (`abs_of` copies it unchanged), or its own |x|.
        _ => Cow::Borrowed(t),
    }
}

/// Whether no element of `a` has its sign bit set: over its memory in
/// blocks, each folded without a branch (a loop the compiler vectorises;
/// a weight made absolute in place is read whole), stopping at the first
/// block with a negative element.
fn sign_bits_clear(a: &ndarray::ArrayD<f64>) -> bool {
    match a.as_slice_memory_order() {
        Some(s) => s
            .chunks(1024)
            .all(|c| c.iter().fold(true, |clear, v| clear & v.is_sign_positive())),
        None => a.iter().all(|v| v.is_sign_positive()),
    }
}

/// The elements of a float result made non-negative, in logical order: its
/// own buffer where it is row-major, not a copy.
fn flat_owned(t: RefTensor) -> Result<Vec<f64>, Why> {
    let Tensor::F64(a) = t.data else {
        return Err(Why::from(OpError::Failed(format!(
            "expected a float tensor, got {}",
            t.dtype
        ))));
    };
    let mut v = match a.is_standard_layout() {
        true => {
            let n = a.len();
            let (mut v, offset) = a.into_raw_vec_and_offset();
            let start = offset.unwrap_or(0);
            v.truncate(start + n);
            v.drain(..start);
            v
        }
        false => a.iter().copied().collect(),
    };
    v.iter_mut().for_each(|x| *x = x.abs());
    Ok(v)
}

fn float_input<'a>(inputs: &[Option<&'a RefTensor>], i: usize) -> Result<&'a ArrayD<f64>, Why> {
    Ok(input(inputs, i)?.f64()?)
}

fn run_first(node: &Node, opset: u32, inputs: &[Option<RefTensor>]) -> Result<RefTensor, Why> {
    let refs: Vec<Option<&RefTensor>> = inputs.iter().map(Option::as_ref).collect();
    run_first_of(node, opset, &refs)
}

/// [`run_first`] on borrowed inputs.
fn run_first_of(node: &Node, opset: u32, refs: &[Option<&RefTensor>]) -> Result<RefTensor, Why> {
    reference::run_op(node, opset, refs)?
        .into_iter()
        .next()
        .flatten()
        .ok_or(Why::NoOutput)
}

/// `a`'s values in logical order: borrowed when it is laid out so already.
fn logical_order(a: &ArrayD<f64>) -> Cow<'_, [f64]> {
    match a.as_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(a.iter().copied().collect()),
    }
}

fn softmax_magnitude(
    node: &Node,
    opset: u32,
    inputs: &[Option<&RefTensor>],
    want: &Tensor,
    terms: usize,
) -> Result<Vec<f64>, Why> {
    let x = logical_order(float_input(inputs, 0)?);
    let Tensor::F64(y) = want else {
        return Err(Why::Reference(format!(
            "expected a float tensor, got {}",
            want.dtype()
        )));
    };
    let y = logical_order(y);
    let (outer, k, inner) = softmax_groups(node, opset, &dims(inputs, 0)?);
    let mut m = vec![0.0; x.len()];
    for o in 0..outer {
        for j in 0..inner {
            let at = |q: usize| (o * k + q) * inner + j;
            let max = (0..k).map(|q| x[at(q)]).fold(f64::NEG_INFINITY, f64::max);
            for q in 0..k {
                let i = at(q);
                m[i] = y[i].abs() * (1.0 + ((x[i] - max).abs() + 4.0) / terms as f64);
            }
        }
    }
    Ok(m)
}

/// Einsum's K: the product of the summed labels' sizes, plus one rounding
/// per product of the inputs.
fn einsum_terms(node: &Node, opset: u32, inputs: &[Option<&RefTensor>]) -> Result<usize, Why> {
    let shapes: Vec<Vec<usize>> = inputs
        .iter()
        .flatten()
        .map(|t| t.shape().to_vec())
        .collect();
    let plan = crate::op::with_node(node, opset, |ctx| {
        crate::op::einsum::EinsumPlan::parse(ctx, &shapes)
    })?;
    Ok(plan.terms())
}

/// A loss's K: one product per position, their sum and the mean's division.
fn loss_terms(node: &Node, inputs: &[Option<&RefTensor>]) -> Result<usize, Why> {
    Ok(match attr_str(node, "reduction", "mean").as_str() {
        "none" => 1,
        _ => dims(inputs, 1)?.iter().product::<usize>() + 2,
    })
}

/// See [`Magnitude::SoftmaxLoss`]: the reference's NLL of the magnitudes.
fn softmax_loss_magnitude(
    node: &Node,
    opset: u32,
    inputs: &[Option<&RefTensor>],
) -> Result<Vec<f64>, Why> {
    let x = float_input(inputs, 0)?;
    let mut m = x.to_owned();
    for mut row in m.axis_iter_mut(ndarray::Axis(0)) {
        for mut lane in row.lanes_mut(ndarray::Axis(0)) {
            let max = lane.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = lane.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            lane.mapv_inplace(|v| (v - max).abs() + lse.abs() + 4.0);
        }
    }
    let mut nll = node.clone();
    nll.op_type = "NegativeLogLikelihoodLoss".into();
    nll.outputs.truncate(1);
    let mut abs: Vec<Option<RefTensor>> = inputs.iter().map(|t| t.map(abs_of)).collect();
    abs[0] = Some(RefTensor::float(m, input(inputs, 0)?.dtype));
    let y = run_first(&nll, opset.max(13), &abs)?;
    Ok(y.f64()?.iter().map(|v| v.abs()).collect())
}

/// See [`Magnitude::Det`]: per matrix, the product of its rows' 1-norms.
fn det_magnitude(inputs: &[Option<&RefTensor>]) -> Result<Vec<f64>, Why> {
    let x = float_input(inputs, 0)?;
    let m = x.shape().last().copied().unwrap_or(1).max(1);
    let v: Vec<f64> = x.iter().copied().collect();
    Ok(v.chunks(m * m)
        .map(|a| {
            a.chunks(m)
                .map(|r| r.iter().map(|e| e.abs()).sum::<f64>())
                .product()
        })
        .collect())
}

/// How a normalization splits `x` (flat, logical order) into the groups it
/// normalizes: (group length, channel of flat index `i` → scale/bias index
/// divisor and count). LayerNormalization: the axes from `axis` on, scale
/// over the same trailing elements; InstanceNormalization: each (n, c)
/// plane, scale per channel; GroupNormalization: each (n, group), scale per
/// channel (opset 21) or per group (opset 18, where scale has G entries).
fn norm_groups(node: &Node, x: &[usize]) -> (usize, Norm) {
    let spatial = x.iter().skip(2).product::<usize>().max(1);
    let c = x.get(1).copied().unwrap_or(1).max(1);
    match node.op_type.as_str() {
        "InstanceNormalization" => (spatial, Norm::Channel { spatial, c }),
        "GroupNormalization" => {
            let g = usize::try_from(attr_int(node, "num_groups", 1))
                .unwrap_or(1)
                .max(1);
            ((c / g).max(1) * spatial, Norm::Channel { spatial, c })
        }
        _ => {
            let a = axis(attr_int(node, "axis", -1), x.len());
            (x[a..].iter().product::<usize>().max(1), Norm::Trailing)
        }
    }
}

/// Which scale/bias entry an element of a normalization reads.
#[derive(Clone, Copy)]
enum Norm {
    /// LayerNormalization: its position within the normalized group.
    Trailing,
    /// Per channel (`(i / spatial) % c`), or per group when the scale has
    /// fewer entries than channels (GroupNormalization-18).
    Channel { spatial: usize, c: usize },
}

/// |s| · (|x − μ| + mean|x|) / σ + |b| per element of a LayerNormalization,
/// InstanceNormalization or GroupNormalization: the sums of the mean and the
/// variance carry mean|x|, the centring |x − μ|, both relative to σ.
fn layernorm_magnitude(node: &Node, inputs: &[Option<&RefTensor>]) -> Result<Vec<f64>, Why> {
    let xa = float_input(inputs, 0)?;
    let x: Vec<f64> = xa.iter().copied().collect();
    let s: Vec<f64> = float_input(inputs, 1)?.iter().copied().collect();
    let b: Vec<f64> = match inputs.get(2).copied().flatten() {
        Some(t) => t.floats()?,
        None => vec![0.0],
    };
    let (n, norm) = norm_groups(node, xa.shape());
    let eps = attr_float(node, "epsilon", 1e-5);
    let entry = |i: usize, q: usize, len: usize| -> usize {
        let len = len.max(1);
        match norm {
            Norm::Trailing => q % len,
            Norm::Channel { spatial, c } if len >= c => (i / spatial) % c % len,
            // Per group: the group of element i within its sample.
            Norm::Channel { .. } => (i / n) % len,
        }
    };
    let mut m = vec![0.0; x.len()];
    for (g, chunk) in x.chunks(n).enumerate() {
        let mean = chunk.iter().sum::<f64>() / n as f64;
        let mean_abs = chunk.iter().map(|v| v.abs()).sum::<f64>() / n as f64;
        let var = chunk.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        let sigma = (var + eps).sqrt();
        for (q, v) in chunk.iter().enumerate() {
            let i = g * n + q;
            let (sq, bq) = (s[entry(i, q, s.len())], b[entry(i, q, b.len())]);
            m[i] = sq.abs() * ((v - mean).abs() + mean_abs) / sigma + bq.abs();
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The comparison under a bound matches the bound's kind and dtype
    /// once and reads an accumulating bound's magnitudes a block at a time
    /// (`PerElement`); it must give, bit for bit, what the per-element rule
    /// ([`Bound::allowed`]) gives: over float32 values with specials,
    /// subnormals and zeros, magnitudes as long as the output or shorter
    /// (no bound past their end), and every float kind. (A block rule that
    /// allowed too little would only send clean blocks to the exact walk,
    /// which uses the per-element rule; one that allowed too much shows.)
    #[test]
    fn the_specialised_bounded_comparison_is_the_per_element_rule() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 64 * 9 + 13;
        let special = [
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            0.0,
            -0.0,
            1e-41,
            3e38,
        ];
        // Random values, some subnormal in float32, a rounding apart; then
        // the same with specials in one block (the exact walk) and one
        // element far past any bound.
        let want: Vec<f64> = (0..n)
            .map(|_| rng.random_range(-4.0..4.0) * 10f64.powi(rng.random_range(-40..6)))
            .collect();
        let got: Vec<f64> = want
            .iter()
            .map(|&r| r * (1.0 + rng.random_range(-3e-7..3e-7)) + rng.random_range(-1e-39..1e-39))
            .collect();
        let (mut want_x, mut got_x) = (want.clone(), got.clone());
        for (k, &v) in special.iter().enumerate() {
            (want_x[300 + k], got_x[300 + k]) = (v, v);
        }
        got_x[450] = want_x[450] * 1.01;
        let f32s = |v: &[f64]| Tensor::from_f64(DType::F32, &[n], v);
        let f64s = |v: &[f64]| Tensor::from_f64(DType::F64, &[n], v);
        // And normal values only, the lane being their rounding to float32
        // (within half an ulp: the ulp bounds' clean blocks).
        let normal: Vec<f64> = (0..n)
            .map(|_| rng.random_range(-4.0..4.0) * 10f64.powi(rng.random_range(-30..6)))
            .collect();
        let pairs = [
            (f32s(&got), f64s(&want)),
            (f32s(&got_x), f64s(&want_x)),
            (f32s(&normal), f64s(&normal)),
        ];
        let mags: Vec<f64> = want.iter().map(|r| r.abs() * 2.0 + 1e-30).collect();
        let accumulating = |m: Vec<f64>| Kind::Accumulating {
            coef: 3e-7,
            magnitude: Magnitudes::compact(m),
            underflow: 1e-44,
        };
        let kinds = [
            accumulating(mags.clone()),
            accumulating(mags[..n - 100].to_vec()),
            accumulating(mags[..10].to_vec()),
            Kind::Ulps(0.0),
            Kind::Ulps(1.0),
            Kind::Ulps(4.0),
        ];
        for (k, kind) in kinds.into_iter().enumerate() {
            let bound = Bound {
                class: Class::Exact,
                dtype: DType::F32,
                kind,
            };
            for (p, (got, want)) in pairs.iter().enumerate() {
                let fast = compare_bounded_to(got, want, DType::F32, &bound);
                let (mut rule, ratio) =
                    compare_within(got, want, DType::F32, |i, r| bound.allowed(i, r));
                if let Comparison::Metrics(m) = &mut rule {
                    m.bound_ratio = Some(ratio);
                }
                assert_eq!(
                    format!("{fast:?}"),
                    format!("{rule:?}"),
                    "kind {k}, pair {p}"
                );
            }
        }
    }

    #[test]
    fn magnitudes_round_up_to_float32_and_stay_float64_past_its_range() {
        let m = vec![0.0, 1e-50, 0.1, 1.0 / 3.0, 3.0e38, f64::INFINITY];
        let c = Magnitudes::compact(m.clone());
        assert!(matches!(c, Magnitudes::F32(_)), "{c:?}");
        for (i, &x) in m.iter().enumerate() {
            let got = c.get(i);
            // Never below (the bound only loosens), and the least such float32.
            assert!(got >= x, "{x} -> {got}");
            assert!(
                x.is_infinite() || f64::from((got as f32).next_down()) < x,
                "{x} -> {got}"
            );
        }
        assert_eq!(c.get(m.len()), f64::INFINITY);
        let wide = Magnitudes::compact(vec![1.0, 1e39]);
        assert!(matches!(wide, Magnitudes::F64(_)), "{wide:?}");
        assert_eq!(wide.get(1), 1e39);
    }
    use crate::backend::reference::util::{f, test_node};

    #[test]
    fn spacing_is_one_ulp_of_the_binade() {
        assert_eq!(spacing(DType::F32, 1.0), f32::EPSILON as f64);
        assert_eq!(spacing(DType::F32, 1.5), f32::EPSILON as f64);
        assert_eq!(spacing(DType::F32, -2.0), 2.0 * f32::EPSILON as f64);
        assert_eq!(spacing(DType::F32, 0.0), 2f64.powi(-149));
        assert_eq!(spacing(DType::I64, 3.0), 0.0);
    }

    #[test]
    fn gamma_grows_with_k_and_saturates() {
        let ku = 1000.0 * 2f64.powi(-24);
        let g = gamma(1000, DType::F32);
        assert!(g > ku && (g / ku - 1.0) < 1e-4, "{g}");
        assert!(gamma(1 << 25, DType::F32).is_infinite());
    }

    #[test]
    fn classes_follow_the_op_and_resize_mode() {
        let n = |op: &str, attrs: Vec<(&str, Attr)>| test_node(op, 1, 1, attrs);
        assert_eq!(class(&n("Relu", vec![])), Class::Exact);
        assert_eq!(class(&n("Add", vec![])), Class::Rounded);
        assert_eq!(class(&n("Exp", vec![])), Class::Transcendental(4.0));
        assert_eq!(class(&n("Pow", vec![])), Class::Transcendental(8.0));
        assert_eq!(class(&n("Resize", vec![])), Class::Exact);
        let linear = n("Resize", vec![("mode", Attr::String("linear".into()))]);
        assert_eq!(class(&linear), Class::Accumulating(Magnitude::Resize));
        let nearest = n("GridSample", vec![("mode", Attr::String("nearest".into()))]);
        assert_eq!(class(&nearest), Class::Exact);
        let cubic = n("GridSample", vec![("mode", Attr::String("bicubic".into()))]);
        assert_eq!(class(&cubic), Class::Accumulating(Magnitude::GridSample));
        assert_eq!(class(&n("Foo", vec![])), Class::Unclassed);
    }

    #[test]
    fn matmul_bound_scales_with_k_and_magnitude() {
        let node = test_node("MatMul", 2, 1, vec![]);
        let a = f(&[1, 2], &[1.0, -1.0]);
        let b = f(&[2, 1], &[3.0, 3.0]);
        let want = RefTensor::float(
            ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 1]), vec![0.0]).unwrap(),
            DType::F32,
        );
        let tols = Tolerances::default();
        let bound = bound_for(
            &node,
            13,
            &[Some(&a), Some(&b)],
            0,
            &want.data,
            DType::F32,
            &tols,
        )
        .expect("bound");
        // Σ|terms| = 6, K = 2: γ(2)·6 + one ulp at 0 + K·η of underflow.
        let expect = gamma(2, DType::F32) * 6.0 + 3.0 * spacing(DType::F32, 0.0);
        assert_eq!(bound.allowed(0, 0.0), expect);
        // A cancellation to 0 within the bound passes; past it, it fails.
        let inside = Tensor::from_f64(DType::F32, &[1, 1], &[expect * 0.5]);
        let outside = Tensor::from_f64(DType::F32, &[1, 1], &[expect * 4.0]);
        assert!(compare_bounded(&inside, &want, &bound).ok());
        assert!(!compare_bounded(&outside, &want, &bound).ok());
    }

    #[test]
    fn a_multilinear_bound_at_absolute_inputs_is_the_same_bound() {
        // The shared bounds hand in |x| (made in place, `abs_in_place`):
        // the magnitude then borrows them, and the bound is the same.
        let node = test_node("Gemm", 3, 1, vec![("alpha", Attr::Float(-0.5))]);
        let a = f(&[2, 3], &[1.0, -2.0, 0.5, -0.0, 3.0, -4.0]);
        let b = f(&[3, 2], &[-1.0, 2.0, 0.25, -8.0, 1.5, 0.0]);
        let c = f(&[2], &[-3.0, 1.0]);
        let want = RefTensor::float(ArrayD::zeros(ndarray::IxDyn(&[2, 2])), DType::F32);
        let tols = Tolerances::default();
        let bound = |x: &[&RefTensor]| {
            let x: Vec<_> = x.iter().map(|t| Some(*t)).collect();
            bound_for(&node, 13, &x, 0, &want.data, DType::F32, &tols).expect("bound")
        };
        let plain = bound(&[&a, &b, &c]);
        let (mut aa, mut ab, mut ac) = (a.clone(), b.clone(), c.clone());
        for t in [&mut aa, &mut ab, &mut ac] {
            abs_in_place(t);
        }
        assert!(matches!(abs_cow(&aa), Cow::Borrowed(_)));
        assert!(matches!(abs_cow(&a), Cow::Owned(_)));
        let abs = bound(&[&aa, &ab, &ac]);
        for i in 0..4 {
            assert_eq!(plain.allowed(i, 1.0), abs.allowed(i, 1.0), "element {i}");
        }
        assert!(plain.allowed(0, 1.0) > 1e-7);
    }

    #[test]
    fn products_that_underflow_are_judged_absolutely() {
        // swin_t's padded attention windows: q·k products around 1e-45 sum to a
        // subnormal, where every float32 framework rounds absolutely (and may
        // flush to zero): relative bounds on Σ|terms| ≈ 1e-44 would fail them.
        let node = test_node("MatMul", 2, 1, vec![]);
        let a = f(&[1, 2], &[3e-23, 1e-23]);
        let b = f(&[2, 1], &[1e-22, -2e-22]);
        let exact = 3e-45 - 2e-45;
        let want = RefTensor::float(
            ArrayD::from_shape_vec(ndarray::IxDyn(&[1, 1]), vec![exact]).unwrap(),
            DType::F32,
        );
        let tols = Tolerances::default();
        let bound = bound_for(
            &node,
            13,
            &[Some(&a), Some(&b)],
            0,
            &want.data,
            DType::F32,
            &tols,
        )
        .unwrap();
        for got in [0.0, -2f64.powi(-149), 3.0 * 2f64.powi(-149)] {
            let got = Tensor::from_f64(DType::F32, &[1, 1], &[got]);
            assert!(compare_bounded(&got, &want, &bound).ok(), "{got:?}");
        }
        // A normal-range departure is still one.
        let got = Tensor::from_f64(DType::F32, &[1, 1], &[1e-30]);
        assert!(!compare_bounded(&got, &want, &bound).ok());
    }

    #[test]
    fn det_and_einsum_bounds_count_their_terms() {
        let tols = Tolerances::default();
        let zero = RefTensor::float(ArrayD::from_elem(ndarray::IxDyn(&[]), 0.0), DType::F32);
        // Det of [[1, -2], [3, 4]]: K = 3·2, Σ|terms| ≤ (1 + 2)·(3 + 4) = 21.
        let a = f(&[2, 2], &[1.0, -2.0, 3.0, 4.0]);
        let det = test_node("Det", 1, 1, vec![]);
        let b = bound_for(&det, 11, &[Some(&a)], 0, &zero.data, DType::F32, &tols).expect("bound");
        let expect = gamma(6, DType::F32) * 21.0 + spacing(DType::F32, 0.0);
        assert_eq!(b.allowed(0, 0.0), expect);
        // Einsum "i,i": a dot product of 2 terms and 2 inputs per product.
        let eq = vec![("equation", Attr::String("i,i".into()))];
        let v = f(&[2], &[1.0, -1.0]);
        let w = f(&[2], &[3.0, 3.0]);
        let ein = test_node("Einsum", 2, 1, eq);
        let b = bound_for(
            &ein,
            12,
            &[Some(&v), Some(&w)],
            0,
            &zero.data,
            DType::F32,
            &tols,
        )
        .expect("bound");
        let expect = gamma(4, DType::F32) * 6.0 + spacing(DType::F32, 0.0);
        assert_eq!(b.allowed(0, 0.0), expect);
    }

    #[test]
    fn transcendental_is_relative_with_a_denormal_floor() {
        let node = test_node("Sigmoid", 1, 1, vec![]);
        let x = f(&[1], &[-10.5]);
        let want = RefTensor::float(
            ArrayD::from_shape_vec(ndarray::IxDyn(&[1]), vec![2.669e-5]).unwrap(),
            DType::F32,
        );
        let tols = Tolerances::default();
        let bound = bound_for(&node, 13, &[Some(&x)], 0, &want.data, DType::F32, &tols).unwrap();
        // ORT's 2.661e-5 for 2.669e-5: 1e-8 absolute, far outside 4 ulps.
        let got = Tensor::from_f64(DType::F32, &[1], &[2.661e-5]);
        assert!(!compare_bounded(&got, &want, &bound).ok());
        assert!(bound.allowed(0, 1e-40) >= f32::MIN_POSITIVE as f64);
    }

    #[test]
    fn a_case_override_replaces_the_bound() {
        let node = test_node("Add", 2, 1, vec![]);
        let mut tols = Tolerances::default();
        let loose = Tolerance {
            atol: 0.5,
            rtol: 0.0,
        };
        tols.per_op.insert("Add".into(), loose);
        let x = f(&[1], &[1.0]);
        let bound = bound_for(
            &node,
            13,
            &[Some(&x), Some(&x)],
            0,
            &x.data,
            DType::F32,
            &tols,
        )
        .unwrap();
        assert!(bound.is_tolerance());
        assert_eq!(bound.allowed(0, 1.0), 0.5);
    }

    #[test]
    fn quantize_allows_one_step_only_near_a_tie() {
        // fl32(-42.5 · 0.3) / 0.3 sits 1.5e-6 beyond the tie -42.5 (a
        // near-tie: float32 division rounds onto it, the exact quotient does
        // not); 0.9375 / 0.375 is exactly the tie 2.5 (half to even is the
        // convention: no slack); 0.66 / 0.3 = 2.2 is far from any.
        let node = test_node("QuantizeLinear", 3, 1, vec![]);
        let steps = |xs: &[f64], sc: f64| {
            let x = f(&[xs.len()], xs);
            let scale = RefTensor::float(
                ArrayD::from_shape_vec(ndarray::IxDyn(&[]), vec![sc]).unwrap(),
                DType::F32,
            );
            let zp = RefTensor::exact(Tensor::from_f64(DType::U8, &[], &[128.0]));
            quantize_steps(&node, 21, &[Some(&x), Some(&scale), Some(&zp)]).unwrap()
        };
        assert_eq!(
            steps(&[-12.750000953674316, 0.66], 0.30000001192092896),
            vec![1.0, 0.0]
        );
        assert_eq!(steps(&[0.9375], 0.375), vec![0.0]);
        // Saturated: 1000 / 0.3 clamps to 255 whichever way it rounds.
        assert_eq!(steps(&[1000.0], 0.30000001192092896), vec![0.0]);
    }
}
