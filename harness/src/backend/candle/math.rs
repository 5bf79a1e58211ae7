//! candle lowerings: rounding, trigonometric functions, the parametric
//! activations, Sign/Reciprocal/Mod/Shrink/PRelu and the variadic
//! Min/Max/Sum/Mean.
//!
//! candle 0.11 has exp/log/sin/cos/tanh, floor/ceil/round/sign, recip, elu
//! and the broadcasting min/max/add; everything else is composed. `expm1`
//! and `log1p`, which candle lacks, are composed with Kahan's corrections
//! (`(u−1)·x/ln u`, `ln w · u/(w−1)`), so Selu/Celu/Softplus/Mish keep a few
//! ulps near 0 where the naive `exp(x) − 1` and `ln(1 + u)` lose every
//! digit. The inverse and hyperbolic functions other than cosh have no
//! faithful composition from these and are unsupported.

use candle_core::Tensor;

use super::{full, Ce};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::math::{self, ModKind};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
/// One registration: op, first opset, lowering, spec link, coverage.
type Row = (
    &'static str,
    u32,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);
type Un = fn(&Tensor) -> candle_core::Result<Tensor>;

macro_rules! native {
    ($name:literal, $f:expr) => {
        |c, x| {
            Ok(Lowered::one(
                ($f as Un)(c.input(x, 0)?).ce()?,
                How::native($name),
            ))
        }
    };
}

macro_rules! missing {
    ($op:literal) => {
        |c, _| {
            Err(c.unsupported(
                "X",
                concat!(
                    "candle 0.11 has no ",
                    $op,
                    " kernel and no faithful composition"
                ),
            ))
        }
    };
}

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native, Unsupported};
    let ops: &[Row] = &[
        (
            "Floor",
            6,
            native!("floor", Tensor::floor),
            spec!("Floor"),
            cov!["all" => Native("floor")],
        ),
        (
            "Ceil",
            6,
            native!("ceil", Tensor::ceil),
            spec!("Ceil"),
            cov!["all" => Native("ceil")],
        ),
        (
            "Round",
            11,
            native!("round", Tensor::round),
            spec!("Round"),
            cov!["all (candle rounds half away from zero)" => Native("round")],
        ),
        (
            "Reciprocal",
            6,
            native!("recip", Tensor::recip),
            spec!("Reciprocal"),
            cov!["all" => Native("recip")],
        ),
        (
            "Sign",
            9,
            native!("sign", Tensor::sign),
            spec!("Sign"),
            cov!["all" => Native("sign")],
        ),
        (
            "Sin",
            7,
            native!("sin", Tensor::sin),
            spec!("Sin"),
            cov!["all" => Native("sin")],
        ),
        (
            "Cos",
            7,
            native!("cos", Tensor::cos),
            spec!("Cos"),
            cov!["all" => Native("cos")],
        ),
        (
            "Tan",
            7,
            tan,
            spec!("Tan"),
            cov!["all" => Composed("sin, cos, div")],
        ),
        (
            "Cosh",
            9,
            cosh,
            spec!("Cosh"),
            cov!["all" => Composed("exp, neg, add, affine(0.5)")],
        ),
        (
            "Asin",
            7,
            missing!("asin"),
            spec!("Asin"),
            cov!["all" => Unsupported("X (no asin kernel)")],
        ),
        (
            "Acos",
            7,
            missing!("acos"),
            spec!("Acos"),
            cov!["all" => Unsupported("X (no acos kernel)")],
        ),
        (
            "Atan",
            7,
            missing!("atan"),
            spec!("Atan"),
            cov!["all" => Unsupported("X (no atan kernel)")],
        ),
        (
            "Sinh",
            9,
            missing!("sinh"),
            spec!("Sinh"),
            cov!["all (exp(x) − exp(−x) cancels near 0)" => Unsupported("X (no sinh kernel)")],
        ),
        (
            "Asinh",
            9,
            missing!("asinh"),
            spec!("Asinh"),
            cov!["all" => Unsupported("X (no asinh kernel)")],
        ),
        (
            "Acosh",
            9,
            missing!("acosh"),
            spec!("Acosh"),
            cov!["all" => Unsupported("X (no acosh kernel)")],
        ),
        (
            "Atanh",
            9,
            missing!("atanh"),
            spec!("Atanh"),
            cov!["all" => Unsupported("X (no atanh kernel)")],
        ),
        (
            "Softplus",
            1,
            softplus,
            spec!("Softplus"),
            cov!["all" => Composed("relu, abs, exp, log1p (Kahan)")],
        ),
        (
            "Mish",
            18,
            mish,
            spec!("Mish"),
            cov!["all" => Composed("softplus (composed), tanh, mul")],
        ),
        (
            "Softsign",
            1,
            softsign,
            spec!("Softsign"),
            cov!["all" => Composed("abs, affine, div")],
        ),
        ("Elu", 6, elu, spec!("Elu"), cov!["all" => Native("elu")]),
        (
            "Selu",
            6,
            selu,
            spec!("Selu"),
            cov!["all" => Composed("expm1 (Kahan), affine, where_cond")],
        ),
        (
            "Celu",
            12,
            celu,
            spec!("Celu"),
            cov!["all" => Composed("expm1 (Kahan), affine, clamp, add")],
        ),
        (
            "ThresholdedRelu",
            10,
            thresholded_relu,
            spec!("ThresholdedRelu"),
            cov!["all" => Composed("gt, where_cond")],
        ),
        (
            "Shrink",
            9,
            shrink,
            spec!("Shrink"),
            cov!["all" => Composed("lt, gt, affine, where_cond")],
        ),
        (
            "Mod",
            10,
            mod_,
            spec!("Mod"),
            cov!["integers" => Composed("div, mul, sub (+ divisor where signs differ)"),
              "floats (fmod = 1)" => Unsupported("fmod (no float remainder kernel; a − trunc(a/b)·b is inexact)")],
        ),
        (
            "PRelu",
            7,
            prelu,
            spec!("PRelu"),
            cov!["all" => Composed("broadcast_mul, lt, where_cond")],
        ),
        (
            "Min",
            8,
            |c, x| fold(c, x, "broadcast_minimum", Tensor::broadcast_minimum),
            spec!("Min"),
            cov!["all" => Native("broadcast_minimum (pairwise)")],
        ),
        (
            "Max",
            8,
            |c, x| fold(c, x, "broadcast_maximum", Tensor::broadcast_maximum),
            spec!("Max"),
            cov!["all" => Native("broadcast_maximum (pairwise)")],
        ),
        (
            "Sum",
            8,
            |c, x| fold(c, x, "broadcast_add", Tensor::broadcast_add),
            spec!("Sum"),
            cov!["all" => Composed("broadcast_add (pairwise)")],
        ),
        (
            "Mean",
            8,
            mean,
            spec!("Mean"),
            cov!["all" => Composed("broadcast_add (pairwise), broadcast_div")],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

/// A scalar of `t`'s dtype broadcast to its shape.
fn like(t: &Tensor, v: f64) -> OpResult<Tensor> {
    full(v, t.dims(), t.dtype(), t.device())
}

/// eˣ − 1 with Kahan's correction: u = eˣ; u == 1 → x; u − 1 == −1 → −1;
/// else (u − 1)·x / ln u.
fn expm1(x: &Tensor) -> OpResult<Tensor> {
    let u = x.exp().ce()?;
    let um1 = u.affine(1.0, -1.0).ce()?;
    let corrected = um1.mul(x).ce()?.div(&u.log().ce()?).ce()?;
    let at_one = u.eq(1f64).ce()?;
    let at_minus_one = um1.eq(-1f64).ce()?;
    let y = at_one.where_cond(x, &corrected).ce()?;
    at_minus_one.where_cond(&um1, &y).ce()
}

/// ln(1 + u) with Kahan's correction: w = 1 + u; w == 1 → u; else ln w · u / (w − 1).
fn log1p(u: &Tensor) -> OpResult<Tensor> {
    let w = u.affine(1.0, 1.0).ce()?;
    let corrected = w
        .log()
        .ce()?
        .mul(u)
        .ce()?
        .div(&w.affine(1.0, -1.0).ce()?)
        .ce()?;
    w.eq(1f64).ce()?.where_cond(u, &corrected).ce()
}

/// max(x, 0) + log1p(e^−|x|).
fn softplus_t(x: &Tensor) -> OpResult<Tensor> {
    let tail = log1p(&x.abs().ce()?.neg().ce()?.exp().ce()?)?;
    x.relu().ce()?.add(&tail).ce()
}

fn softplus(ctx: &OpCtx, x: &In) -> Out {
    let y = softplus_t(ctx.input(x, 0)?)?;
    Ok(Lowered::one(
        y,
        How::composed("relu, abs, exp, log1p (Kahan)"),
    ))
}

/// Mish-18/22: x · tanh(softplus(x)).
fn mish(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let y = a.mul(&softplus_t(a)?.tanh().ce()?).ce()?;
    Ok(Lowered::one(
        y,
        How::composed("softplus (composed), tanh, mul"),
    ))
}

/// Tan-7: sin x / cos x (each correctly rounded, so a few ulps relative).
fn tan(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let y = a.sin().ce()?.div(&a.cos().ce()?).ce()?;
    Ok(Lowered::one(y, How::composed("sin, cos, div")))
}

/// Cosh-9: (eˣ + e^−x)/2 (a sum of positives: no cancellation).
fn cosh(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let y = a
        .exp()
        .ce()?
        .add(&a.neg().ce()?.exp().ce()?)
        .ce()?
        .affine(0.5, 0.0)
        .ce()?;
    Ok(Lowered::one(y, How::composed("exp, neg, add, affine(0.5)")))
}

/// Softsign-1/22: x / (1 + |x|).
fn softsign(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let y = a.div(&a.abs().ce()?.affine(1.0, 1.0).ce()?).ce()?;
    Ok(Lowered::one(y, How::composed("abs, affine, div")))
}

/// Elu-6/22: candle's elu, `(eˣ − 1)·alpha` for x < 0.
fn elu(ctx: &OpCtx, x: &In) -> Out {
    let alpha = math::act_params(ctx)?.alpha;
    Ok(Lowered::one(
        ctx.input(x, 0)?.elu(alpha).ce()?,
        How::native("elu"),
    ))
}

/// Selu-6/22: gamma · (x ≤ 0 ? alpha·expm1(x) : x).
fn selu(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let p = math::act_params(ctx)?;
    let neg = expm1(a)?.affine(p.alpha * p.gamma, 0.0).ce()?;
    let y = a
        .le(0f64)
        .ce()?
        .where_cond(&neg, &a.affine(p.gamma, 0.0).ce()?)
        .ce()?;
    Ok(Lowered::one(
        y,
        How::composed("expm1 (Kahan), affine, where_cond"),
    ))
}

/// Celu-12: max(0, x) + min(0, alpha·expm1(x/alpha)).
fn celu(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let alpha = math::act_params(ctx)?.alpha;
    let mut scaled = a
        .broadcast_div(&full(alpha, &[], a.dtype(), a.device())?)
        .ce()?;
    if alpha > 0.0 {
        // The positive branch is clamped to 0 anyway; Kahan's expm1 of a
        // large x/alpha is inf/inf = NaN, so clamp its argument instead.
        scaled = scaled.minimum(0f64).ce()?;
    }
    let neg = expm1(&scaled)?
        .affine(alpha, 0.0)
        .ce()?
        .minimum(0f64)
        .ce()?;
    let y = a.relu().ce()?.add(&neg).ce()?;
    Ok(Lowered::one(
        y,
        How::composed("expm1 (Kahan), affine, clamp, add"),
    ))
}

/// ThresholdedRelu-10/22: x > alpha ? x : 0.
fn thresholded_relu(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let alpha = math::act_params(ctx)?.alpha;
    let y = a.gt(alpha).ce()?.where_cond(a, &like(a, 0.0)?).ce()?;
    Ok(Lowered::one(y, How::composed("gt, where_cond")))
}

/// Shrink-9: x < −lambd ? x + bias : x > lambd ? x − bias : 0.
fn shrink(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let (bias, lambd) = math::shrink(ctx)?;
    let hi = a
        .gt(lambd)
        .ce()?
        .where_cond(&a.affine(1.0, -bias).ce()?, &like(a, 0.0)?)
        .ce()?;
    let y = a
        .lt(-lambd)
        .ce()?
        .where_cond(&a.affine(1.0, bias).ce()?, &hi)
        .ce()?;
    Ok(Lowered::one(y, How::composed("lt, gt, affine, where_cond")))
}

/// Mod-10/13 on integers: r = a − (a/b)·b (candle divides truncating), plus
/// b where fmod = 0 and r's sign differs from b's. A zero divisor fails
/// first (candle's integer division panics).
fn mod_(ctx: &OpCtx, x: &In) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let kind = math::mod_kind(ctx, super::is_float(a))?;
    if super::is_float(a) {
        return Err(ctx.unsupported(
            "fmod",
            "candle 0.11 has no float remainder kernel; a − trunc(a/b)·b is inexact",
        ));
    }
    if super::host_ints(b)?.contains(&0) {
        return Err(ctx.fail("Mod: integer divisor `B` holds 0"));
    }
    let r = a
        .broadcast_sub(&a.broadcast_div(b).ce()?.broadcast_mul(b).ce()?)
        .ce()?;
    if kind == ModKind::Trunc {
        return Ok(Lowered::one(r, How::composed("div, mul, sub")));
    }
    let zero = like(&r, 0.0)?;
    let differ = r.lt(&zero).ce()?.broadcast_ne(&b.lt(0f64).ce()?).ce()?;
    let fix = differ.mul(&r.ne(&zero).ce()?).ce()?;
    let y = fix.where_cond(&r.broadcast_add(b).ce()?, &r).ce()?;
    Ok(Lowered::one(
        y,
        How::composed("div, mul, sub, add divisor where signs differ"),
    ))
}

/// PRelu-7/9/16: x < 0 ? slope·x : x with the slope broadcast to X.
fn prelu(ctx: &OpCtx, x: &In) -> Out {
    let (a, s) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let scaled = a.broadcast_mul(s).ce()?;
    if scaled.dims() != a.dims() {
        return Err(ctx.fail(format!(
            "`slope` {:?} does not broadcast to X {:?}",
            s.dims(),
            a.dims()
        )));
    }
    let y = a.lt(0f64).ce()?.where_cond(&scaled, a).ce()?;
    Ok(Lowered::one(
        y,
        How::composed("broadcast_mul, lt, where_cond"),
    ))
}

type Pair = fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>;

fn folded(ctx: &OpCtx, x: &In, f: Pair) -> OpResult<(Tensor, usize)> {
    let ins: Vec<&Tensor> = x.iter().flatten().copied().collect();
    let (first, rest) = ins
        .split_first()
        .ok_or_else(|| ctx.fail("needs at least one input"))?;
    let mut acc = (*first).clone();
    for t in rest {
        acc = f(&acc, t).ce()?;
    }
    Ok((acc, ins.len()))
}

/// Min/Max/Sum-8/12/13: pairwise broadcasting folds.
fn fold(ctx: &OpCtx, x: &In, name: &'static str, f: Pair) -> Out {
    let (y, _) = folded(ctx, x, f)?;
    let how = if name == "broadcast_add" {
        How::composed("broadcast_add (pairwise)")
    } else {
        How::native(format!("{name} (pairwise)"))
    };
    Ok(Lowered::one(y, how))
}

/// Mean-8/13: the pairwise sum divided (exactly, not times 1/n) by the count.
fn mean(ctx: &OpCtx, x: &In) -> Out {
    let (y, n) = folded(ctx, x, Tensor::broadcast_add)?;
    let y = y
        .broadcast_div(&full(n as f64, &[], y.dtype(), y.device())?)
        .ce()?;
    Ok(Lowered::one(
        y,
        How::composed("broadcast_add (pairwise), broadcast_div"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;
    use crate::op::math::{SELU_ALPHA, SELU_GAMMA};

    /// Relative error within `ulps` float32 ulps of each wanted value.
    fn rel_close(got: &[f32], want: &[f64], ulps: f64) {
        for (g, w) in got.iter().zip(want) {
            let err = (*g as f64 - w).abs() / w.abs();
            assert!(err <= ulps * f32::EPSILON as f64, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn kahan_compositions_keep_digits_near_zero() {
        // exp(-1e-6) - 1 in float32 is -9.5e-7: the naive form is 5% off.
        let xs = [-1e-6f32, -0.3, -20.0];
        let (y, _, how) = run1(&node("Selu", 1, 1, vec![]), 6, &[Some(&f32t(&[3], &xs))]);
        let (a, g) = (SELU_ALPHA as f64, SELU_GAMMA as f64);
        let want: Vec<f64> = xs.iter().map(|&v| g * a * (v as f64).exp_m1()).collect();
        rel_close(&y, &want, 4.0);
        assert_eq!(how, "composed: expm1 (Kahan), affine, where_cond");
        // ln(1 + e^-30) is e^-30, not 0.
        let (y, _, _) = run1(
            &node("Softplus", 1, 1, vec![]),
            1,
            &[Some(&f32t(&[2], &[-30.0, 1e-3]))],
        );
        let sp = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
        rel_close(&y, &[sp(-30.0), sp(1e-3f32 as f64)], 4.0);
        let m = node("Mod", 2, 1, vec![("fmod", Attr::Int(0))]);
        let (y, _, _) = run1(
            &m,
            13,
            &[Some(&i64t(&[-7, 7, 6])), Some(&i64t(&[3, -3, 3]))],
        );
        assert_eq!(y, vec![2.0, -2.0, 0.0]);
    }

    #[test]
    fn celu_of_large_and_infinite_x_is_x() {
        // Kahan's expm1 of 1e4 is inf/inf: the positive branch must not see it.
        let xs = [1e4f32, f32::INFINITY, -1e4, 0.5];
        let (y, _, _) = run1(&node("Celu", 1, 1, vec![]), 12, &[Some(&f32t(&[4], &xs))]);
        assert_eq!(y, vec![1e4, f32::INFINITY, -1.0, 0.5]);
    }
}
