//! libtorch lowerings: ReduceMean and Softmax.

use tch::{Kind, Tensor};

use super::{dims, host_ints, is_float};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::softmax::SoftmaxAttrs;

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "ReduceMean",
        reduce_mean,
        spec!("ReduceMean"),
        cov!["float" => Label::Native("mean(dim, keepdim)"),
             "integer (ONNX: sum / count, truncated)" => Label::Composed("sum(dim), div(trunc)"),
             "axes empty and noop_with_empty_axes=1" => Label::Native("alias")],
    );
    r.op(
        "Softmax",
        softmax,
        spec!("Softmax"),
        cov!["opset >= 13, or axis = last" => Label::Native("softmax(dim)"),
             "opset < 13, axis not last (input coerced to 2-D)" => Label::Composed("reshape, softmax, reshape")],
    );
}

/// ReduceMean-1/11/13 (axes attribute) and -18 (axes input, noop_with_empty_axes).
fn reduce_mean(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let rank = input.dim();
    let keep = ctx.int("keepdims", 1)? != 0;
    let axes = if ctx.opset >= 18 {
        match x.get(1).copied().flatten() {
            Some(t) => host_ints(t)?,
            None => Vec::new(),
        }
    } else {
        ctx.ints("axes")?.unwrap_or_default()
    };
    if axes.is_empty() && ctx.opset >= 18 && ctx.int("noop_with_empty_axes", 0)? != 0 {
        return Ok(Lowered::one(input.f_alias()?, How::native("alias")));
    }
    let mut dims_: Vec<i64> = if axes.is_empty() {
        (0..rank as i64).collect()
    } else {
        axes.iter()
            .map(|&a| ctx.axis(a, rank).map(|v| v as i64))
            .collect::<OpResult<_>>()?
    };
    dims_.sort_unstable();
    dims_.dedup();
    if rank == 0 {
        return Ok(Lowered::one(input.f_alias()?, How::native("alias")));
    }
    if is_float(input)? {
        return Ok(Lowered::one(
            input.f_mean_dim(dims_.as_slice(), keep, None::<Kind>)?,
            How::native("mean(dim, keepdim)"),
        ));
    }
    // torch's mean rejects integers; ONNX (ORT) divides the integer sum by the count.
    let shape = dims(input);
    let count: i64 = dims_.iter().map(|&d| shape[d as usize]).product();
    let sum = input.f_sum_dim_intlist(dims_.as_slice(), keep, input.f_kind()?)?;
    let y = sum.f_div_scalar_mode(count, "trunc")?;
    Ok(Lowered::one(y, How::composed("sum(dim), div(trunc)")))
}

/// Softmax-1/11 (input coerced to 2-D at `axis`, default 1) and -13 (one axis, default -1).
fn softmax(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let rank = input.dim();
    let s = SoftmaxAttrs::decode(ctx, rank)?;
    let axis = s.axis as i64;
    if !s.coerced || s.axis + 1 >= rank {
        return Ok(Lowered::one(
            input.f_softmax(axis, None::<Kind>)?,
            How::native("softmax(dim)"),
        ));
    }
    let shape = dims(input);
    let outer: i64 = shape[..axis as usize].iter().product();
    let y = input
        .f_reshape([outer, -1])?
        .f_softmax(1, None::<Kind>)?
        .f_reshape(shape.as_slice())?;
    Ok(Lowered::one(y, How::composed("reshape, softmax, reshape")))
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
