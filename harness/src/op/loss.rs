//! NegativeLogLikelihoodLoss-12/13/22
//! (<https://onnx.ai/onnx/operators/onnx__NegativeLogLikelihoodLoss.html>) and
//! SoftmaxCrossEntropyLoss-12/13
//! (<https://onnx.ai/onnx/operators/onnx__SoftmaxCrossEntropyLoss.html>).
//!
//! NLL: `input` is `(N, C, d1..dk)` (or `(N, C)`), `target` `(N, d1..dk)`;
//! `loss[n, d] = -input[n, target[n, d], d] · weight[target[n, d]]` (weight 1
//! when absent), 0 where `target == ignore_index`. `reduction` `none` keeps
//! that shape, `sum` adds it up, `mean` (the default) divides the sum by the
//! sum of the weights of the non-ignored targets. SCE is NLL applied to
//! `log_softmax(scores, axis = 1)`, with the log-probabilities as an optional
//! second output. Opset history: 12 introduces both; 13 adds bfloat16; NLL-22
//! widens the float types. No semantic change across opsets.
//!
//! [`LossAttrs::decode`] reads the attributes once; [`LossPlan`] validates
//! the shapes and the targets (read on the host) and turns them into a class
//! per position with a keep flag, which the reference and the candle
//! composition both index with. libtorch hands the node to its native loss.

use super::{HostView, OpCtx, OpResult};

/// Attribute `reduction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReduction {
    None,
    Sum,
    Mean,
}

impl LossReduction {
    pub fn name(self) -> &'static str {
        match self {
            LossReduction::None => "none",
            LossReduction::Sum => "sum",
            LossReduction::Mean => "mean",
        }
    }
}

/// A decoded loss node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossAttrs {
    pub reduction: LossReduction,
    /// Targets equal to this contribute nothing (and no weight to `mean`).
    pub ignore_index: Option<i64>,
}

impl LossAttrs {
    pub fn decode(ctx: &OpCtx) -> OpResult<LossAttrs> {
        let r = ctx.string("reduction", "mean")?;
        let reduction = match r.as_str() {
            "none" => LossReduction::None,
            "sum" => LossReduction::Sum,
            "mean" => LossReduction::Mean,
            _ => {
                return Err(
                    ctx.attr_error("reduction", format!("`{r}` is not one of none, sum, mean"))
                )
            }
        };
        let ignore_index = if ctx.has("ignore_index") {
            Some(ctx.int("ignore_index", 0)?)
        } else {
            None
        };
        Ok(LossAttrs {
            reduction,
            ignore_index,
        })
    }
}

/// The positions a loss reads: `input` as `[n, c, inner]`, position `p =
/// n·inner + d` reading class `classes[p]` (0 where ignored) when `keep[p]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossPlan {
    pub n: usize,
    pub c: usize,
    pub inner: usize,
    pub classes: Vec<usize>,
    pub keep: Vec<bool>,
    /// Output 0's shape: `target`'s for `none`, a scalar otherwise.
    pub out_shape: Vec<usize>,
}

impl LossPlan {
    /// Validates `input`, `target` and `weight` (input 2, optional) and
    /// reads the targets on the host.
    pub fn new<T: HostView>(
        ctx: &OpCtx,
        attrs: &LossAttrs,
        input: &T,
        target: &T,
        weight: Option<&T>,
    ) -> OpResult<LossPlan> {
        let (x, t) = (input.dims(), target.dims());
        if x.len() < 2 || t.len() + 1 != x.len() || t[0] != x[0] || t[1..] != x[2..] {
            return Err(ctx.fail(format!(
                "input `target` {t:?} does not fit input {x:?} (want (N, d1..dk) for (N, C, d1..dk))"
            )));
        }
        let c = x[1];
        if let Some(w) = weight {
            if w.dims() != [c] {
                return Err(ctx.fail(format!(
                    "input `weight` has shape {:?}, want [{c}]",
                    w.dims()
                )));
            }
        }
        let targets = target.host_ints()?;
        let mut classes = Vec::with_capacity(targets.len());
        let mut keep = Vec::with_capacity(targets.len());
        for &v in &targets {
            let ignored = attrs.ignore_index == Some(v);
            if !ignored && !(0..c as i64).contains(&v) {
                return Err(ctx.fail(format!(
                    "input `target`: class {v} is out of range [0, {c})"
                )));
            }
            classes.push(if ignored { 0 } else { v as usize });
            keep.push(!ignored);
        }
        let out_shape = match attrs.reduction {
            LossReduction::None => t.clone(),
            _ => vec![],
        };
        Ok(LossPlan {
            n: x[0],
            c,
            inner: x[2..].iter().product(),
            classes,
            keep,
            out_shape,
        })
    }

    /// Flat index into `input` (as `[n, c, inner]`) read at position `p`.
    pub fn source(&self, p: usize) -> usize {
        let (n, d) = (p / self.inner.max(1), p % self.inner.max(1));
        (n * self.c + self.classes[p]) * self.inner + d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn ints(shape: &[usize], v: &[i64]) -> Tensor {
        Tensor::I64(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap())
    }

    fn floats(shape: &[usize]) -> Tensor {
        Tensor::F64(ArrayD::zeros(IxDyn(shape)))
    }

    #[test]
    fn decode_defaults_to_mean_and_rejects_unknown_reductions() {
        let a = with("NegativeLogLikelihoodLoss", 13, vec![], LossAttrs::decode).unwrap();
        assert_eq!((a.reduction, a.ignore_index), (LossReduction::Mean, None));
        let a = with(
            "NegativeLogLikelihoodLoss",
            13,
            vec![
                ("reduction", Attr::String("none".into())),
                ("ignore_index", Attr::Int(-1)),
            ],
            LossAttrs::decode,
        )
        .unwrap();
        assert_eq!(
            (a.reduction, a.ignore_index),
            (LossReduction::None, Some(-1))
        );
        let bad = vec![("reduction", Attr::String("avg".into()))];
        assert!(with("NegativeLogLikelihoodLoss", 13, bad, LossAttrs::decode).is_err());
    }

    #[test]
    fn plan_maps_positions_and_checks_targets() {
        let attrs = LossAttrs {
            reduction: LossReduction::None,
            ignore_index: Some(-1),
        };
        // input (2, 3, 2), target (2, 2) with one ignored position.
        let (x, t) = (floats(&[2, 3, 2]), ints(&[2, 2], &[2, -1, 0, 1]));
        let p = with("NegativeLogLikelihoodLoss", 13, vec![], |c| {
            LossPlan::new(c, &attrs, &x, &t, None)
        })
        .unwrap();
        assert_eq!(
            (p.classes.clone(), p.keep.clone()),
            (vec![2, 0, 0, 1], vec![true, false, true, true])
        );
        assert_eq!(p.out_shape, vec![2, 2]);
        // position 3 = (n 1, d 1) reads class 1: (1·3 + 1)·2 + 1.
        assert_eq!(p.source(3), 9);
        let out_of_range = ints(&[2, 2], &[3, 0, 0, 0]);
        assert!(with("NegativeLogLikelihoodLoss", 13, vec![], |c| {
            LossPlan::new(c, &attrs, &x, &out_of_range, None)
        })
        .is_err());
        let w = floats(&[2]);
        assert!(with("NegativeLogLikelihoodLoss", 13, vec![], |c| {
            LossPlan::new(c, &attrs, &x, &t, Some(&w))
        })
        .is_err());
    }
}
