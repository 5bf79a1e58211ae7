//! Reference ops: CenterCropPad-18, Col2Im-18 and AffineGrid-20, written
//! from the spec over the plans of `op::geometry`.
//!
//! CenterCropPad moves values (any dtype, exact); Col2Im sums every column
//! entry that lands on an image position (in f64, so overlaps add exactly up
//! to f64 rounding); AffineGrid is `theta · (x, y[, z], 1)` per grid point.

use ndarray::{ArrayD, IxDyn};

use super::shape::arr;
use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::geometry::{center_crop_pad, AffineGridPlan, Col2ImPlan, CropPad};
use crate::tensor::Element;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

type Out = OpResult<Lowered<RefTensor>>;
type In<'a> = [Option<&'a RefTensor>];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range(
        "CenterCropPad",
        18,
        u32::MAX,
        crop_pad,
        spec!("CenterCropPad"),
        SPEC,
    );
    r.range("Col2Im", 18, u32::MAX, col2im, spec!("Col2Im"), SPEC);
    r.range(
        "AffineGrid",
        20,
        u32::MAX,
        affine_grid,
        spec!("AffineGrid"),
        SPEC,
    );
}

fn floats<'a>(ctx: &OpCtx, x: &In<'a>, i: usize) -> OpResult<&'a ArrayD<f64>> {
    let t = ctx.input(x, i)?;
    t.f64().map_err(|_| {
        ctx.fail(format!(
            "input #{i} must be a float tensor, got {}",
            t.dtype
        ))
    })
}

/// CenterCropPad-18: each planned axis cropped from `crop_start`, then
/// zero-padded; other axes unchanged.
fn crop_pad(ctx: &OpCtx, x: &In) -> Out {
    let data = ctx.input(x, 0)?;
    let plan = center_crop_pad(ctx, data, ctx.input(x, 1)?)?;
    let mut per_axis: Vec<Option<CropPad>> = vec![None; data.shape().len()];
    let mut shape = data.shape().to_vec();
    for p in plan {
        shape[p.axis] = p.before + p.keep + p.after;
        per_axis[p.axis] = Some(p);
    }
    let out = by_dtype!(data.data.dtype(), T => {
        let a = arr::<T>(&data.data);
        T::wrap(ArrayD::from_shape_fn(IxDyn(&shape), |idx| {
            let mut src = Vec::with_capacity(shape.len());
            for (axis, p) in per_axis.iter().enumerate() {
                match p {
                    None => src.push(idx[axis]),
                    Some(p) if idx[axis] < p.before || idx[axis] >= p.before + p.keep => {
                        return T::default()
                    }
                    Some(p) => src.push(idx[axis] - p.before + p.crop_start),
                }
            }
            a[IxDyn(&src)]
        }))
    });
    Ok(Lowered::one(RefTensor::like(data, out), How::Spec))
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

/// Col2Im-18: column `l` (a block position) of channel `c·Πblock + e`
/// (block element `e`) adds into the image where that element lands.
fn col2im(ctx: &OpCtx, x: &In) -> Out {
    let input = ctx.input(x, 0)?;
    let cols = floats(ctx, x, 0)?;
    let plan = Col2ImPlan::decode(ctx, input, ctx.input(x, 1)?, ctx.input(x, 2)?)?;
    let per_block: usize = plan.block.iter().product();
    let l: usize = plan.positions.iter().product();
    let mut shape = vec![plan.n, plan.c];
    shape.extend(&plan.image);
    let mut out = ArrayD::<f64>::zeros(IxDyn(&shape));
    for e in 0..per_block {
        let b = unravel(e, &plan.block);
        for li in 0..l {
            let Some(at) = plan.target(&b, &unravel(li, &plan.positions)) else {
                continue;
            };
            for n in 0..plan.n {
                for c in 0..plan.c {
                    let mut o = vec![n, c];
                    o.extend(&at);
                    out[IxDyn(&o)] += cols[[n, c * per_block + e, li]];
                }
            }
        }
    }
    Ok(Lowered::one(RefTensor::float(out, input.dtype), How::Spec))
}

/// AffineGrid-20: `grid[n, p, i] = Σ_j theta[n, i, j] · base[p, j]`.
fn affine_grid(ctx: &OpCtx, x: &In) -> Out {
    let out = grid(ctx, x, |v| v)?;
    Ok(Lowered::one(
        RefTensor::float(out, ctx.input(x, 0)?.dtype),
        How::Spec,
    ))
}

/// `Σ_j |theta[n, i, j] · base[p, j]|`: AffineGrid's error magnitude.
pub(super) fn magnitude(ctx: &OpCtx, x: &In) -> OpResult<ArrayD<f64>> {
    grid(ctx, x, f64::abs)
}

/// The grid with each term `theta · base` passed through `term`.
fn grid(ctx: &OpCtx, x: &In, term: fn(f64) -> f64) -> OpResult<ArrayD<f64>> {
    let theta = floats(ctx, x, 0)?;
    let plan = AffineGridPlan::decode(ctx, ctx.input(x, 0)?, ctx.input(x, 1)?)?;
    let k = plan.spatial.len();
    let base = plan.base();
    let points = base.len() / (k + 1);
    let mut shape = vec![plan.n];
    shape.extend(&plan.spatial);
    shape.push(k);
    let mut v = Vec::with_capacity(plan.n * points * k);
    for n in 0..plan.n {
        for p in base.chunks(k + 1) {
            for i in 0..k {
                v.push((0..=k).map(|j| term(theta[[n, i, j]] * p[j])).sum::<f64>());
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape matches"))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use crate::graph::Attr;

    #[test]
    fn crop_pad_centres_and_col2im_sums_overlaps() {
        let x = f(&[1, 4], &[1., 2., 3., 4.]);
        let n = test_node("CenterCropPad", 2, 1, vec![("axes", Attr::Ints(vec![1]))]);
        let y = run_op(&n, 18, &[Some(&x), Some(&i(&[1], &[7]))])
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(y.data.to_f64_vec(), vec![0., 1., 2., 3., 4., 0., 0.]);
        // A 1x3 image from blocks of 1x2 at stride 1: the middle pixel is covered twice.
        let cols = f(&[1, 2, 2], &[1., 10., 100., 1000.]);
        let n = test_node("Col2Im", 3, 1, vec![]);
        let y = run_op(
            &n,
            18,
            &[
                Some(&cols),
                Some(&i(&[2], &[1, 3])),
                Some(&i(&[2], &[1, 2])),
            ],
        )
        .unwrap()
        .remove(0)
        .unwrap();
        assert_eq!(y.shape(), &[1, 1, 1, 3]);
        assert_eq!(y.data.to_f64_vec(), vec![1., 110., 1000.]);
    }

    #[test]
    fn affine_grid_applies_theta_to_each_point() {
        let theta = f(&[1, 2, 3], &[2., 0., 0.5, 0., 1., 0.]);
        let n = test_node("AffineGrid", 2, 1, vec![]);
        let y = run_op(&n, 20, &[Some(&theta), Some(&i(&[4], &[1, 1, 1, 2]))])
            .unwrap()
            .remove(0)
            .unwrap();
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(y.data.to_f64_vec(), vec![-0.5, 0., 1.5, 0.]);
    }
}
