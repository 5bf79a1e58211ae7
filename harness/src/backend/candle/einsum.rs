//! candle lowerings: Einsum, composed; Det, unsupported (candle has no
//! determinant or LU factorization).
//!
//! Einsum follows `op::einsum::EinsumPlan`: each input first loses its
//! repeated labels (the diagonal: the two axes moved last, merged, and
//! `index_select`ed at `k·(n + 1)`), is permuted into label-id order and
//! reshaped into the common label space (size 1 where it lacks a label);
//! the inputs are multiplied with `broadcast_mul`, the labels absent from
//! the output `sum`med away, and the rest permuted into the output's order.

use candle_core::Tensor;

use super::{index_tensor, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::einsum::EinsumPlan;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

const OPS: &str = "index_select (diagonals), permute, reshape, broadcast_mul, sum";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "Einsum",
        12,
        u32::MAX,
        einsum,
        spec!("Einsum"),
        cov![
            "all equations (ellipsis, implicit output, diagonals)" => Composed(OPS),
        ],
    );
    r.range(
        "Det",
        11,
        u32::MAX,
        det,
        spec!("Det"),
        cov![
            "all" => Unsupported("candle has no det/LU"),
        ],
    );
}

/// `t` with its first repeated label reduced to the diagonal, or `None`.
fn one_diagonal(t: &Tensor, labels: &[usize]) -> OpResult<Option<(Tensor, Vec<usize>)>> {
    let Some((i, j)) = (0..labels.len())
        .flat_map(|i| (i + 1..labels.len()).map(move |j| (i, j)))
        .find(|&(i, j)| labels[i] == labels[j])
    else {
        return Ok(None);
    };
    let rest: Vec<usize> = (0..labels.len()).filter(|&a| a != i && a != j).collect();
    let perm: Vec<usize> = rest.iter().copied().chain([i, j]).collect();
    let n = t.dims()[i];
    let mut shape: Vec<usize> = rest.iter().map(|&a| t.dims()[a]).collect();
    shape.push(n * n);
    let ids = index_tensor(
        (0..n as i64).map(|k| k * (n as i64 + 1)).collect(),
        t.device(),
    )?;
    let d = t
        .permute(perm)
        .and_then(|p| p.contiguous())
        .and_then(|p| p.reshape(shape.as_slice()))
        .and_then(|p| p.index_select(&ids, rest.len()))
        .ce()?;
    let labels = rest.iter().map(|&a| labels[a]).chain([labels[i]]).collect();
    Ok(Some((d, labels)))
}

/// One input in the common label space: diagonals taken, axes in label-id
/// order, size 1 for the labels it lacks.
fn align(plan: &EinsumPlan, t: &Tensor, labels: &[usize]) -> OpResult<Tensor> {
    let (mut t, mut labels) = (t.clone(), labels.to_vec());
    while let Some((d, l)) = one_diagonal(&t, &labels)? {
        (t, labels) = (d, l);
    }
    let mut perm: Vec<usize> = (0..labels.len()).collect();
    perm.sort_by_key(|&a| labels[a]);
    let shape: Vec<usize> = (0..plan.sizes.len())
        .map(|l| {
            labels
                .iter()
                .position(|&m| m == l)
                .map_or(1, |a| t.dims()[a])
        })
        .collect();
    t.permute(perm)
        .and_then(|p| p.contiguous())
        .and_then(|p| p.reshape(shape.as_slice()))
        .ce()
}

/// Einsum-12, composed.
fn einsum(ctx: &OpCtx, x: &In) -> Out {
    let ins: Vec<&Tensor> = x
        .iter()
        .copied()
        .collect::<Option<_>>()
        .ok_or_else(|| ctx.fail("an input is missing"))?;
    let plan = EinsumPlan::parse(
        ctx,
        &ins.iter().map(|t| t.dims().to_vec()).collect::<Vec<_>>(),
    )?;
    let mut product: Option<Tensor> = None;
    for (t, labels) in ins.iter().zip(&plan.operands) {
        let a = align(&plan, t, labels)?;
        product = Some(match product {
            None => a,
            Some(p) => p.broadcast_mul(&a).ce()?,
        });
    }
    let mut y = product.ok_or_else(|| ctx.fail("Einsum needs at least one input"))?;
    let summed: Vec<usize> = (0..plan.sizes.len())
        .filter(|l| !plan.output.contains(l))
        .collect();
    if !summed.is_empty() {
        y = y.sum(summed).ce()?;
    }
    let mut kept = plan.output.clone();
    kept.sort_unstable();
    let perm: Vec<usize> = plan
        .output
        .iter()
        .map(|l| kept.iter().position(|k| k == l).expect("an output label"))
        .collect();
    if !perm.is_empty() {
        y = y.permute(perm).and_then(|p| p.contiguous()).ce()?;
    }
    Ok(Lowered::one(y, How::composed(OPS)))
}

/// Det-11/22: candle has no determinant or LU factorization.
fn det(ctx: &OpCtx, _x: &In) -> Out {
    Err(ctx.unsupported("X", "candle has no det/LU factorization"))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    fn einsum(eq: &str, ins: &[&candle_core::Tensor]) -> (Vec<f32>, Vec<usize>) {
        let n = node(
            "Einsum",
            ins.len(),
            1,
            vec![("equation", Attr::String(eq.into()))],
        );
        let ins: Vec<_> = ins.iter().map(|t| Some(*t)).collect();
        let (v, d, _) = run1(&n, 12, &ins);
        (v, d)
    }

    #[test]
    fn matmul_trace_diagonal_and_broadcast() {
        let a = f32t(&[2, 2], &[1., 2., 3., 4.]);
        let b = f32t(&[2, 2], &[5., 6., 7., 8.]);
        assert_eq!(einsum("ij,jk->ik", &[&a, &b]).0, vec![19., 22., 43., 50.]);
        assert_eq!(einsum("ij,jk->ki", &[&a, &b]).0, vec![19., 43., 22., 50.]);
        assert_eq!(einsum("ii", &[&a]), (vec![5.], vec![]));
        assert_eq!(einsum("ii->i", &[&a]).0, vec![1., 4.]);
        let c = f32t(&[2, 1, 2], &[1., 1., 2., 0.]);
        let d = f32t(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
        assert_eq!(
            einsum("...j,...j->...", &[&c, &d]),
            (vec![3., 7., 11., 2., 6., 10.], vec![2, 3])
        );
    }
}
