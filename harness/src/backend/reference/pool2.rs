//! Reference ops: LpPool and MaxUnpool, written from the spec in f64
//! (decodes in `op::pool2`).
//!
//! LpPool walks the same windows as AveragePool (`pool::windows`, padding
//! skipped: a padded zero adds nothing to Σ|x|^p); MaxUnpool writes each X
//! value at its flat index into zeros of the inferred shape, checking every
//! index is inside, and places that at the origin of `output_shape`.

use ndarray::{ArrayD, IxDyn};

use super::pool::windows;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::pool2::{LpPoolAttrs, UnpoolPlan};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes (1-D/2-D/3-D)",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    // LpPool: 2 makes `p` an int, 11 clarifies pads, 18 adds ceil_mode and dilations.
    for (since, until) in [(1, 1), (2, 10), (11, 17), (18, u32::MAX)] {
        r.range("LpPool", since, until, lp_pool, spec!("LpPool"), SPEC);
    }
    for (since, until) in [(9, 10), (11, u32::MAX)] {
        r.range(
            "MaxUnpool",
            since,
            until,
            max_unpool,
            spec!("MaxUnpool"),
            SPEC,
        );
    }
}

/// LpPool-1/2/11/18/22: (Σ |x|^p)^(1/p) over each window, padding as zeros.
fn lp_pool(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xa = xt.f64()?;
    let xs = xa.shape().to_vec();
    let attrs = LpPoolAttrs::decode(ctx, &xs)?;
    let (p, win) = (attrs.p, windows(&xs[2..], &attrs.window));
    let xc = xa.as_standard_layout();
    let vals = xc.as_slice().expect("standard layout");
    let psize: usize = xs[2..].iter().product();
    let mut y = Vec::new();
    for plane in vals.chunks(psize.max(1)).take(xs[0] * xs[1]) {
        for offs in &win.offsets {
            let sum: f64 = offs.iter().map(|&o| plane[o].abs().powf(p)).sum();
            y.push(sum.powf(1.0 / p));
        }
    }
    let mut shape = xs[..2].to_vec();
    shape.extend_from_slice(&win.out_shape);
    let out = ArrayD::from_shape_vec(IxDyn(&shape), y).expect("pool shape");
    Ok(Lowered::one(RefTensor::float(out, xt.dtype), How::Spec))
}

/// MaxUnpool-9/11/22: zeros of the output shape, X[i] written at flat index I[i].
fn max_unpool(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xa = xt.f64()?;
    let it = ctx.input(x, 1)?;
    let shape = crate::op::optional(x, 2).map(|t| t.ints()).transpose()?;
    let plan = UnpoolPlan::decode(ctx, xa.shape(), it.shape(), shape)?;
    let mut y = vec![0.0; plan.numel()];
    let xc = xa.as_standard_layout();
    for (&v, &i) in xc.iter().zip(&it.ints()?) {
        let slot = usize::try_from(i)
            .ok()
            .and_then(|i| y.get_mut(i))
            .ok_or_else(|| {
                ctx.fail(format!(
                    "input `I` holds {i}, outside the output's {} elements",
                    plan.numel()
                ))
            })?;
        *slot = v;
    }
    let y = ArrayD::from_shape_vec(IxDyn(&plan.inferred), y).expect("plan's shape");
    let mut out = ArrayD::zeros(IxDyn(&plan.out));
    out.slice_each_axis_mut(|ax| ndarray::Slice::from(0..plan.inferred[ax.axis.index()]))
        .assign(&y);
    Ok(Lowered::one(RefTensor::float(out, xt.dtype), How::Spec))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use crate::graph::Attr;

    #[test]
    fn lppool_counts_padding_as_zero() {
        // in [3, 4], k 2, pads (1, 1), p 2: windows [pad, 3], [3, 4], [4, pad].
        let x = f(&[1, 1, 2], &[3., 4.]);
        let attrs = vec![
            ("kernel_shape", Attr::Ints(vec![2])),
            ("pads", Attr::Ints(vec![1, 1])),
        ];
        let node = test_node("LpPool", 1, 1, attrs);
        let y = run_op(&node, 18, &[Some(&x)]).unwrap().remove(0).unwrap();
        assert_eq!(y.data.to_f64_vec(), vec![3., 5., 4.]);
    }

    #[test]
    fn max_unpool_scatters_and_checks_indices() {
        let x = f(&[1, 1, 2], &[5., 6.]);
        let idx = i(&[1, 1, 2], &[1, 2]);
        let node = test_node(
            "MaxUnpool",
            2,
            1,
            vec![("kernel_shape", Attr::Ints(vec![2]))],
        );
        let y = run_op(&node, 11, &[Some(&x), Some(&idx)])
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(y.data.to_f64_vec(), vec![0., 5., 6.]);
        let bad = i(&[1, 1, 2], &[1, 3]);
        assert!(run_op(&node, 11, &[Some(&x), Some(&bad)]).is_err());
    }
}
