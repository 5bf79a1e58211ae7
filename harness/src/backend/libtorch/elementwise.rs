//! libtorch lowerings: elementwise arithmetic, activations, Clip and Cast.
//!
//! Binary ops follow ONNX multidirectional broadcasting
//! (<https://onnx.ai/onnx/repo-docs/Broadcasting.html>), which is torch's.

use tch::{Kind, Tensor};

use super::{is_float, kind_of};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::tensor::DType;

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "Add",
        add,
        spec!("Add"),
        cov!["all" => Label::Native("add")],
    );
    r.op(
        "Sub",
        sub,
        spec!("Sub"),
        cov!["all" => Label::Native("sub")],
    );
    r.op(
        "Mul",
        mul,
        spec!("Mul"),
        cov!["all" => Label::Native("mul")],
    );
    r.op(
        "Div",
        div,
        spec!("Div"),
        cov!["float" => Label::Native("div"), "integer (ONNX truncates)" => Label::Native("div(rounding_mode=trunc)")],
    );
    r.op(
        "Pow",
        pow,
        spec!("Pow"),
        cov!["exponent dtype = base dtype, or the promoted dtype is the base's" => Label::Native("pow"),
             "mixed dtypes promoting past the base's" => Label::Composed("pow, to")],
    );
    r.op(
        "Sqrt",
        |c, x| unary(c, x, "sqrt", Tensor::f_sqrt),
        spec!("Sqrt"),
        cov!["all" => Label::Native("sqrt")],
    );
    r.op(
        "Exp",
        |c, x| unary(c, x, "exp", Tensor::f_exp),
        spec!("Exp"),
        cov!["all" => Label::Native("exp")],
    );
    r.op(
        "Log",
        |c, x| unary(c, x, "log", Tensor::f_log),
        spec!("Log"),
        cov!["all" => Label::Native("log")],
    );
    r.op(
        "Neg",
        |c, x| unary(c, x, "neg", Tensor::f_neg),
        spec!("Neg"),
        cov!["all" => Label::Native("neg")],
    );
    r.op(
        "Abs",
        |c, x| unary(c, x, "abs", Tensor::f_abs),
        spec!("Abs"),
        cov!["all" => Label::Native("abs")],
    );
    r.op(
        "Erf",
        |c, x| unary(c, x, "erf", Tensor::f_erf),
        spec!("Erf"),
        cov!["all" => Label::Native("erf")],
    );
    r.op(
        "Relu",
        |c, x| unary(c, x, "relu", Tensor::f_relu),
        spec!("Relu"),
        cov!["all" => Label::Native("relu")],
    );
    r.op(
        "Sigmoid",
        |c, x| unary(c, x, "sigmoid", Tensor::f_sigmoid),
        spec!("Sigmoid"),
        cov!["all" => Label::Native("sigmoid")],
    );
    r.op(
        "Tanh",
        |c, x| unary(c, x, "tanh", Tensor::f_tanh),
        spec!("Tanh"),
        cov!["all" => Label::Native("tanh")],
    );
    r.op(
        "LeakyRelu",
        leaky_relu,
        spec!("LeakyRelu"),
        cov!["alpha = 0.01" => Label::Native("leaky_relu"), "other alpha" => Label::Native("prelu (1-element weight = alpha)")],
    );
    r.op(
        "HardSigmoid",
        hard_sigmoid,
        spec!("HardSigmoid"),
        cov!["alpha = 1/6, beta = 0.5" => Label::Native("hardsigmoid"),
             "other alpha/beta (ONNX default 0.2, 0.5)" => Label::Composed("mul, add, clamp")],
    );
    r.op(
        "HardSwish",
        |c, x| unary(c, x, "hardswish", Tensor::f_hardswish),
        spec!("HardSwish"),
        cov!["all" => Label::Native("hardswish")],
    );
    r.op(
        "Gelu",
        gelu,
        spec!("Gelu"),
        cov!["approximate = none | tanh" => Label::Native("gelu(approximate)")],
    );
    r.op(
        "Clip",
        clip,
        spec!("Clip"),
        cov!["min and/or max given" => Label::Native("clamp"), "neither" => Label::Native("alias")],
    );
    r.op(
        "Cast",
        cast,
        spec!("Cast"),
        cov!["to = float16/bfloat16/float/double/int8-64/uint8/bool" => Label::Native("to"),
             "to = uint16/32/64, string, float8, int4" => Label::Unsupported("to")],
    );
}

fn unary(
    ctx: &OpCtx,
    x: &X,
    name: &'static str,
    f: fn(&Tensor) -> Result<Tensor, tch::TchError>,
) -> OpResult<Lowered<Tensor>> {
    let a = ctx.input(x, 0)?;
    Ok(Lowered::one(f(a)?, How::native(name)))
}

fn binary<'a>(ctx: &OpCtx, x: &X<'a>) -> OpResult<(&'a Tensor, &'a Tensor)> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let (ka, kb) = (a.f_kind()?, b.f_kind()?);
    if ka != kb {
        return Err(ctx.fail(format!(
            "{} needs equal input types, got {ka:?} and {kb:?}",
            ctx.node.op_type
        )));
    }
    Ok((a, b))
}

/// Add-7/13/14: A + B; integers wrap as torch's do.
fn add(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (a, b) = binary(ctx, x)?;
    Ok(Lowered::one(a.f_add(b)?, How::native("add")))
}

/// Sub-7/13/14: A - B.
fn sub(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (a, b) = binary(ctx, x)?;
    Ok(Lowered::one(a.f_sub(b)?, How::native("sub")))
}

/// Mul-7/13/14: A * B.
fn mul(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (a, b) = binary(ctx, x)?;
    Ok(Lowered::one(a.f_mul(b)?, How::native("mul")))
}

/// Div-7/13/14: A / B; integer division truncates toward zero in ONNX,
/// torch's `/` would return a float true quotient.
fn div(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (a, b) = binary(ctx, x)?;
    if is_float(a)? {
        Ok(Lowered::one(a.f_div(b)?, How::native("div")))
    } else {
        Ok(Lowered::one(
            a.f_divide_tensor_mode(b, "trunc")?,
            How::native("div(rounding_mode=trunc)"),
        ))
    }
}

/// Pow-7/12/13/15: Z = X ^ Y, Z has X's type (Y may have another numeric type).
fn pow(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let out = a.f_pow(b)?;
    let ka = a.f_kind()?;
    if out.f_kind()? == ka {
        Ok(Lowered::one(out, How::native("pow")))
    } else {
        Ok(Lowered::one(out.f_to_kind(ka)?, How::composed("pow, to")))
    }
}

/// LeakyRelu-6/16: x if x >= 0 else alpha * x (alpha default 0.01).
fn leaky_relu(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = ctx.input(x, 0)?;
    let alpha = ctx.float("alpha", 0.01)?;
    if alpha == 0.01f32 && a.f_kind()? != Kind::Double {
        // torch's default slope is the double 0.01, which rounds to this f32 in f32/f16/bf16 math.
        return Ok(Lowered::one(a.f_leaky_relu()?, How::native("leaky_relu")));
    }
    let w = Tensor::f_full([1], alpha as f64, (a.f_kind()?, a.device()))?;
    Ok(Lowered::one(a.f_prelu(&w)?, How::native("prelu")))
}

/// HardSigmoid-6/22: max(0, min(1, alpha * x + beta)), alpha 0.2, beta 0.5 by default;
/// torch's `hardsigmoid` is alpha = 1/6, beta = 0.5.
fn hard_sigmoid(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = ctx.input(x, 0)?;
    let (alpha, beta) = (ctx.float("alpha", 0.2)?, ctx.float("beta", 0.5)?);
    if alpha == 1.0f32 / 6.0 && beta == 0.5 {
        return Ok(Lowered::one(a.f_hardsigmoid()?, How::native("hardsigmoid")));
    }
    let y = a
        .f_mul_scalar(alpha as f64)?
        .f_add_scalar(beta as f64)?
        .f_clamp(0.0, 1.0)?;
    Ok(Lowered::one(y, How::composed("mul, add, clamp")))
}

/// Gelu-20: approximate = "none" (erf) or "tanh".
fn gelu(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = ctx.input(x, 0)?;
    let approx = ctx.string("approximate", "none")?;
    if approx != "none" && approx != "tanh" {
        return Err(ctx.unsupported(
            "approximate",
            format!("`{approx}` is neither none nor tanh"),
        ));
    }
    Ok(Lowered::one(
        a.f_gelu(&approx)?,
        How::native(format!("gelu(approximate={approx})")),
    ))
}

/// Clip-6 (attributes min/max, defaults ∓FLT_MAX) and Clip-11/12/13 (optional
/// 0-d inputs min/max). If min > max every value becomes max, as in torch.
fn clip(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = ctx.input(x, 0)?;
    if ctx.opset < 11 {
        let lo = ctx.float("min", f32::MIN)? as f64;
        let hi = ctx.float("max", f32::MAX)? as f64;
        return Ok(Lowered::one(a.f_clamp(lo, hi)?, How::native("clamp")));
    }
    let lo = x.get(1).copied().flatten();
    let hi = x.get(2).copied().flatten();
    if lo.is_none() && hi.is_none() {
        return Ok(Lowered::one(a.f_alias()?, How::native("alias")));
    }
    Ok(Lowered::one(
        a.f_clamp_tensor(lo, hi)?,
        How::native("clamp"),
    ))
}

/// Cast-6/9/13/19/21: element conversion; float→int follows the C cast, as in ORT.
fn cast(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = ctx.input(x, 0)?;
    let code = ctx.int("to", 0)?;
    let dtype = DType::from_onnx(code as i32).ok_or_else(|| {
        ctx.unsupported(
            "to",
            format!("ONNX data type {code} is not handled by xdiff"),
        )
    })?;
    let kind = kind_of(dtype).ok_or_else(|| {
        ctx.unsupported("to", format!("libtorch (tch 0.24) has no {dtype} dtype"))
    })?;
    // `saturate` (opset 19) only concerns float8 targets, which are not handled.
    Ok(Lowered::one(a.f_to_kind(kind)?, How::native("to")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn integer_div_truncates() {
        let n = node("Div", 2, 1, vec![]);
        let (a, b) = (i64s(&[2], &[-7, 7]), i64s(&[2], &[2, -2]));
        let l = run(&n, 14, &[Some(&a), Some(&b)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![-3.0, -3.0]);
        assert_eq!(l.how.label(), "native: div(rounding_mode=trunc)");
    }

    #[test]
    fn hard_sigmoid_onnx_default_is_composed() {
        let x = f32s(&[3], &[-3.0, 0.0, 2.0]);
        let l = run(&node("HardSigmoid", 1, 1, vec![]), 13, &[Some(&x)]).unwrap();
        // 0.2 * x + 0.5 clamped: [0, 0.5, 0.9]
        let v = vals(l.outputs[0].as_ref().unwrap());
        assert!(
            (v[2] - 0.9).abs() < 1e-6 && v[0] == 0.0 && v[1] == 0.5,
            "{v:?}"
        );
        assert_eq!(l.how.label(), "composed: mul, add, clamp");
        let torchy = node("HardSigmoid", 1, 1, vec![("alpha", Attr::Float(1.0 / 6.0))]);
        assert_eq!(
            run(&torchy, 13, &[Some(&x)]).unwrap().how.label(),
            "native: hardsigmoid"
        );
    }

    #[test]
    fn leaky_relu_other_alpha_uses_prelu() {
        let x = f32s(&[2], &[-2.0, 3.0]);
        let l = run(
            &node("LeakyRelu", 1, 1, vec![("alpha", Attr::Float(0.5))]),
            16,
            &[Some(&x)],
        )
        .unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![-1.0, 3.0]);
    }

    #[test]
    fn cast_to_uint32_is_unsupported_by_name() {
        let x = f32s(&[1], &[1.0]);
        let e = run(
            &node("Cast", 1, 1, vec![("to", Attr::Int(12))]),
            13,
            &[Some(&x)],
        )
        .err()
        .unwrap();
        assert!(format!("{e:?}").contains("Cast to"), "{e:?}");
    }
}
