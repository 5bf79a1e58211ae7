//! libtorch lowerings: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss,
//! torch's own `nll_loss_nd` and `cross_entropy_loss` (same definition:
//! `mean` divides by the summed weights of the non-ignored targets). The
//! targets are checked on the host by `op::loss::LossPlan` first, so an
//! out-of-range class is a bad input here as on every lane.

use tch::{Kind, Reduction, Tensor};

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::loss::{LossAttrs, LossPlan, LossReduction};
use crate::op::optional;

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    for (since, until) in [(12, 12), (13, 21), (22, u32::MAX)] {
        r.range(
            "NegativeLogLikelihoodLoss",
            since,
            until,
            nll,
            spec!("NegativeLogLikelihoodLoss"),
            cov![
                "all attributes (int32 targets widened to int64)" => Label::Native("nll_loss_nd"),
            ],
        );
    }
    for (since, until) in [(12, 12), (13, u32::MAX)] {
        r.range(
            "SoftmaxCrossEntropyLoss",
            since,
            until,
            sce,
            spec!("SoftmaxCrossEntropyLoss"),
            cov![
                "loss only" => Label::Native("cross_entropy_loss"),
                "with output log_prob" => Label::Native("cross_entropy_loss, log_softmax"),
            ],
        );
    }
}

/// The decoded attributes, torch's reduction and ignore index, and the
/// targets as int64; the plan validates shapes and classes.
struct Args<'a> {
    reduction: Reduction,
    ignore: i64,
    target: Tensor,
    weight: Option<&'a Tensor>,
}

fn args<'a>(ctx: &OpCtx, x: &X<'a>) -> OpResult<Args<'a>> {
    let attrs = LossAttrs::decode(ctx)?;
    let (input, target, weight) = (ctx.input(x, 0)?, ctx.input(x, 1)?, optional(x, 2));
    LossPlan::new(ctx, &attrs, input, target, weight)?;
    let reduction = match attrs.reduction {
        LossReduction::None => Reduction::None,
        LossReduction::Sum => Reduction::Sum,
        LossReduction::Mean => Reduction::Mean,
    };
    Ok(Args {
        reduction,
        // Without `ignore_index` every class was checked in range, so torch's
        // default (-100) ignores nothing.
        ignore: attrs.ignore_index.unwrap_or(-100),
        target: target.f_to_kind(Kind::Int64)?,
        weight,
    })
}

/// NegativeLogLikelihoodLoss-12/13/22: `nll_loss_nd`.
fn nll(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = args(ctx, x)?;
    let y = ctx
        .input(x, 0)?
        .f_nll_loss_nd(&a.target, a.weight, a.reduction, a.ignore)?;
    Ok(Lowered::one(y, How::native("nll_loss_nd")))
}

/// SoftmaxCrossEntropyLoss-12/13: `cross_entropy_loss` (no label smoothing),
/// and `log_softmax` over the class axis when `log_prob` is wanted.
fn sce(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = args(ctx, x)?;
    let scores = ctx.input(x, 0)?;
    let y = scores.f_cross_entropy_loss(&a.target, a.weight, a.reduction, a.ignore, 0.0)?;
    if !ctx.wants_output(1) {
        return Ok(Lowered::one(y, How::native("cross_entropy_loss")));
    }
    let lp = scores.f_log_softmax(1, None)?;
    Ok(Lowered::many(
        vec![y, lp],
        How::native("cross_entropy_loss, log_softmax"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn nll_mean_with_weight_and_ignore_index() {
        let x = f32s(&[2, 3], &[-1., -2., -3., -4., -5., -6.]);
        let t = i64s(&[2], &[2, 1]);
        let w = f32s(&[3], &[1., 0.5, 2.]);
        let n = node(
            "NegativeLogLikelihoodLoss",
            3,
            1,
            vec![("ignore_index", Attr::Int(1))],
        );
        let l = run(&n, 13, &[Some(&x), Some(&t), Some(&w)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![3.0]);
        assert_eq!(l.how.label(), "native: nll_loss_nd");
        let bad = i64s(&[2], &[3, 0]);
        assert!(run(&n, 13, &[Some(&x), Some(&bad), Some(&w)]).is_err());
    }

    #[test]
    fn sce_returns_log_prob_when_asked() {
        let x = f32s(&[1, 2], &[0., 0.]);
        let t = i64s(&[1], &[1]);
        let n = node("SoftmaxCrossEntropyLoss", 2, 2, vec![]);
        let l = run(&n, 13, &[Some(&x), Some(&t)]).unwrap();
        let loss = vals(l.outputs[0].as_ref().unwrap())[0];
        assert!((loss - std::f64::consts::LN_2).abs() < 1e-6);
        assert_eq!(l.outputs.len(), 2);
    }
}
