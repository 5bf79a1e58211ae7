//! libtorch lowerings: the Reduce* family, ArgMax/ArgMin, Softmax,
//! LogSoftmax and Hardmax.
//!
//! Each reduction uses torch's own reduction where one has the ONNX
//! semantics (`sum`, `mean`, `amax`, `amin`, `norm`, `logsumexp`); the rest
//! are composed from them. Integer sums keep the input dtype (torch would
//! widen to int64), so they wrap as ONNX's fixed-width types do. The
//! idiomatic port (`EngineOptions::port`) normalizes a Softmax-1/11 `axis`
//! alone, as if the node were opset 13.

use tch::{Kind, Tensor};

use super::{dims, is_float};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::reduce::{axes_input_since, ArgAttrs, ReduceAttrs};
use crate::op::softmax::SoftmaxAttrs;

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    let reductions = [
        (
            "ReduceMean",
            spec!("ReduceMean"),
            cov!["float" => Label::Native("mean(dim, keepdim)"),
             "integer (ONNX: sum / count, truncated)" => Label::Composed("sum(dim), div(trunc)")],
        ),
        (
            "ReduceSum",
            spec!("ReduceSum"),
            cov!["all dtypes" => Label::Native("sum(dim, keepdim, dtype)")],
        ),
        (
            "ReduceMax",
            spec!("ReduceMax"),
            cov!["non-empty axes" => Label::Native("amax(dim, keepdim)"),
                 "an empty reduced axis" => Label::Unsupported("torch's amax rejects empty reductions")],
        ),
        (
            "ReduceMin",
            spec!("ReduceMin"),
            cov!["non-empty axes" => Label::Native("amin(dim, keepdim)"),
                 "an empty reduced axis" => Label::Unsupported("torch's amin rejects empty reductions")],
        ),
        (
            "ReduceProd",
            spec!("ReduceProd"),
            cov!["all dtypes" => Label::Composed("prod(dim) per axis")],
        ),
        (
            "ReduceL1",
            spec!("ReduceL1"),
            cov!["float" => Label::Native("norm(1, dim, keepdim)"),
             "integer" => Label::Composed("abs, sum(dim)")],
        ),
        (
            "ReduceL2",
            spec!("ReduceL2"),
            cov!["float" => Label::Native("norm(2, dim, keepdim)"),
             "integer" => Label::Unsupported("integer input (torch's norm takes floats only)")],
        ),
        (
            "ReduceLogSum",
            spec!("ReduceLogSum"),
            cov!["float" => Label::Composed("sum(dim), log"),
             "integer" => Label::Unsupported("integer input")],
        ),
        (
            "ReduceLogSumExp",
            spec!("ReduceLogSumExp"),
            cov!["float" => Label::Native("logsumexp(dim, keepdim)"),
             "integer" => Label::Unsupported("integer input")],
        ),
        (
            "ReduceSumSquare",
            spec!("ReduceSumSquare"),
            cov!["all dtypes" => Label::Composed("square, sum(dim)")],
        ),
    ];
    for (op, spec, cov) in reductions {
        let split = axes_input_since(op);
        r.range(op, 1, split - 1, reduce, spec, cov);
        r.range(op, split, u32::MAX, reduce, spec, cov);
    }
    let arg = cov!["select_last_index=0" => Label::Native("argmax/argmin(dim, keepdim)"),
        "select_last_index=1" => Label::Composed("flip, argmax/argmin, size-1-i")];
    r.op("ArgMax", arg_extreme, spec!("ArgMax"), arg);
    r.op("ArgMin", arg_extreme, spec!("ArgMin"), arg);
    r.op(
        "Softmax",
        softmax,
        spec!("Softmax"),
        cov!["opset >= 13, or axis = last" => Label::Native("softmax(dim)"),
             "opset < 13, axis not last (input coerced to 2-D)" => Label::Composed("reshape, softmax, reshape")],
    );
    r.op(
        "LogSoftmax",
        softmax,
        spec!("LogSoftmax"),
        cov!["opset >= 13, or axis = last" => Label::Native("log_softmax(dim)"),
             "opset < 13, axis not last (input coerced to 2-D)" => Label::Composed("reshape, log_softmax, reshape")],
    );
    r.op(
        "Hardmax",
        softmax,
        spec!("Hardmax"),
        cov!["all attributes" => Label::Composed("argmax(dim, keepdim), zeros_like, scatter(dim, 1)")],
    );
}

/// Reduce*-1/11/13/18 (axes attribute or input, decoded by [`ReduceAttrs`]).
fn reduce(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let a = ReduceAttrs::decode(ctx, x, input.dim())?;
    let Some(axes) = a.axes else {
        return Ok(Lowered::one(input.f_alias()?, How::native("alias")));
    };
    if input.dim() == 0 {
        return Ok(Lowered::one(input.f_alias()?, How::native("alias")));
    }
    let d: Vec<i64> = axes.iter().map(|&k| k as i64).collect();
    let (keep, kind) = (a.keep, input.f_kind()?);
    let float = is_float(input)?;
    let op = ctx.node.op_type.as_str();
    if matches!(op, "ReduceMax" | "ReduceMin") && axes.iter().any(|&k| input.size()[k] == 0) {
        return Err(ctx.unsupported(
            "axes",
            "an empty axis (torch's amax/amin reject empty reductions)",
        ));
    }
    let (y, how) = match op {
        "ReduceMean" if float => (
            input.f_mean_dim(d.as_slice(), keep, None::<Kind>)?,
            How::native("mean(dim, keepdim)"),
        ),
        "ReduceMean" => {
            // torch's mean rejects integers; ONNX (ORT) divides the integer sum by the count.
            let shape = dims(input);
            let count: i64 = d.iter().map(|&k| shape[k as usize]).product();
            let sum = input.f_sum_dim_intlist(d.as_slice(), keep, kind)?;
            (
                sum.f_div_scalar_mode(count, "trunc")?,
                How::composed("sum(dim), div(trunc)"),
            )
        }
        "ReduceSum" => (
            input.f_sum_dim_intlist(d.as_slice(), keep, kind)?,
            How::native("sum(dim, keepdim, dtype)"),
        ),
        "ReduceMax" => (
            input.f_amax(d.as_slice(), keep)?,
            How::native("amax(dim, keepdim)"),
        ),
        "ReduceMin" => (
            input.f_amin(d.as_slice(), keep)?,
            How::native("amin(dim, keepdim)"),
        ),
        "ReduceProd" => {
            let mut y = input.shallow_clone();
            for &k in d.iter().rev() {
                y = y.f_prod_dim_int(k, keep, kind)?;
            }
            (y, How::composed("prod(dim) per axis"))
        }
        "ReduceL1" if float => (
            input.f_norm_scalaropt_dim(1, d.as_slice(), keep)?,
            How::native("norm(1, dim, keepdim)"),
        ),
        "ReduceL1" => (
            input.f_abs()?.f_sum_dim_intlist(d.as_slice(), keep, kind)?,
            How::composed("abs, sum(dim)"),
        ),
        "ReduceSumSquare" => (
            input
                .f_square()?
                .f_sum_dim_intlist(d.as_slice(), keep, kind)?,
            How::composed("square, sum(dim)"),
        ),
        _ if !float => return Err(ctx.unsupported("input", format!("{kind:?} (floats only)"))),
        "ReduceL2" => (
            input.f_norm_scalaropt_dim(2, d.as_slice(), keep)?,
            How::native("norm(2, dim, keepdim)"),
        ),
        "ReduceLogSum" => (
            input.f_sum_dim_intlist(d.as_slice(), keep, kind)?.f_log()?,
            How::composed("sum(dim), log"),
        ),
        _ => (
            input.f_logsumexp(d.as_slice(), keep)?,
            How::native("logsumexp(dim, keepdim)"),
        ),
    };
    Ok(Lowered::one(y, how))
}

/// ArgMax/ArgMin-1/11/12/13: torch returns the first extreme on ties, as
/// ONNX does; `select_last_index` searches the flipped axis.
fn arg_extreme(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let s = ArgAttrs::decode(ctx, input.dim())?;
    let axis = s.axis as i64;
    let max = ctx.node.op_type == "ArgMax";
    let pick = |t: &Tensor| {
        if max {
            t.f_argmax(axis, s.keep)
        } else {
            t.f_argmin(axis, s.keep)
        }
    };
    if !s.last {
        return Ok(Lowered::one(
            pick(input)?,
            How::native("argmax/argmin(dim, keepdim)"),
        ));
    }
    let n = input.size()[s.axis];
    let i = pick(&input.f_flip([axis])?)?;
    let y = i.f_neg()?.f_add_scalar(n - 1)?;
    Ok(Lowered::one(
        y,
        How::composed("flip, argmax/argmin, size-1-i"),
    ))
}

/// One normalizer (softmax, log_softmax or hardmax) along `axis`.
fn normalize(op: &str, t: &Tensor, axis: i64) -> OpResult<(Tensor, &'static str)> {
    Ok(match op {
        "LogSoftmax" => (t.f_log_softmax(axis, None::<Kind>)?, "log_softmax(dim)"),
        "Hardmax" => {
            let at = t.f_argmax(axis, true)?;
            let y = t.f_zeros_like()?.f_scatter_value(axis, &at, 1.0)?;
            (y, "argmax(dim, keepdim), zeros_like, scatter(dim, 1)")
        }
        _ => (t.f_softmax(axis, None::<Kind>)?, "softmax(dim)"),
    })
}

/// Softmax, LogSoftmax and Hardmax-1/11 (input coerced to 2-D at `axis`,
/// default 1) and -13 (one axis, default -1).
fn softmax(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let rank = input.dim();
    let s = SoftmaxAttrs::decode(ctx, rank)?;
    let op = ctx.node.op_type.as_str();
    let how = |what: String| match op {
        "Hardmax" => How::composed(what),
        _ => How::native(what),
    };
    if !s.coerced || s.axis + 1 >= rank {
        let (y, what) = normalize(op, input, s.axis as i64)?;
        return Ok(Lowered::one(y, how(what.into())));
    }
    if ctx.options.port {
        // The idiomatic port normalizes `axis` alone even before opset 13.
        let (y, what) = normalize(op, input, s.axis as i64)?;
        let what = format!("{what} (idiomatic port: one axis, not the 2-D coercion)");
        let how = match op {
            "Hardmax" => How::port(what),
            _ => How::native(what),
        };
        return Ok(Lowered::one(y, how));
    }
    let shape = dims(input);
    let outer: i64 = shape[..s.axis].iter().product();
    let (y, what) = normalize(op, &input.f_reshape([outer, -1])?, 1)?;
    let y = y.f_reshape(shape.as_slice())?;
    Ok(Lowered::one(
        y,
        How::composed(format!("reshape, {}, reshape", what.replace("(dim)", ""))),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn softmax_opset11_normalizes_over_all_trailing_dims() {
        let x = f32s(&[1, 2, 2], &[0.0; 4]);
        let l = run(
            &node("Softmax", 1, 1, vec![("axis", Attr::Int(1))]),
            11,
            &[Some(&x)],
        )
        .unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![0.25; 4]);
        assert_eq!(l.how.label(), "composed: reshape, softmax, reshape");
        let l = run(
            &node("Softmax", 1, 1, vec![("axis", Attr::Int(1))]),
            13,
            &[Some(&x)],
        )
        .unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![0.5; 4]);
    }

    #[test]
    fn reduce_mean_axes_input_and_integers() {
        let x = i64s(&[2, 2], &[1, 2, 3, 6]);
        let axes = i64s(&[1], &[-1]);
        let l = run(
            &node("ReduceMean", 2, 1, vec![("keepdims", Attr::Int(0))]),
            18,
            &[Some(&x), Some(&axes)],
        )
        .unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![1.0, 4.0]);
    }
}
