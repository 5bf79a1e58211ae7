//! Reference ops that make tensors from shapes and scalars: ConstantOfShape,
//! Range, Expand, EyeLike, Size and CastLike.
//!
//! Exported models use them for weights stored as a fill (ConstantOfShape),
//! box grids (Range, Expand) and masks; the decode (`op::generate`) fixes the
//! output shape and dtype, this file only fills the values.

use ndarray::{ArrayD, IxDyn};

use super::shape::{arr, cast_to, ints_to, wide_ints};
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::generate as decode;
use crate::tensor::{Element, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

type Out = OpResult<Lowered<RefTensor>>;
type In<'a> = [Option<&'a RefTensor>];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    let ops: &[(&'static str, u32, OpFn<RefTensor>, &'static str)] = &[
        (
            "ConstantOfShape",
            9,
            constant_of_shape,
            spec!("ConstantOfShape"),
        ),
        ("Range", 11, range, spec!("Range")),
        ("Expand", 8, expand, spec!("Expand")),
        ("EyeLike", 9, eye_like, spec!("EyeLike")),
        ("Size", 1, size, spec!("Size")),
        ("CastLike", 15, cast_like, spec!("CastLike")),
    ];
    for &(op, since, run, spec) in ops {
        r.range(op, since, u32::MAX, run, spec, SPEC);
    }
}

/// ConstantOfShape-9/20/21/23: `value` (one element) repeated over the shape.
fn constant_of_shape(ctx: &OpCtx, x: &In) -> Out {
    let shape = decode::target_shape(ctx, ctx.input(x, 0)?)?;
    let value = RefTensor::from_host(&decode::fill_value(ctx)?);
    let out = by_dtype!(value.data.dtype(), T => {
        let v = *arr::<T>(&value.data).iter().next().expect("one element");
        T::wrap(ArrayD::from_elem(IxDyn(&shape), v))
    });
    Ok(Lowered::one(RefTensor::like(&value, out), How::Spec))
}

/// Range-11: `start + i·delta` for i < max(ceil((limit − start)/delta), 0).
fn range(ctx: &OpCtx, x: &In) -> Out {
    let start = ctx.input(x, 0)?;
    let [s, l, d] = [0, 1, 2].map(|i| decode::range_scalar(ctx, x, i));
    let (s, d) = (s?, d?);
    let n = decode::range_len(ctx, s, l?, d)?;
    let out = match &start.data {
        Tensor::F64(_) => Tensor::F64(ArrayD::from_shape_fn(IxDyn(&[n]), |i| s + i[0] as f64 * d)),
        t => {
            let wide = |i: usize| -> OpResult<i128> {
                let v = ctx.input(x, i)?;
                wide_ints(&v.data)
                    .and_then(|a| a.iter().next().copied())
                    .ok_or_else(|| ctx.fail(format!("input #{i} has dtype {}", v.dtype)))
            };
            let (s, d) = (wide(0)?, wide(2)?);
            let v = ArrayD::from_shape_fn(IxDyn(&[n]), |i| s + i[0] as i128 * d);
            ints_to(&v, t.dtype())
        }
    };
    Ok(Lowered::one(RefTensor::like(start, out), How::Spec))
}

/// Expand-8/13: the input broadcast to `shape` (bidirectionally).
fn expand(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let target = decode::expand_shape(ctx, a.shape(), &ctx.input(x, 1)?.ints()?)?;
    let out = by_dtype!(a.data.dtype(), T => T::wrap(
        arr::<T>(&a.data).broadcast(IxDyn(&target)).expect("checked shape").to_owned()
    ));
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// EyeLike-9/22: ones where column = row + k, in `dtype` or the input's.
fn eye_like(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let (k, dtype) = decode::eye_like(ctx, a.dtype, a.shape())?;
    let eye = ArrayD::from_shape_fn(IxDyn(a.shape()), |i| {
        i128::from(i[1] as i64 == i[0] as i64 + k)
    });
    let out = if dtype.is_float() {
        RefTensor::float(eye.mapv(|v| v as f64), dtype)
    } else {
        RefTensor::exact(ints_to(&eye, dtype))
    };
    Ok(Lowered::one(out, How::Spec))
}

/// Size-1/13/19/21: the element count, an int64 scalar.
fn size(ctx: &OpCtx, x: &In) -> Out {
    let n = ctx.input(x, 0)?.data.len() as i64;
    Ok(Lowered::one(
        RefTensor::exact(Tensor::I64(ArrayD::from_elem(IxDyn(&[]), n))),
        How::Spec,
    ))
}

/// CastLike-15/19/21/23: Cast to the dtype of `target_type`.
fn cast_like(ctx: &OpCtx, x: &In) -> Out {
    let to = ctx.input(x, 1)?.dtype;
    Ok(Lowered::one(cast_to(ctx, ctx.input(x, 0)?, to)?, How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::graph::Attr;
    use crate::tensor::DType;

    fn run(op: &str, attrs: Vec<(&str, Attr)>, ins: &[Option<&RefTensor>]) -> RefTensor {
        let node = test_node(op, ins.len(), 1, attrs);
        run_op(&node, 20, ins).unwrap().remove(0).unwrap()
    }

    #[test]
    fn generators_fill_shapes() {
        let value = Tensor::I32(ArrayD::from_elem(IxDyn(&[1]), 7));
        let y = run(
            "ConstantOfShape",
            vec![("value", Attr::Tensor(value))],
            &[Some(&i(&[2], &[2, 3]))],
        );
        assert_eq!((y.dtype, y.shape().to_vec()), (DType::I32, vec![2, 3]));
        let y = run("ConstantOfShape", vec![], &[Some(&i(&[0], &[]))]);
        assert_eq!((y.dtype, y.data.to_f64_vec()), (DType::F32, vec![0.]));
        let y = run(
            "Range",
            vec![],
            &[
                Some(&i(&[], &[10])),
                Some(&i(&[], &[6])),
                Some(&i(&[], &[-3])),
            ],
        );
        assert_eq!(y.data.to_f64_vec(), vec![10., 7.]);
        let y = run(
            "Expand",
            vec![],
            &[Some(&f(&[3, 1], &[1., 2., 3.])), Some(&i(&[2], &[1, 2]))],
        );
        assert_eq!(y.shape(), &[3, 2]);
        let y = run(
            "EyeLike",
            vec![("k", Attr::Int(1)), ("dtype", Attr::Int(7))],
            &[Some(&f(&[2, 3], &[0.; 6]))],
        );
        assert_eq!(
            (y.dtype, y.data.to_f64_vec()),
            (DType::I64, vec![0., 1., 0., 0., 0., 1.])
        );
        let y = run(
            "CastLike",
            vec![],
            &[Some(&f(&[2], &[2.7, -1.5])), Some(&i(&[0], &[]))],
        );
        assert_eq!(y.data.to_f64_vec(), vec![2., -1.]);
    }
}
