//! candle lowerings: BitwiseAnd/Or/Xor/Not-18 are unsupported (candle 0.11
//! has no bitwise kernels on its integer tensors), Swish-24 is candle's
//! native `silu` at `alpha` 1 and composed `x · sigmoid(alpha · x)` else.

use candle_core::Tensor;

use super::Ce;
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::geometry::swish_alpha;

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native, Unsupported};
    let bitwise = [
        ("BitwiseAnd", spec!("BitwiseAnd")),
        ("BitwiseOr", spec!("BitwiseOr")),
        ("BitwiseXor", spec!("BitwiseXor")),
        ("BitwiseNot", spec!("BitwiseNot")),
    ];
    for (op, spec) in bitwise {
        r.range(
            op,
            18,
            u32::MAX,
            |c, _| Err(c.unsupported("A", "candle 0.11 has no bitwise kernels")),
            spec,
            cov!["all" => Unsupported("A (candle 0.11 has no bitwise kernels)")],
        );
    }
    r.range(
        "Swish",
        24,
        u32::MAX,
        swish,
        spec!("Swish"),
        cov![
            "alpha=1" => Native("silu"),
            "other alpha" => Composed("affine, candle_nn::ops::sigmoid, mul"),
        ],
    );
}

/// Swish-24: `silu` is `x · sigmoid(x)`, so alpha = 1 is native.
fn swish(ctx: &OpCtx, x: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    let a = ctx.input(x, 0)?;
    let alpha = swish_alpha(ctx)?;
    if alpha == 1.0 {
        return Ok(Lowered::one(a.silu().ce()?, How::native("silu")));
    }
    let s = candle_nn::ops::sigmoid(&a.affine(alpha, 0.0).ce()?).ce()?;
    Ok(Lowered::one(
        a.mul(&s).ce()?,
        How::composed("affine, candle_nn::ops::sigmoid, mul"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn swish_alpha_composes_and_bitwise_is_unsupported() {
        let x = f32t(&[2], &[2.0, -1.0]);
        let n = node("Swish", 1, 1, vec![("alpha", Attr::Float(0.5))]);
        let (v, _, how) = run1(&n, 24, &[Some(&x)]);
        let want = [2.0 / (1.0 + (-1.0f32).exp()), -1.0 / (1.0 + 0.5f32.exp())];
        close(&v, &want, 1e-6);
        assert_eq!(how, "composed: affine, candle_nn::ops::sigmoid, mul");
        let i = i64t(&[3]);
        let n = node("BitwiseNot", 1, 1, vec![]);
        assert!(super::super::run_op(&n, 18, &[Some(&i)]).is_err());
    }
}
