//! BatchNormalization and LayerNormalization: their attributes decoded once,
//! so which opsets have `spatial` and `training_mode`, what epsilon and
//! momentum default to, and which axes LayerNorm normalizes have one answer.
//!
//! BatchNormalization (<https://onnx.ai/onnx/operators/onnx__BatchNormalization.html>):
//! 1 and 6 carry `is_test`/`consumed_inputs` (not loaded by xdiff); 7 has
//! `spatial` (default 1; 0 = per-activation statistics of shape (C, D...));
//! 9 drops `spatial`; 14 adds `training_mode` (batch statistics, running
//! statistics as extra outputs: running·momentum + batch·(1 − momentum));
//! 15 lets scale/bias and mean/var have different float types. `epsilon`
//! defaults to 1e-5, `momentum` to 0.9.
//!
//! LayerNormalization-17 (<https://onnx.ai/onnx/operators/onnx__LayerNormalization.html>):
//! normalizes over the axes [axis, rank) (`axis` default -1) with population
//! variance; `epsilon` default 1e-5; `stash_type` (default 1 = float32) is
//! the precision of the mean/inv-std computation and of the optional Mean
//! and InvStdDev outputs.
//!
//! Their fingerprint spaces confuse `epsilon` (1e-5, Keras' 1e-3, 1e-12)
//! and, for LayerNorm, the first normalized `axis`.

use super::space::{axis_dim, first_rank, float_dim_of, Dim, Kind, Space};
use super::{OpCtx, OpResult};
use crate::tensor::Tensor;

/// A decoded BatchNormalization node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchNormAttrs {
    /// The f32 attribute widened exactly (9.99999974738e-06 by default).
    pub epsilon: f64,
    pub momentum: f64,
    /// Opset 14+ `training_mode = 1`.
    pub training: bool,
    /// Opset 7–8 `spatial = 0`: per-activation (C, D...) parameters.
    pub per_activation: bool,
    /// The node asks for any output past Y (running or saved statistics).
    pub wants_statistics: bool,
}

impl BatchNormAttrs {
    pub fn decode(ctx: &OpCtx) -> OpResult<BatchNormAttrs> {
        Ok(BatchNormAttrs {
            epsilon: ctx.float("epsilon", 1e-5)? as f64,
            momentum: ctx.float("momentum", 0.9)? as f64,
            training: ctx.opset >= 14 && ctx.int("training_mode", 0)? != 0,
            per_activation: ctx.opset < 9 && ctx.int("spatial", 1)? == 0,
            wants_statistics: (1..ctx.node.outputs.len()).any(|i| ctx.wants_output(i)),
        })
    }
}

/// A decoded LayerNormalization node for an input of a given rank.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerNormAttrs {
    /// The first normalized axis; the normalized axes are [axis, rank).
    pub axis: usize,
    pub epsilon: f64,
    /// The ONNX dtype code of the statistics (1 = float32).
    pub stash_type: i64,
    /// The node asks for Mean or InvStdDev.
    pub wants_statistics: bool,
}

impl LayerNormAttrs {
    pub fn decode(ctx: &OpCtx, rank: usize) -> OpResult<LayerNormAttrs> {
        let given = ctx.int("axis", -1)?;
        let axis = ctx.axis(given, rank).map_err(|_| {
            ctx.fail(format!(
                "attribute `axis` {given} is out of range for rank {rank}"
            ))
        })?;
        Ok(LayerNormAttrs {
            axis,
            epsilon: ctx.float("epsilon", 1e-5)? as f64,
            stash_type: ctx.int("stash_type", 1)?,
            wants_statistics: (1..ctx.node.outputs.len()).any(|i| ctx.wants_output(i)),
        })
    }
}

/// The `epsilon` dim: the model's value, then the common framework defaults.
fn epsilon_dim(epsilon: f64) -> Dim {
    float_dim_of("epsilon", epsilon as f32, &["1e-5", "1e-3", "1e-12"])
}

/// BatchNormalization's fingerprint space: `epsilon`, and in training mode
/// `momentum` read either way round (ONNX's `running·m + batch·(1 − m)` or
/// PyTorch's reversed `momentum`, i.e. 1 − m).
pub fn batch_norm_space(ctx: &OpCtx, _: &[Option<&Tensor>]) -> Option<Space> {
    let a = BatchNormAttrs::decode(ctx).ok()?;
    let mut dims = vec![epsilon_dim(a.epsilon)];
    if a.training {
        let m = a.momentum as f32;
        let reversed = format!("{}", (1.0 - a.momentum) as f32);
        dims.push(Dim::new(
            "momentum",
            Kind::Float,
            format!("{m}"),
            &[&reversed],
        ));
    }
    Some(Space::plain(dims))
}

/// LayerNormalization's fingerprint space: `epsilon` and `axis`.
pub fn layer_norm_space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let rank = first_rank(x);
    let a = LayerNormAttrs::decode(ctx, rank).ok()?;
    Some(Space::plain(vec![
        epsilon_dim(a.epsilon),
        axis_dim(a.axis, rank),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    #[test]
    fn training_batch_norm_space_offers_the_reversed_momentum() {
        let space = |training: i64| {
            let attrs = vec![
                ("training_mode", Attr::Int(training)),
                ("momentum", Attr::Float(0.9)),
            ];
            with("BatchNormalization", 15, attrs, |c| {
                batch_norm_space(c, &[])
            })
            .unwrap()
        };
        let t = space(1);
        let m = t
            .dims
            .iter()
            .find(|d| d.name == "momentum")
            .expect("momentum dim");
        assert_eq!(m.values, vec!["0.9".to_string(), "0.100000024".into()]);
        assert!(space(0).dims.iter().all(|d| d.name != "momentum"));
    }

    #[test]
    fn batch_norm_attributes_are_gated_by_opset() {
        let attrs = || {
            vec![
                ("training_mode", Attr::Int(1)),
                ("spatial", Attr::Int(0)),
                ("momentum", Attr::Float(0.5)),
            ]
        };
        let a = with("BatchNormalization", 7, attrs(), BatchNormAttrs::decode).unwrap();
        assert!(a.per_activation && !a.training);
        let a = with("BatchNormalization", 14, attrs(), BatchNormAttrs::decode).unwrap();
        assert!(!a.per_activation && a.training);
        assert_eq!(a.momentum, 0.5);
        assert_eq!(a.epsilon, 1e-5f32 as f64);
    }

    #[test]
    fn layer_norm_axis_is_normalized_and_checked() {
        let at = |axis: i64| {
            with(
                "LayerNormalization",
                17,
                vec![("axis", Attr::Int(axis))],
                |c| LayerNormAttrs::decode(c, 3),
            )
        };
        assert_eq!(at(-1).unwrap().axis, 2);
        assert_eq!(at(1).unwrap().axis, 1);
        assert!(at(3).is_err());
        assert!(at(-4).is_err());
    }
}
