//! Softmax and LogSoftmax: which axis they normalize over.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__Softmax.html> and
//! <https://onnx.ai/onnx/operators/onnx__LogSoftmax.html>. Opset history:
//!
//! - 1 and 11: the input is coerced to 2-D at `axis` (default 1) and each
//!   row is normalized, i.e. over all dims ≥ `axis`. 11 allows a negative
//!   axis, accepted range [-r, r-1].
//! - 13: one `axis` (default -1) is normalized; the rest stays as is.
//!
//! [`SoftmaxAttrs::decode`] settles the default and the range once for the
//! reference, libtorch and candle. The fingerprint space ([`space`])
//! confuses the axis: every axis of the input is a candidate.

use super::space::{axis_dim, first_rank, Space};
use super::{OpCtx, OpResult};
use crate::tensor::Tensor;

/// A decoded Softmax or LogSoftmax node for an input of a given rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftmaxAttrs {
    /// `axis`, normalized to [0, rank).
    pub axis: usize,
    /// Opset 1–12: the input is coerced to 2-D at `axis`, so every dim from
    /// `axis` on is normalized together.
    pub coerced: bool,
}

impl SoftmaxAttrs {
    pub fn decode(ctx: &OpCtx, rank: usize) -> OpResult<SoftmaxAttrs> {
        let coerced = ctx.opset < 13;
        let given = ctx.int("axis", if coerced { 1 } else { -1 })?;
        let axis = ctx.axis(given, rank).map_err(|_| {
            ctx.fail(format!(
                "attribute `axis` {given} is out of range for rank {rank}"
            ))
        })?;
        if rank == 0 && !coerced {
            return Err(ctx.fail(format!("{} of a scalar", ctx.node.op_type)));
        }
        Ok(SoftmaxAttrs { axis, coerced })
    }
}

/// Softmax/LogSoftmax's fingerprint space: `axis`.
pub fn space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let rank = first_rank(x);
    let a = SoftmaxAttrs::decode(ctx, rank).ok()?;
    Some(Space::plain(vec![axis_dim(a.axis, rank)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    fn decode(opset: u32, attrs: Vec<(&str, Attr)>, rank: usize) -> OpResult<SoftmaxAttrs> {
        with("Softmax", opset, attrs, |c| SoftmaxAttrs::decode(c, rank))
    }

    #[test]
    fn the_default_axis_is_1_before_opset_13_and_last_from_13() {
        let a = decode(11, vec![], 3).unwrap();
        assert_eq!((a.axis, a.coerced), (1, true));
        let a = decode(13, vec![], 3).unwrap();
        assert_eq!((a.axis, a.coerced), (2, false));
        assert_eq!(
            decode(13, vec![("axis", Attr::Int(-3))], 3).unwrap().axis,
            0
        );
    }

    /// The reference used to accept `axis = rank` before opset 13 (libtorch
    /// and candle refused it); the spec's range is [-r, r-1] everywhere.
    #[test]
    fn axis_rank_is_out_of_range_at_every_opset() {
        for opset in [11, 13] {
            let e = decode(opset, vec![("axis", Attr::Int(3))], 3).unwrap_err();
            assert!(
                format!("{e:?}").contains("axis` 3 is out of range"),
                "{e:?}"
            );
        }
        assert!(decode(13, vec![("axis", Attr::Int(0))], 0).is_err());
        assert_eq!(decode(11, vec![("axis", Attr::Int(0))], 0).unwrap().axis, 0);
    }

    #[test]
    fn the_space_is_every_axis_from_the_model_s() {
        let x = Tensor::F32(ndarray::ArrayD::zeros(ndarray::IxDyn(&[2, 3, 4])));
        let s = with("Softmax", 13, vec![], |c| space(c, &[Some(&x)])).unwrap();
        assert_eq!(s.dims[0].values, vec!["2", "0", "1"]);
        assert!(with("Softmax", 13, vec![("axis", Attr::Float(1.0))], |c| {
            space(c, &[Some(&x)])
        })
        .is_none());
    }
}
