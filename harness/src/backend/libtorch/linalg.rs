//! libtorch lowerings: MatMul and Gemm.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "MatMul",
        matmul,
        spec!("MatMul"),
        cov!["all (numpy matmul semantics)" => Label::Native("matmul")],
    );
    r.op(
        "Gemm",
        gemm,
        spec!("Gemm"),
        cov!["alpha=beta=1, C given, no transposes" => Label::Native("addmm"),
             "alpha=1, no C, no transposes" => Label::Native("mm"),
             "transA/transB, other alpha/beta" => Label::Composed("t, mm|addmm, mul, add")],
    );
}

/// MatMul-1/9/13: numpy matmul (batched, broadcasting, 1-D promotion).
pub(super) fn matmul(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    Ok(Lowered::one(a.f_matmul(b)?, How::native("matmul")))
}

/// Gemm-7/9/11/13: Y = alpha · A' · B' + beta · C (C unidirectionally broadcast, optional from 11).
fn gemm(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (a, b) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let c = x.get(2).copied().flatten();
    let (alpha, beta) = (
        ctx.float("alpha", 1.0)? as f64,
        ctx.float("beta", 1.0)? as f64,
    );
    let (ta, tb) = (ctx.int("transA", 0)? != 0, ctx.int("transB", 0)? != 0);
    let mut ops = Vec::new();
    let a = if ta {
        ops.push("t");
        a.f_tr()?
    } else {
        a.shallow_clone()
    };
    let b = if tb {
        if !ops.contains(&"t") {
            ops.push("t");
        }
        b.f_tr()?
    } else {
        b.shallow_clone()
    };
    let y = match c {
        Some(c) if alpha == 1.0 && beta == 1.0 => {
            ops.push("addmm");
            c.f_addmm(&a, &b)?
        }
        Some(c) => {
            let mut ab = a.f_mm(&b)?;
            ops.push("mm");
            if alpha != 1.0 {
                ab = ab.f_mul_scalar(alpha)?;
                ops.push("mul");
            }
            let c = if beta != 1.0 {
                c.f_mul_scalar(beta)?
            } else {
                c.shallow_clone()
            };
            ops.push("add");
            ab.f_add(&c)?
        }
        None => {
            ops.push("mm");
            let ab = a.f_mm(&b)?;
            if alpha != 1.0 {
                ops.push("mul");
                ab.f_mul_scalar(alpha)?
            } else {
                ab
            }
        }
    };
    let how = if ops.len() == 1 {
        How::native(ops[0])
    } else {
        How::composed(ops.join(", "))
    };
    Ok(Lowered::one(y, how))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn gemm_trans_b_alpha() {
        let a = f32s(&[1, 2], &[1., 2.]);
        let b = f32s(&[1, 2], &[3., 4.]);
        let c = f32s(&[1], &[1.]);
        let n = node(
            "Gemm",
            3,
            1,
            vec![("transB", Attr::Int(1)), ("alpha", Attr::Float(2.0))],
        );
        let l = run(&n, 13, &[Some(&a), Some(&b), Some(&c)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![2.0 * 11.0 + 1.0]);
        assert_eq!(l.how.label(), "composed: t, mm, mul, add");
    }
}
