//! Reference ops: BitwiseAnd/Or/Xor/Not-18 and Swish-24.
//!
//! The bitwise ops work on any integer dtype: values widen exactly to i128
//! (two's complement, sign-extended), combine, and narrow back, which is the
//! fixed-width result for signed and unsigned types alike. Binary ops
//! broadcast as numpy does. Swish is `x · sigmoid(alpha · x)` in f64.

use super::elementwise::{sigmoid_f, unary};
use super::shape::{ints_to, wide_ints};
use super::util::broadcast_map;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::geometry::swish_alpha;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

type Out = OpResult<Lowered<RefTensor>>;
type In<'a> = [Option<&'a RefTensor>];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    let ops: &[(&'static str, u32, OpFn<RefTensor>, &'static str)] = &[
        (
            "BitwiseAnd",
            18,
            |c, x| binary(c, x, |a, b| a & b),
            spec!("BitwiseAnd"),
        ),
        (
            "BitwiseOr",
            18,
            |c, x| binary(c, x, |a, b| a | b),
            spec!("BitwiseOr"),
        ),
        (
            "BitwiseXor",
            18,
            |c, x| binary(c, x, |a, b| a ^ b),
            spec!("BitwiseXor"),
        ),
        ("BitwiseNot", 18, not, spec!("BitwiseNot")),
        ("Swish", 24, swish, spec!("Swish")),
    ];
    for &(op, since, run, spec) in ops {
        r.range(op, since, u32::MAX, run, spec, SPEC);
    }
}

/// An integer input widened to i128 (bool and floats are not `T`).
fn int_input(
    ctx: &OpCtx,
    x: &In,
    i: usize,
) -> OpResult<(ndarray::ArrayD<i128>, crate::tensor::DType)> {
    let t = ctx.input(x, i)?;
    match wide_ints(&t.data) {
        Some(a) if t.dtype != crate::tensor::DType::Bool => Ok((a, t.dtype)),
        _ => Err(ctx.fail(format!(
            "input #{i} must be an integer tensor, got {}",
            t.dtype
        ))),
    }
}

/// BitwiseAnd/Or/Xor-18: elementwise on two integer tensors of one dtype.
fn binary(ctx: &OpCtx, x: &In, f: fn(i128, i128) -> i128) -> Out {
    let ((a, da), (b, db)) = (int_input(ctx, x, 0)?, int_input(ctx, x, 1)?);
    if da != db {
        return Err(ctx.fail(format!(
            "inputs `A` ({da}) and `B` ({db}) must share a dtype"
        )));
    }
    let out = broadcast_map(&a, &b, f)?;
    Ok(Lowered::one(RefTensor::exact(ints_to(&out, da)), How::Spec))
}

/// BitwiseNot-18: every bit flipped.
fn not(ctx: &OpCtx, x: &In) -> Out {
    let (a, d) = int_input(ctx, x, 0)?;
    Ok(Lowered::one(
        RefTensor::exact(ints_to(&a.mapv(|v| !v), d)),
        How::Spec,
    ))
}

/// Swish-24: x · sigmoid(alpha · x).
fn swish(ctx: &OpCtx, x: &In) -> Out {
    let alpha = swish_alpha(ctx)?;
    unary(ctx, x, |v| v * sigmoid_f(alpha * v))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use super::*;
    use crate::graph::Attr;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn run(op: &str, attrs: Vec<(&str, Attr)>, ins: &[Option<&RefTensor>]) -> RefTensor {
        let node = test_node(op, ins.len(), 1, attrs);
        run_op(&node, 24, ins).unwrap().remove(0).unwrap()
    }

    #[test]
    fn bitwise_wraps_in_the_dtype_and_broadcasts() {
        let u = RefTensor::exact(Tensor::U8(
            ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![0xF0, 3, 255, 0]).unwrap(),
        ));
        let m = RefTensor::exact(Tensor::U8(
            ArrayD::from_shape_vec(IxDyn(&[2]), vec![0x3C, 1]).unwrap(),
        ));
        assert_eq!(
            run("BitwiseXor", vec![], &[Some(&u), Some(&m)])
                .data
                .to_f64_vec(),
            vec![204., 2., 195., 1.]
        );
        assert_eq!(
            run("BitwiseNot", vec![], &[Some(&u)]).data.to_f64_vec(),
            vec![15., 252., 0., 255.]
        );
        let s = RefTensor::exact(Tensor::I16(
            ArrayD::from_shape_vec(IxDyn(&[2]), vec![-1, -32768]).unwrap(),
        ));
        let out = run("BitwiseNot", vec![], &[Some(&s)]);
        assert_eq!(out.data.to_f64_vec(), vec![0., 32767.]);
        assert_eq!(out.dtype, crate::tensor::DType::I16);
        assert!(registry_rejects_floats());
    }

    fn registry_rejects_floats() -> bool {
        let a = f(&[1], &[1.0]);
        let node = test_node("BitwiseAnd", 2, 1, vec![]);
        run_op(&node, 18, &[Some(&a), Some(&a)]).is_err()
    }

    #[test]
    fn swish_scales_the_sigmoid_argument() {
        let x = f(&[2], &[2.0, -1.0]);
        let y = run("Swish", vec![("alpha", Attr::Float(0.5))], &[Some(&x)])
            .data
            .to_f64_vec();
        let want = [2.0 / (1.0 + (-1.0f64).exp()), -1.0 / (1.0 + 0.5f64.exp())];
        assert!((y[0] - want[0]).abs() < 1e-15 && (y[1] - want[1]).abs() < 1e-15);
    }
}
