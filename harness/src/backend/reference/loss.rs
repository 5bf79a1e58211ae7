//! Reference ops: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss,
//! from the spec text. The positions and classes each loss reads come from
//! `op::loss::LossPlan`; the sums are plain f64 loops here.

use ndarray::{ArrayD, Axis, IxDyn};

use super::reduce::log_softmax_lane;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::loss::{LossAttrs, LossPlan, LossReduction};
use crate::op::optional;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    for (since, until) in [(12, 12), (13, 21), (22, u32::MAX)] {
        r.range(
            "NegativeLogLikelihoodLoss",
            since,
            until,
            nll,
            spec!("NegativeLogLikelihoodLoss"),
            SPEC,
        );
    }
    for (since, until) in [(12, 12), (13, u32::MAX)] {
        r.range(
            "SoftmaxCrossEntropyLoss",
            since,
            until,
            sce,
            spec!("SoftmaxCrossEntropyLoss"),
            SPEC,
        );
    }
}

/// The loss of log-probabilities `lp` (flat, as `[n, c, inner]`) under `plan`.
fn loss(plan: &LossPlan, attrs: &LossAttrs, lp: &[f64], weight: Option<&[f64]>) -> ArrayD<f64> {
    let w = |p: usize| match (plan.keep[p], weight) {
        (false, _) => 0.0,
        (true, Some(w)) => w[plan.classes[p]],
        (true, None) => 1.0,
    };
    let each: Vec<f64> = (0..plan.keep.len())
        .map(|p| {
            if plan.keep[p] {
                -lp[plan.source(p)] * w(p)
            } else {
                0.0
            }
        })
        .collect();
    let total = || each.iter().sum::<f64>();
    match attrs.reduction {
        LossReduction::None => {
            ArrayD::from_shape_vec(IxDyn(&plan.out_shape), each).expect("one per target")
        }
        LossReduction::Sum => ArrayD::from_elem(IxDyn(&[]), total()),
        LossReduction::Mean => {
            let weights: f64 = (0..plan.keep.len()).map(w).sum();
            ArrayD::from_elem(IxDyn(&[]), total() / weights)
        }
    }
}

/// The plan and the weights of a loss node (`input`, `target`, `weight`).
fn setup(
    ctx: &OpCtx,
    x: &[Option<&RefTensor>],
) -> OpResult<(LossAttrs, LossPlan, Option<Vec<f64>>)> {
    let attrs = LossAttrs::decode(ctx)?;
    let (input, target, weight) = (ctx.input(x, 0)?, ctx.input(x, 1)?, optional(x, 2));
    let plan = LossPlan::new(ctx, &attrs, input, target, weight)?;
    let weight = weight.map(RefTensor::floats).transpose()?;
    Ok((attrs, plan, weight))
}

/// NegativeLogLikelihoodLoss-12/13/22.
fn nll(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (attrs, plan, weight) = setup(ctx, x)?;
    let input = ctx.input(x, 0)?;
    let lp: Vec<f64> = input.f64()?.iter().copied().collect();
    let y = loss(&plan, &attrs, &lp, weight.as_deref());
    Ok(Lowered::one(RefTensor::float(y, input.dtype), How::Spec))
}

/// SoftmaxCrossEntropyLoss-12/13: NLL of `log_softmax(scores, axis 1)`, and
/// the log-probabilities as output 1.
fn sce(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (attrs, plan, weight) = setup(ctx, x)?;
    let scores = ctx.input(x, 0)?;
    let mut lp = scores
        .f64()?
        .to_shape(IxDyn(&[plan.n, plan.c, plan.inner]))
        .map_err(|e| ctx.fail(e))?
        .into_owned();
    for mut row in lp.axis_iter_mut(Axis(0)) {
        for lane in row.lanes_mut(Axis(0)) {
            log_softmax_lane(lane);
        }
    }
    let flat: Vec<f64> = lp.iter().copied().collect();
    let y = loss(&plan, &attrs, &flat, weight.as_deref());
    let lp = ArrayD::from_shape_vec(IxDyn(scores.shape()), flat).expect("same count");
    Ok(Lowered::many(
        vec![
            RefTensor::float(y, scores.dtype),
            RefTensor::float(lp, scores.dtype),
        ],
        How::Spec,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use crate::graph::Attr;

    #[test]
    fn nll_mean_divides_by_the_kept_weights() {
        // input (2, 3): rows of log-probabilities; targets 2 and ignored 1.
        let x = f(&[2, 3], &[-1., -2., -3., -4., -5., -6.]);
        let t = i(&[2], &[2, 1]);
        let w = f(&[3], &[1., 0.5, 2.]);
        let node = test_node(
            "NegativeLogLikelihoodLoss",
            3,
            1,
            vec![("ignore_index", Attr::Int(1))],
        );
        let y = run_op(&node, 13, &[Some(&x), Some(&t), Some(&w)]).unwrap();
        // (3·2) / 2
        assert_eq!(y[0].as_ref().unwrap().data.to_f64_vec(), vec![3.0]);
        let node = test_node(
            "NegativeLogLikelihoodLoss",
            3,
            1,
            vec![("reduction", Attr::String("none".into()))],
        );
        let y = run_op(&node, 13, &[Some(&x), Some(&t), Some(&w)]).unwrap();
        assert_eq!(y[0].as_ref().unwrap().data.to_f64_vec(), vec![6.0, 2.5]);
    }

    #[test]
    fn sce_is_nll_of_log_softmax_over_axis_1() {
        // (1, 2, 2): classes along axis 1; equal scores give ln 2.
        let x = f(&[1, 2, 2], &[0., 5., 0., 5.]);
        let t = i(&[1, 2], &[0, 1]);
        let node = test_node(
            "SoftmaxCrossEntropyLoss",
            2,
            2,
            vec![("reduction", Attr::String("sum".into()))],
        );
        let y = run_op(&node, 13, &[Some(&x), Some(&t)]).unwrap();
        let loss = y[0].as_ref().unwrap().data.to_f64_vec()[0];
        assert!((loss - 2.0 * std::f64::consts::LN_2).abs() < 1e-12);
        assert_eq!(y[1].as_ref().unwrap().shape(), &[1, 2, 2]);
    }
}
