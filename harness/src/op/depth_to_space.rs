//! DepthToSpace: its `blocksize` and `mode`, decoded once into the
//! reshape–permute–reshape plan every backend applies.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__DepthToSpace.html>. Opset 1:
//! `blocksize`, DCR order only; 11 adds `mode` (`DCR`, the default, or `CRD`);
//! 13 widens the types. DCR views the input (N, C, H, W) as
//! (N, b, b, C/b², H, W) and permutes it to (N, C/b², H, b, W, b); CRD views
//! it as (N, C/b², b, b, H, W) and permutes it to the same order. Either way
//! the output is (N, C/b², H·b, W·b). torch's `pixel_shuffle` is CRD.
//!
//! The fingerprint space ([`space`]) is `mode` itself (opset 11+, where
//! both orders are expressible): a lane that shuffles by the other order
//! is named as such.

use super::space::{Dim, Kind, Space};
use super::{OpCtx, OpResult};
use crate::tensor::Tensor;

/// The channel order of the input's depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepthMode {
    /// depth-column-row: the block index is the outer part of the channel.
    Dcr,
    /// column-row-depth: the channel is the outer part (torch's pixel_shuffle).
    Crd,
}

/// A decoded DepthToSpace node for an input of `dims` (N, C, H, W).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthToSpacePlan {
    pub mode: DepthMode,
    pub blocksize: usize,
    /// The input viewed as six axes (the mode's order).
    pub split: [usize; 6],
    /// The permutation of `split` to (N, C/b², H, b, W, b).
    pub perm: [usize; 6],
    /// The output (N, C/b², H·b, W·b).
    pub out: [usize; 4],
}

impl DepthToSpacePlan {
    pub fn decode(ctx: &OpCtx, dims: &[usize]) -> OpResult<Self> {
        let b = ctx.int("blocksize", 0)?;
        let mode = match ctx.string("mode", "DCR")?.as_str() {
            "DCR" => DepthMode::Dcr,
            "CRD" if ctx.opset >= 11 => DepthMode::Crd,
            m => {
                return Err(ctx.attr_error(
                    "mode",
                    format!("`{m}` (expected DCR, or CRD from opset 11)"),
                ))
            }
        };
        let [n, c, h, w] = <[usize; 4]>::try_from(dims)
            .map_err(|_| ctx.fail(format!("input `input` must be 4-D, got {dims:?}")))?;
        if b < 1 || c % (b * b) as usize != 0 {
            return Err(ctx.attr_error(
                "blocksize",
                format!("{b} must be >= 1 with blocksize² dividing C = {c}"),
            ));
        }
        let b = b as usize;
        let d = c / (b * b);
        let (split, perm) = match mode {
            DepthMode::Dcr => ([n, b, b, d, h, w], [0, 3, 4, 1, 5, 2]),
            DepthMode::Crd => ([n, d, b, b, h, w], [0, 1, 4, 2, 5, 3]),
        };
        Ok(DepthToSpacePlan {
            mode,
            blocksize: b,
            split,
            perm,
            out: [n, d, h * b, w * b],
        })
    }
}

impl DepthMode {
    fn name(self) -> &'static str {
        match self {
            DepthMode::Dcr => "DCR",
            DepthMode::Crd => "CRD",
        }
    }
}

/// DepthToSpace's fingerprint space: `mode` DCR/CRD, from opset 11 (before
/// it only DCR exists, so there is nothing to confuse: `None`, as when the
/// node does not decode).
pub fn space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let p = DepthToSpacePlan::decode(ctx, x.first().copied().flatten()?.shape()).ok()?;
    (ctx.opset >= 11).then(|| {
        Space::plain(vec![Dim::new(
            "mode",
            Kind::Str,
            p.mode.name().into(),
            &["DCR", "CRD"],
        )])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::reference::util::f;
    use crate::fingerprint::tests::{checked, host, pairs, run1};
    use crate::graph::Attr;
    use crate::op::test_node;
    use crate::op::window::tests::with;

    fn plan(opset: u32, mode: &str, dims: &[usize]) -> OpResult<DepthToSpacePlan> {
        let attrs = vec![
            ("blocksize", Attr::Int(2)),
            ("mode", Attr::String(mode.into())),
        ];
        with("DepthToSpace", opset, attrs, |c| {
            DepthToSpacePlan::decode(c, dims)
        })
    }

    #[test]
    fn modes_split_the_channel_differently() {
        let dcr = plan(13, "DCR", &[1, 8, 2, 3]).unwrap();
        assert_eq!((dcr.split, dcr.out), ([1, 2, 2, 2, 2, 3], [1, 2, 4, 6]));
        let crd = plan(13, "CRD", &[1, 8, 2, 3]).unwrap();
        assert_eq!((crd.mode, crd.perm), (DepthMode::Crd, [0, 1, 4, 2, 5, 3]));
    }

    #[test]
    fn rejects_bad_blocksize_mode_and_rank() {
        assert!(plan(13, "CRD", &[1, 6, 2, 2]).is_err());
        assert!(plan(13, "XYZ", &[1, 8, 2, 2]).is_err());
        assert!(plan(1, "CRD", &[1, 8, 2, 2]).is_err());
        assert!(plan(13, "DCR", &[8, 2, 2]).is_err());
    }

    #[test]
    fn a_pixel_shuffle_lane_is_fingerprinted_as_crd() {
        let v: Vec<f64> = (0..32).map(|i| i as f64).collect();
        let x = f(&[1, 8, 2, 2], &v);
        let node = |mode: &str| {
            test_node(
                "DepthToSpace",
                1,
                1,
                vec![
                    ("blocksize", Attr::Int(2)),
                    ("mode", Attr::String(mode.into())),
                ],
            )
        };
        let lane = host(&run1(&node("CRD"), 13, &[Some(&x)]));
        let fp = checked(&node("DCR"), 13, &[Some(&x)], &lane);
        assert!(fp.exact && fp.ambiguous.is_empty(), "{fp:?}");
        assert_eq!(fp.attrs, pairs(&[("mode", "CRD")]));
        assert_eq!(fp.description, "behaves as CRD (model asks DCR)");
    }
}
