//! Reference ops: rounding, trigonometric and hyperbolic functions, the
//! parametric activations, Sign/Reciprocal/Mod/Shrink/PRelu and the variadic
//! Min/Max/Sum/Mean.
//!
//! Each is its formula in f64 (integers exact in i128, narrowed with C-cast
//! semantics), with the numerically safe form where the naive one overflows
//! (Softplus, Mish). Round is half to even, as the spec says.

use ndarray::ArrayD;

use super::elementwise::unary;
use super::shape::{ints_to, wide_ints};
use super::util::broadcast_map;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::math::{self, ModKind};
use crate::tensor::Tensor;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

type Out = OpResult<Lowered<RefTensor>>;
type In<'a> = [Option<&'a RefTensor>];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    let ops: &[(&'static str, u32, OpFn<RefTensor>, &'static str)] = &[
        ("Floor", 6, |c, x| unary(c, x, f64::floor), spec!("Floor")),
        ("Ceil", 6, |c, x| unary(c, x, f64::ceil), spec!("Ceil")),
        (
            "Round",
            11,
            |c, x| unary(c, x, f64::round_ties_even),
            spec!("Round"),
        ),
        (
            "Reciprocal",
            6,
            |c, x| unary(c, x, f64::recip),
            spec!("Reciprocal"),
        ),
        ("Sin", 7, |c, x| unary(c, x, f64::sin), spec!("Sin")),
        ("Cos", 7, |c, x| unary(c, x, f64::cos), spec!("Cos")),
        ("Tan", 7, |c, x| unary(c, x, f64::tan), spec!("Tan")),
        ("Asin", 7, |c, x| unary(c, x, f64::asin), spec!("Asin")),
        ("Acos", 7, |c, x| unary(c, x, f64::acos), spec!("Acos")),
        ("Atan", 7, |c, x| unary(c, x, f64::atan), spec!("Atan")),
        ("Sinh", 9, |c, x| unary(c, x, f64::sinh), spec!("Sinh")),
        ("Cosh", 9, |c, x| unary(c, x, f64::cosh), spec!("Cosh")),
        ("Asinh", 9, |c, x| unary(c, x, f64::asinh), spec!("Asinh")),
        ("Acosh", 9, |c, x| unary(c, x, f64::acosh), spec!("Acosh")),
        ("Atanh", 9, |c, x| unary(c, x, f64::atanh), spec!("Atanh")),
        (
            "Softplus",
            1,
            |c, x| unary(c, x, softplus),
            spec!("Softplus"),
        ),
        (
            "Softsign",
            1,
            |c, x| unary(c, x, |v| v / (1.0 + v.abs())),
            spec!("Softsign"),
        ),
        (
            "Mish",
            18,
            |c, x| unary(c, x, |v| v * softplus(v).tanh()),
            spec!("Mish"),
        ),
        ("Elu", 6, elu, spec!("Elu")),
        ("Selu", 6, selu, spec!("Selu")),
        ("Celu", 12, celu, spec!("Celu")),
        (
            "ThresholdedRelu",
            10,
            thresholded_relu,
            spec!("ThresholdedRelu"),
        ),
        ("Shrink", 9, shrink, spec!("Shrink")),
        ("Sign", 9, sign, spec!("Sign")),
        ("Mod", 10, mod_, spec!("Mod")),
        ("PRelu", 7, prelu, spec!("PRelu")),
        ("Min", 8, |c, x| variadic(c, x, Fold::Min), spec!("Min")),
        ("Max", 8, |c, x| variadic(c, x, Fold::Max), spec!("Max")),
        ("Sum", 8, |c, x| variadic(c, x, Fold::Sum), spec!("Sum")),
        ("Mean", 8, |c, x| variadic(c, x, Fold::Mean), spec!("Mean")),
    ];
    for &(op, since, run, spec) in ops {
        r.range(op, since, u32::MAX, run, spec, SPEC);
    }
}

/// ln(1 + eˣ) without overflow: max(x, 0) + ln(1 + e^-|x|).
fn softplus(v: f64) -> f64 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

/// Elu-6/22: x < 0 ? alpha·(eˣ − 1) : x.
fn elu(ctx: &OpCtx, x: &In) -> Out {
    let a = math::act_params(ctx)?.alpha;
    unary(ctx, x, |v| if v < 0.0 { a * v.exp_m1() } else { v })
}

/// Selu-6/22: gamma · (x ≤ 0 ? alpha·eˣ − alpha : x), as alpha·(eˣ − 1)
/// so a subnormal x keeps its value (alpha·eˣ − alpha cancels to 0).
fn selu(ctx: &OpCtx, x: &In) -> Out {
    let p = math::act_params(ctx)?;
    unary(ctx, x, |v| {
        p.gamma * if v <= 0.0 { p.alpha * v.exp_m1() } else { v }
    })
}

/// Celu-12: max(0, x) + min(0, alpha·(e^(x/alpha) − 1)); NaN propagates
/// (IEEE max/min, as numpy; Rust's `f64::max` would drop it).
fn celu(ctx: &OpCtx, x: &In) -> Out {
    let a = math::act_params(ctx)?.alpha;
    unary(ctx, x, |v| {
        if v.is_nan() {
            v
        } else {
            v.max(0.0) + (a * (v / a).exp_m1()).min(0.0)
        }
    })
}

/// ThresholdedRelu-10/22: x > alpha ? x : 0.
fn thresholded_relu(ctx: &OpCtx, x: &In) -> Out {
    let a = math::act_params(ctx)?.alpha;
    unary(ctx, x, |v| if v > a { v } else { 0.0 })
}

/// Shrink-9: x < −lambd ? x + bias : x > lambd ? x − bias : 0 (floats).
fn shrink(ctx: &OpCtx, x: &In) -> Out {
    let (bias, lambd) = math::shrink(ctx)?;
    unary(ctx, x, |v| {
        if v < -lambd {
            v + bias
        } else if v > lambd {
            v - bias
        } else {
            0.0
        }
    })
}

/// Sign-9/13: −1, 0 or 1 (NaN stays NaN); integers exactly.
fn sign(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let out = match &a.data {
        Tensor::F64(p) => Tensor::F64(p.mapv(|v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        })),
        t => ints_to(
            &wide_ints(t)
                .ok_or_else(|| ctx.fail(format!("Sign of {}", a.dtype)))?
                .mapv(i128::signum),
            a.dtype,
        ),
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// Mod-10/13: fmod=1 is C `fmod` (the dividend's sign, floats and ints);
/// fmod=0 the integer remainder with the divisor's sign. An integer divisor
/// of 0 fails.
fn mod_(ctx: &OpCtx, x: &In) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    if a.dtype != b.dtype {
        return Err(ctx.fail(format!(
            "inputs `A` ({}) and `B` ({}) must share a dtype",
            a.dtype, b.dtype
        )));
    }
    let kind = math::mod_kind(ctx, a.is_float())?;
    let out = match (&a.data, &b.data) {
        (Tensor::F64(p), Tensor::F64(q)) => Tensor::F64(broadcast_map(p, q, |u, v| u % v)?),
        (p, q) => {
            let (p, q) = (
                wide_ints(p).ok_or_else(|| ctx.fail(format!("Mod of {}", a.dtype)))?,
                wide_ints(q).expect("same dtype"),
            );
            if q.iter().any(|&v| v == 0) {
                return Err(ctx.fail("Mod: integer divisor `B` holds 0"));
            }
            let r = broadcast_map(&p, &q, |u, v| {
                let r = u % v;
                if kind == ModKind::Floor && r != 0 && (r < 0) != (v < 0) {
                    r + v
                } else {
                    r
                }
            })?;
            ints_to(&r, a.dtype)
        }
    };
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

/// PRelu-7/9/16: x < 0 ? slope·x : x, `slope` broadcast to X's shape.
fn prelu(ctx: &OpCtx, x: &In) -> Out {
    let (a, s) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let out = match (&a.data, &s.data) {
        (Tensor::F64(p), Tensor::F64(q)) => {
            Tensor::F64(broadcast_map(p, q, |v, k| if v < 0.0 { k * v } else { v })?)
        }
        (p, q) if p.dtype() == q.dtype() => {
            let (p, q) = (
                wide_ints(p).ok_or_else(|| ctx.fail(format!("PRelu of {}", a.dtype)))?,
                wide_ints(q).expect("same dtype"),
            );
            ints_to(
                &broadcast_map(&p, &q, |v, k| if v < 0 { k * v } else { v })?,
                a.dtype,
            )
        }
        _ => return Err(ctx.fail(format!("PRelu of {} with slope {}", a.dtype, s.dtype))),
    };
    if out.shape() != a.shape() {
        return Err(ctx.fail(format!(
            "`slope` {:?} does not broadcast to X {:?}",
            s.shape(),
            a.shape()
        )));
    }
    Ok(Lowered::one(RefTensor::like(a, out), How::Spec))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fold {
    Min,
    Max,
    Sum,
    Mean,
}

fn fold_f(op: Fold) -> fn(f64, f64) -> f64 {
    match op {
        // NaN propagates (numpy's minimum/maximum).
        Fold::Min => |u, v| {
            if u.is_nan() || v.is_nan() {
                f64::NAN
            } else {
                u.min(v)
            }
        },
        Fold::Max => |u, v| {
            if u.is_nan() || v.is_nan() {
                f64::NAN
            } else {
                u.max(v)
            }
        },
        Fold::Sum | Fold::Mean => |u, v| u + v,
    }
}

/// Min/Max/Sum/Mean-8/12/13: one to many inputs of one dtype, broadcast
/// together (Min/Max also over integers; Sum/Mean floats).
fn variadic(ctx: &OpCtx, x: &In, op: Fold) -> Out {
    let ins: Vec<&RefTensor> = x.iter().flatten().copied().collect();
    let first = *ins
        .first()
        .ok_or_else(|| ctx.fail("needs at least one input"))?;
    if let Some(t) = ins.iter().find(|t| t.dtype != first.dtype) {
        return Err(ctx.fail(format!(
            "inputs must share a dtype, got {} and {}",
            first.dtype, t.dtype
        )));
    }
    let out = match &first.data {
        Tensor::F64(_) => {
            let f = fold_f(op);
            let mut acc: ArrayD<f64> = first.f64()?.clone();
            for t in &ins[1..] {
                acc = broadcast_map(&acc, t.f64()?, f)?;
            }
            if op == Fold::Mean {
                acc.mapv_inplace(|v| v / ins.len() as f64);
            }
            Tensor::F64(acc)
        }
        t if matches!(op, Fold::Min | Fold::Max) => {
            let f: fn(i128, i128) -> i128 = if op == Fold::Min {
                i128::min
            } else {
                i128::max
            };
            let wide = |t: &Tensor| {
                wide_ints(t).ok_or_else(|| ctx.fail(format!("{op:?} of {}", first.dtype)))
            };
            let mut acc = wide(t)?;
            for t in &ins[1..] {
                acc = broadcast_map(&acc, &wide(&t.data)?, f)?;
            }
            ints_to(&acc, first.dtype)
        }
        _ => return Err(ctx.fail(format!("{op:?} of {}", first.dtype))),
    };
    Ok(Lowered::one(RefTensor::like(first, out), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::graph::Attr;

    fn run(op: &str, attrs: Vec<(&str, Attr)>, ins: &[Option<&RefTensor>]) -> Vec<f64> {
        let node = test_node(op, ins.len(), 1, attrs);
        run_op(&node, 20, ins)
            .unwrap()
            .remove(0)
            .unwrap()
            .data
            .to_f64_vec()
    }

    #[test]
    fn round_is_half_to_even_and_sign_keeps_zero() {
        let x = f(&[5], &[0.5, 1.5, 2.5, -2.5, -0.0]);
        assert_eq!(
            run("Round", vec![], &[Some(&x)]),
            vec![0., 2., 2., -2., -0.]
        );
        assert_eq!(run("Sign", vec![], &[Some(&x)]), vec![1., 1., 1., -1., 0.]);
    }

    #[test]
    fn celu_keeps_nan_and_selu_keeps_subnormals() {
        let x = f(&[2], &[f64::NAN, -1e-40]);
        let c = run("Celu", vec![], &[Some(&x)]);
        assert!(c[0].is_nan());
        assert_eq!(c[1], -1e-40);
        let s = run("Selu", vec![], &[Some(&x)]);
        assert!(s[0].is_nan());
        // gamma·alpha·x: alpha·eˣ − alpha would cancel to 0.
        assert!((s[1] / -1e-40 - 1.0507 * 1.67326).abs() < 1e-4);
    }

    #[test]
    fn mod_follows_the_divisor_or_the_dividend() {
        let (a, b) = (i(&[4], &[-4, 7, 5, -7]), i(&[4], &[3, -3, 3, -3]));
        assert_eq!(
            run("Mod", vec![], &[Some(&a), Some(&b)]),
            vec![2., -2., 2., -1.]
        );
        assert_eq!(
            run("Mod", vec![("fmod", Attr::Int(1))], &[Some(&a), Some(&b)]),
            vec![-1., 1., 2., -1.]
        );
        let (p, q) = (f(&[2], &[-4.5, 5.5]), f(&[1], &[2.0]));
        assert_eq!(
            run("Mod", vec![("fmod", Attr::Int(1))], &[Some(&p), Some(&q)]),
            vec![-0.5, 1.5]
        );
    }

    #[test]
    fn variadic_broadcasts_and_activations_are_stable() {
        let (a, b, c) = (f(&[2, 1], &[1., 5.]), f(&[3], &[2., 3., 4.]), f(&[], &[0.]));
        assert_eq!(
            run("Max", vec![], &[Some(&a), Some(&b), Some(&c)]),
            vec![2., 3., 4., 5., 5., 5.]
        );
        assert_eq!(
            run("Mean", vec![], &[Some(&a), Some(&b)]),
            vec![1.5, 2., 2.5, 3.5, 4., 4.5]
        );
        let y = run("Softplus", vec![], &[Some(&f(&[2], &[1000., -1000.]))]);
        assert_eq!(y[0], 1000.);
        assert!(y[1] >= 0.0 && y[1] < 1e-300);
        let y = run(
            "Celu",
            vec![("alpha", Attr::Float(2.0))],
            &[Some(&f(&[1], &[-1.]))],
        );
        assert!((y[0] - 2.0 * ((-0.5f64).exp() - 1.0)).abs() < 1e-15);
    }
}
