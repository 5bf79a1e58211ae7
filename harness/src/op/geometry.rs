//! The geometry ops of opsets 18–20, decoded once for every backend.
//!
//! CenterCropPad-18 (<https://onnx.ai/onnx/operators/onnx__CenterCropPad.html>):
//! each listed axis (`axes`, negative counts from the back, default all) is
//! cropped or zero-padded to the length in input `shape`, centred; an odd
//! crop starts rounded down, an odd pad puts the extra element at the end.
//!
//! Col2Im-18 (<https://onnx.ai/onnx/operators/onnx__Col2Im.html>): input
//! `[N, C·Πblock, L]` columns summed back into an image `[N, C, image...]`
//! (inputs `image_shape` and `block_shape`; `dilations`, `pads` as
//! `[begins..., ends...]`, `strides`), torch's `fold` in n dimensions.
//!
//! AffineGrid-20 (<https://onnx.ai/onnx/operators/onnx__AffineGrid.html>):
//! `theta` `[N, 2, 3]` or `[N, 3, 4]` applied to the normalized coordinates
//! of a `size` `[N, C, H, W]` or `[N, C, D, H, W]` grid; `align_corners`
//! puts ±1 on the corner pixels' centres (else their outer edges).
//!
//! Swish-24 (<https://onnx.ai/onnx/operators/onnx__Swish.html>):
//! `x · sigmoid(alpha · x)`, `alpha` 1.0 by default.

use super::{HostView, OpCtx, OpResult};

/// Swish's `alpha`.
pub fn swish_alpha(ctx: &OpCtx) -> OpResult<f64> {
    Ok(ctx.float("alpha", 1.0)? as f64)
}

/// What CenterCropPad does to one axis: keep `keep` elements from
/// `crop_start`, then pad `before`/`after` zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropPad {
    pub axis: usize,
    pub crop_start: usize,
    pub keep: usize,
    pub before: usize,
    pub after: usize,
}

/// CenterCropPad's per-axis plan for `data` and the `shape` input.
pub fn center_crop_pad<T: HostView>(ctx: &OpCtx, data: &T, shape: &T) -> OpResult<Vec<CropPad>> {
    let dims = data.dims();
    let target = shape.host_ints()?;
    let axes: Vec<usize> = match ctx.ints("axes")? {
        Some(a) => a
            .iter()
            .map(|&v| ctx.axis(v, dims.len()))
            .collect::<OpResult<_>>()?,
        None => (0..dims.len()).collect(),
    };
    if axes.len() != target.len() {
        return Err(ctx.fail(format!(
            "input `shape` has {} values for {} axes",
            target.len(),
            axes.len()
        )));
    }
    axes.iter()
        .zip(&target)
        .map(|(&axis, &want)| {
            let want = usize::try_from(want)
                .map_err(|_| ctx.fail(format!("input `shape` has a negative length {want}")))?;
            let have = dims[axis];
            let (crop, pad) = (have.saturating_sub(want), want.saturating_sub(have));
            Ok(CropPad {
                axis,
                crop_start: crop / 2,
                keep: have.min(want),
                before: pad / 2,
                after: pad - pad / 2,
            })
        })
        .collect()
}

/// Col2Im's decoded node: the image and block per spatial axis, and the
/// number of block positions along each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Col2ImPlan {
    pub n: usize,
    pub c: usize,
    pub image: Vec<usize>,
    pub block: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilations: Vec<usize>,
    pub begins: Vec<usize>,
    pub ends: Vec<usize>,
    /// Block positions along each axis (their product is `L`).
    pub positions: Vec<usize>,
}

impl Col2ImPlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &T, image: &T, block: &T) -> OpResult<Col2ImPlan> {
        let to_usize = |name: &str, v: Vec<i64>| -> OpResult<Vec<usize>> {
            v.into_iter()
                .map(|d| {
                    usize::try_from(d)
                        .map_err(|_| ctx.fail(format!("`{name}` has a negative value {d}")))
                })
                .collect()
        };
        let image = to_usize("image_shape", image.host_ints()?)?;
        let block = to_usize("block_shape", block.host_ints()?)?;
        let k = image.len();
        if block.len() != k || k == 0 {
            return Err(ctx.fail(format!(
                "`image_shape` ({k} values) and `block_shape` ({}) must name the same spatial axes",
                block.len()
            )));
        }
        let strides = to_usize("strides", ctx.per_axis("strides", k, 1)?)?;
        let dilations = to_usize("dilations", ctx.per_axis("dilations", k, 1)?)?;
        let pads = to_usize("pads", ctx.per_axis("pads", 2 * k, 0)?)?;
        let mut positions = Vec::with_capacity(k);
        for i in 0..k {
            let span = dilations[i] * (block[i].max(1) - 1) + 1;
            let padded = image[i] + pads[i] + pads[k + i];
            if strides[i] == 0 || padded < span {
                return Err(ctx.fail(format!(
                    "axis {i}: a block spans {span} of a padded image of {padded} (stride {})",
                    strides[i]
                )));
            }
            positions.push((padded - span) / strides[i] + 1);
        }
        let dims = x.dims();
        let per_block: usize = block.iter().product();
        let l: usize = positions.iter().product();
        if dims.len() != 3 || per_block == 0 || dims[1] % per_block != 0 || dims[2] != l {
            return Err(ctx.fail(format!(
                "input shape {dims:?} is not [N, C·{per_block}, {l}] for these blocks"
            )));
        }
        Ok(Col2ImPlan {
            n: dims[0],
            c: dims[1] / per_block,
            image,
            block,
            strides,
            dilations,
            begins: pads[..k].to_vec(),
            ends: pads[k..].to_vec(),
            positions,
        })
    }

    /// Whether the pads are the same at both ends of every axis.
    pub fn symmetric(&self) -> bool {
        self.begins == self.ends
    }

    /// The image position (or None where it falls in the padding) that
    /// block element `b` (per-axis offsets) at block position `p` lands on.
    pub fn target(&self, b: &[usize], p: &[usize]) -> Option<Vec<usize>> {
        (0..self.image.len())
            .map(|i| {
                let at = p[i] * self.strides[i] + b[i] * self.dilations[i];
                at.checked_sub(self.begins[i])
                    .filter(|&v| v < self.image[i])
            })
            .collect()
    }
}

/// AffineGrid's decoded node.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineGridPlan {
    pub align_corners: bool,
    pub n: usize,
    /// Spatial sizes, outermost first: `[H, W]` or `[D, H, W]`.
    pub spatial: Vec<usize>,
}

impl AffineGridPlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, theta: &T, size: &T) -> OpResult<AffineGridPlan> {
        let align_corners = ctx.int("align_corners", 0)? != 0;
        let size = size.host_ints()?;
        let k = size.len().saturating_sub(2);
        if !matches!(k, 2 | 3) || size.iter().any(|&d| d < 1) {
            return Err(ctx.fail(format!(
                "input `size` {size:?} is not [N, C, H, W] or [N, C, D, H, W]"
            )));
        }
        let n = size[0] as usize;
        if theta.dims() != [n, k, k + 1] {
            return Err(ctx.fail(format!(
                "input `theta` has shape {:?}, expected [{n}, {k}, {}]",
                theta.dims(),
                k + 1
            )));
        }
        Ok(AffineGridPlan {
            align_corners,
            n,
            spatial: size[2..].iter().map(|&d| d as usize).collect(),
        })
    }

    /// The normalized coordinates along an axis of `len` points.
    pub fn coords(&self, len: usize) -> Vec<f64> {
        (0..len)
            .map(|i| {
                let i = i as f64;
                let l = len as f64;
                match (self.align_corners, len) {
                    (true, 1) => 0.0,
                    (true, _) => -1.0 + 2.0 * i / (l - 1.0),
                    (false, _) => (2.0 * i + 1.0) / l - 1.0,
                }
            })
            .collect()
    }

    /// The homogeneous base grid `[Π spatial, k + 1]`, rows in output order,
    /// each `(x, y[, z], 1)` with x along the innermost axis.
    pub fn base(&self) -> Vec<f64> {
        let axes: Vec<Vec<f64>> = self.spatial.iter().map(|&l| self.coords(l)).collect();
        let k = self.spatial.len();
        let total: usize = self.spatial.iter().product();
        let mut out = Vec::with_capacity(total * (k + 1));
        for flat in 0..total {
            let mut rest = flat;
            let mut idx = vec![0; k];
            for a in (0..k).rev() {
                idx[a] = rest % self.spatial[a];
                rest /= self.spatial[a];
            }
            for a in (0..k).rev() {
                out.push(axes[a][idx[a]]);
            }
            out.push(1.0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn it(v: &[i64]) -> Tensor {
        Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.to_vec()).unwrap())
    }
    fn zeros(shape: &[usize]) -> Tensor {
        Tensor::F32(ArrayD::zeros(IxDyn(shape)))
    }

    #[test]
    fn odd_crops_round_down_and_odd_pads_go_right() {
        let plan = with(
            "CenterCropPad",
            18,
            vec![("axes", Attr::Ints(vec![-2, -1]))],
            |c| center_crop_pad(c, &zeros(&[2, 5, 3]), &it(&[2, 6])),
        )
        .unwrap();
        assert_eq!(
            plan,
            vec![
                CropPad {
                    axis: 1,
                    crop_start: 1,
                    keep: 2,
                    before: 0,
                    after: 0
                },
                CropPad {
                    axis: 2,
                    crop_start: 0,
                    keep: 3,
                    before: 1,
                    after: 2
                },
            ]
        );
        assert!(with("CenterCropPad", 18, vec![], |c| {
            center_crop_pad(c, &zeros(&[2, 5]), &it(&[2]))
        })
        .is_err());
    }

    #[test]
    fn col2im_counts_block_positions_and_rejects_a_wrong_l() {
        let attrs = vec![
            ("strides", Attr::Ints(vec![2, 2])),
            ("pads", Attr::Ints(vec![1, 0, 0, 1])),
        ];
        let plan = with("Col2Im", 18, attrs.clone(), |c| {
            Col2ImPlan::decode(c, &zeros(&[1, 4, 6]), &it(&[5, 4]), &it(&[2, 2]))
        })
        .unwrap();
        assert_eq!(plan.positions, vec![3, 2]);
        assert_eq!(plan.c, 1);
        assert!(!plan.symmetric());
        assert_eq!(plan.target(&[0, 1], &[0, 1]), None);
        assert_eq!(plan.target(&[1, 1], &[1, 1]), Some(vec![2, 3]));
        assert!(with("Col2Im", 18, attrs, |c| {
            Col2ImPlan::decode(c, &zeros(&[1, 4, 5]), &it(&[5, 4]), &it(&[2, 2]))
        })
        .is_err());
    }

    #[test]
    fn affine_grid_coordinates_follow_align_corners() {
        let plan = with(
            "AffineGrid",
            20,
            vec![("align_corners", Attr::Int(1))],
            |c| AffineGridPlan::decode(c, &zeros(&[1, 2, 3]), &it(&[1, 1, 2, 3])),
        )
        .unwrap();
        assert_eq!(plan.coords(3), vec![-1.0, 0.0, 1.0]);
        assert_eq!(&plan.base()[..6], &[-1.0, -1.0, 1.0, 0.0, -1.0, 1.0]);
        let edge = AffineGridPlan {
            align_corners: false,
            ..plan
        };
        assert_eq!(edge.coords(2), vec![-0.5, 0.5]);
        assert!(with("AffineGrid", 20, vec![], |c| {
            AffineGridPlan::decode(c, &zeros(&[1, 3, 4]), &it(&[1, 1, 2, 3]))
        })
        .is_err());
    }
}
