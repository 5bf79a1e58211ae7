//! candle lowerings: MatMul and Gemm.

use candle_core::Tensor;

use super::Ce;
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "MatMul",
        matmul,
        "https://onnx.ai/onnx/operators/onnx__MatMul.html",
        cov![
            "rank >= 2, equal batch dims" => Native("matmul"),
            "rank >= 2, broadcast batch dims" => Native("broadcast_matmul"),
            "a 1-D operand" => Composed("unsqueeze, broadcast_matmul, squeeze"),
        ],
    );
    r.op(
        "Gemm",
        gemm,
        "https://onnx.ai/onnx/operators/onnx__Gemm.html",
        cov!["all" => Composed("t, matmul, affine, broadcast_add")],
    );
}

/// MatMul-1/9/13: numpy matmul. candle's `matmul` only compares the product
/// of the batch dims, so unequal batch shapes always go through
/// `broadcast_matmul`, which checks them.
pub(super) fn matmul(ctx: &OpCtx, x: &In) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let (ra, rb) = (a.rank(), b.rank());
    if ra == 0 || rb == 0 {
        return Err(ctx.fail("MatMul operands must have rank >= 1"));
    }
    let a2 = if ra == 1 {
        a.unsqueeze(0).ce()?
    } else {
        a.clone()
    };
    let b2 = if rb == 1 {
        b.unsqueeze(1).ce()?
    } else {
        b.clone()
    };
    let same_batch =
        a2.rank() == b2.rank() && a2.dims()[..a2.rank() - 2] == b2.dims()[..b2.rank() - 2];
    let (mut y, op) = if same_batch {
        (a2.matmul(&b2).ce()?, "matmul")
    } else {
        (a2.broadcast_matmul(&b2).ce()?, "broadcast_matmul")
    };
    if ra == 1 && rb == 1 {
        y = y
            .squeeze(y.rank() - 1)
            .and_then(|t| t.squeeze(t.rank() - 1))
            .ce()?;
    } else if ra == 1 {
        y = y.squeeze(y.rank() - 2).ce()?;
    } else if rb == 1 {
        y = y.squeeze(y.rank() - 1).ce()?;
    }
    let how = if ra == 1 || rb == 1 {
        How::composed(format!("unsqueeze, {op}, squeeze"))
    } else {
        How::native(op)
    };
    Ok(Lowered::one(y, how))
}

/// Gemm-7/9/11/13: alpha·A'·B' + beta·C (C unidirectionally broadcast, optional from 11).
fn gemm(ctx: &OpCtx, x: &In) -> Out {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let alpha = ctx.float("alpha", 1.0)? as f64;
    let beta = ctx.float("beta", 1.0)? as f64;
    let (ta, tb) = (ctx.int("transA", 0)? != 0, ctx.int("transB", 0)? != 0);
    let a = if ta { a.t().ce()? } else { a.clone() };
    let b = if tb { b.t().ce()? } else { b.clone() };
    let mut ops = vec!["matmul"];
    if ta || tb {
        ops.insert(0, "t");
    }
    let mut y = a.matmul(&b).ce()?;
    if alpha != 1.0 {
        y = y.affine(alpha, 0.0).ce()?;
        ops.push("affine");
    }
    if let Some(c) = x.get(2).copied().flatten() {
        let c = if beta != 1.0 {
            c.affine(beta, 0.0).ce()?
        } else {
            c.clone()
        };
        y = y.broadcast_add(&c).ce()?;
        ops.push("broadcast_add");
    }
    Ok(Lowered::one(y, How::composed(ops.join(", "))))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn gemm_trans_alpha_beta() {
        let a = f32t(&[2, 1], &[1.0, 2.0]); // transA -> [1, 2]
        let b = f32t(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let c = f32t(&[1], &[10.0]);
        let n = node(
            "Gemm",
            3,
            1,
            vec![
                ("transA", Attr::Int(1)),
                ("alpha", Attr::Float(2.0)),
                ("beta", Attr::Float(0.5)),
            ],
        );
        let (v, dims, how) = run1(&n, 13, &[Some(&a), Some(&b), Some(&c)]);
        // [1,2]·B = [7, 10]; ×2 = [14, 20]; + 5.
        assert_eq!((v, dims), (vec![19.0, 25.0], vec![1, 2]));
        assert_eq!(how, "composed: t, matmul, affine, broadcast_add");
    }

    #[test]
    fn matmul_vector_and_broadcast() {
        let a = f32t(&[2], &[1.0, 1.0]);
        let b = f32t(
            &[3, 2, 2],
            &[1.0, 2.0, 3.0, 4.0, 0.0, 1.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0],
        );
        let (v, dims, how) = run1(&node("MatMul", 2, 1, vec![]), 13, &[Some(&a), Some(&b)]);
        assert_eq!(dims, vec![3, 2]);
        assert_eq!(v, vec![4.0, 6.0, 0.0, 2.0, 4.0, 4.0]);
        assert_eq!(how, "composed: unsqueeze, broadcast_matmul, squeeze");
    }
}
