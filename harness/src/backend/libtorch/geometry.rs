//! libtorch lowerings: CenterCropPad-18 (composed: `narrow` then
//! `constant_pad_nd`, torch has no centred crop), Col2Im-18 (torch's native
//! `col2im`, i.e. `fold`, which is 2-D only and pads symmetrically; uneven
//! pads fold the padded image and `narrow` it) and AffineGrid-20 (torch's
//! native `affine_grid_generator`, which ONNX's op is modelled on).

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::geometry::{center_crop_pad, AffineGridPlan, Col2ImPlan};

type X<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native, Unsupported};
    r.range(
        "CenterCropPad",
        18,
        u32::MAX,
        crop_pad,
        spec!("CenterCropPad"),
        cov![
            "all attributes" => Composed("narrow, constant_pad_nd"),
        ],
    );
    r.range(
        "Col2Im",
        18,
        u32::MAX,
        col2im,
        spec!("Col2Im"),
        cov![
            "2 spatial axes, even pads" => Native("col2im"),
            "2 spatial axes, uneven pads" => Composed("col2im, narrow"),
            "1 or 3+ spatial axes" => Unsupported("image_shape: torch's col2im (fold) is 2-D only"),
        ],
    );
    r.range(
        "AffineGrid",
        20,
        u32::MAX,
        affine_grid,
        spec!("AffineGrid"),
        cov![
            "all attributes" => Native("affine_grid_generator"),
        ],
    );
}

/// CenterCropPad-18: crop each planned axis with `narrow`, then pad with one
/// `constant_pad_nd` (its pad list runs from the last axis back).
fn crop_pad(ctx: &OpCtx, x: &X) -> Out {
    let data = ctx.input(x, 0)?;
    let plan = center_crop_pad(ctx, data, ctx.input(x, 1)?)?;
    let rank = data.dim();
    let mut y = data.shallow_clone();
    let mut pads = vec![0i64; 2 * rank];
    for p in &plan {
        y = y.f_narrow(p.axis as i64, p.crop_start as i64, p.keep as i64)?;
        let at = 2 * (rank - 1 - p.axis);
        pads[at] = p.before as i64;
        pads[at + 1] = p.after as i64;
    }
    if pads.iter().any(|&v| v > 0) {
        y = y.f_constant_pad_nd(pads.as_slice())?;
    }
    Ok(Lowered::one(y, How::composed("narrow, constant_pad_nd")))
}

/// Col2Im-18 through torch's `col2im`.
fn col2im(ctx: &OpCtx, x: &X) -> Out {
    let cols = ctx.input(x, 0)?;
    let plan = Col2ImPlan::decode(ctx, cols, ctx.input(x, 1)?, ctx.input(x, 2)?)?;
    if plan.image.len() != 2 {
        return Err(ctx.unsupported(
            "image_shape",
            format!(
                "{} spatial axes: torch's col2im (fold) is 2-D only",
                plan.image.len()
            ),
        ));
    }
    let i64s = |v: &[usize]| v.iter().map(|&d| d as i64).collect::<Vec<i64>>();
    let (block, dil, stride) = (
        i64s(&plan.block),
        i64s(&plan.dilations),
        i64s(&plan.strides),
    );
    if plan.symmetric() {
        let y = cols.f_col2im(
            i64s(&plan.image).as_slice(),
            block.as_slice(),
            dil.as_slice(),
            i64s(&plan.begins).as_slice(),
            stride.as_slice(),
        )?;
        return Ok(Lowered::one(y, How::native("col2im")));
    }
    let padded: Vec<i64> = (0..2)
        .map(|i| (plan.image[i] + plan.begins[i] + plan.ends[i]) as i64)
        .collect();
    let mut y = cols.f_col2im(
        padded.as_slice(),
        block.as_slice(),
        dil.as_slice(),
        [0i64, 0].as_slice(),
        stride.as_slice(),
    )?;
    for i in 0..2 {
        y = y.f_narrow(2 + i as i64, plan.begins[i] as i64, plan.image[i] as i64)?;
    }
    Ok(Lowered::one(y, How::composed("col2im, narrow")))
}

/// AffineGrid-20 through torch's `affine_grid_generator`.
fn affine_grid(ctx: &OpCtx, x: &X) -> Out {
    let theta = ctx.input(x, 0)?;
    let size = ctx.input(x, 1)?;
    let plan = AffineGridPlan::decode(ctx, theta, size)?;
    let size = crate::op::HostView::host_ints(size)?;
    let y = Tensor::f_affine_grid_generator(theta, size.as_slice(), plan.align_corners)?;
    Ok(Lowered::one(y, How::native("affine_grid_generator")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;

    #[test]
    fn crop_pad_centres_and_uneven_col2im_narrows() {
        let x = f32s(&[1, 4], &[1., 2., 3., 4.]);
        let n = node("CenterCropPad", 2, 1, vec![("axes", attr_ints(&[1]))]);
        let y = run(&n, 18, &[Some(&x), Some(&i64s(&[1], &[7]))]).unwrap();
        assert_eq!(
            vals(y.outputs[0].as_ref().unwrap()),
            vec![0., 1., 2., 3., 4., 0., 0.]
        );
        // Blocks 1x2 over a 1x3 image padded one column on the left only.
        let cols = f32s(&[1, 2, 3], &[1., 2., 3., 10., 20., 30.]);
        let n = node("Col2Im", 3, 1, vec![("pads", attr_ints(&[0, 1, 0, 0]))]);
        let y = run(
            &n,
            18,
            &[
                Some(&cols),
                Some(&i64s(&[2], &[1, 3])),
                Some(&i64s(&[2], &[1, 2])),
            ],
        )
        .unwrap();
        assert_eq!(y.how.label(), "composed: col2im, narrow");
        assert_eq!(vals(y.outputs[0].as_ref().unwrap()), vec![12., 23., 30.]);
    }
}
