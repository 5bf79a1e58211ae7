//! candle lowerings: the Reduce* family, ArgMax/ArgMin, Softmax,
//! LogSoftmax and Hardmax.
//!
//! candle reduces f16/bf16 in the native dtype (no f32 accumulation); that
//! is candle's behaviour and is exposed, not corrected. Its max/min/argmax
//! reduce one axis at a time, so several axes are reduced in turn (keeping
//! dims) and the result reshaped to the decoded output shape. The idiomatic
//! port (`EngineOptions::port`) normalizes a Softmax-1/11 `axis` alone, as
//! if the node were opset 13.

use candle_core::{DType as CDType, Tensor};

use super::{keep_bool, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::reduce::{axes_input_since, ArgAttrs, ReduceAttrs};
use crate::op::softmax::SoftmaxAttrs;

const PER_AXIS_MAX: &str = "max_keepdim per axis, ne, sum_keepdim, where_cond (NaN propagates)";
const PER_AXIS_MIN: &str = "min_keepdim per axis, ne, sum_keepdim, where_cond (NaN propagates)";

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    let reductions = [
        (
            "ReduceMean",
            spec!("ReduceMean"),
            cov!["all" => Native("mean_keepdim")],
        ),
        (
            "ReduceSum",
            spec!("ReduceSum"),
            cov!["all" => Native("sum_keepdim")],
        ),
        (
            "ReduceMax",
            spec!("ReduceMax"),
            cov!["one axis" => Native("max_keepdim"),
            "several axes" => Composed(PER_AXIS_MAX)],
        ),
        (
            "ReduceMin",
            spec!("ReduceMin"),
            cov!["one axis" => Native("min_keepdim"),
            "several axes" => Composed(PER_AXIS_MIN)],
        ),
        (
            "ReduceProd",
            spec!("ReduceProd"),
            cov!["non-empty axes" => Composed("narrow, mul per index"),
                 "an empty reduced axis" => Unsupported("candle's reductions reject empty tensors")],
        ),
        (
            "ReduceL1",
            spec!("ReduceL1"),
            cov!["all" => Composed("abs, sum_keepdim")],
        ),
        (
            "ReduceL2",
            spec!("ReduceL2"),
            cov!["all" => Composed("sqr, sum_keepdim, sqrt")],
        ),
        (
            "ReduceLogSum",
            spec!("ReduceLogSum"),
            cov!["all" => Composed("sum_keepdim, log")],
        ),
        (
            "ReduceLogSumExp",
            spec!("ReduceLogSumExp"),
            cov!["all" => Native("log_sum_exp")],
        ),
        (
            "ReduceSumSquare",
            spec!("ReduceSumSquare"),
            cov!["all" => Composed("sqr, sum_keepdim")],
        ),
    ];
    for (op, spec, cov) in reductions {
        let split = axes_input_since(op);
        r.range(op, 1, split - 1, reduce, spec, cov);
        r.range(op, split, u32::MAX, reduce, spec, cov);
    }
    let arg = cov!["select_last_index=0" => Native("argmax_keepdim/argmin_keepdim"),
        "select_last_index=1" => Composed("flip, argmax_keepdim/argmin_keepdim, size-1-i")];
    r.op("ArgMax", arg_extreme, spec!("ArgMax"), arg);
    r.op("ArgMin", arg_extreme, spec!("ArgMin"), arg);
    let spec = spec!("Softmax");
    r.range("Softmax", 1, 12, softmax, spec, cov![
            "axis = last (coercion is a no-op)" => Native("candle_nn::ops::softmax_last_dim"),
            "other axis (input coerced to 2-D at axis)" => Composed("reshape, candle_nn::ops::softmax_last_dim, reshape"),
        ]);
    r.range(
        "Softmax",
        13,
        u32::MAX,
        softmax,
        spec,
        cov![
            "axis = last" => Native("candle_nn::ops::softmax_last_dim"),
            "other axis" => Native("candle_nn::ops::softmax"),
        ],
    );
    r.op("LogSoftmax", softmax, spec!("LogSoftmax"), cov![
        "opset >= 13, or axis = last" => Native("candle_nn::ops::log_softmax"),
        "opset < 13, axis not last (input coerced to 2-D)" => Composed("reshape, candle_nn::ops::log_softmax, reshape"),
    ]);
    r.op(
        "Hardmax",
        softmax,
        spec!("Hardmax"),
        cov![
            "all attributes" => Composed("argmax_keepdim, arange, broadcast_eq"),
        ],
    );
}

/// `t` reduced over each of `axes` in turn with a one-axis keepdim op.
fn per_axis(
    t: &Tensor,
    axes: &[usize],
    f: impl Fn(&Tensor, usize) -> candle_core::Result<Tensor>,
) -> OpResult<Tensor> {
    let mut y = t.clone();
    for &k in axes {
        y = f(&y, k).ce()?;
    }
    Ok(y)
}

/// `y`, the max or min of float `x` over `axes` (kept) from candle's
/// `max_keepdim`/`min_keepdim`, with NaN wherever the reduced window holds
/// one: candle's own reductions drop NaN (a native finding where one call
/// is the lowering), but a composed lowering is xdiff's and follows the
/// spec's IEEE propagation. Non-float `x` is returned as is.
pub(super) fn propagate_nan(x: &Tensor, axes: &[usize], y: Tensor) -> OpResult<Tensor> {
    if !x.dtype().is_float() {
        return Ok(y);
    }
    let nan = super::full(f64::NAN, y.dims(), y.dtype(), y.device())?;
    let mut any = x.ne(x).and_then(|m| m.to_dtype(CDType::F32)).ce()?;
    for &k in axes {
        any = any.sum_keepdim(k).ce()?;
    }
    any.gt(0.0).and_then(|m| m.where_cond(&nan, &y)).ce()
}

/// The product over `axis` (kept as 1): the slices multiplied in index order.
fn prod_keepdim(t: &Tensor, axis: usize) -> candle_core::Result<Tensor> {
    let mut acc = t.narrow(axis, 0, 1)?;
    for i in 1..t.dim(axis)? {
        acc = acc.mul(&t.narrow(axis, i, 1)?)?;
    }
    Ok(acc)
}

/// Reduce*-1/11/13/18 (axes decoded by [`ReduceAttrs`]); each op computes
/// with reduced axes kept, then takes the decoded output shape.
fn reduce(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let r = ReduceAttrs::decode(ctx, x, a.rank())?;
    let Some(axes) = r.axes.clone() else {
        return Ok(Lowered::one(a.clone(), How::native("clone")));
    };
    let out = r.out_dims(a.dims());
    let ax = axes.clone();
    let several = axes.len() > 1;
    let op = ctx.node.op_type.as_str();
    let needs_one = matches!(
        op,
        "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceLogSumExp"
    );
    if needs_one && axes.iter().any(|&k| a.dims()[k] == 0) {
        return Err(ctx.unsupported(
            "axes",
            "an empty axis (candle's reductions reject empty tensors)",
        ));
    }
    let (y, how) = match op {
        "ReduceMean" => (a.mean_keepdim(ax).ce()?, How::native("mean_keepdim")),
        "ReduceSum" => (a.sum_keepdim(ax).ce()?, How::native("sum_keepdim")),
        "ReduceMax" if several => (
            propagate_nan(a, &axes, per_axis(a, &axes, |t, k| t.max_keepdim(k))?)?,
            How::composed(PER_AXIS_MAX),
        ),
        "ReduceMax" => (
            per_axis(a, &axes, |t, k| t.max_keepdim(k))?,
            How::native("max_keepdim"),
        ),
        "ReduceMin" if several => (
            propagate_nan(a, &axes, per_axis(a, &axes, |t, k| t.min_keepdim(k))?)?,
            How::composed(PER_AXIS_MIN),
        ),
        "ReduceMin" => (
            per_axis(a, &axes, |t, k| t.min_keepdim(k))?,
            How::native("min_keepdim"),
        ),
        "ReduceProd" => {
            if axes.iter().any(|&k| a.dims()[k] == 0) {
                return Err(ctx.unsupported("axes", "an empty axis (no product to start from)"));
            }
            (
                per_axis(a, &axes, prod_keepdim)?,
                How::composed("narrow, mul per index"),
            )
        }
        "ReduceL1" => (
            a.abs().and_then(|t| t.sum_keepdim(ax)).ce()?,
            How::composed("abs, sum_keepdim"),
        ),
        "ReduceL2" => (
            a.sqr()
                .and_then(|t| t.sum_keepdim(ax))
                .and_then(|t| t.sqrt())
                .ce()?,
            How::composed("sqr, sum_keepdim, sqrt"),
        ),
        "ReduceLogSum" => (
            a.sum_keepdim(ax).and_then(|t| t.log()).ce()?,
            How::composed("sum_keepdim, log"),
        ),
        "ReduceSumSquare" => (
            a.sqr().and_then(|t| t.sum_keepdim(ax)).ce()?,
            How::composed("sqr, sum_keepdim"),
        ),
        _ => (a.log_sum_exp(ax).ce()?, How::native("log_sum_exp")),
    };
    // Max/Min of ONNX bools (candle u8) stay bools.
    Ok(Lowered::one(keep_bool(ctx, a, y.reshape(out).ce()?), how))
}

/// ArgMax/ArgMin-1/11/12/13: candle returns u32 indices (widened to int64);
/// `select_last_index` searches the flipped axis.
fn arg_extreme(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let s = ArgAttrs::decode(ctx, a.rank())?;
    let max = ctx.node.op_type == "ArgMax";
    let pick = |t: &Tensor| {
        if max {
            t.argmax_keepdim(s.axis)
        } else {
            t.argmin_keepdim(s.axis)
        }
    };
    let (mut y, how) = if s.last {
        let n = a.dims()[s.axis] as f64;
        let i = pick(&a.contiguous().and_then(|c| c.flip(&[s.axis])).ce()?)
            .and_then(|i| i.to_dtype(CDType::I64))
            .ce()?;
        (
            i.affine(-1.0, n - 1.0).ce()?,
            How::composed("flip, argmax_keepdim/argmin_keepdim, size-1-i"),
        )
    } else {
        let i = pick(a).and_then(|i| i.to_dtype(CDType::I64)).ce()?;
        (i, How::native("argmax_keepdim/argmin_keepdim"))
    };
    if !s.keep {
        y = y.squeeze(s.axis).ce()?;
    }
    Ok(Lowered::one(y, how))
}

/// One normalizer along `axis`, and the candle op it is.
fn normalize(op: &str, t: &Tensor, axis: usize) -> OpResult<(Tensor, &'static str)> {
    Ok(match op {
        "LogSoftmax" => (
            candle_nn::ops::log_softmax(t, axis).ce()?,
            "candle_nn::ops::log_softmax",
        ),
        "Hardmax" => {
            let n = t.dims()[axis];
            let at = t.argmax_keepdim(axis).ce()?;
            let mut shape = vec![1; t.rank()];
            shape[axis] = n;
            let y = Tensor::arange(0u32, n as u32, t.device())
                .and_then(|r| r.reshape(shape))
                .and_then(|r| r.broadcast_eq(&at))
                .and_then(|m| m.to_dtype(t.dtype()))
                .ce()?;
            (y, "argmax_keepdim, arange, broadcast_eq")
        }
        _ if axis + 1 == t.rank() => (
            candle_nn::ops::softmax_last_dim(&t.contiguous().ce()?).ce()?,
            "candle_nn::ops::softmax_last_dim",
        ),
        _ => (
            candle_nn::ops::softmax(t, axis).ce()?,
            "candle_nn::ops::softmax",
        ),
    })
}

/// Softmax, LogSoftmax and Hardmax-1/11 (default axis 1, input coerced to
/// 2-D) / -13 (one axis, default -1).
fn softmax(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let SoftmaxAttrs { axis: ax, coerced } = SoftmaxAttrs::decode(ctx, a.rank())?;
    let op = ctx.node.op_type.as_str();
    let how = |what: &str| match op {
        "Hardmax" => How::composed(what),
        _ => How::native(what),
    };
    if !coerced || ax + 1 == a.rank() {
        let (y, what) = normalize(op, a, ax)?;
        return Ok(Lowered::one(y, how(what)));
    }
    if ctx.options.port {
        // The idiomatic port normalizes `axis` alone even before opset 13.
        let (y, what) = normalize(op, a, ax)?;
        let what = format!("{what} (idiomatic port: one axis, not the 2-D coercion)");
        let how = match op {
            "Hardmax" => How::port(what),
            _ => How::native(what),
        };
        return Ok(Lowered::one(y, how));
    }
    let outer: usize = a.dims()[..ax].iter().product();
    let flat = a.reshape((outer, a.elem_count() / outer.max(1))).ce()?;
    let (y, what) = normalize(op, &flat, 1)?;
    let y = y.reshape(a.dims()).ce()?;
    Ok(Lowered::one(
        y,
        How::composed(format!("reshape, {what}, reshape")),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn softmax_opset11_coerces_to_2d() {
        // shape [1, 2, 2], axis 1: normalizes over all 4 values together.
        let x = f32t(&[1, 2, 2], &[0.0, 0.0, 0.0, 0.0]);
        let (v, dims, how) = run1(
            &node("Softmax", 1, 1, vec![("axis", Attr::Int(1))]),
            11,
            &[Some(&x)],
        );
        assert_eq!(dims, vec![1, 2, 2]);
        close(&v, &[0.25; 4], 1e-6);
        assert!(how.starts_with("composed"), "{how}");
        let (v, _, how) = run1(
            &node("Softmax", 1, 1, vec![("axis", Attr::Int(1))]),
            13,
            &[Some(&x)],
        );
        close(&v, &[0.5; 4], 1e-6);
        assert_eq!(how, "native: candle_nn::ops::softmax");
    }

    #[test]
    fn reduce_mean_axes_and_keepdims() {
        let x = f32t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let n = node(
            "ReduceMean",
            1,
            1,
            vec![("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(0))],
        );
        let (v, dims, how) = run1(&n, 13, &[Some(&x)]);
        assert_eq!((v, dims), (vec![2.0, 5.0], vec![2]));
        assert_eq!(how, "native: mean_keepdim");
    }
}
