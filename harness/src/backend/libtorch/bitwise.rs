//! libtorch lowerings: BitwiseAnd/Or/Xor/Not-18 (torch's native
//! `bitwise_and`/`or`/`xor`/`not`, which broadcast as ONNX does; torch has
//! no uint16/32/64 tensors, so those dtypes stop at the upload) and Swish-24
//! (`silu` when `alpha` is 1, else composed `x · sigmoid(alpha · x)`).

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::geometry::swish_alpha;

type X<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
type Row = (
    &'static str,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native};
    let ops: &[Row] = &[
        (
            "BitwiseAnd",
            |c, x| bin(c, x, "bitwise_and", Tensor::f_bitwise_and_tensor),
            spec!("BitwiseAnd"),
            cov!["int8-64, uint8 (no uint16/32/64 in torch)" => Native("bitwise_and")],
        ),
        (
            "BitwiseOr",
            |c, x| bin(c, x, "bitwise_or", Tensor::f_bitwise_or_tensor),
            spec!("BitwiseOr"),
            cov!["int8-64, uint8 (no uint16/32/64 in torch)" => Native("bitwise_or")],
        ),
        (
            "BitwiseXor",
            |c, x| bin(c, x, "bitwise_xor", Tensor::f_bitwise_xor_tensor),
            spec!("BitwiseXor"),
            cov!["int8-64, uint8 (no uint16/32/64 in torch)" => Native("bitwise_xor")],
        ),
        (
            "BitwiseNot",
            |c, x| {
                Ok(Lowered::one(
                    c.input(x, 0)?.f_bitwise_not()?,
                    How::native("bitwise_not"),
                ))
            },
            spec!("BitwiseNot"),
            cov!["int8-64, uint8 (no uint16/32/64 in torch)" => Native("bitwise_not")],
        ),
        (
            "Swish",
            swish,
            spec!("Swish"),
            cov!["alpha=1" => Native("silu"), "other alpha" => Composed("mul, sigmoid, mul")],
        ),
    ];
    for &(op, run, spec, cov) in ops {
        let since = if op == "Swish" { 24 } else { 18 };
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

fn bin(
    ctx: &OpCtx,
    x: &X,
    name: &'static str,
    f: fn(&Tensor, &Tensor) -> Result<Tensor, tch::TchError>,
) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    Ok(Lowered::one(f(a, b)?, How::native(name)))
}

/// Swish-24: torch's `silu` is exactly `x · sigmoid(x)`, so alpha = 1 is native.
fn swish(ctx: &OpCtx, x: &X) -> Out {
    let a = ctx.input(x, 0)?;
    let alpha = swish_alpha(ctx)?;
    if alpha == 1.0 {
        return Ok(Lowered::one(a.f_silu()?, How::native("silu")));
    }
    let y = a.f_mul(&a.f_mul_scalar(alpha)?.f_sigmoid()?)?;
    Ok(Lowered::one(y, How::composed("mul, sigmoid, mul")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn bitwise_broadcasts_and_swish_alpha_composes() {
        let a = tch::Tensor::from_slice(&[0xF0u8, 3, 255, 0]).reshape([2, 2]);
        let m = tch::Tensor::from_slice(&[0x3Cu8, 1]);
        let y = run(&node("BitwiseXor", 2, 1, vec![]), 18, &[Some(&a), Some(&m)]).unwrap();
        assert_eq!(
            vals(y.outputs[0].as_ref().unwrap()),
            vec![204., 2., 195., 1.]
        );
        let x = f32s(&[2], &[2.0, -1.0]);
        let n = node("Swish", 1, 1, vec![("alpha", Attr::Float(0.5))]);
        let y = run(&n, 24, &[Some(&x)]).unwrap();
        let got = vals(y.outputs[0].as_ref().unwrap());
        let want = [2.0 / (1.0 + (-1.0f64).exp()), -1.0 / (1.0 + 0.5f64.exp())];
        assert!((got[0] - want[0]).abs() < 1e-6 && (got[1] - want[1]).abs() < 1e-6);
        assert_eq!(y.how.label(), "composed: mul, sigmoid, mul");
    }
}
