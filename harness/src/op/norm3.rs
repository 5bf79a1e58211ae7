//! RMSNormalization, GroupNormalization, LRN and MeanVarianceNormalization:
//! their attributes decoded once for the reference and every lowering.
//!
//! Specs: <https://onnx.ai/onnx/operators/onnx__RMSNormalization.html> (23:
//! y = x / √(mean(x²) + ε) · scale over the axes from `axis` (default -1),
//! `epsilon` default 1e-5, `stash_type` only sets the precision of the
//! statistics), <https://onnx.ai/onnx/operators/onnx__GroupNormalization.html>
//! (18: `num_groups`, `epsilon`, scale and bias per *group*; 21: per
//! *channel*, adds `stash_type`),
//! <https://onnx.ai/onnx/operators/onnx__LRN.html> (1/13: square sum over the
//! channels `[c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉]`, y = x / (bias +
//! alpha/size · square_sum)^beta),
//! <https://onnx.ai/onnx/operators/onnx__MeanVarianceNormalization.html>
//! (9/13: `axes` default [0, 2, 3]; the function body divides x − mean by
//! √var + 1e-9, the variance E[x²] − E[x]²).

use super::{normalize_axis, OpCtx, OpResult};

/// The constant MeanVarianceNormalization's function body adds to the std.
pub const MVN_EPSILON: f64 = 1e-9;

/// A decoded RMSNormalization node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsNormAttrs {
    /// The first normalized axis; statistics run over `axis..rank`.
    pub axis: usize,
    pub epsilon: f64,
}

impl RmsNormAttrs {
    pub fn decode(ctx: &OpCtx, rank: usize) -> OpResult<Self> {
        let given = ctx.int("axis", -1)?;
        let axis = normalize_axis(given, rank).map_err(|_| {
            ctx.attr_error("axis", format!("{given} is out of range for rank {rank}"))
        })?;
        stash_type(ctx)?;
        Ok(RmsNormAttrs {
            axis,
            epsilon: f64::from(ctx.float("epsilon", 1e-5)?),
        })
    }
}

/// `stash_type`: a float TensorProto type (1 float, 10 float16, 11 double,
/// 16 bfloat16); the reference keeps its statistics in f64 whatever it says.
fn stash_type(ctx: &OpCtx) -> OpResult<()> {
    match ctx.int("stash_type", 1)? {
        1 | 10 | 11 | 16 => Ok(()),
        v => Err(ctx.attr_error("stash_type", format!("{v} is not a float type"))),
    }
}

/// A decoded GroupNormalization node for an input of `dims` (N, C, ...).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupNormAttrs {
    pub groups: usize,
    pub channels: usize,
    pub epsilon: f64,
    /// Opset 18: scale and bias hold one value per group, not per channel.
    pub per_group_params: bool,
}

impl GroupNormAttrs {
    pub fn decode(ctx: &OpCtx, dims: &[usize]) -> OpResult<Self> {
        if dims.len() < 2 {
            return Err(ctx.fail(format!("input `X` must be (N, C, ...), got {dims:?}")));
        }
        if ctx.opset >= 21 {
            stash_type(ctx)?;
        }
        let g = ctx
            .node
            .attrs
            .contains_key("num_groups")
            .then(|| ctx.int("num_groups", 0))
            .transpose()?
            .ok_or_else(|| ctx.attr_error("num_groups", "is required"))?;
        let c = dims[1];
        let groups = usize::try_from(g)
            .ok()
            .filter(|&g| g >= 1 && c % g == 0)
            .ok_or_else(|| {
                ctx.attr_error("num_groups", format!("{g} must be >= 1 and divide C = {c}"))
            })?;
        Ok(GroupNormAttrs {
            groups,
            channels: c,
            epsilon: f64::from(ctx.float("epsilon", 1e-5)?),
            per_group_params: ctx.opset < 21,
        })
    }

    /// How many values `scale` and `bias` must hold.
    pub fn param_len(&self) -> usize {
        if self.per_group_params {
            self.groups
        } else {
            self.channels
        }
    }

    /// Checks a `scale`/`bias` input's element count.
    pub fn check_param(&self, ctx: &OpCtx, name: &str, len: usize) -> OpResult<()> {
        if len != self.param_len() {
            return Err(ctx.fail(format!(
                "input `{name}` holds {len} values, expected {} (one per {})",
                self.param_len(),
                if self.per_group_params {
                    "group"
                } else {
                    "channel"
                }
            )));
        }
        Ok(())
    }
}

/// A decoded LRN node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrnAttrs {
    pub size: usize,
    pub alpha: f64,
    pub beta: f64,
    pub bias: f64,
    /// Channels summed before c: ⌊(size−1)/2⌋.
    pub before: usize,
    /// Channels summed after c: ⌈(size−1)/2⌉.
    pub after: usize,
}

impl LrnAttrs {
    pub fn decode(ctx: &OpCtx, rank: usize) -> OpResult<Self> {
        if rank < 2 {
            return Err(ctx.fail(format!("input `X` must be (N, C, ...), got rank {rank}")));
        }
        let s = ctx.int("size", 0)?;
        let size = usize::try_from(s)
            .ok()
            .filter(|&s| s >= 1)
            .ok_or_else(|| ctx.attr_error("size", format!("{s}: required, >= 1")))?;
        Ok(LrnAttrs {
            size,
            alpha: f64::from(ctx.float("alpha", 1e-4)?),
            beta: f64::from(ctx.float("beta", 0.75)?),
            bias: f64::from(ctx.float("bias", 1.0)?),
            before: (size - 1) / 2,
            after: size / 2,
        })
    }
}

/// MeanVarianceNormalization's `axes` (default [0, 2, 3]) normalized,
/// sorted and deduplicated.
pub fn mvn_axes(ctx: &OpCtx, rank: usize) -> OpResult<Vec<usize>> {
    let given = ctx.ints("axes")?.unwrap_or_else(|| vec![0, 2, 3]);
    let mut axes = given
        .iter()
        .map(|&a| {
            normalize_axis(a, rank)
                .map_err(|_| ctx.attr_error("axes", format!("{a} is out of range for rank {rank}")))
        })
        .collect::<OpResult<Vec<_>>>()?;
    axes.sort_unstable();
    axes.dedup();
    Ok(axes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    #[test]
    fn lrn_window_is_floor_before_ceil_after() {
        let a = with("LRN", 13, vec![("size", Attr::Int(4))], |c| {
            LrnAttrs::decode(c, 4)
        })
        .unwrap();
        assert_eq!((a.before, a.after), (1, 2));
        let a = with("LRN", 13, vec![("size", Attr::Int(5))], |c| {
            LrnAttrs::decode(c, 4)
        })
        .unwrap();
        assert_eq!((a.before, a.after), (2, 2));
        assert!(with("LRN", 13, vec![], |c| LrnAttrs::decode(c, 4)).is_err());
    }

    #[test]
    fn group_norm_params_per_group_at_18_per_channel_at_21() {
        let attrs = || vec![("num_groups", Attr::Int(2))];
        let g18 = with("GroupNormalization", 18, attrs(), |c| {
            GroupNormAttrs::decode(c, &[1, 4, 3])
        })
        .unwrap();
        let g21 = with("GroupNormalization", 21, attrs(), |c| {
            GroupNormAttrs::decode(c, &[1, 4, 3])
        })
        .unwrap();
        assert_eq!((g18.param_len(), g21.param_len()), (2, 4));
        let bad = with(
            "GroupNormalization",
            21,
            vec![("num_groups", Attr::Int(3))],
            |c| GroupNormAttrs::decode(c, &[1, 4, 3]),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn rms_axis_and_mvn_axes_normalize() {
        let a = with("RMSNormalization", 23, vec![("axis", Attr::Int(-2))], |c| {
            RmsNormAttrs::decode(c, 3)
        })
        .unwrap();
        assert_eq!(a.axis, 1);
        let axes = with("MeanVarianceNormalization", 13, vec![], |c| mvn_axes(c, 4)).unwrap();
        assert_eq!(axes, vec![0, 2, 3]);
        let axes = with(
            "MeanVarianceNormalization",
            13,
            vec![("axes", Attr::Ints(vec![-1, 1]))],
            |c| mvn_axes(c, 3),
        )
        .unwrap();
        assert_eq!(axes, vec![1, 2]);
    }
}
