//! candle lowerings: elementwise arithmetic, activations, Cast, Clip,
//! Dropout and Identity.
//!
//! Binary ops use candle's `broadcast_*` ops, which implement numpy
//! (ONNX multidirectional) broadcasting but require both operands to have
//! the same dtype, as ONNX does.

use candle_core::{DType as CDType, Tensor};

use super::{candle_dtype, host_floats, is_float, keep_bool, upload, Ce, Scope};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::tensor::DType;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::*;
    r.op(
        "Add",
        add,
        "https://onnx.ai/onnx/operators/onnx__Add.html",
        cov!["all" => Native("broadcast_add")],
    );
    r.op(
        "Sub",
        sub,
        "https://onnx.ai/onnx/operators/onnx__Sub.html",
        cov!["all" => Native("broadcast_sub")],
    );
    r.op(
        "Mul",
        mul,
        "https://onnx.ai/onnx/operators/onnx__Mul.html",
        cov!["all" => Native("broadcast_mul")],
    );
    r.op(
        "Div",
        div,
        "https://onnx.ai/onnx/operators/onnx__Div.html",
        cov!["all (integer /0 checked first: candle panics)" => Native("broadcast_div")],
    );
    r.op(
        "Pow",
        pow,
        "https://onnx.ai/onnx/operators/onnx__Pow.html",
        cov![
            "one-element float exponent" => Native("powf"),
            "tensor exponent, same dtypes (candle computes exp(y·ln x): NaN for negative bases)" => Native("broadcast_pow"),
            "exponent of another dtype" => Composed("to_dtype, broadcast_pow"),
            "integer base" => Unsupported("T (candle's pow has float kernels only)"),
        ],
    );
    r.op(
        "Sqrt",
        sqrt,
        "https://onnx.ai/onnx/operators/onnx__Sqrt.html",
        cov!["all" => Native("sqrt")],
    );
    r.op(
        "Exp",
        exp,
        "https://onnx.ai/onnx/operators/onnx__Exp.html",
        cov!["all" => Native("exp")],
    );
    r.op(
        "Log",
        log,
        "https://onnx.ai/onnx/operators/onnx__Log.html",
        cov!["all" => Native("log")],
    );
    r.op(
        "Neg",
        neg,
        "https://onnx.ai/onnx/operators/onnx__Neg.html",
        cov![
            "float" => Native("neg"),
            "integer (candle's neg has no integer kernel)" => Composed("zeros_like, sub"),
        ],
    );
    r.op(
        "Abs",
        abs,
        "https://onnx.ai/onnx/operators/onnx__Abs.html",
        cov!["all" => Native("abs")],
    );
    r.op(
        "Erf",
        erf,
        "https://onnx.ai/onnx/operators/onnx__Erf.html",
        cov!["all" => Native("erf")],
    );
    r.op(
        "Tanh",
        tanh,
        "https://onnx.ai/onnx/operators/onnx__Tanh.html",
        cov!["all" => Native("tanh")],
    );
    r.op(
        "Relu",
        relu,
        "https://onnx.ai/onnx/operators/onnx__Relu.html",
        cov!["all" => Native("relu")],
    );
    r.op(
        "LeakyRelu",
        leaky_relu,
        "https://onnx.ai/onnx/operators/onnx__LeakyRelu.html",
        cov!["all" => Native("candle_nn::ops::leaky_relu")],
    );
    r.op(
        "Sigmoid",
        sigmoid,
        "https://onnx.ai/onnx/operators/onnx__Sigmoid.html",
        cov!["all" => Native("candle_nn::ops::sigmoid")],
    );
    r.op(
        "HardSigmoid",
        hard_sigmoid,
        "https://onnx.ai/onnx/operators/onnx__HardSigmoid.html",
        cov!["all (candle_nn::ops::hard_sigmoid is x/6+0.5, not ONNX's alpha=0.2)" => Composed("affine, clamp")],
    );
    r.op(
        "HardSwish",
        hard_swish,
        "https://onnx.ai/onnx/operators/onnx__HardSwish.html",
        cov!["all" => Composed("affine, clamp, mul")],
    );
    r.range(
        "Gelu",
        20,
        u32::MAX,
        gelu,
        "https://onnx.ai/onnx/operators/onnx__Gelu.html",
        cov!["approximate=none" => Native("gelu_erf"), "approximate=tanh" => Native("gelu")],
    );
    r.range(
        "Clip",
        1,
        10,
        clip,
        "https://onnx.ai/onnx/operators/onnx__Clip.html",
        cov!["min/max attributes" => Native("clamp")],
    );
    r.range(
        "Clip",
        11,
        u32::MAX,
        clip,
        "https://onnx.ai/onnx/operators/onnx__Clip.html",
        cov![
            "min and max inputs" => Native("clamp"),
            "one bound" => Native("maximum | minimum"),
            "no bounds" => Native("clone"),
        ],
    );
    r.op(
        "Cast",
        cast,
        "https://onnx.ai/onnx/operators/onnx__Cast.html",
        cov![
            "to a candle dtype (float->int saturates like Rust `as`)" => Native("to_dtype"),
            "to bool" => Composed("ne(0)"),
            "to int8/uint16/uint64/string" => Unsupported("to: no candle dtype"),
        ],
    );
    r.op(
        "Dropout",
        dropout,
        "https://onnx.ai/onnx/operators/onnx__Dropout.html",
        cov![
            "inference" => Native("clone"),
            "inference with mask output" => Composed("clone, ones_like"),
            "training_mode=true" => Unsupported("training_mode: random"),
        ],
    );
    r.op(
        "Identity",
        identity,
        "https://onnx.ai/onnx/operators/onnx__Identity.html",
        cov!["all" => Native("clone")],
    );
    for (since, until) in [(15, 17), (18, u32::MAX)] {
        r.range(
            "OptionalHasElement",
            since,
            until,
            optional_has_element,
            "https://onnx.ai/onnx/operators/onnx__OptionalHasElement.html",
            cov!["tensor or omitted input (bools are u8 0/1)" => Native("Tensor::new(u8)")],
        );
        r.range(
            "OptionalGetElement",
            since,
            until,
            identity,
            "https://onnx.ai/onnx/operators/onnx__OptionalGetElement.html",
            cov!["tensor input" => Native("clone")],
        );
    }
}

fn binary(
    ctx: &OpCtx,
    x: &In,
    f: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    name: &str,
) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    Ok(Lowered::one(f(a, b).ce()?, How::native(name)))
}

/// Add-7/13/14: A + B (integer overflow follows Rust: wraps in release builds).
fn add(ctx: &OpCtx, x: &In) -> Out {
    binary(ctx, x, Tensor::broadcast_add, "broadcast_add")
}

fn sub(ctx: &OpCtx, x: &In) -> Out {
    binary(ctx, x, Tensor::broadcast_sub, "broadcast_sub")
}

fn mul(ctx: &OpCtx, x: &In) -> Out {
    binary(ctx, x, Tensor::broadcast_mul, "broadcast_mul")
}

/// Div-7/13/14: integer division truncates in both ONNX and candle; candle
/// panics on integer division by zero, so that is checked first.
fn div(ctx: &OpCtx, x: &In) -> Out {
    let b = ctx.input(x, 1)?;
    if !is_float(b) {
        let zeros = b
            .eq(0f64)
            .and_then(|m| m.to_dtype(CDType::U32))
            .and_then(|m| m.sum_all())
            .ce()?;
        if zeros.to_scalar::<u32>().ce()? > 0 {
            return Err(ctx.fail("integer division by zero"));
        }
    }
    binary(ctx, x, Tensor::broadcast_div, "broadcast_div")
}

/// Pow-7/12/13/15. A one-element exponent (x², x^0.5: how models write
/// it) lowers to candle's `powf`, the elementwise `f32::powf`/`f64::powf`
/// with IEEE pow semantics ((-2)² = 4); a tensor exponent to
/// `broadcast_pow`, which candle computes as exp(y·ln x), exposed as is.
fn pow(ctx: &OpCtx, x: &In) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    if !is_float(a) {
        return Err(ctx.unsupported(
            "T",
            format!(
                "{:?} base: candle's pow is exp(y·ln x), float kernels only",
                a.dtype()
            ),
        ));
    }
    if let Some(e) = scalar_exponent(a, b)? {
        return Ok(Lowered::one(a.powf(e).ce()?, How::native("powf")));
    }
    if a.dtype() == b.dtype() {
        return Ok(Lowered::one(
            a.broadcast_pow(b).ce()?,
            How::native("broadcast_pow"),
        ));
    }
    let b = b.to_dtype(a.dtype()).ce()?;
    Ok(Lowered::one(
        a.broadcast_pow(&b).ce()?,
        How::composed("to_dtype, broadcast_pow"),
    ))
}

/// The exponent as one float when it has one element, the base is a float
/// tensor and broadcasting keeps the base's shape (rank not above it).
fn scalar_exponent(a: &Tensor, b: &Tensor) -> OpResult<Option<f64>> {
    if !is_float(a) || b.elem_count() != 1 || b.rank() > a.rank() {
        return Ok(None);
    }
    let e = b
        .to_dtype(CDType::F64)
        .ce()?
        .flatten_all()
        .ce()?
        .to_vec1::<f64>()
        .ce()?;
    Ok(e.first().copied())
}

fn unary(ctx: &OpCtx, x: &In, f: fn(&Tensor) -> candle_core::Result<Tensor>, name: &str) -> Out {
    Ok(Lowered::one(f(ctx.input(x, 0)?).ce()?, How::native(name)))
}

fn sqrt(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, Tensor::sqrt, "sqrt")
}
fn exp(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, Tensor::exp, "exp")
}
fn log(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, Tensor::log, "log")
}
/// Neg: candle's `neg` has float kernels only (it panics on integers), so
/// integers are `0 − x`, exact and wrapping like ONNX's fixed-width ints.
fn neg(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    if is_float(a) {
        return unary(ctx, x, Tensor::neg, "neg");
    }
    let y = a.zeros_like().ce()?.sub(a).ce()?;
    Ok(Lowered::one(y, How::composed("zeros_like, sub")))
}
fn abs(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, Tensor::abs, "abs")
}
fn erf(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, Tensor::erf, "erf")
}
fn tanh(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, Tensor::tanh, "tanh")
}
fn relu(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, Tensor::relu, "relu")
}

/// LeakyRelu-6/16: alpha default 0.01.
fn leaky_relu(ctx: &OpCtx, x: &In) -> Out {
    let alpha = ctx.float("alpha", 0.01)? as f64;
    let y = candle_nn::ops::leaky_relu(ctx.input(x, 0)?, alpha).ce()?;
    Ok(Lowered::one(y, How::native("candle_nn::ops::leaky_relu")))
}

fn sigmoid(ctx: &OpCtx, x: &In) -> Out {
    unary(ctx, x, candle_nn::ops::sigmoid, "candle_nn::ops::sigmoid")
}

/// HardSigmoid-6: max(0, min(1, alpha·x + beta)), alpha 0.2, beta 0.5.
fn hard_sigmoid(ctx: &OpCtx, x: &In) -> Out {
    let alpha = ctx.float("alpha", 0.2)? as f64;
    let beta = ctx.float("beta", 0.5)? as f64;
    let y = ctx
        .input(x, 0)?
        .affine(alpha, beta)
        .and_then(|t| t.clamp(0f64, 1f64))
        .ce()?;
    Ok(Lowered::one(y, How::composed("affine, clamp")))
}

/// HardSwish-14: x · max(0, min(1, x/6 + 1/2)).
fn hard_swish(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let y = a
        .affine(1.0 / 6.0, 0.5)
        .and_then(|t| t.clamp(0f64, 1f64))
        .and_then(|t| t.mul(a))
        .ce()?;
    Ok(Lowered::one(y, How::composed("affine, clamp, mul")))
}

/// Gelu-20: approximate "none" (erf) or "tanh". candle's `gelu` is the tanh form.
fn gelu(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    match ctx.string("approximate", "none")?.as_str() {
        "none" => Ok(Lowered::one(a.gelu_erf().ce()?, How::native("gelu_erf"))),
        "tanh" => Ok(Lowered::one(a.gelu().ce()?, How::native("gelu"))),
        other => Err(ctx.unsupported("approximate", format!("unknown value `{other}`"))),
    }
}

/// Clip-6 (min/max attributes) and Clip-11/12/13 (optional scalar inputs):
/// min(max(x, min), max); with min > max every value becomes max, as in candle.
fn clip(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let (lo, hi) = if ctx.opset < 11 {
        (
            Some(ctx.float("min", f32::MIN)? as f64),
            Some(ctx.float("max", f32::MAX)? as f64),
        )
    } else {
        let bound = |i: usize| -> OpResult<Option<f64>> {
            match x.get(i).copied().flatten() {
                None => Ok(None),
                Some(t) => match host_floats(t)?.as_slice() {
                    [v] => Ok(Some(*v)),
                    v => Err(ctx.fail(format!(
                        "input #{i} must be a scalar, got {} values",
                        v.len()
                    ))),
                },
            }
        };
        (bound(1)?, bound(2)?)
    };
    let (y, op) = match (lo, hi) {
        (Some(l), Some(h)) => (a.clamp(l, h), "clamp"),
        (Some(l), None) => (a.maximum(l), "maximum"),
        (None, Some(h)) => (a.minimum(h), "minimum"),
        (None, None) => (Ok(a.clone()), "clone"),
    };
    Ok(Lowered::one(y.ce()?, How::native(op)))
}

/// Cast-6/9/13/19/21: `to_dtype` (Rust `as` semantics: float->int
/// saturates, NaN -> 0; ONNX leaves out-of-range undefined).
fn cast(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let code = ctx.int("to", 0)? as i32;
    let to =
        DType::from_onnx(code).ok_or_else(|| ctx.unsupported("to", format!("ONNX type {code}")))?;
    cast_to(ctx, a, to)
}

/// Cast's conversion of `a` to `to` (shared with CastLike).
pub(super) fn cast_to(ctx: &OpCtx, a: &Tensor, to: DType) -> Out {
    if to == DType::Bool {
        let y = if Scope::of(ctx).is_bool(a) {
            a.clone()
        } else {
            a.ne(0f64).ce()?
        };
        return Ok(Lowered::one(
            Scope::of(ctx).mark_bool(y),
            How::composed("ne(0)"),
        ));
    }
    let cd = candle_dtype(to)
        .ok_or_else(|| ctx.unsupported("to", format!("{to} has no candle dtype")))?;
    Ok(Lowered::one(a.to_dtype(cd).ce()?, How::native("to_dtype")))
}

/// Dropout-7/10/12/13: inference is the identity (ratio ignored, mask all true).
fn dropout(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    if let Some(t) = x.get(2).copied().flatten() {
        let v = super::host_ints(&t.to_dtype(CDType::I64).ce()?)?;
        if v.iter().any(|&b| b != 0) {
            return Err(ctx.unsupported("training_mode", "true draws random numbers"));
        }
    }
    if ctx.opset < 7 && ctx.int("is_test", 0)? == 0 {
        return Err(ctx.unsupported("is_test", "0 (training) draws random numbers"));
    }
    let wants_mask = ctx.wants_output(1);
    if !wants_mask {
        return Ok(Lowered::one(
            keep_bool(ctx, a, a.clone()),
            How::native("clone"),
        ));
    }
    let mask = Scope::of(ctx).mark_bool(Tensor::ones(a.dims(), CDType::U8, a.device()).ce()?);
    Ok(Lowered::many(
        vec![a.clone(), mask],
        How::composed("clone, ones_like"),
    ))
}

/// OptionalHasElement-15/18 on xdiff's values (tensors, never optional):
/// whether the input is given (see the reference's `optional_has_element`).
fn optional_has_element(ctx: &OpCtx, x: &In) -> Out {
    let present = x.first().copied().flatten().is_some();
    let host = crate::tensor::Tensor::Bool(ndarray::arr0(present).into_dyn());
    let scope = Scope::of(ctx);
    let t = upload(&host, scope).map_err(|e| ctx.fail(e))?;
    Ok(Lowered::one(t, How::native("Tensor::new(u8)")))
}

fn identity(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    Ok(Lowered::one(a.clone(), How::native("clone")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn gelu_none_and_tanh_differ_as_documented() {
        let x = f32t(&[3], &[-1.0, 0.5, 2.69]);
        let erf = run1(&node("Gelu", 1, 1, vec![]), 20, &[Some(&x)]);
        let tanh = run1(
            &node(
                "Gelu",
                1,
                1,
                vec![("approximate", Attr::String("tanh".into()))],
            ),
            20,
            &[Some(&x)],
        );
        assert_eq!(erf.2, "native: gelu_erf");
        assert_eq!(tanh.2, "native: gelu");
        // x·Φ(x) by erf: Φ(-1)=0.158655, Φ(0.5)=0.691462, Φ(2.69)=0.996427.
        close(&erf.0, &[-0.158655, 0.345731, 2.680388], 2e-5);
        // The tanh form departs by ~4.7e-4 near |x| = 2.69.
        let gap = (tanh.0[2] - erf.0[2]).abs();
        assert!(gap > 3e-4 && gap < 6e-4, "gap {gap}");
    }

    #[test]
    fn hard_sigmoid_uses_onnx_alpha() {
        let x = f32t(&[3], &[-3.0, 1.0, 2.5]);
        let (v, _, how) = run1(&node("HardSigmoid", 1, 1, vec![]), 13, &[Some(&x)]);
        assert_eq!(how, "composed: affine, clamp");
        close(&v, &[0.0, 0.7, 1.0], 1e-6);
    }

    #[test]
    fn integer_division_by_zero_is_checked() {
        let a = i64t(&[7, -7]);
        let b = i64t(&[2, 0]);
        let e = super::super::run_op(&node("Div", 2, 1, vec![]), 14, &[Some(&a), Some(&b)])
            .err()
            .unwrap();
        assert!(format!("{e:?}").contains("division by zero"));
        let b = i64t(&[2, 2]);
        let (v, _, _) = run1(&node("Div", 2, 1, vec![]), 14, &[Some(&a), Some(&b)]);
        assert_eq!(v, vec![3.0, -3.0]);
    }

    #[test]
    fn a_scalar_exponent_is_powf_with_ieee_semantics() {
        // ONNX: (-2)^2 = 4, 0^2 = 0; T5's x.pow(2) over signed activations.
        let a = f32t(&[3], &[-2.0, 0.0, 3.0]);
        let b = f32t(&[], &[2.0]);
        let (v, _, how) = run1(&node("Pow", 2, 1, vec![]), 15, &[Some(&a), Some(&b)]);
        assert_eq!(how, "native: powf");
        close(&v, &[4.0, 0.0, 9.0], 1e-6);
    }

    #[test]
    fn pow_is_exp_of_log_so_negative_bases_are_nan() {
        // ONNX: (-2)^2 = 4, 0^0 = 1; candle's broadcast_pow computes exp(y·ln x).
        let a = f32t(&[3], &[-2.0, 0.0, 3.0]);
        let b = f32t(&[3], &[2.0, 0.0, 2.0]);
        let (v, _, how) = run1(&node("Pow", 2, 1, vec![]), 15, &[Some(&a), Some(&b)]);
        assert_eq!(how, "native: broadcast_pow");
        assert!(v[0].is_nan() && v[1].is_nan(), "{v:?}");
        close(&v[2..], &[9.0], 1e-5);
    }

    #[test]
    fn clip_with_one_bound() {
        let x = f32t(&[3], &[-2.0, 0.5, 9.0]);
        let lo = f32t(&[], &[0.0]);
        let (v, _, how) = run1(&node("Clip", 2, 1, vec![]), 13, &[Some(&x), Some(&lo)]);
        assert_eq!(how, "native: maximum");
        assert_eq!(v, vec![0.0, 0.5, 9.0]);
    }
}
