//! libtorch lowerings: Einsum and Det, both native. Einsum's equation is
//! parsed and checked against the shapes by `op::einsum::EinsumPlan`, and
//! torch is given the same equation without whitespace.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::einsum::EinsumPlan;
use crate::op::HostView;

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "Einsum",
        12,
        u32::MAX,
        einsum,
        spec!("Einsum"),
        cov![
            "all equations (ellipsis, implicit output, diagonals)" => Label::Native("einsum"),
        ],
    );
    r.range(
        "Det",
        11,
        u32::MAX,
        det,
        spec!("Det"),
        cov![
            "all" => Label::Native("linalg_det"),
        ],
    );
}

/// Einsum-12: torch's `einsum` on the whitespace-free equation.
fn einsum(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let ins: Vec<&Tensor> = x
        .iter()
        .copied()
        .collect::<Option<_>>()
        .ok_or_else(|| ctx.fail("an input is missing"))?;
    let plan = EinsumPlan::parse(ctx, &ins.iter().map(|t| t.dims()).collect::<Vec<_>>())?;
    let y = Tensor::f_einsum(&plan.equation, &ins, None::<&[i64]>)?;
    Ok(Lowered::one(y, How::native("einsum")))
}

/// Det-11/22: `linalg_det` over the last two axes.
fn det(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let y = Tensor::f_linalg_det(ctx.input(x, 0)?)?;
    Ok(Lowered::one(y, How::native("linalg_det")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn einsum_batched_and_det() {
        let a = f32s(&[1, 2, 2], &[1., 2., 3., 4.]);
        let n = node(
            "Einsum",
            2,
            1,
            vec![("equation", Attr::String("b ij, bjk -> bik".into()))],
        );
        let l = run(&n, 12, &[Some(&a), Some(&a)]).unwrap();
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap()),
            vec![7., 10., 15., 22.]
        );
        let l = run(&node("Det", 1, 1, vec![]), 11, &[Some(&a)]).unwrap();
        let d = vals(l.outputs[0].as_ref().unwrap());
        assert!((d[0] + 2.0).abs() < 1e-5);
    }
}
