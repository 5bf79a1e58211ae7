//! libtorch lowerings of the generator ops: ConstantOfShape (`full`), Range
//! (`arange`), Expand (`expand`), EyeLike (`eye`), Size (`numel`) and
//! CastLike (`to`). Shapes and dtypes come from the shared decode
//! (`op::generate`).

use tch::{Kind, Tensor};

use super::{kind_of, upload};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::generate as decode;
use crate::op::HostView;
use crate::tensor::DType;

type X<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
/// One registration: op, first opset, lowering, spec link, coverage.
type Row = (
    &'static str,
    u32,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native, Unsupported};
    let ops: &[Row] = &[
        (
            "ConstantOfShape",
            9,
            constant_of_shape,
            spec!("ConstantOfShape"),
            cov!["value of a torch dtype" => Native("full"), "uint16/32/64 value" => Unsupported("value")],
        ),
        (
            "Range",
            11,
            range,
            spec!("Range"),
            cov!["all" => Native("arange")],
        ),
        (
            "Expand",
            8,
            expand,
            spec!("Expand"),
            cov!["all" => Native("expand")],
        ),
        (
            "EyeLike",
            9,
            eye_like,
            spec!("EyeLike"),
            cov!["k = 0" => Native("eye"), "k != 0" => Composed("arange, sub, eq, to")],
        ),
        (
            "Size",
            1,
            size,
            spec!("Size"),
            cov!["all" => Native("numel")],
        ),
        (
            "CastLike",
            15,
            cast_like,
            spec!("CastLike"),
            cov!["all" => Native("to")],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

fn kind(ctx: &OpCtx, attr: &str, d: DType) -> OpResult<Kind> {
    kind_of(d).ok_or_else(|| ctx.unsupported(attr, format!("libtorch (tch 0.24) has no {d} dtype")))
}

/// ConstantOfShape-9/20/21/23: the one-element `value` filled over the shape.
fn constant_of_shape(ctx: &OpCtx, x: &X) -> Out {
    let input = ctx.input(x, 0)?;
    let shape: Vec<i64> = decode::target_shape(ctx, input)?
        .iter()
        .map(|&d| d as i64)
        .collect();
    let value = decode::fill_value(ctx)?;
    kind(ctx, "value", value.dtype())?;
    let v = upload(&value, input.device())
        .map_err(|e| ctx.unsupported("value", e))?
        .f_reshape([] as [i64; 0])?;
    Ok(Lowered::one(
        v.f_expand(&shape, false)?.f_contiguous()?,
        How::native("full"),
    ))
}

/// Range-11: torch.arange(start, limit, delta) in the inputs' dtype.
fn range(ctx: &OpCtx, x: &X) -> Out {
    let start = ctx.input(x, 0)?;
    let k = start.f_kind()?;
    let [s, l, d] = [0, 1, 2].map(|i| decode::range_scalar(ctx, x, i));
    let (s, l, d) = (s?, l?, d?);
    decode::range_len(ctx, s, l, d)?;
    let y = if start.is_float() {
        Tensor::f_arange_start_step(s, l, d, (k, start.device()))?
    } else {
        Tensor::f_arange_start_step(s as i64, l as i64, d as i64, (k, start.device()))?
    };
    Ok(Lowered::one(y, How::native("arange")))
}

/// Expand-8/13: torch's expand to the bidirectional broadcast shape.
fn expand(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let target = decode::expand_shape(ctx, &HostView::dims(a), &ctx.input(x, 1)?.host_ints()?)?;
    let target: Vec<i64> = target.iter().map(|&d| d as i64).collect();
    Ok(Lowered::one(
        a.f_expand(&target, false)?,
        How::native("expand"),
    ))
}

/// EyeLike-9/22: torch.eye for k = 0, else the mask column − row = k.
fn eye_like(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let dims = HostView::dims(a);
    let logical = super::dtype_of(a.f_kind()?).unwrap_or(DType::F32);
    let (k, dtype) = decode::eye_like(ctx, logical, &dims)?;
    let kd = kind(ctx, "dtype", dtype)?;
    let (n, m) = (dims[0] as i64, dims[1] as i64);
    if k == 0 {
        return Ok(Lowered::one(
            Tensor::f_eye_m(n, m, (kd, a.device()))?,
            How::native("eye"),
        ));
    }
    let opts = (Kind::Int64, a.device());
    let cols = Tensor::f_arange(m, opts)?.f_unsqueeze(0)?;
    let rows = Tensor::f_arange(n, opts)?.f_unsqueeze(1)?;
    let y = cols.f_sub(&rows)?.f_eq(k)?.f_to_kind(kd)?;
    Ok(Lowered::one(y, How::composed("arange, sub, eq, to")))
}

/// Size-1/13/19/21: the element count as an int64 scalar.
fn size(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let n = a.numel() as i64;
    let y = Tensor::f_full([] as [i64; 0], n, (Kind::Int64, a.device()))?;
    Ok(Lowered::one(y, How::native("numel")))
}

/// CastLike-15/19/21/23: `to` the kind of `target_type`.
fn cast_like(ctx: &OpCtx, x: &X) -> Out {
    let (a, t) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    Ok(Lowered::one(a.f_to_kind(t.f_kind()?)?, How::native("to")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn generators() {
        let (s, l, d) = (i64s(&[], &[10]), i64s(&[], &[6]), i64s(&[], &[-3]));
        let y = run(
            &node("Range", 3, 1, vec![]),
            11,
            &[Some(&s), Some(&l), Some(&d)],
        )
        .unwrap();
        assert_eq!(vals(y.outputs[0].as_ref().unwrap()), vec![10.0, 7.0]);
        let x = f32s(&[3, 1], &[1.0, 2.0, 3.0]);
        let y = run(
            &node("Expand", 2, 1, vec![]),
            13,
            &[Some(&x), Some(&i64s(&[2], &[1, 2]))],
        )
        .unwrap();
        assert_eq!(y.outputs[0].as_ref().unwrap().size(), vec![3, 2]);
        let e = node("EyeLike", 1, 1, vec![("k", crate::graph::Attr::Int(-1))]);
        let y = run(&e, 9, &[Some(&f32s(&[2, 2], &[0.0; 4]))]).unwrap();
        assert_eq!(
            vals(y.outputs[0].as_ref().unwrap()),
            vec![0.0, 0.0, 1.0, 0.0]
        );
    }
}
