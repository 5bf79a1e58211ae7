//! candle lowerings: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss,
//! composed (candle has no loss op). The classes and keep flags per position come from
//! `op::loss::LossPlan`; the log-probabilities are `gather`ed along the class
//! axis, weighted by `index_select`ed class weights, masked where ignored and
//! summed; `mean` divides by the summed kept weights. SCE first takes
//! candle's own log-softmax over axis 1 (`candle_nn::ops::log_softmax`, as
//! the LogSoftmax lowering does).

use candle_core::Tensor;

use super::{index_tensor, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::loss::{LossAttrs, LossPlan, LossReduction};
use crate::op::optional;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

const NLL_OPS: &str = "gather, index_select, mul, where_cond, sum_all, div";
const LOG_SOFTMAX_OPS: &str = "candle_nn::ops::log_softmax";

pub fn register(r: &mut OpRegistry<Tensor>) {
    for (since, until) in [(12, 12), (13, 21), (22, u32::MAX)] {
        r.range(
            "NegativeLogLikelihoodLoss",
            since,
            until,
            nll,
            spec!("NegativeLogLikelihoodLoss"),
            cov![
                "all attributes (classes read on the host)" => Composed(NLL_OPS),
            ],
        );
    }
    for (since, until) in [(12, 12), (13, u32::MAX)] {
        r.range("SoftmaxCrossEntropyLoss", since, until, sce, spec!("SoftmaxCrossEntropyLoss"), cov![
            "all attributes (classes read on the host)" => Composed("candle_nn::ops::log_softmax, gather, index_select, mul, where_cond, sum_all, div"),
        ]);
    }
}

/// The loss of log-probabilities `lp` (shaped `[n, c, inner]`) under `plan`.
fn loss(
    plan: &LossPlan,
    attrs: &LossAttrs,
    lp: &Tensor,
    weight: Option<&Tensor>,
) -> OpResult<Tensor> {
    let dev = lp.device();
    let classes: Vec<i64> = plan.classes.iter().map(|&c| c as i64).collect();
    let idx = index_tensor(classes, dev)?;
    let picked = lp
        .gather(&idx.reshape((plan.n, 1, plan.inner)).ce()?, 1)
        .and_then(|t| t.flatten_all())
        .ce()?;
    let keep: Vec<u8> = plan.keep.iter().map(|&k| u8::from(k)).collect();
    let keep = Tensor::from_vec(keep, plan.keep.len(), dev).ce()?;
    let zeros = picked.zeros_like().ce()?;
    let w = match weight {
        Some(w) => w.index_select(&idx, 0).ce()?,
        None => picked.ones_like().ce()?,
    };
    let w = keep.where_cond(&w, &zeros).ce()?;
    let each = keep
        .where_cond(&picked.neg().and_then(|p| p.mul(&w)).ce()?, &zeros)
        .ce()?;
    let y = match attrs.reduction {
        LossReduction::None => each.reshape(plan.out_shape.as_slice()).ce()?,
        LossReduction::Sum => each.sum_all().ce()?,
        LossReduction::Mean => each.sum_all().and_then(|s| s.div(&w.sum_all()?)).ce()?,
    };
    Ok(y)
}

/// The attributes and plan of a loss node on candle values.
fn setup(ctx: &OpCtx, x: &In) -> OpResult<(LossAttrs, LossPlan)> {
    let attrs = LossAttrs::decode(ctx)?;
    let (input, target) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let plan = LossPlan::new(ctx, &attrs, input, target, optional(x, 2))?;
    Ok((attrs, plan))
}

/// NegativeLogLikelihoodLoss-12/13/22, composed.
fn nll(ctx: &OpCtx, x: &In) -> Out {
    let (attrs, plan) = setup(ctx, x)?;
    let lp = ctx
        .input(x, 0)?
        .reshape((plan.n, plan.c, plan.inner))
        .ce()?;
    let y = loss(&plan, &attrs, &lp, optional(x, 2))?;
    Ok(Lowered::one(y, How::composed(NLL_OPS)))
}

/// SoftmaxCrossEntropyLoss-12/13: log-softmax over axis 1, then the NLL.
fn sce(ctx: &OpCtx, x: &In) -> Out {
    let (attrs, plan) = setup(ctx, x)?;
    let scores = ctx.input(x, 0)?;
    let s3 = scores.reshape((plan.n, plan.c, plan.inner)).ce()?;
    let lp = candle_nn::ops::log_softmax(&s3, 1).ce()?;
    let y = loss(&plan, &attrs, &lp, optional(x, 2))?;
    let lp = lp.reshape(scores.dims()).ce()?;
    let how = How::composed(format!("{LOG_SOFTMAX_OPS}, {NLL_OPS}"));
    Ok(Lowered::many(vec![y, lp], how))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn nll_mean_divides_by_the_kept_weights() {
        let x = f32t(&[2, 3], &[-1., -2., -3., -4., -5., -6.]);
        let t = i64t(&[2, 1]);
        let w = f32t(&[3], &[1., 0.5, 2.]);
        let n = node(
            "NegativeLogLikelihoodLoss",
            3,
            1,
            vec![("ignore_index", Attr::Int(1))],
        );
        let (v, dims, _) = run1(&n, 13, &[Some(&x), Some(&t), Some(&w)]);
        assert_eq!((v, dims), (vec![3.0], vec![]));
        let n = node(
            "NegativeLogLikelihoodLoss",
            3,
            1,
            vec![("reduction", Attr::String("none".into()))],
        );
        let (v, _, how) = run1(&n, 13, &[Some(&x), Some(&t), Some(&w)]);
        assert_eq!(v, vec![6.0, 2.5]);
        assert!(how.starts_with("composed: gather"));
    }

    #[test]
    fn sce_sums_log_softmax_losses() {
        let x = f32t(&[1, 2, 2], &[0., 5., 0., 5.]);
        let t = i64t(&[0, 1]);
        let t = t.reshape((1, 2)).unwrap();
        let n = node(
            "SoftmaxCrossEntropyLoss",
            2,
            2,
            vec![("reduction", Attr::String("sum".into()))],
        );
        let (v, _, _) = run1(&n, 13, &[Some(&x), Some(&t)]);
        close(&v, &[2.0 * std::f32::consts::LN_2], 1e-6);
    }
}
