//! candle lowerings, all composed (candle has none of these ops):
//! CenterCropPad-18 as `narrow` then zero padding; Col2Im-18 as one
//! `index_add` of every column entry into its image position (the target of
//! each entry computed on the host from `op::geometry::Col2ImPlan`, entries
//! falling in the padding sent to a spare slot and dropped); AffineGrid-20
//! as the host-built base grid `(x, y[, z], 1)` times `thetaᵀ` (`matmul`).

use candle_core::Tensor;

use super::{index_tensor, pad_const, Ce, Scope};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::geometry::{center_crop_pad, AffineGridPlan, Col2ImPlan};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::Composed;
    r.range(
        "CenterCropPad",
        18,
        u32::MAX,
        crop_pad,
        spec!("CenterCropPad"),
        cov![
            "all attributes" => Composed("narrow, pad_with_zeros"),
        ],
    );
    r.range(
        "Col2Im",
        18,
        u32::MAX,
        col2im,
        spec!("Col2Im"),
        cov![
            "all attributes (targets from the plan on the host)" => Composed("index_add, narrow"),
        ],
    );
    r.range(
        "AffineGrid",
        20,
        u32::MAX,
        affine_grid,
        spec!("AffineGrid"),
        cov![
            "all attributes (base grid on the host)" => Composed("broadcast_matmul"),
        ],
    );
}

/// CenterCropPad-18: `narrow` each planned axis, then pad it with zeros.
fn crop_pad(ctx: &OpCtx, x: &In) -> Out {
    let data = ctx.input(x, 0)?;
    let plan = center_crop_pad(ctx, data, ctx.input(x, 1)?)?;
    let mut y = data.clone();
    for p in plan {
        y = y.narrow(p.axis, p.crop_start, p.keep).ce()?;
        y = pad_const(&y, p.axis, p.before, p.after, 0.0)?;
    }
    let y = super::keep_bool(ctx, data, y);
    Ok(Lowered::one(y, How::composed("narrow, pad_with_zeros")))
}

/// Row-major multi-index of `flat` within `dims`.
fn unravel(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for a in (0..dims.len()).rev() {
        idx[a] = flat % dims[a];
        flat /= dims[a];
    }
    idx
}

/// Col2Im-18: `[N, C, Πblock·L]` entries added into `[N, C, Πimage + 1]`.
fn col2im(ctx: &OpCtx, x: &In) -> Out {
    let cols = ctx.input(x, 0)?;
    let plan = Col2ImPlan::decode(ctx, cols, ctx.input(x, 1)?, ctx.input(x, 2)?)?;
    let pixels: usize = plan.image.iter().product();
    let per_block: usize = plan.block.iter().product();
    let l: usize = plan.positions.iter().product();
    let mut targets = Vec::with_capacity(per_block * l);
    for e in 0..per_block {
        let b = unravel(e, &plan.block);
        for li in 0..l {
            let at = plan.target(&b, &unravel(li, &plan.positions));
            let flat = at.map_or(pixels, |at| {
                at.iter()
                    .zip(&plan.image)
                    .fold(0, |acc, (&i, &d)| acc * d + i)
            });
            targets.push(flat as i64);
        }
    }
    let idx = index_tensor(targets, cols.device())?;
    let src = cols.reshape((plan.n, plan.c, per_block * l)).ce()?;
    let zeros = Tensor::zeros((plan.n, plan.c, pixels + 1), cols.dtype(), cols.device()).ce()?;
    let y = zeros
        .index_add(&idx, &src, 2)
        .ce()?
        .narrow(2, 0, pixels)
        .ce()?;
    let mut shape = vec![plan.n, plan.c];
    shape.extend(&plan.image);
    Ok(Lowered::one(
        y.reshape(shape).ce()?,
        How::composed("index_add, narrow"),
    ))
}

/// AffineGrid-20: `[N, P, k+1] · thetaᵀ [N, k+1, k]`.
fn affine_grid(ctx: &OpCtx, x: &In) -> Out {
    let theta = ctx.input(x, 0)?;
    let plan = AffineGridPlan::decode(ctx, theta, ctx.input(x, 1)?)?;
    let k = plan.spatial.len();
    let base = plan.base();
    let points = base.len() / (k + 1);
    let device = Scope::of(ctx).device();
    let base = Tensor::from_vec(base, (1, points, k + 1), device)
        .and_then(|t| t.to_dtype(theta.dtype()))
        .ce()?;
    let y = base.broadcast_matmul(&theta.transpose(1, 2).ce()?).ce()?;
    let mut shape = vec![plan.n];
    shape.extend(&plan.spatial);
    shape.push(k);
    Ok(Lowered::one(
        y.reshape(shape).ce()?,
        How::composed("broadcast_matmul"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn col2im_adds_overlaps_and_drops_the_padding() {
        // Blocks 1x2 over a 1x3 image padded one column on the left only.
        let cols = f32t(&[1, 2, 3], &[1., 2., 3., 10., 20., 30.]);
        let n = node(
            "Col2Im",
            3,
            1,
            vec![("pads", crate::graph::Attr::Ints(vec![0, 1, 0, 0]))],
        );
        let (v, dims, _) = run1(
            &n,
            18,
            &[Some(&cols), Some(&i64t(&[1, 3])), Some(&i64t(&[1, 2]))],
        );
        assert_eq!(dims, vec![1, 1, 1, 3]);
        assert_eq!(v, vec![12., 23., 30.]);
        let theta = f32t(&[1, 2, 3], &[2., 0., 0.5, 0., 1., 0.]);
        let n = node("AffineGrid", 2, 1, vec![]);
        let (v, dims, _) = run1(&n, 20, &[Some(&theta), Some(&i64t(&[1, 1, 1, 2]))]);
        assert_eq!(dims, vec![1, 1, 2, 2]);
        assert_eq!(v, vec![-0.5, 0., 1.5, 0.]);
    }
}
