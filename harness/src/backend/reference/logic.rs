//! Reference ops: comparisons, boolean logic, Where, BitShift, IsNaN and
//! IsInf.
//!
//! They decide masks (attention, box filtering) and so must be exact: floats
//! compare as f64 (each value is the exact widening of the lane's dtype),
//! integers as i128, and every result is a bool tensor except BitShift's
//! unsigned integers. Binary ops follow ONNX multidirectional broadcasting.

use ndarray::{ArrayD, IxDyn};

use super::shape::{arr, ints_to, wide_ints};
use super::util::{broadcast_map, broadcast_shape, by_dtype};
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::math;
use crate::tensor::{DType, Element, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

type Out = OpResult<Lowered<RefTensor>>;
type In<'a> = [Option<&'a RefTensor>];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    let ops: &[(&'static str, u32, OpFn<RefTensor>, &'static str)] = &[
        (
            "Equal",
            7,
            |c, x| compare(c, x, |a, b| a == b, |a, b| a == b),
            spec!("Equal"),
        ),
        (
            "Less",
            7,
            |c, x| compare(c, x, |a, b| a < b, |a, b| a < b),
            spec!("Less"),
        ),
        (
            "LessOrEqual",
            12,
            |c, x| compare(c, x, |a, b| a <= b, |a, b| a <= b),
            spec!("LessOrEqual"),
        ),
        (
            "Greater",
            7,
            |c, x| compare(c, x, |a, b| a > b, |a, b| a > b),
            spec!("Greater"),
        ),
        (
            "GreaterOrEqual",
            12,
            |c, x| compare(c, x, |a, b| a >= b, |a, b| a >= b),
            spec!("GreaterOrEqual"),
        ),
        ("Not", 1, not, spec!("Not")),
        ("And", 7, |c, x| logic(c, x, |a, b| a & b), spec!("And")),
        ("Or", 7, |c, x| logic(c, x, |a, b| a | b), spec!("Or")),
        ("Xor", 7, |c, x| logic(c, x, |a, b| a ^ b), spec!("Xor")),
        ("Where", 9, where_, spec!("Where")),
        ("BitShift", 11, bit_shift, spec!("BitShift")),
        ("IsNaN", 9, is_nan, spec!("IsNaN")),
        ("IsInf", 10, is_inf, spec!("IsInf")),
    ];
    for &(op, since, run, spec) in ops {
        r.range(op, since, u32::MAX, run, spec, SPEC);
    }
}

/// Exact numeric contents: floats as f64, integers and bools as i128.
enum Num {
    F(ArrayD<f64>),
    I(ArrayD<i128>),
}

fn num(ctx: &OpCtx, t: &RefTensor, name: &str) -> OpResult<Num> {
    match &t.data {
        Tensor::F64(a) => Ok(Num::F(a.clone())),
        d => wide_ints(d)
            .map(Num::I)
            .ok_or_else(|| ctx.fail(format!("input `{name}` has dtype {}", t.dtype))),
    }
}

/// Two inputs of one dtype (the spec's type constraint `T`).
fn pair<'a>(ctx: &OpCtx, x: &In<'a>) -> OpResult<(&'a RefTensor, &'a RefTensor)> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    if a.dtype != b.dtype {
        return Err(ctx.fail(format!(
            "inputs `A` ({}) and `B` ({}) must share a dtype",
            a.dtype, b.dtype
        )));
    }
    Ok((a, b))
}

fn boolean(a: ArrayD<bool>) -> Lowered<RefTensor> {
    Lowered::one(RefTensor::exact(Tensor::Bool(a)), How::Spec)
}

/// Equal/Less/LessOrEqual/Greater/GreaterOrEqual: an exact comparison under
/// broadcasting (NaN compares false, so Equal(NaN, NaN) is false).
fn compare(ctx: &OpCtx, x: &In, f: fn(f64, f64) -> bool, i: fn(i128, i128) -> bool) -> Out {
    let (a, b) = pair(ctx, x)?;
    let out = match (num(ctx, a, "A")?, num(ctx, b, "B")?) {
        (Num::F(p), Num::F(q)) => broadcast_map(&p, &q, f)?,
        (Num::I(p), Num::I(q)) => broadcast_map(&p, &q, i)?,
        _ => unreachable!("one dtype"),
    };
    Ok(boolean(out))
}

fn bools<'a>(ctx: &OpCtx, x: &In<'a>, i: usize) -> OpResult<&'a ArrayD<bool>> {
    match &ctx.input(x, i)?.data {
        Tensor::Bool(a) => Ok(a),
        t => Err(ctx.fail(format!("input #{i} must be bool, got {}", t.dtype()))),
    }
}

/// Not-1: logical negation of a bool tensor.
fn not(ctx: &OpCtx, x: &In) -> Out {
    Ok(boolean(bools(ctx, x, 0)?.mapv(|v| !v)))
}

/// And/Or/Xor-7: elementwise on bool tensors, broadcasting.
fn logic(ctx: &OpCtx, x: &In, f: fn(bool, bool) -> bool) -> Out {
    Ok(boolean(broadcast_map(
        bools(ctx, x, 0)?,
        bools(ctx, x, 1)?,
        f,
    )?))
}

/// Where-9/16: `condition ? X : Y`, the three inputs broadcast together.
fn where_(ctx: &OpCtx, x: &In) -> Out {
    let c = bools(ctx, x, 0)?;
    let (a, b) = (ctx.input(x, 1)?, ctx.input(x, 2)?);
    if a.dtype != b.dtype {
        return Err(ctx.fail(format!(
            "inputs `X` ({}) and `Y` ({}) must share a dtype",
            a.dtype, b.dtype
        )));
    }
    let shape = broadcast_shape(&broadcast_shape(c.shape(), a.shape())?, b.shape())?;
    let at = IxDyn(&shape);
    let c = c.broadcast(at.clone()).expect("broadcastable");
    let out = by_dtype!(a.data.dtype(), T => {
        let (p, q) = (arr::<T>(&a.data).broadcast(at.clone()).expect("broadcastable"),
                      arr::<T>(&b.data).broadcast(at.clone()).expect("broadcastable"));
        let v: Vec<T> = c.iter().zip(p.iter().zip(q.iter()))
            .map(|(&c, (&p, &q))| if c { p } else { q }).collect();
        T::wrap(ArrayD::from_shape_vec(at.clone(), v).expect("shape matches"))
    });
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// BitShift-11: unsigned integers shifted LEFT or RIGHT by `Y` bits; a
/// shift by the width or more gives 0 (numpy's `left_shift`/`right_shift`).
fn bit_shift(ctx: &OpCtx, x: &In) -> Out {
    let left = math::shift_left(ctx)?;
    let (a, b) = pair(ctx, x)?;
    if !matches!(a.dtype, DType::U8 | DType::U16 | DType::U32 | DType::U64) {
        return Err(ctx.fail(format!("BitShift needs unsigned integers, got {}", a.dtype)));
    }
    let bits = (a.dtype.size() * 8) as i128;
    let (p, q) = (
        wide_ints(&a.data).expect("int"),
        wide_ints(&b.data).expect("int"),
    );
    let out = broadcast_map(&p, &q, |v, s| match (s >= bits, left) {
        (true, _) => 0,
        (false, true) => v << s,
        (false, false) => v >> s,
    })?;
    Ok(Lowered::one(
        RefTensor::exact(ints_to(&out, a.dtype)),
        How::Spec,
    ))
}

fn floats<'a>(ctx: &OpCtx, x: &In<'a>) -> OpResult<&'a ArrayD<f64>> {
    let a = ctx.input(x, 0)?;
    a.f64()
        .map_err(|_| ctx.fail(format!("input `X` must be a float tensor, got {}", a.dtype)))
}

/// IsNaN-9/13/20: true where x is NaN.
fn is_nan(ctx: &OpCtx, x: &In) -> Out {
    Ok(boolean(floats(ctx, x)?.mapv(f64::is_nan)))
}

/// IsInf-10/20: true at +inf (if `detect_positive`) and -inf (if `detect_negative`).
fn is_inf(ctx: &OpCtx, x: &In) -> Out {
    let (neg, pos) = math::is_inf_signs(ctx)?;
    Ok(boolean(floats(ctx, x)?.mapv(|v| {
        (v == f64::INFINITY && pos) || (v == f64::NEG_INFINITY && neg)
    })))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::graph::Attr;

    fn run(op: &str, attrs: Vec<(&str, Attr)>, ins: &[Option<&RefTensor>]) -> RefTensor {
        let node = test_node(op, ins.len(), 1, attrs);
        run_op(&node, 20, ins).unwrap().remove(0).unwrap()
    }
    fn b(shape: &[usize], v: &[bool]) -> RefTensor {
        RefTensor::exact(Tensor::Bool(
            ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap(),
        ))
    }

    #[test]
    fn comparisons_broadcast_and_nan_is_unequal() {
        let a = f(&[2, 2], &[1., f64::NAN, 3., 4.]);
        let c = f(&[2], &[1., 4.]);
        assert_eq!(
            run("Equal", vec![], &[Some(&a), Some(&c)]).data,
            b(&[2, 2], &[true, false, false, true]).data
        );
        assert_eq!(
            run("LessOrEqual", vec![], &[Some(&a), Some(&c)]).data,
            b(&[2, 2], &[true, false, false, true]).data
        );
        let big = i(&[1], &[i64::MAX]);
        let near = i(&[1], &[i64::MAX - 1]);
        assert_eq!(
            run("Greater", vec![], &[Some(&big), Some(&near)]).data,
            b(&[1], &[true]).data
        );
    }

    #[test]
    fn where_broadcasts_three_ways_and_shift_saturates() {
        let c = b(&[2, 1], &[true, false]);
        let y = run(
            "Where",
            vec![],
            &[Some(&c), Some(&f(&[2], &[1., 2.])), Some(&f(&[], &[9.]))],
        );
        assert_eq!(y.data.to_f64_vec(), vec![1., 2., 9., 9.]);
        assert_eq!(y.dtype, DType::F32);
        let u = RefTensor::exact(Tensor::U8(
            ArrayD::from_shape_vec(IxDyn(&[3]), vec![3, 200, 1]).unwrap(),
        ));
        let s = RefTensor::exact(Tensor::U8(
            ArrayD::from_shape_vec(IxDyn(&[3]), vec![1, 1, 8]).unwrap(),
        ));
        let y = run(
            "BitShift",
            vec![("direction", Attr::String("LEFT".into()))],
            &[Some(&u), Some(&s)],
        );
        assert_eq!(y.data.to_f64_vec(), vec![6., 144., 0.]);
    }
}
