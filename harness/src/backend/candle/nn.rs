//! candle lowerings: Conv, ConvTranspose, MaxPool, AveragePool,
//! GlobalAveragePool, BatchNormalization, LayerNormalization.
//!
//! candle's convolutions take one scalar padding/stride/dilation for all
//! spatial axes and its pools have no padding and floor rounding only
//! (averages divide by kh·kw). Where ONNX asks for more, the input is
//! padded explicitly first (zeros for conv/avg, -inf for max) and the
//! lowering is reported as composed.

use crate::op::norm::{BatchNormAttrs, LayerNormAttrs};
use candle_core::{DType as CDType, Tensor};

use super::{full, pad_const, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::window::{self, TransposeAttrs, WindowAttrs};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "Conv",
        conv,
        "https://onnx.ai/onnx/operators/onnx__Conv.html",
        cov![
            "1-D/2-D, symmetric pads equal on all axes, no bias" => Native("conv1d | conv2d"),
            "with bias" => Composed("conv2d, broadcast_add"),
            "asymmetric or per-axis pads, auto_pad SAME_*" => Composed("pad_with_zeros, conv2d"),
            "strides that differ per axis" => Composed("conv2d at stride 1, index_select every s-th row and column"),
            "dilations that differ per axis" => Composed("zero-dilated kernel (cat zeros, reshape, narrow), conv2d"),
            "3-D" => Unsupported("kernel_shape: no conv3d"),
        ],
    );
    r.op(
        "ConvTranspose",
        conv_transpose,
        "https://onnx.ai/onnx/operators/onnx__ConvTranspose.html",
        cov![
            "1-D/2-D, symmetric pads and output_padding equal on all axes, no bias" => Native("conv_transpose1d | conv_transpose2d"),
            "2-D with group > 1" => Composed("chunk, conv_transpose2d, cat"),
            "asymmetric pads, output_shape, auto_pad" => Composed("conv_transpose2d, pad_with_zeros, narrow"),
            "with bias" => Composed("conv_transpose2d, broadcast_add"),
            "strides or dilations that differ per axis" => Unsupported("strides/dilations: candle takes one value"),
        ],
    );
    r.op(
        "MaxPool",
        max_pool,
        "https://onnx.ai/onnx/operators/onnx__MaxPool.html",
        cov![
            "2-D, no pads, ceil_mode=0" => Native("max_pool2d_with_stride"),
            "pads / auto_pad / ceil_mode=1 / 1-D" => Composed("pad(-inf), max_pool2d_with_stride"),
            "dilations != 1" => Unsupported("dilations: candle pools have none"),
            "Indices output" => Unsupported("Indices: candle returns no argmax"),
        ],
    );
    r.op(
        "AveragePool",
        avg_pool,
        "https://onnx.ai/onnx/operators/onnx__AveragePool.html",
        cov![
            "2-D, no pads, ceil_mode=0" => Native("avg_pool2d_with_stride"),
            "pads with count_include_pad=1, ceil_mode=0" => Composed("pad_with_zeros, avg_pool2d_with_stride"),
            "count_include_pad=0 with pads, or ceil_mode=1" => Composed("pad_with_zeros, avg_pool2d_with_stride, ones-mask divisor"),
            "dilations != 1" => Unsupported("dilations: candle pools have none"),
        ],
    );
    r.op(
        "GlobalAveragePool",
        global_avg_pool,
        "https://onnx.ai/onnx/operators/onnx__GlobalAveragePool.html",
        cov!["all" => Native("mean_keepdim")],
    );
    r.op(
        "BatchNormalization",
        batch_norm,
        "https://onnx.ai/onnx/operators/onnx__BatchNormalization.html",
        cov![
            "inference, parameters in the input dtype" => Native("candle_nn::BatchNorm::forward_t(train=false)"),
            "parameters of another dtype" => Composed("to_dtype, candle_nn::BatchNorm"),
            "training_mode=1 (running statistics from the module's updated copies)" => Native("candle_nn::BatchNorm::forward_t(train=true, momentum=1-m)"),
            "spatial=0 / statistics outputs outside training" => Unsupported("spatial / outputs"),
        ],
    );
    r.range("LayerNormalization", 17, u32::MAX, layer_norm, "https://onnx.ai/onnx/operators/onnx__LayerNormalization.html", cov![
            "axis = last, 1-D scale/bias (one-pass E[x²]-E[x]² variance in f32)" => Native("candle_nn::ops::layer_norm"),
            "other axis or broadcast scale" => Composed("reshape, candle_nn::ops::layer_norm, reshape"),
            "Mean / InvStdDev outputs" => Unsupported("Mean/InvStdDev: the fused kernel returns no statistics"),
            "stash_type=0 for non-f32 input" => Unsupported("stash_type: candle computes in f32"),
        ]);
}

/// (begin, end) pads per spatial axis in candle's usize.
type Pads = Vec<(usize, usize)>;

/// Decoded (non-negative) pads as candle's usize.
fn upads(pads: &[(i64, i64)]) -> Pads {
    pads.iter()
        .map(|&(b, e)| (b as usize, e as usize))
        .collect()
}

/// The single value of a per-axis list, or unsupported naming `attr`.
fn one(ctx: &OpCtx, attr: &str, v: &[usize]) -> OpResult<usize> {
    match v.first() {
        Some(&x) if v.iter().all(|&y| y == x) => Ok(x),
        None => Ok(1),
        _ => Err(ctx.unsupported(
            attr,
            format!("{v:?} differs per axis; candle takes one value for all axes"),
        )),
    }
}

/// Pads the spatial axes (2..) of `x` with `value`.
fn pad_spatial(x: &Tensor, pads: &[(usize, usize)], value: f64) -> OpResult<Tensor> {
    let mut y = x.clone();
    for (i, &(b, e)) in pads.iter().enumerate() {
        y = pad_const(&y, i + 2, b, e, value)?;
    }
    Ok(y)
}

fn add_bias(y: Tensor, b: Option<&Tensor>, ops: &mut Vec<&'static str>) -> OpResult<Tensor> {
    let Some(b) = b else { return Ok(y) };
    let mut shape = vec![1; y.rank()];
    shape[1] = b.elem_count();
    ops.push("broadcast_add");
    y.broadcast_add(&b.reshape(shape).ce()?).ce()
}

fn how(ops: &[&str]) -> How {
    if ops.len() == 1 {
        How::native(ops[0])
    } else {
        How::composed(ops.join(", "))
    }
}

/// Conv-1/11/22: cross-correlation with groups, per-edge pads, auto_pad.
pub(super) fn conv(ctx: &OpCtx, x: &In) -> Out {
    let (a, w) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let bias = x.get(2).copied().flatten();
    let r = a.rank();
    if !(3..=4).contains(&r) {
        return Err(ctx.unsupported(
            "kernel_shape",
            format!(
                "{}-D convolution: candle has conv1d/conv2d only",
                r.saturating_sub(2)
            ),
        ));
    }
    let g = WindowAttrs::decode(ctx, &a.dims()[2..], Some(&w.dims()[2..]))?;
    let mut ops = Vec::new();
    // candle takes one stride and one dilation for all axes: per-axis ones
    // are composed (a stride-1 convolution subsampled; a kernel with the
    // dilation's zeros written in), exact rewrites of the same sum.
    let per_axis_stride = one(ctx, "strides", &g.strides).is_err();
    let stride = if per_axis_stride {
        1
    } else {
        one(ctx, "strides", &g.strides)?
    };
    let (w, dilation) = match one(ctx, "dilations", &g.dilations) {
        Ok(d) => (w.clone(), d),
        Err(_) => {
            ops.push("zero-dilated kernel");
            (dilate_kernel(w, &g.dilations)?, 1)
        }
    };
    let w = &w;
    let groups = window::group(ctx)?;
    let pads = upads(&g.pads);
    let symmetric = pads.iter().all(|&(b, e)| b == e && b == pads[0].0);
    let (input, padding) = if symmetric {
        (a.clone(), pads[0].0)
    } else {
        ops.push("pad_with_zeros");
        (pad_spatial(a, &pads, 0.0)?, 0)
    };
    let (input, w) = (input.contiguous().ce()?, w.contiguous().ce()?);
    let y = if r == 3 {
        ops.push("conv1d");
        input.conv1d(&w, padding, stride, dilation, groups).ce()?
    } else {
        ops.push("conv2d");
        input.conv2d(&w, padding, stride, dilation, groups).ce()?
    };
    let y = if per_axis_stride {
        ops.push("index_select every s-th");
        subsample(&y, &g.strides)?
    } else {
        y
    };
    let y = add_bias(y, bias, &mut ops)?;
    Ok(Lowered::one(y, how(&ops)))
}

/// `w` (O, I/g, k...) with `d − 1` zeros written between taps on each
/// spatial axis: size `(k − 1)·d + 1`, the kernel a dilation `d` applies.
fn dilate_kernel(w: &Tensor, dilations: &[usize]) -> OpResult<Tensor> {
    let mut w = w.clone();
    for (i, &d) in dilations.iter().enumerate() {
        let axis = 2 + i;
        let k = w.dims()[axis];
        if d <= 1 || k <= 1 {
            continue;
        }
        // (.., k, ..) → (.., k, d, ..) with zeros after each tap → (.., k·d, ..).
        let tap = w.unsqueeze(axis + 1).ce()?;
        let mut zeros_shape = tap.dims().to_vec();
        zeros_shape[axis + 1] = d - 1;
        let zeros = Tensor::zeros(zeros_shape, w.dtype(), w.device()).ce()?;
        let mut merged = w.dims().to_vec();
        merged[axis] = k * d;
        w = Tensor::cat(&[&tap, &zeros], axis + 1)
            .ce()?
            .reshape(merged)
            .ce()?
            .narrow(axis, 0, (k - 1) * d + 1)
            .ce()?;
    }
    w.contiguous().ce()
}

/// Every `s`-th position of each spatial axis of a stride-1 result: the
/// positions a stride `s` convolution evaluates.
fn subsample(y: &Tensor, strides: &[usize]) -> OpResult<Tensor> {
    let mut y = y.clone();
    for (i, &s) in strides.iter().enumerate() {
        let axis = 2 + i;
        let n = y.dims()[axis];
        if s <= 1 || n == 0 {
            continue;
        }
        let keep: Vec<u32> = (0..n as u32).step_by(s).collect();
        let ids = Tensor::from_vec(keep, (n - 1) / s + 1, y.device()).ce()?;
        y = y.index_select(&ids, axis).ce()?;
    }
    Ok(y)
}

/// The decoded crops and output_padding as candle's usize; a negative crop
/// (output_shape beyond the full output) has no candle lowering.
fn transpose_pads(ctx: &OpCtx, t: &TransposeAttrs) -> OpResult<(Pads, Vec<usize>)> {
    if t.pads.iter().any(|&(b, e)| b < 0 || e < 0) {
        return Err(ctx.unsupported(
            "output_shape",
            format!("{:?} is larger than the full output", t.out),
        ));
    }
    let out_pad = t.output_padding.iter().map(|&o| {
        usize::try_from(o).map_err(|_| ctx.attr_error("output_padding", format!("{o} is negative")))
    });
    Ok((upads(&t.pads), out_pad.collect::<OpResult<_>>()?))
}

/// ConvTranspose-1/11/22: out = s·(in-1) + output_padding + (k-1)·d + 1 - pads.
fn conv_transpose(ctx: &OpCtx, x: &In) -> Out {
    let (a, w) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let bias = x.get(2).copied().flatten();
    let r = a.rank();
    if !(3..=4).contains(&r) {
        return Err(ctx.unsupported(
            "kernel_shape",
            format!("{}-D transposed convolution", r.saturating_sub(2)),
        ));
    }
    let n = r - 2;
    let t = TransposeAttrs::decode(ctx, &a.dims()[2..], &w.dims()[2..])?;
    let stride = one(ctx, "strides", &t.strides)?;
    let dilation = one(ctx, "dilations", &t.dilations)?;
    let groups = window::group(ctx)?;
    let (pads, out_pad) = transpose_pads(ctx, &t)?;
    let symmetric = t.symmetric()
        && pads.iter().all(|&(b, _)| b == pads[0].0)
        && out_pad.iter().all(|&o| o == out_pad[0])
        && out_pad[0] < stride.max(dilation);
    let (padding, opad) = if symmetric {
        (pads[0].0, out_pad[0])
    } else {
        (0, 0)
    };
    let (a, w) = (a.contiguous().ce()?, w.contiguous().ce()?);
    let mut ops = Vec::new();
    let mut y = if r == 3 {
        ops.push("conv_transpose1d");
        a.conv_transpose1d(&w, padding, opad, stride, dilation, groups)
            .ce()?
    } else if groups == 1 {
        ops.push("conv_transpose2d");
        a.conv_transpose2d(&w, padding, opad, stride, dilation)
            .ce()?
    } else {
        ops.extend(["chunk", "conv_transpose2d", "cat"]);
        let xs = a.chunk(groups, 1).ce()?;
        let ws = w.chunk(groups, 0).ce()?;
        let parts = xs
            .iter()
            .zip(&ws)
            .map(|(xi, wi)| xi.conv_transpose2d(wi, padding, opad, stride, dilation))
            .collect::<candle_core::Result<Vec<_>>>()
            .ce()?;
        Tensor::cat(&parts, 1).ce()?
    };
    if !symmetric {
        ops.extend(["pad_with_zeros", "narrow"]);
        for i in 0..n {
            y = y
                .pad_with_zeros(i + 2, 0, out_pad[i])
                .and_then(|y| y.narrow(i + 2, pads[i].0, t.out[i]))
                .ce()?;
        }
    }
    let y = add_bias(y, bias, &mut ops)?;
    Ok(Lowered::one(y, how(&ops)))
}

/// Extra end padding so that candle's floor rounding yields the decoded
/// output length (ceil_mode; 0 otherwise).
fn ceil_extra(g: &WindowAttrs, len: usize, i: usize) -> usize {
    let (b, e) = (g.pads[i].0 as usize, g.pads[i].1 as usize);
    ((g.out[i] - 1) * g.strides[i] + g.kernel[i]).saturating_sub(len + b + e)
}

/// Shared pool preparation: 1-D pools run as 2-D with a unit first axis.
struct Pool {
    x: Tensor,
    kernel: (usize, usize),
    strides: (usize, usize),
    pads: Vec<(usize, usize)>,
    extra: Vec<usize>,
    one_d: bool,
    include_pad: bool,
}

impl Pool {
    /// The lowered result: a 1-D pool drops the unit axis it ran with.
    fn finish(&self, y: Tensor, mut ops: Vec<&str>) -> Out {
        if !self.one_d {
            return Ok(Lowered::one(y, how(&ops)));
        }
        ops.insert(0, "unsqueeze");
        Ok(Lowered::one(y.squeeze(2).ce()?, how(&ops)))
    }

    /// Explicit pads plus the ceil_mode extra at the end, per axis.
    fn total(&self) -> Pads {
        let extra = self.pads.iter().zip(&self.extra);
        extra.map(|(&(b, e), &x)| (b, e + x)).collect()
    }
}

fn pool_setup(ctx: &OpCtx, a: &Tensor) -> OpResult<Pool> {
    let r = a.rank();
    if !(3..=4).contains(&r) {
        return Err(ctx.unsupported(
            "kernel_shape",
            format!("{}-D pooling: candle pools are 2-D", r.saturating_sub(2)),
        ));
    }
    let g = WindowAttrs::decode(ctx, &a.dims()[2..], None)?;
    if g.dilations.iter().any(|&d| d != 1) {
        return Err(ctx.unsupported(
            "dilations",
            format!("{:?}: candle pools have no dilation", g.dilations),
        ));
    }
    let spatial = &a.dims()[2..];
    let extra: Vec<usize> = (0..spatial.len())
        .map(|i| ceil_extra(&g, spatial[i], i))
        .collect();
    let pads = upads(&g.pads);
    let one_d = r == 3;
    let (x, kernel, strides, pads, extra) = if one_d {
        (
            a.unsqueeze(2).ce()?,
            (1, g.kernel[0]),
            (1, g.strides[0]),
            vec![(0, 0), pads[0]],
            vec![0, extra[0]],
        )
    } else {
        (
            a.clone(),
            (g.kernel[0], g.kernel[1]),
            (g.strides[0], g.strides[1]),
            pads,
            extra,
        )
    };
    Ok(Pool {
        x,
        kernel,
        strides,
        pads,
        extra,
        one_d,
        include_pad: g.count_include_pad,
    })
}

/// MaxPool-8/10/11/12/22: padding counts as -inf; ceil_mode; no dilations here.
fn max_pool(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    if ctx.wants_output(1) {
        return Err(ctx.unsupported("Indices", "candle's max pool returns no indices"));
    }
    let p = pool_setup(ctx, a)?;
    let mut ops = Vec::new();
    let total = p.total();
    let mut input = p.x.clone();
    if total.iter().any(|&(b, e)| b + e > 0) {
        ops.push("pad(-inf)");
        input = pad_spatial(&input, &total, f64::NEG_INFINITY)?;
    }
    ops.push("max_pool2d_with_stride");
    let y = input
        .contiguous()
        .and_then(|t| t.max_pool2d_with_stride(p.kernel, p.strides))
        .ce()?;
    p.finish(y, ops)
}

/// AveragePool-7/10/11/19/22: count_include_pad (default 0) and ceil_mode.
/// candle always divides by kh·kw, so other divisors come from pooling a
/// ones mask that marks the cells ONNX counts.
fn avg_pool(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let p = pool_setup(ctx, a)?;
    let include_pad = p.include_pad;
    let has_pads = p.pads.iter().any(|&(b, e)| b + e > 0);
    let has_extra = p.extra.iter().any(|&e| e > 0);
    let total = p.total();
    let mut ops = Vec::new();
    let input = if has_pads || has_extra {
        ops.push("pad_with_zeros");
        pad_spatial(&p.x, &total, 0.0)?
    } else {
        p.x.clone()
    };
    ops.push("avg_pool2d_with_stride");
    let mut y = input
        .contiguous()
        .and_then(|t| t.avg_pool2d_with_stride(p.kernel, p.strides))
        .ce()?;
    if has_extra || (has_pads && !include_pad) {
        // Mask of counted cells: the input (+ explicit pads if count_include_pad).
        let dims = p.x.dims();
        let (h, w) = (dims[2], dims[3]);
        let mask = full(1.0, &[1, 1, h, w], a.dtype(), a.device())?;
        let counted: Vec<(usize, usize)> = if include_pad {
            p.pads.clone()
        } else {
            vec![(0, 0); 2]
        };
        let mask = pad_spatial(&mask, &counted, 1.0)?;
        let rest: Vec<(usize, usize)> = (0..2)
            .map(|i| (total[i].0 - counted[i].0, total[i].1 - counted[i].1))
            .collect();
        let mask = pad_spatial(&mask, &rest, 0.0)?;
        let div = mask.avg_pool2d_with_stride(p.kernel, p.strides).ce()?;
        y = y.broadcast_div(&div).ce()?;
        ops.push("ones-mask divisor");
    }
    p.finish(y, ops)
}

/// GlobalAveragePool-1/22: mean over all spatial axes, kept.
fn global_avg_pool(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let axes: Vec<usize> = (2..a.rank()).collect();
    Ok(Lowered::one(
        a.mean_keepdim(axes).ce()?,
        How::native("mean_keepdim"),
    ))
}

/// BatchNormalization-7/9/14/15: (x-mean)/sqrt(var+eps)·scale + B with the
/// given statistics (inference) or the batch's (training_mode=1).
fn batch_norm(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let bn = BatchNormAttrs::decode(ctx)?;
    if bn.per_activation {
        return Err(ctx.unsupported("spatial", "0: per-activation statistics"));
    }
    if bn.wants_statistics && !bn.training {
        return Err(ctx.unsupported("training_mode", "statistics outputs are training-only"));
    }
    let mut cast = false;
    let mut get = |i: usize| -> OpResult<Tensor> {
        let t = ctx.input(x, i)?;
        if t.dtype() == a.dtype() {
            Ok(t.flatten_all().ce()?)
        } else {
            cast = true;
            t.flatten_all().and_then(|t| t.to_dtype(a.dtype())).ce()
        }
    };
    let (scale, bias, mean, var) = (get(1)?, get(2)?, get(3)?, get(4)?);
    let c = *a
        .dims()
        .get(1)
        .ok_or_else(|| ctx.fail("input needs a channel axis"))?;
    // candle weighs the batch statistic by its momentum, ONNX the running one.
    let module = candle_nn::BatchNorm::new_with_momentum(
        c,
        mean,
        var,
        scale,
        bias,
        bn.epsilon,
        1.0 - bn.momentum,
    )
    .ce()?;
    let y = candle_nn::ModuleT::forward_t(&module, a, bn.training).ce()?;
    let native = if bn.training {
        "candle_nn::BatchNorm::forward_t(train=true, momentum=1-m)"
    } else {
        "candle_nn::BatchNorm::forward_t(train=false)"
    };
    let how = if cast {
        How::composed(format!("to_dtype, {native}"))
    } else {
        How::native(native)
    };
    if !bn.wants_statistics {
        return Ok(Lowered::one(y, how));
    }
    let stats = [module.running_mean(), module.running_var()];
    let stats: Vec<Tensor> = stats
        .iter()
        .map(|t| t.to_dtype(a.dtype()))
        .collect::<Result<_, _>>()
        .ce()?;
    Ok(Lowered::many([vec![y], stats].concat(), how))
}

/// LayerNormalization-17: normalizes axes [axis, r) (default -1).
fn layer_norm(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let ln = LayerNormAttrs::decode(ctx, a.rank())?;
    if ln.wants_statistics {
        return Err(ctx.unsupported(
            "Mean/InvStdDev",
            "candle's fused layer_norm returns no statistics",
        ));
    }
    if ln.stash_type != 1 && a.dtype() != CDType::F32 {
        return Err(ctx.unsupported(
            "stash_type",
            "0 asks for input-precision statistics; candle computes in f32",
        ));
    }
    let r = a.rank();
    let ax = ln.axis;
    let norm_dims = a.dims()[ax..].to_vec();
    let inner: usize = norm_dims.iter().product();
    let outer = a.elem_count() / inner.max(1);
    let eps = ln.epsilon as f32;
    let mut composed = ax + 1 != r;
    let mut param = |t: &Tensor| -> OpResult<Tensor> {
        if t.elem_count() == inner && t.rank() <= 1 {
            return t.reshape(inner).ce();
        }
        composed = true;
        t.broadcast_as(norm_dims.as_slice())
            .and_then(|t| t.contiguous())
            .and_then(|t| t.reshape(inner))
            .ce()
    };
    let scale = param(ctx.input(x, 1)?)?;
    let bias = match x.get(2).copied().flatten() {
        Some(b) => param(b)?,
        None => Tensor::zeros(inner, a.dtype(), a.device()).ce()?,
    };
    let flat = a
        .reshape((outer, inner))
        .and_then(|t| t.contiguous())
        .ce()?;
    let y = candle_nn::ops::layer_norm(&flat, &scale, &bias, eps)
        .and_then(|t| t.reshape(a.dims()))
        .ce()?;
    let how = if composed {
        How::composed("reshape, candle_nn::ops::layer_norm, reshape")
    } else {
        How::native("candle_nn::ops::layer_norm")
    };
    Ok(Lowered::one(y, how))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    fn ints(v: &[i64]) -> Attr {
        Attr::Ints(v.to_vec())
    }

    #[test]
    fn max_pool_pads_with_minus_infinity() {
        // All-negative 2x2 input, k2 s1 pads 1: every window holds its true max.
        let x = f32t(&[1, 1, 2, 2], &[-1.0, -2.0, -3.0, -4.0]);
        let n = node(
            "MaxPool",
            1,
            1,
            vec![
                ("kernel_shape", ints(&[2, 2])),
                ("pads", ints(&[1, 1, 1, 1])),
            ],
        );
        let (v, dims, how) = run1(&n, 13, &[Some(&x)]);
        assert_eq!(dims, vec![1, 1, 3, 3]);
        assert_eq!(
            v,
            vec![-1.0, -1.0, -2.0, -1.0, -1.0, -2.0, -3.0, -3.0, -4.0]
        );
        assert_eq!(how, "composed: pad(-inf), max_pool2d_with_stride");
    }

    #[test]
    fn avg_pool_corner_excludes_pads() {
        // 3x3 ones·k, k3 s1 pads 1, count_include_pad=0: corner = mean of 4 valid cells.
        let x = f32t(
            &[1, 1, 3, 3],
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
        );
        let n = node(
            "AveragePool",
            1,
            1,
            vec![
                ("kernel_shape", ints(&[3, 3])),
                ("pads", ints(&[1, 1, 1, 1])),
            ],
        );
        let (v, dims, how) = run1(&n, 13, &[Some(&x)]);
        assert_eq!(dims, vec![1, 1, 3, 3]);
        close(&v[..1], &[(1.0 + 2.0 + 4.0 + 5.0) / 4.0], 1e-6);
        close(&v[4..5], &[5.0], 1e-6);
        assert!(how.contains("ones-mask divisor"), "{how}");
        // count_include_pad=1: the corner divides by 9.
        let n = node(
            "AveragePool",
            1,
            1,
            vec![
                ("kernel_shape", ints(&[3, 3])),
                ("pads", ints(&[1, 1, 1, 1])),
                ("count_include_pad", Attr::Int(1)),
            ],
        );
        let (v, _, how) = run1(&n, 13, &[Some(&x)]);
        close(&v[..1], &[12.0 / 9.0], 1e-6);
        assert_eq!(how, "composed: pad_with_zeros, avg_pool2d_with_stride");
    }

    #[test]
    fn avg_pool_ceil_mode_clips_divisor() {
        // 5x5 ones, k2 s2 p1, ceil_mode, count_include_pad=1 -> first row [.25, .5, .5].
        let x = f32t(&[1, 1, 5, 5], &[1.0; 25]);
        let n = node(
            "AveragePool",
            1,
            1,
            vec![
                ("kernel_shape", ints(&[2, 2])),
                ("strides", ints(&[2, 2])),
                ("pads", ints(&[1, 1, 1, 1])),
                ("ceil_mode", Attr::Int(1)),
                ("count_include_pad", Attr::Int(1)),
            ],
        );
        let (v, dims, _) = run1(&n, 13, &[Some(&x)]);
        assert_eq!(dims, vec![1, 1, 3, 3]);
        close(&v[..3], &[0.25, 0.5, 0.5], 1e-6);
        // 4x4 arange, k3 s2, ceil_mode: the second window sees 2 columns (divisor 6).
        let v: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let x = f32t(&[1, 1, 4, 4], &v);
        let n = node(
            "AveragePool",
            1,
            1,
            vec![
                ("kernel_shape", ints(&[3, 3])),
                ("strides", ints(&[2, 2])),
                ("ceil_mode", Attr::Int(1)),
            ],
        );
        let (v, dims, how) = run1(&n, 13, &[Some(&x)]);
        assert_eq!(dims, vec![1, 1, 2, 2]);
        close(&v, &[5.0, 6.5, 11.0, 12.5], 1e-5);
        assert!(how.contains("ones-mask divisor"), "{how}");
    }

    #[test]
    fn conv_asymmetric_pads_are_composed() {
        // 1x1x3 signal [1,2,3], kernel [1,1], pads (begin 1, end 0).
        let x = f32t(&[1, 1, 3], &[1.0, 2.0, 3.0]);
        let w = f32t(&[1, 1, 2], &[1.0, 1.0]);
        let n = node("Conv", 2, 1, vec![("pads", ints(&[1, 0]))]);
        let (v, dims, how) = run1(&n, 13, &[Some(&x), Some(&w)]);
        assert_eq!(dims, vec![1, 1, 3]);
        assert_eq!(v, vec![1.0, 3.0, 5.0]);
        assert_eq!(how, "composed: pad_with_zeros, conv1d");
        // 2-D, pads (top 0, left 1, bottom 1, right 0) with bias.
        let x = f32t(&[1, 1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let w = f32t(&[1, 1, 2, 2], &[1.0, 0.0, 0.0, 0.0]);
        let b = f32t(&[1], &[0.5]);
        let n = node("Conv", 3, 1, vec![("pads", ints(&[0, 1, 1, 0]))]);
        let (v, dims, how) = run1(&n, 13, &[Some(&x), Some(&w), Some(&b)]);
        assert_eq!(dims, vec![1, 1, 2, 2]);
        // The top-left tap reads x[i][j-1]: [[0,1],[0,3]] + 0.5.
        assert_eq!(v, vec![0.5, 1.5, 0.5, 3.5]);
        assert_eq!(how, "composed: pad_with_zeros, conv2d, broadcast_add");
    }

    #[test]
    fn conv_per_axis_strides_and_dilations_are_composed_exactly() {
        // A ramp image, a 2x3 kernel, strides (2, 1), dilations (1, 2) and
        // asymmetric pads, against the float64 reference on the same values.
        use crate::backend::reference::{run_op as ref_op, RefTensor};
        use crate::tensor::{DType, Tensor as Host};
        use candle_core::Tensor;
        let xv: Vec<f32> = (0..70).map(|i| (i as f32 * 0.37).sin()).collect();
        let wv: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
        let (x, w) = (f32t(&[1, 2, 5, 7], &xv), f32t(&[2, 1, 2, 3], &wv));
        let attrs = vec![
            ("strides", ints(&[2, 1])),
            ("dilations", ints(&[1, 2])),
            ("pads", ints(&[1, 0, 0, 2])),
            ("group", Attr::Int(2)),
        ];
        let n = node("Conv", 2, 1, attrs);
        let (v, dims, how) = run1(&n, 13, &[Some(&x), Some(&w)]);
        assert_eq!(
            how,
            "composed: zero-dilated kernel, pad_with_zeros, conv2d, index_select every s-th"
        );
        let host = |t: &Tensor| {
            let v: Vec<f64> = t
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .iter()
                .map(|&f| f as f64)
                .collect();
            RefTensor::from_host(&Host::from_f64(DType::F32, t.dims(), &v))
        };
        let want = ref_op(&n, 13, &[Some(&host(&x)), Some(&host(&w))]).unwrap();
        let want = want[0].as_ref().unwrap();
        assert_eq!(dims, want.data.shape());
        let want: Vec<f32> = want.data.to_f64_vec().iter().map(|&f| f as f32).collect();
        close(&v, &want, 1e-5);
    }

    #[test]
    fn conv_transpose_asymmetric_pads() {
        // in [1,2], k [1,1], s 2 -> full [1,1,2,2]; pads (1,0) -> [1,2,2].
        let x = f32t(&[1, 1, 2], &[1.0, 2.0]);
        let w = f32t(&[1, 1, 2], &[1.0, 1.0]);
        let n = node(
            "ConvTranspose",
            2,
            1,
            vec![("strides", ints(&[2])), ("pads", ints(&[1, 0]))],
        );
        let (v, _, how) = run1(&n, 13, &[Some(&x), Some(&w)]);
        assert_eq!(v, vec![1.0, 2.0, 2.0]);
        assert!(how.starts_with("composed"), "{how}");
    }

    #[test]
    fn layer_norm_over_two_axes() {
        let x = f32t(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let s = f32t(&[2, 2], &[1.0; 4]);
        let n = node(
            "LayerNormalization",
            2,
            1,
            vec![("axis", Attr::Int(1)), ("epsilon", Attr::Float(0.0))],
        );
        let (v, _, how) = run1(&n, 17, &[Some(&x), Some(&s)]);
        // mean 2.5, var 1.25.
        let k = 1.0 / 1.25f32.sqrt();
        close(&v, &[-1.5 * k, -0.5 * k, 0.5 * k, 1.5 * k], 1e-5);
        assert_eq!(
            how,
            "composed: reshape, candle_nn::ops::layer_norm, reshape"
        );
    }

    #[test]
    fn batch_norm_inference() {
        let x = f32t(&[1, 2, 1, 1], &[1.0, 2.0]);
        let p = |v: [f32; 2]| f32t(&[2], &v);
        let (s, b, m, var) = (p([2.0, 1.0]), p([0.0, 1.0]), p([1.0, 0.0]), p([4.0, 1.0]));
        let n = node(
            "BatchNormalization",
            5,
            1,
            vec![("epsilon", Attr::Float(0.0))],
        );
        let (v, _, how) = run1(
            &n,
            15,
            &[Some(&x), Some(&s), Some(&b), Some(&m), Some(&var)],
        );
        assert_eq!(v, vec![0.0, 3.0]);
        assert!(how.starts_with("native"), "{how}");
    }
}
