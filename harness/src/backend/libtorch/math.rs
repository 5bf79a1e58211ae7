//! libtorch lowerings: rounding, trigonometric and hyperbolic functions, the
//! parametric activations, Sign/Reciprocal/Mod/Shrink/PRelu and the variadic
//! Min/Max/Sum/Mean.
//!
//! torch's native op is used where its fixed parameters are ONNX's (elu with
//! alpha 1, selu's constants, softshrink/hardshrink at lambda 0.5, prelu with
//! a per-channel slope); other attribute values are composed from native
//! ops, and the composition must agree with the reference.

use tch::{Kind, Tensor};

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::math::{self, ModKind};

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
type Un = fn(&Tensor) -> Result<Tensor, tch::TchError>;

macro_rules! native {
    ($name:literal, $f:expr) => {
        |c, x| unary(c, x, $name, $f)
    };
}

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native};
    let ops: &[Row] = &[
        (
            "Floor",
            6,
            native!("floor", Tensor::f_floor),
            spec!("Floor"),
            cov!["all" => Native("floor")],
        ),
        (
            "Ceil",
            6,
            native!("ceil", Tensor::f_ceil),
            spec!("Ceil"),
            cov!["all" => Native("ceil")],
        ),
        (
            "Round",
            11,
            native!("round", Tensor::f_round),
            spec!("Round"),
            cov!["all (half to even, as ONNX)" => Native("round")],
        ),
        (
            "Reciprocal",
            6,
            native!("reciprocal", Tensor::f_reciprocal),
            spec!("Reciprocal"),
            cov!["all" => Native("reciprocal")],
        ),
        (
            "Sign",
            9,
            native!("sign", Tensor::f_sign),
            spec!("Sign"),
            cov!["all" => Native("sign")],
        ),
        (
            "Sin",
            7,
            native!("sin", Tensor::f_sin),
            spec!("Sin"),
            cov!["all" => Native("sin")],
        ),
        (
            "Cos",
            7,
            native!("cos", Tensor::f_cos),
            spec!("Cos"),
            cov!["all" => Native("cos")],
        ),
        (
            "Tan",
            7,
            native!("tan", Tensor::f_tan),
            spec!("Tan"),
            cov!["all" => Native("tan")],
        ),
        (
            "Asin",
            7,
            native!("asin", Tensor::f_asin),
            spec!("Asin"),
            cov!["all" => Native("asin")],
        ),
        (
            "Acos",
            7,
            native!("acos", Tensor::f_acos),
            spec!("Acos"),
            cov!["all" => Native("acos")],
        ),
        (
            "Atan",
            7,
            native!("atan", Tensor::f_atan),
            spec!("Atan"),
            cov!["all" => Native("atan")],
        ),
        (
            "Sinh",
            9,
            native!("sinh", Tensor::f_sinh),
            spec!("Sinh"),
            cov!["all" => Native("sinh")],
        ),
        (
            "Cosh",
            9,
            native!("cosh", Tensor::f_cosh),
            spec!("Cosh"),
            cov!["all" => Native("cosh")],
        ),
        (
            "Asinh",
            9,
            native!("asinh", Tensor::f_asinh),
            spec!("Asinh"),
            cov!["all" => Native("asinh")],
        ),
        (
            "Acosh",
            9,
            native!("acosh", Tensor::f_acosh),
            spec!("Acosh"),
            cov!["all" => Native("acosh")],
        ),
        (
            "Atanh",
            9,
            native!("atanh", Tensor::f_atanh),
            spec!("Atanh"),
            cov!["all" => Native("atanh")],
        ),
        (
            "Softplus",
            1,
            native!("softplus", Tensor::f_softplus),
            spec!("Softplus"),
            cov!["all (beta 1, threshold 20: x itself above 20)" => Native("softplus")],
        ),
        (
            "Mish",
            18,
            native!("mish", Tensor::f_mish),
            spec!("Mish"),
            cov!["all" => Native("mish")],
        ),
        (
            "Softsign",
            1,
            softsign,
            spec!("Softsign"),
            cov!["all (no aten softsign)" => Composed("abs, add, div")],
        ),
        (
            "Elu",
            6,
            elu,
            spec!("Elu"),
            cov!["alpha = 1" => Native("elu"), "other alpha" => Composed("expm1, mul, where")],
        ),
        (
            "Selu",
            6,
            selu,
            spec!("Selu"),
            cov!["default alpha, gamma" => Native("selu"), "other" => Composed("exp, mul, sub, where")],
        ),
        (
            "Celu",
            12,
            celu,
            spec!("Celu"),
            cov!["alpha = 1" => Native("celu"), "other alpha" => Composed("div, expm1, mul, clamp, add")],
        ),
        (
            "ThresholdedRelu",
            10,
            thresholded_relu,
            spec!("ThresholdedRelu"),
            cov!["all" => Native("threshold(alpha, 0)")],
        ),
        (
            "Shrink",
            9,
            shrink,
            spec!("Shrink"),
            cov!["lambd = 0.5, bias = 0.5 | 0" => Native("softshrink | hardshrink"), "other" => Composed("gt, lt, add, sub, where")],
        ),
        (
            "Mod",
            10,
            mod_,
            spec!("Mod"),
            cov!["fmod = 1" => Native("fmod"), "fmod = 0 (integers)" => Native("remainder")],
        ),
        (
            "PRelu",
            7,
            prelu,
            spec!("PRelu"),
            cov!["slope of one element or per channel (C,1,..)" => Native("prelu"), "other broadcasts" => Composed("lt, mul, where")],
        ),
        (
            "Min",
            8,
            |c, x| fold(c, x, "minimum", Tensor::f_minimum),
            spec!("Min"),
            cov!["all" => Native("minimum (pairwise)")],
        ),
        (
            "Max",
            8,
            |c, x| fold(c, x, "maximum", Tensor::f_maximum),
            spec!("Max"),
            cov!["all" => Native("maximum (pairwise)")],
        ),
        (
            "Sum",
            8,
            |c, x| fold(c, x, "add", Tensor::f_add),
            spec!("Sum"),
            cov!["all" => Composed("add (pairwise)")],
        ),
        (
            "Mean",
            8,
            mean,
            spec!("Mean"),
            cov!["all" => Composed("add (pairwise), div")],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

fn unary(ctx: &OpCtx, x: &X, name: &'static str, f: Un) -> Out {
    Ok(Lowered::one(f(ctx.input(x, 0)?)?, How::native(name)))
}

/// Zeros shaped like `a` (the fill of Shrink's dead zone).
fn zeros(a: &Tensor) -> OpResult<Tensor> {
    Ok(a.f_zeros_like()?)
}

/// Softsign-1/22: x / (1 + |x|).
fn softsign(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let y = a.f_div(&a.f_abs()?.f_add_scalar(1.0)?)?;
    Ok(Lowered::one(y, How::composed("abs, add, div")))
}

/// Elu-6/22: x < 0 ? alpha·(eˣ − 1) : x.
fn elu(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let alpha = math::act_params(ctx)?.alpha;
    if alpha == 1.0 {
        return Ok(Lowered::one(a.f_elu()?, How::native("elu")));
    }
    let neg = a.f_expm1()?.f_mul_scalar(alpha)?;
    let y = neg.f_where_self(&a.f_lt(0.0)?, a)?;
    Ok(Lowered::one(y, How::composed("expm1, mul, where")))
}

/// Selu-6/22: gamma · (x ≤ 0 ? alpha·eˣ − alpha : x).
fn selu(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let p = math::act_params(ctx)?;
    if p.alpha == math::SELU_ALPHA as f64 && p.gamma == math::SELU_GAMMA as f64 {
        return Ok(Lowered::one(a.f_selu()?, How::native("selu")));
    }
    let neg = a.f_exp()?.f_mul_scalar(p.alpha)?.f_sub_scalar(p.alpha)?;
    let y = neg.f_where_self(&a.f_le(0.0)?, a)?.f_mul_scalar(p.gamma)?;
    Ok(Lowered::one(y, How::composed("exp, mul, sub, where")))
}

/// Celu-12: max(0, x) + min(0, alpha·(e^(x/alpha) − 1)).
fn celu(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let alpha = math::act_params(ctx)?.alpha;
    if alpha == 1.0 {
        return Ok(Lowered::one(a.f_celu()?, How::native("celu")));
    }
    let neg = a
        .f_div_scalar(alpha)?
        .f_expm1()?
        .f_mul_scalar(alpha)?
        .f_clamp_max(0.0)?;
    let y = a.f_clamp_min(0.0)?.f_add(&neg)?;
    Ok(Lowered::one(
        y,
        How::composed("div, expm1, mul, clamp, add"),
    ))
}

/// ThresholdedRelu-10/22: x > alpha ? x : 0, torch's `threshold(alpha, 0)`.
fn thresholded_relu(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let alpha = math::act_params(ctx)?.alpha;
    Ok(Lowered::one(
        a.f_threshold(alpha, 0.0)?,
        How::native("threshold"),
    ))
}

/// Shrink-9: x < −lambd ? x + bias : x > lambd ? x − bias : 0.
fn shrink(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let (bias, lambd) = math::shrink(ctx)?;
    let float = matches!(
        a.f_kind()?,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    );
    if float && lambd == 0.5 && bias == 0.5 {
        return Ok(Lowered::one(a.f_softshrink()?, How::native("softshrink")));
    }
    if float && lambd == 0.5 && bias == 0.0 {
        return Ok(Lowered::one(a.f_hardshrink()?, How::native("hardshrink")));
    }
    let z = zeros(a)?;
    let hi = a.f_sub_scalar(bias)?.f_where_self(&a.f_gt(lambd)?, &z)?;
    let y = a.f_add_scalar(bias)?.f_where_self(&a.f_lt(-lambd)?, &hi)?;
    Ok(Lowered::one(y, How::composed("gt, lt, add, sub, where")))
}

/// Mod-10/13: fmod=1 → torch `fmod` (C fmod), fmod=0 → `remainder` (the divisor's sign).
fn mod_(ctx: &OpCtx, x: &X) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let float = matches!(
        a.f_kind()?,
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    );
    Ok(match math::mod_kind(ctx, float)? {
        ModKind::Trunc => Lowered::one(a.f_fmod_tensor(b)?, How::native("fmod")),
        ModKind::Floor => Lowered::one(a.f_remainder_tensor(b)?, How::native("remainder")),
    })
}

/// PRelu-7/9/16: torch's prelu takes one slope or one per channel (dim 1);
/// any other unidirectional broadcast is composed.
fn prelu(ctx: &OpCtx, x: &X) -> Out {
    let (a, s) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let (xd, sd) = (a.size(), s.size());
    let n: i64 = sd.iter().product();
    let per_channel = xd.len() >= 2
        && sd.len() == xd.len() - 1
        && sd[0] == xd[1]
        && sd[1..].iter().all(|&d| d == 1);
    if n == 1 || per_channel {
        let w = s.f_reshape([n])?;
        return Ok(Lowered::one(a.f_prelu(&w)?, How::native("prelu")));
    }
    let y = a.f_mul(s)?.f_where_self(&a.f_lt(0.0)?, a)?;
    Ok(Lowered::one(y, How::composed("lt, mul, where")))
}

type Pair = fn(&Tensor, &Tensor) -> Result<Tensor, tch::TchError>;

/// The inputs folded left to right with a broadcasting binary op.
fn folded(ctx: &OpCtx, x: &X, f: Pair) -> OpResult<(Tensor, usize)> {
    let ins: Vec<&Tensor> = x.iter().flatten().copied().collect();
    let (first, rest) = ins
        .split_first()
        .ok_or_else(|| ctx.fail("needs at least one input"))?;
    let mut acc = first.shallow_clone();
    for t in rest {
        acc = f(&acc, t)?;
    }
    Ok((acc, ins.len()))
}

/// Min/Max/Sum-8/12/13: pairwise broadcasting folds.
fn fold(ctx: &OpCtx, x: &X, name: &'static str, f: Pair) -> Out {
    let (y, _) = folded(ctx, x, f)?;
    let how = if name == "add" {
        How::composed("add (pairwise)")
    } else {
        How::native(format!("{name} (pairwise)"))
    };
    Ok(Lowered::one(y, how))
}

/// Mean-8/13: the pairwise sum divided by the input count.
fn mean(ctx: &OpCtx, x: &X) -> Out {
    let (y, n) = folded(ctx, x, Tensor::f_add)?;
    Ok(Lowered::one(
        y.f_div_scalar(n as f64)?,
        How::composed("add (pairwise), div"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn round_mod_and_composed_activations() {
        let x = f32s(&[4], &[0.5, 1.5, 2.5, -2.5]);
        let l = run(&node("Round", 1, 1, vec![]), 11, &[Some(&x)]).unwrap();
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap()),
            vec![0.0, 2.0, 2.0, -2.0]
        );
        let (a, b) = (i64s(&[2], &[-4, 7]), i64s(&[2], &[3, -3]));
        let l = run(&node("Mod", 2, 1, vec![]), 13, &[Some(&a), Some(&b)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![2.0, -2.0]);
        let e = node("Elu", 1, 1, vec![("alpha", Attr::Float(2.0))]);
        let l = run(&e, 6, &[Some(&f32s(&[2], &[-1.0, 3.0]))]).unwrap();
        let v = vals(l.outputs[0].as_ref().unwrap());
        assert!(
            (v[0] - 2.0 * ((-1.0f64).exp() - 1.0)).abs() < 1e-6 && v[1] == 3.0,
            "{v:?}"
        );
        assert_eq!(l.how.label(), "composed: expm1, mul, where");
        let s = node(
            "Shrink",
            1,
            1,
            vec![("bias", Attr::Float(1.0)), ("lambd", Attr::Float(1.5))],
        );
        let l = run(&s, 9, &[Some(&f32s(&[3], &[-2.0, 1.0, 2.0]))]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![-1.0, 0.0, 1.0]);
    }
}
