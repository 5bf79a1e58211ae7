//! Sliding-window geometry: Conv, ConvTranspose, MaxPool and AveragePool.
//!
//! These ops share one vocabulary (`kernel_shape`, `strides`, `dilations`,
//! per-edge `pads`, `auto_pad`, pooling's `ceil_mode` and
//! `count_include_pad`), and frameworks depart most often on exactly that
//! geometry, so it is decoded once here into explicit per-axis
//! `(begin pad, end pad, output length)` as the spec text reads. Backends
//! start from [`WindowAttrs`] / [`TransposeAttrs`]; the reference keeps its
//! own maths (im2col, pooling loops), the frameworks only map the geometry
//! onto their kernels.
//!
//! Spec and opset history:
//! - Conv-1/11/22 (<https://onnx.ai/onnx/operators/onnx__Conv.html>): 11 made
//!   strides/dilations default to 1 and defined SAME_* as output =
//!   ceil(in / stride); 22 added bfloat16.
//! - ConvTranspose-1/11/22
//!   (<https://onnx.ai/onnx/operators/onnx__ConvTranspose.html>): 11 swapped
//!   which side receives the odd pixel of a derived padding (see
//!   [`transpose_split`]); 22 added bfloat16.
//! - MaxPool-1/8/10/11/12/22
//!   (<https://onnx.ai/onnx/operators/onnx__MaxPool.html>): 8 adds
//!   storage_order and the Indices output, 10 dilations and ceil_mode, 11
//!   clarified pads, 12 int8/uint8, 22 bfloat16.
//! - AveragePool-1/7/10/11/19/22
//!   (<https://onnx.ai/onnx/operators/onnx__AveragePool.html>): 7 adds
//!   count_include_pad, 10 ceil_mode, 11 clarified pads, 19 dilations, 22
//!   bfloat16.
//!
//! The pools' fingerprint space ([`pool_space`]) confuses `ceil_mode`,
//! `count_include_pad` and the padding (explicit, none, or SAME_*), read
//! from the decoded [`WindowAttrs`].

use super::space::{
    always, bool_dim, value_probes, varied, with_first, Dim, InputEdit, Kind, Probe, Space,
};
use super::{OpCtx, OpResult};
use crate::graph::{Attr, Node};
use crate::tensor::Tensor;

/// How padding is chosen (`auto_pad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoPad {
    NotSet,
    Valid,
    SameUpper,
    SameLower,
}

impl AutoPad {
    pub fn decode(ctx: &OpCtx) -> OpResult<AutoPad> {
        match ctx.string("auto_pad", "NOTSET")?.as_str() {
            "NOTSET" | "" => Ok(AutoPad::NotSet),
            "VALID" => Ok(AutoPad::Valid),
            "SAME_UPPER" => Ok(AutoPad::SameUpper),
            "SAME_LOWER" => Ok(AutoPad::SameLower),
            other => Err(ctx.attr_error("auto_pad", format!("unknown value {other:?}"))),
        }
    }

    pub fn is_same(self) -> bool {
        matches!(self, AutoPad::SameUpper | AutoPad::SameLower)
    }
}

/// Effective (dilated) kernel extent: (k - 1) * d + 1.
pub fn dilated(k: usize, d: usize) -> usize {
    (k - 1) * d + 1
}

/// The decoded window of a forward op (Conv or a pool) over its spatial axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowAttrs {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub auto_pad: AutoPad,
    /// Resolved (begin, end) pads per spatial axis (from `pads` or `auto_pad`).
    pub pads: Vec<(i64, i64)>,
    /// Output length per spatial axis, by the spec formula.
    pub out: Vec<usize>,
    /// Pools only (0 elsewhere): round the output length up. This is the
    /// *effective* rule: `auto_pad = VALID` has its own output formula,
    /// ceil((in - ek + 1) / s), and ignores the attribute (false then), so
    /// lowerings that hand it to a framework stay on the spec.
    pub ceil_mode: bool,
    /// AveragePool only: divide by the taps inside the padded extent.
    pub count_include_pad: bool,
}

/// Which forward window op a node is: Conv takes its kernel from W, the pools
/// from `kernel_shape` (and gate their attributes by opset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Conv,
    Pool { dilations_since: u32 },
}

impl Family {
    fn of(op: &str) -> Family {
        match op {
            "AveragePool" => Family::Pool {
                dilations_since: 19,
            },
            "MaxPool" => Family::Pool {
                dilations_since: 10,
            },
            "LpPool" => Family::Pool {
                dilations_since: 18,
            },
            _ => Family::Conv,
        }
    }
}

/// Fails when `name` is set on a node whose opset predates it.
pub fn require_since(ctx: &OpCtx, name: &str, since: u32) -> OpResult<()> {
    if ctx.has(name) && ctx.opset < since {
        return Err(ctx.attr_error(
            name,
            format!(
                "is not defined before opset {since} (node at opset {})",
                ctx.opset
            ),
        ));
    }
    Ok(())
}

/// Per-axis values that must be >= 1 (strides, dilations), default 1.
fn positive(ctx: &OpCtx, name: &str, n: usize) -> OpResult<Vec<usize>> {
    ctx.per_axis(name, n, 1)?
        .into_iter()
        .map(|x| {
            usize::try_from(x)
                .ok()
                .filter(|&v| v >= 1)
                .ok_or_else(|| ctx.attr_error(name, format!("{x} must be >= 1")))
        })
        .collect()
}

/// `pads` as (begin, end) per axis; the attribute is
/// `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]` and may not be negative.
fn explicit_pads(ctx: &OpCtx, n: usize) -> OpResult<Vec<(i64, i64)>> {
    let p = ctx.per_axis("pads", 2 * n, 0)?;
    if let Some(bad) = p.iter().find(|&&x| x < 0) {
        return Err(ctx.attr_error("pads", format!("negative value {bad}")));
    }
    Ok((0..n).map(|i| (p[i], p[i + n])).collect())
}

/// The kernel: W's spatial dims (checked against `kernel_shape` when given)
/// or the required `kernel_shape` of a pool.
fn kernel(ctx: &OpCtx, n: usize, from_weights: Option<&[usize]>) -> OpResult<Vec<usize>> {
    let attr = ctx.ints("kernel_shape")?;
    match (attr, from_weights) {
        (Some(k), Some(w)) if k.iter().map(|&v| v as usize).ne(w.iter().copied()) => Err(ctx
            .attr_error(
                "kernel_shape",
                format!("{k:?} disagrees with W's spatial shape {w:?}"),
            )),
        (_, Some(w)) if w.len() == n => Ok(w.to_vec()),
        (Some(k), None) if k.len() == n && k.iter().all(|&v| v >= 1) => {
            Ok(k.iter().map(|&v| v as usize).collect())
        }
        (Some(k), None) => {
            Err(ctx.attr_error("kernel_shape", format!("{k:?}: need {n} values >= 1")))
        }
        (None, None) => Err(ctx.attr_error("kernel_shape", "is required")),
        (_, Some(w)) => Err(ctx.fail(format!(
            "W's spatial shape {w:?} does not fit {n} spatial axes"
        ))),
    }
}

/// SAME_* padding of a forward window: output ceil(in / stride), total
/// padding max(0, (out - 1) * stride + ek - in), the odd pixel at the end for
/// SAME_UPPER and at the beginning for SAME_LOWER.
fn same_axis(input: usize, ek: usize, stride: usize, auto: AutoPad) -> ((i64, i64), usize) {
    let out = input.div_ceil(stride);
    let total = ((out as i64 - 1) * stride as i64 + ek as i64 - input as i64).max(0);
    let small = total / 2;
    let pads = if auto == AutoPad::SameUpper {
        (small, total - small)
    } else {
        (total - small, small)
    };
    (pads, out)
}

/// Output length of an explicitly padded axis: floor((in + pads - ek) / s) + 1,
/// or with ceil_mode ceil(...) + 1 minus the last window when it would start
/// in the end padding ((out - 1)·s >= in + pad_begin).
fn padded_axis_out(
    ctx: &OpCtx,
    i: usize,
    input: usize,
    ek: usize,
    s: usize,
    pads: (i64, i64),
    ceil: bool,
) -> OpResult<usize> {
    let span = input as i64 + pads.0 + pads.1 - ek as i64;
    if span < 0 {
        return Err(ctx.fail(format!(
            "spatial axis {i}: padded input {} is smaller than the dilated kernel {ek} (attributes `pads`, `kernel_shape`, `dilations`)",
            input as i64 + pads.0 + pads.1
        )));
    }
    let s = s as i64;
    if !ceil {
        return Ok((span / s + 1) as usize);
    }
    let mut out = (span + s - 1) / s + 1;
    if (out - 1) * s >= input as i64 + pads.0 {
        out -= 1;
    }
    Ok(out as usize)
}

impl WindowAttrs {
    /// Decodes a Conv (kernel from W's spatial dims) or pool (kernel from
    /// `kernel_shape`) node over `spatial` input dims.
    pub fn decode(
        ctx: &OpCtx,
        spatial: &[usize],
        kernel_from_weights: Option<&[usize]>,
    ) -> OpResult<WindowAttrs> {
        let n = spatial.len();
        let family = Family::of(&ctx.node.op_type);
        if let Family::Pool { dilations_since } = family {
            require_since(ctx, "ceil_mode", 10)?;
            require_since(ctx, "dilations", dilations_since)?;
            require_since(ctx, "count_include_pad", 7)?;
        }
        let kernel = kernel(ctx, n, kernel_from_weights)?;
        let strides = positive(ctx, "strides", n)?;
        let dilations = positive(ctx, "dilations", n)?;
        let auto_pad = AutoPad::decode(ctx)?;
        let explicit = explicit_pads(ctx, n)?;
        let pool = family != Family::Conv;
        let ceil_mode = pool && ctx.int("ceil_mode", 0)? != 0;
        let (mut pads, mut out) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for i in 0..n {
            let ek = dilated(kernel[i], dilations[i]);
            let (p, o) = match auto_pad {
                AutoPad::SameUpper | AutoPad::SameLower => {
                    same_axis(spatial[i], ek, strides[i], auto_pad)
                }
                // VALID: ceil((in - ek + 1) / s) = floor((in - ek) / s) + 1,
                // whatever ceil_mode says.
                AutoPad::Valid => (
                    (0, 0),
                    padded_axis_out(ctx, i, spatial[i], ek, strides[i], (0, 0), false)?,
                ),
                AutoPad::NotSet => (
                    explicit[i],
                    padded_axis_out(ctx, i, spatial[i], ek, strides[i], explicit[i], ceil_mode)?,
                ),
            };
            pads.push(p);
            out.push(o);
        }
        Ok(WindowAttrs {
            kernel,
            strides,
            dilations,
            auto_pad,
            pads,
            out,
            ceil_mode: ceil_mode && auto_pad != AutoPad::Valid,
            count_include_pad: pool && ctx.int("count_include_pad", 0)? != 0,
        })
    }

    /// The dilated kernel extent of spatial axis `i`.
    pub fn extent(&self, i: usize) -> usize {
        dilated(self.kernel[i], self.dilations[i])
    }

    pub fn begins(&self) -> Vec<i64> {
        self.pads.iter().map(|p| p.0).collect()
    }

    pub fn ends(&self) -> Vec<i64> {
        self.pads.iter().map(|p| p.1).collect()
    }

    /// Whether every axis has equal begin and end pads.
    pub fn symmetric(&self) -> bool {
        self.pads.iter().all(|&(b, e)| b == e)
    }
}

/// Conv / ConvTranspose `group` (>= 1).
pub fn group(ctx: &OpCtx) -> OpResult<usize> {
    let g = ctx.int("group", 1)?;
    usize::try_from(g)
        .ok()
        .filter(|&v| v >= 1)
        .ok_or_else(|| ctx.attr_error("group", format!("{g} must be >= 1")))
}

/// MaxPool `storage_order` (since 8): whether Indices are column-major.
pub fn column_major(ctx: &OpCtx) -> OpResult<bool> {
    require_since(ctx, "storage_order", 8)?;
    match ctx.int("storage_order", 0)? {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(ctx.attr_error("storage_order", format!("{v} must be 0 or 1"))),
    }
}

/// MaxPool/AveragePool's fingerprint space: `ceil_mode` (opset 10+),
/// AveragePool's `count_include_pad`, and the padding as a pseudo dim (the
/// model's `auto_pad`, its explicit `pads`, or `0`; candidates none and
/// SAME_*). `None` when the node does not decode.
pub fn pool_space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let shape = x.first().copied().flatten()?.shape();
    let w = WindowAttrs::decode(ctx, shape.get(2..)?, None).ok()?;
    let mut dims = Vec::new();
    if ctx.opset >= 10 {
        // The attribute as written (VALID ignores it, but a backend that
        // applies it under explicit zero pads is then `pads=0`).
        dims.push(bool_dim("ceil_mode", ctx.int("ceil_mode", 0).ok()? != 0));
    }
    if ctx.node.op_type == "AveragePool" {
        dims.push(bool_dim("count_include_pad", w.count_include_pad));
    }
    dims.push(Dim::new(
        "pads",
        Kind::Pseudo,
        pads_label(&w),
        &["0", "SAME_UPPER", "SAME_LOWER"],
    ));
    Some(Space {
        dims,
        relevant: always,
        apply: pool_apply,
        probes: pool_probes,
    })
}

/// Probes for a pool: the value probes, then every spatial length one and
/// two longer (ceil_mode and the SAME_* split only show where (in - k) is
/// not a multiple of the stride).
fn pool_probes(node: &Node, inputs: &[Option<&Tensor>]) -> Vec<Probe> {
    let mut probes = value_probes(node, inputs);
    let Some(shape) = inputs
        .first()
        .copied()
        .flatten()
        .map(|t| t.shape().to_vec())
    else {
        return probes;
    };
    for grow in [1, 2] {
        let mut longer = shape.clone();
        longer.iter_mut().skip(2).for_each(|l| *l += grow);
        probes.push(Probe {
            label: format!("spatial lengths {:?}", &longer[2.min(longer.len())..]),
            inputs: with_first(inputs, varied(&longer, 1.0)),
        });
    }
    probes
}

/// The model's padding as the `pads` dim spells it: the `auto_pad` value,
/// the explicit `pads` attribute (`[b1,b2,e1,e2]`) when any is non-zero, or `0`.
fn pads_label(w: &WindowAttrs) -> String {
    let explicit = || {
        let all: Vec<String> = w
            .begins()
            .into_iter()
            .chain(w.ends())
            .map(|v| v.to_string())
            .collect();
        format!("[{}]", all.join(","))
    };
    match w.auto_pad {
        AutoPad::SameUpper => "SAME_UPPER".into(),
        AutoPad::SameLower => "SAME_LOWER".into(),
        AutoPad::Valid => "VALID".into(),
        AutoPad::NotSet if w.pads.iter().any(|&(b, e)| b != 0 || e != 0) => explicit(),
        AutoPad::NotSet => "0".into(),
    }
}

/// The `pads` pseudo dim: drops the explicit `pads` and sets `auto_pad`.
fn pool_apply(
    dim: &str,
    value: &str,
    node: &mut Node,
    _: &[Option<&Tensor>],
    _: &[usize],
) -> Option<Vec<InputEdit>> {
    if dim != "pads" {
        return None;
    }
    node.attrs.remove("pads");
    let auto = match value {
        "0" => "NOTSET",
        "SAME_UPPER" | "SAME_LOWER" | "VALID" => value,
        _ => return None,
    };
    node.attrs
        .insert("auto_pad".into(), Attr::String(auto.into()));
    Some(Vec::new())
}

/// The decoded geometry of a ConvTranspose node over its spatial axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransposeAttrs {
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub auto_pad: AutoPad,
    pub output_padding: Vec<i64>,
    /// The full transposed length s·(in − 1) + output_padding + (k − 1)·d + 1.
    pub full: Vec<i64>,
    /// (begin, end) cropped from the full output per axis. Derived from
    /// `output_shape` or SAME_*, it may be negative (then the output is
    /// longer than the full result and pads the end with zeros).
    pub pads: Vec<(i64, i64)>,
    /// Output length per axis: full − begin − end (>= 1).
    pub out: Vec<usize>,
}

/// Splits ConvTranspose's `total_padding` into (begin, end) as the spec text
/// of each opset says. Opset 11+: SAME_UPPER → begin = total/2 (extra at the
/// end); otherwise (NOTSET with output_shape, SAME_LOWER) → begin = total -
/// total/2. Opset 1-10 reads the other way round: SAME_UPPER → begin = total -
/// total/2, otherwise begin = total/2. `/` floors (as the onnx reference), so
/// a negative total (output_shape larger than the full result) pads the end.
pub fn transpose_split(total: i64, auto: AutoPad, opset: u32) -> (i64, i64) {
    let half = total.div_euclid(2);
    let extra_at_end = if opset >= 11 {
        auto == AutoPad::SameUpper
    } else {
        auto != AutoPad::SameUpper
    };
    if extra_at_end {
        (half, total - half)
    } else {
        (total - half, half)
    }
}

/// `output_shape` (spatial; some exporters include N and C as well).
fn output_shape(ctx: &OpCtx, n: usize) -> OpResult<Option<Vec<i64>>> {
    match ctx.ints("output_shape")? {
        None => Ok(None),
        Some(v) if v.len() == n => Ok(Some(v)),
        Some(v) if v.len() == n + 2 => Ok(Some(v[2..].to_vec())),
        Some(v) => Err(ctx.attr_error(
            "output_shape",
            format!("has {} values, expected {n}", v.len()),
        )),
    }
}

impl TransposeAttrs {
    /// Decodes a ConvTranspose node over `spatial` input dims with W's
    /// spatial dims as `kernel`: output_shape (pads derived), SAME_* (output
    /// = in · stride, pads derived), or explicit pads.
    pub fn decode(
        ctx: &OpCtx,
        spatial: &[usize],
        kernel_from_weights: &[usize],
    ) -> OpResult<TransposeAttrs> {
        let n = spatial.len();
        let kernel = kernel(ctx, n, Some(kernel_from_weights))?;
        let strides = positive(ctx, "strides", n)?;
        let dilations = positive(ctx, "dilations", n)?;
        let auto_pad = AutoPad::decode(ctx)?;
        let output_padding = ctx.per_axis("output_padding", n, 0)?;
        let explicit = explicit_pads(ctx, n)?;
        let target = output_shape(ctx, n)?;
        let (mut full, mut pads, mut out) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let f = strides[i] as i64 * (spatial[i] as i64 - 1)
                + output_padding[i]
                + dilated(kernel[i], dilations[i]) as i64;
            let t = match (&target, auto_pad) {
                (Some(o), _) => Some(o[i]),
                (None, AutoPad::SameUpper | AutoPad::SameLower) => {
                    Some((spatial[i] * strides[i]) as i64)
                }
                _ => None,
            };
            let (p, o) = match (t, auto_pad) {
                (Some(t), _) => (transpose_split(f - t, auto_pad, ctx.opset), t),
                (None, AutoPad::Valid) => ((0, 0), f),
                (None, _) => (explicit[i], f - explicit[i].0 - explicit[i].1),
            };
            if o < 1 {
                return Err(ctx.fail(format!(
                    "spatial axis {i}: output length {o} < 1 (attributes `pads`/`output_shape`)"
                )));
            }
            full.push(f);
            pads.push(p);
            out.push(o as usize);
        }
        Ok(TransposeAttrs {
            kernel,
            strides,
            dilations,
            auto_pad,
            output_padding,
            full,
            pads,
            out,
        })
    }

    /// Whether every axis has equal begin and end crops.
    pub fn symmetric(&self) -> bool {
        self.pads.iter().all(|&(b, e)| b == e)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::test_node;

    /// Runs `f` with the context of a test node (shared by the op tests).
    pub(crate) fn with<R>(
        op: &str,
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        f: impl FnOnce(&OpCtx) -> R,
    ) -> R {
        let node = test_node(op, 2, 1, attrs);
        crate::op::with_node(&node, opset, f)
    }

    fn ints(v: &[i64]) -> Attr {
        Attr::Ints(v.to_vec())
    }

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
    }

    #[test]
    fn conv_explicit_pads_strides_dilations() {
        // in 5, k 2, d 2 (extent 3), s 2, pads (1, 0): (5 + 1 - 3) / 2 + 1 = 2.
        let a = vec![
            ("strides", ints(&[2])),
            ("dilations", ints(&[2])),
            ("pads", ints(&[1, 0])),
        ];
        let w = with("Conv", 13, a, |c| {
            WindowAttrs::decode(c, &[5], Some(&[2])).unwrap()
        });
        assert_eq!((w.extent(0), w.pads, w.out), (3, vec![(1, 0)], vec![2]));
    }

    #[test]
    fn same_upper_and_lower_put_the_odd_pixel_on_opposite_sides() {
        let up = with("Conv", 11, vec![("auto_pad", s("SAME_UPPER"))], |c| {
            WindowAttrs::decode(c, &[4], Some(&[2])).unwrap()
        });
        let lo = with("Conv", 11, vec![("auto_pad", s("SAME_LOWER"))], |c| {
            WindowAttrs::decode(c, &[4], Some(&[2])).unwrap()
        });
        assert_eq!((up.pads, up.out), (vec![(0, 1)], vec![4]));
        assert_eq!((lo.pads, lo.out), (vec![(1, 0)], vec![4]));
    }

    #[test]
    fn pool_ceil_mode_drops_a_window_starting_in_the_end_padding() {
        let a = |p: &[i64]| {
            vec![
                ("kernel_shape", ints(&[2])),
                ("strides", ints(&[2])),
                ("pads", ints(p)),
                ("ceil_mode", Attr::Int(1)),
            ]
        };
        // pads (1, 1): ceil((4 + 2 - 2) / 2) + 1 = 3, the third starts at 3 < 5: kept.
        assert_eq!(
            with("MaxPool", 12, a(&[1, 1]), |c| WindowAttrs::decode(
                c,
                &[4],
                None
            )
            .unwrap()
            .out),
            vec![3]
        );
        // pads (0, 1): 3 by the formula, but the third starts at 4 >= 4: dropped.
        assert_eq!(
            with("MaxPool", 12, a(&[0, 1]), |c| WindowAttrs::decode(
                c,
                &[4],
                None
            )
            .unwrap()
            .out),
            vec![2]
        );
    }

    #[test]
    fn valid_ignores_ceil_mode() {
        // The spec's VALID length ceil((in - ek + 1) / s): in 6, k 3, s 2
        // gives 2 windows (explicit zero pads with ceil_mode give 3), and
        // in 5, k 2, s 2 gives 2.
        let decode = |op: &str, auto_pad: Option<&str>, k: i64, len: usize| {
            let mut a = vec![
                ("kernel_shape", ints(&[k])),
                ("strides", ints(&[2])),
                ("ceil_mode", Attr::Int(1)),
            ];
            a.extend(auto_pad.map(|v| ("auto_pad", s(v))));
            with(op, 12, a, |c| WindowAttrs::decode(c, &[len], None).unwrap())
        };
        for op in ["MaxPool", "AveragePool"] {
            let w = decode(op, Some("VALID"), 3, 6);
            assert_eq!(
                (w.out.clone(), w.ceil_mode, w.pads),
                (vec![2], false, vec![(0, 0)])
            );
            assert_eq!(decode(op, Some("VALID"), 2, 5).out, vec![2]);
            let w = decode(op, None, 3, 6);
            assert_eq!((w.out, w.ceil_mode), (vec![3], true));
        }
    }

    #[test]
    fn bad_attributes_are_one_clear_error() {
        let err = |op: &str, opset, a, k: Option<&[usize]>| {
            with(op, opset, a, |c| {
                format!("{:?}", WindowAttrs::decode(c, &[4], k).unwrap_err())
            })
        };
        assert!(err("MaxPool", 12, vec![], None).contains("kernel_shape"));
        assert!(err("Conv", 13, vec![("strides", ints(&[0]))], Some(&[2])).contains("strides"));
        assert!(err("Conv", 13, vec![("pads", ints(&[1]))], Some(&[2])).contains("pads"));
        assert!(err("Conv", 13, vec![("pads", ints(&[-1, 0]))], Some(&[2])).contains("negative"));
        assert!(err("Conv", 13, vec![("auto_pad", s("SAME"))], Some(&[2])).contains("auto_pad"));
        assert!(
            err("Conv", 13, vec![("kernel_shape", ints(&[3]))], Some(&[2]))
                .contains("kernel_shape")
        );
        let dil = vec![("kernel_shape", ints(&[2])), ("dilations", ints(&[2]))];
        assert!(err("AveragePool", 18, dil.clone(), None).contains("opset 19"));
        assert!(with("AveragePool", 19, dil, |c| WindowAttrs::decode(
            c,
            &[4],
            None
        ))
        .is_ok());
        assert!(with("Conv", 13, vec![("group", Attr::Int(0))], |c| format!(
            "{:?}",
            group(c).unwrap_err()
        ))
        .contains("group"));
        assert!(with(
            "MaxPool",
            12,
            vec![("storage_order", Attr::Int(2))],
            |c| column_major(c).is_err()
        ));
    }

    #[test]
    fn count_include_pad_is_a_pool_attribute() {
        let a = vec![
            ("kernel_shape", ints(&[2])),
            ("count_include_pad", Attr::Int(1)),
        ];
        assert!(with("AveragePool", 11, a.clone(), |c| WindowAttrs::decode(
            c,
            &[4],
            None
        )
        .unwrap()
        .count_include_pad));
        assert!(with("AveragePool", 6, a, |c| WindowAttrs::decode(c, &[4], None)).is_err());
    }

    #[test]
    fn pool_space_reads_the_decoded_window() {
        let x = Tensor::F32(ndarray::ArrayD::zeros(ndarray::IxDyn(&[1, 1, 5, 5])));
        let space = |opset, a: Vec<(&str, Attr)>| {
            let mut a = a;
            a.push(("kernel_shape", ints(&[3, 3])));
            with("AveragePool", opset, a, |c| pool_space(c, &[Some(&x)]))
        };
        let sp = space(19, vec![("pads", ints(&[1, 0, 1, 0]))]).unwrap();
        let names: Vec<&str> = sp.dims.iter().map(|d| d.name).collect();
        assert_eq!(names, vec!["ceil_mode", "count_include_pad", "pads"]);
        assert_eq!(
            sp.dims[2].values,
            vec!["[1,0,1,0]", "0", "SAME_UPPER", "SAME_LOWER"]
        );
        let sp = space(7, vec![("auto_pad", s("SAME_LOWER"))]).unwrap();
        assert_eq!(sp.dims.len(), 2);
        assert_eq!(sp.dims[1].model, "SAME_LOWER");
        // A mistyped attribute is a decode error: no space.
        assert!(space(19, vec![("ceil_mode", s("1"))]).is_none());
    }

    #[test]
    fn transpose_output_padding_output_shape_and_same() {
        // in 3, k 3, s 2: full 7; output_padding 1: 8.
        let t = with(
            "ConvTranspose",
            13,
            vec![("strides", ints(&[2])), ("output_padding", ints(&[1]))],
            |c| TransposeAttrs::decode(c, &[3], &[3]).unwrap(),
        );
        assert_eq!((t.full, t.out, t.pads), (vec![8], vec![8], vec![(0, 0)]));
        // output_shape 4 (NOTSET): total 3, opset 13 puts the odd pixel at the
        // beginning, opset 1-10 at the end.
        let a = vec![("strides", ints(&[2])), ("output_shape", ints(&[1, 1, 4]))];
        let t13 = with("ConvTranspose", 13, a.clone(), |c| {
            TransposeAttrs::decode(c, &[3], &[3]).unwrap()
        });
        let t10 = with("ConvTranspose", 10, a, |c| {
            TransposeAttrs::decode(c, &[3], &[3]).unwrap()
        });
        assert_eq!((t13.pads, t13.out), (vec![(2, 1)], vec![4]));
        assert_eq!((t10.pads, t10.out), (vec![(1, 2)], vec![4]));
        // SAME_UPPER: output in · s = 6, total 1 at the end.
        let t = with(
            "ConvTranspose",
            13,
            vec![("strides", ints(&[2])), ("auto_pad", s("SAME_UPPER"))],
            |c| TransposeAttrs::decode(c, &[3], &[3]).unwrap(),
        );
        assert_eq!((t.pads, t.out), (vec![(0, 1)], vec![6]));
        // An output_shape beyond the full output gives a negative crop.
        let t = with(
            "ConvTranspose",
            13,
            vec![("output_shape", ints(&[6]))],
            |c| TransposeAttrs::decode(c, &[3], &[3]).unwrap(),
        );
        assert_eq!(t.pads, vec![(0, -1)]);
        assert_eq!(transpose_split(3, AutoPad::SameUpper, 11), (1, 2));
        assert_eq!(transpose_split(3, AutoPad::SameUpper, 10), (2, 1));
    }
}
