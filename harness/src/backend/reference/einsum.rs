//! Reference ops beyond the matrix product: Einsum and Det, from the spec.
//!
//! Einsum walks its label space (`op::einsum::EinsumPlan`): every assignment
//! of the labels adds the product of the inputs' elements to the output
//! element its output labels pick, in f64 for floats and with wrapping
//! fixed-width arithmetic for integers. Det factors each matrix by LU with
//! partial pivoting in f64 and multiplies the pivots (sign flipped per row
//! swap).

use ndarray::{ArrayD, ArrayView2, IxDyn};

use super::elementwise::{Arith, IntElem};
use super::shape::arr;
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::einsum::EinsumPlan;
use crate::op::HostView;
use crate::tensor::{Element, Tensor};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range("Einsum", 12, u32::MAX, einsum, spec!("Einsum"), SPEC);
    r.range("Det", 11, u32::MAX, det, spec!("Det"), SPEC);
}

/// Σ over the label space of Π inputs, into the output's labels.
fn contract<T: Copy>(
    plan: &EinsumPlan,
    xs: &[&ArrayD<T>],
    zero: T,
    mul: impl Fn(T, T) -> T,
    add: impl Fn(T, T) -> T,
) -> ArrayD<T> {
    let out_shape = plan.out_shape();
    let mut out = ArrayD::from_elem(IxDyn(&out_shape), zero);
    let total: usize = plan.sizes.iter().product();
    let mut at = vec![0usize; plan.sizes.len()];
    for _ in 0..total {
        // an operand's axis of size 1 under a broadcast ellipsis label reads index 0
        let pick = |labels: &[usize], dims: &[usize]| -> Vec<usize> {
            labels
                .iter()
                .zip(dims)
                .map(|(&l, &d)| if d == 1 { 0 } else { at[l] })
                .collect()
        };
        let term = xs
            .iter()
            .zip(&plan.operands)
            .map(|(x, labels)| x[IxDyn(&pick(labels, x.shape()))])
            .reduce(&mul)
            .expect("at least one input");
        let o = &mut out[IxDyn(&pick(&plan.output, &out_shape))];
        *o = add(*o, term);
        for (l, &s) in plan.sizes.iter().enumerate().rev() {
            at[l] += 1;
            if at[l] < s {
                break;
            }
            at[l] = 0;
        }
    }
    out
}

/// Einsum-12.
fn einsum(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let ins: Vec<&RefTensor> = x
        .iter()
        .copied()
        .collect::<Option<_>>()
        .ok_or_else(|| ctx.fail("an input is missing"))?;
    let first = *ins
        .first()
        .ok_or_else(|| ctx.fail("Einsum needs at least one input"))?;
    if ins.iter().any(|t| t.dtype != first.dtype) {
        return Err(ctx.fail("Einsum inputs must share a dtype"));
    }
    let plan = EinsumPlan::parse(ctx, &ins.iter().map(|t| t.dims()).collect::<Vec<_>>())?;
    let out = match &first.data {
        Tensor::F64(_) => {
            let xs: Vec<&ArrayD<f64>> = ins.iter().map(|t| t.f64()).collect::<OpResult<_>>()?;
            Tensor::F64(contract(&plan, &xs, 0.0, |a, b| a * b, |a, b| a + b))
        }
        d => by_dtype!(ints d.dtype(), T => {
            let xs: Vec<&ArrayD<T>> = ins.iter().map(|t| arr::<T>(&t.data)).collect();
            let op = |o: Arith| move |a: T, b: T| a.arith(o, b).expect("no division");
            T::wrap(contract(&plan, &xs, T::narrow(0), op(Arith::Mul), op(Arith::Add)))
        }, _ => return Err(ctx.fail(format!("Einsum of {}", first.dtype)))),
    };
    Ok(Lowered::one(RefTensor::like(first, out), How::Spec))
}

/// The determinant of one square matrix: LU with partial pivoting.
fn det_of(a: ArrayView2<f64>) -> f64 {
    let n = a.nrows();
    let mut m = a.to_owned();
    let mut det = 1.0;
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| m[[i, k]].abs().total_cmp(&m[[j, k]].abs()))
            .expect("k < n");
        if m[[p, k]] == 0.0 {
            return 0.0;
        }
        if p != k {
            for j in 0..n {
                m.swap([p, j], [k, j]);
            }
            det = -det;
        }
        det *= m[[k, k]];
        for i in k + 1..n {
            let f = m[[i, k]] / m[[k, k]];
            for j in k + 1..n {
                m[[i, j]] -= f * m[[k, j]];
            }
        }
    }
    det
}

/// Det-11/22: `X` of shape `[*, M, M]` gives `[*]`.
fn det(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let input = ctx.input(x, 0)?;
    let d = input.dims();
    let r = d.len();
    if r < 2 || d[r - 1] != d[r - 2] {
        return Err(ctx.fail(format!("input `X` has shape {d:?}, want [*, M, M]")));
    }
    let m = d[r - 1];
    let a = input
        .f64()?
        .to_shape(IxDyn(&[d[..r - 2].iter().product(), m, m]))
        .map_err(|e| ctx.fail(e))?
        .into_owned();
    let dets: Vec<f64> = a
        .outer_iter()
        .map(|mat| det_of(mat.into_dimensionality().expect("rank 2")))
        .collect();
    let y = ArrayD::from_shape_vec(IxDyn(&d[..r - 2]), dets).expect("one per matrix");
    Ok(Lowered::one(RefTensor::float(y, input.dtype), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use crate::graph::Attr;

    fn einsum(eq: &str, ins: &[&super::RefTensor]) -> super::RefTensor {
        let node = test_node(
            "Einsum",
            ins.len(),
            1,
            vec![("equation", Attr::String(eq.into()))],
        );
        let ins: Vec<_> = ins.iter().map(|t| Some(*t)).collect();
        run_op(&node, 12, &ins).unwrap().remove(0).unwrap()
    }

    #[test]
    fn einsum_matmul_trace_and_broadcast() {
        let a = f(&[2, 2], &[1., 2., 3., 4.]);
        let b = f(&[2, 2], &[5., 6., 7., 8.]);
        assert_eq!(
            einsum("ij,jk->ik", &[&a, &b]).data.to_f64_vec(),
            vec![19., 22., 43., 50.]
        );
        assert_eq!(einsum("ii", &[&a]).data.to_f64_vec(), vec![5.]);
        assert_eq!(
            einsum("ij->ji", &[&a]).data.to_f64_vec(),
            vec![1., 3., 2., 4.]
        );
        // (2,1,2) with (3,2) under ...: broadcast to (2,3)
        let c = f(&[2, 1, 2], &[1., 1., 2., 0.]);
        let y = einsum(
            "...j,...j->...",
            &[&c, &f(&[3, 2], &[1., 2., 3., 4., 5., 6.])],
        );
        assert_eq!(
            (y.shape().to_vec(), y.data.to_f64_vec()),
            (vec![2, 3], vec![3., 7., 11., 2., 6., 10.])
        );
        let n = einsum("i,i", &[&i(&[2], &[i64::MAX, 1]), &i(&[2], &[2, 2])]);
        assert_eq!(n.data.to_f64_vec(), vec![0.]);
    }

    #[test]
    fn det_pivots_and_batches() {
        // the first pivot is 0: a row swap flips the sign.
        let a = f(&[2, 2, 2], &[0., 1., 2., 3., 1., 2., 3., 4.]);
        let node = test_node("Det", 1, 1, vec![]);
        let y = run_op(&node, 11, &[Some(&a)]).unwrap().remove(0).unwrap();
        assert_eq!(
            (y.shape().to_vec(), y.data.to_f64_vec()),
            (vec![2], vec![-2., -2.])
        );
        assert!(run_op(&node, 11, &[Some(&f(&[2, 3], &[0.; 6]))]).is_err());
    }
}
