//! Reference ops: RoiAlign and NonMaxSuppression, written from the spec in
//! f64 (decodes in `op::roi_align` and `op::nms`).
//!
//! RoiAlign walks each roi's output bins and their grid of sample points,
//! interpolating each point bilinearly from its four neighbours (a point
//! beyond [−1, H] × [−1, W] reads 0; a coordinate in [−1, 0] reads the first
//! row or column; one past the last reads the last) and pools the bin: the
//! mean of the samples (`avg`), or the maximum of the weighted corner values
//! (`max`, see `op::roi_align`). The same walk with unweighted |values|
//! gives the magnitude the local error bound scales with (`diff::bound`).
//! NonMaxSuppression computes each pair's IoU from the boxes' corners in f64
//! and selects greedily in descending score order.

use ndarray::{ArrayD, IxDyn};

use super::util::float_input;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::nms::{BoxFormat, NmsAttrs};
use crate::op::roi_align::{RoiAlignAttrs, RoiCoord, RoiMode};
use crate::op::HostView;
use crate::tensor::Tensor;

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range("RoiAlign", 10, u32::MAX, roi_align, spec!("RoiAlign"), SPEC);
    r.range(
        "NonMaxSuppression",
        10,
        u32::MAX,
        nms,
        spec!("NonMaxSuppression"),
        SPEC,
    );
}

/// RoiAlign-10/16: (R, C, out_h, out_w) pooled bins.
fn roi_align(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let dtype = ctx.input(x, 0)?.dtype;
    let y = pool_all(ctx, x, false)?;
    Ok(Lowered::one(RefTensor::float(y, dtype), How::Spec))
}

/// Each bin's `Σ|v|` over its samples' four neighbours (unweighted, |w| ≤ 1,
/// so it also covers the weights' error from the coordinates' rounding),
/// divided by the sample count for `avg`; the largest sample's for `max`.
pub fn magnitude(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<ArrayD<f64>> {
    pool_all(ctx, x, true)
}

/// The most sample points any output bin pools (the bound's term count).
pub fn max_samples(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<usize> {
    let a = RoiAlignAttrs::decode(ctx)?;
    let rois: Vec<f64> = float_input(ctx, x, 1)?.iter().copied().collect();
    Ok(rois
        .chunks(4)
        .map(|r| Roi::new(&a, r).grid.iter().product::<usize>())
        .max()
        .unwrap_or(0))
}

fn pool_all(ctx: &OpCtx, x: &[Option<&RefTensor>], abs: bool) -> OpResult<ArrayD<f64>> {
    let a = RoiAlignAttrs::decode(ctx)?;
    let data = float_input(ctx, x, 0)?;
    let rois = float_input(ctx, x, 1)?;
    let batch = ctx.input(x, 2)?.host_ints()?;
    let [n, c, h, w] = <[usize; 4]>::try_from(data.shape())
        .map_err(|_| ctx.fail(format!("input `X` must be 4-D, got {:?}", data.shape())))?;
    let r = rois.shape()[0];
    if rois.shape() != [r, 4] || batch.len() != r {
        return Err(ctx.fail(format!(
            "inputs `rois` {:?} and `batch_indices` ({}) must be (R, 4) and (R)",
            rois.shape(),
            batch.len()
        )));
    }
    let data = data.as_standard_layout();
    let img = data.as_slice().expect("standard");
    let rois: Vec<f64> = rois.iter().copied().collect();
    let mut y = Vec::with_capacity(r * c * a.out_h * a.out_w);
    for (i, &b) in batch.iter().enumerate() {
        if b < 0 || b as usize >= n {
            return Err(ctx.fail(format!("batch_indices[{i}] = {b} outside [0, {n})")));
        }
        let roi = Roi::new(&a, &rois[i * 4..][..4]);
        for ch in 0..c {
            let plane = Plane {
                v: &img[(b as usize * c + ch) * h * w..][..h * w],
                h,
                w,
                abs,
            };
            for ph in 0..a.out_h {
                for pw in 0..a.out_w {
                    y.push(roi.bin(&a, &plane, ph, pw));
                }
            }
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&[r, c, a.out_h, a.out_w]), y).expect("output dims"))
}

/// One (H, W) plane of X; `abs` reads |v| with every weight 1.
struct Plane<'a> {
    v: &'a [f64],
    h: usize,
    w: usize,
    abs: bool,
}

impl Plane<'_> {
    /// The four weighted neighbour values of the point (y, x), or none
    /// outside [−1, H] × [−1, W].
    fn corners(&self, y: f64, x: f64) -> [f64; 4] {
        let (h, w) = (self.h as f64, self.w as f64);
        if !(-1.0..=h).contains(&y) || !(-1.0..=w).contains(&x) {
            return [0.0; 4];
        }
        let (y0, y1, wy) = neighbours(y, self.h);
        let (x0, x1, wx) = neighbours(x, self.w);
        let at = |r: usize, c: usize, weight: f64| {
            let v = self.v[r * self.w + c];
            if self.abs {
                v.abs()
            } else {
                weight * v
            }
        };
        [
            at(y0, x0, (1.0 - wy) * (1.0 - wx)),
            at(y0, x1, (1.0 - wy) * wx),
            at(y1, x0, wy * (1.0 - wx)),
            at(y1, x1, wy * wx),
        ]
    }
}

/// The neighbours of coordinate `p` on an axis of `n` and the far one's
/// weight: a coordinate below 0 reads 0, one at or past the last index reads
/// the last.
fn neighbours(p: f64, n: usize) -> (usize, usize, f64) {
    let p = p.max(0.0);
    let lo = p.floor() as usize;
    if lo >= n - 1 {
        (n - 1, n - 1, 0.0)
    } else {
        (lo, lo + 1, p - lo as f64)
    }
}

/// One roi in input pixels: start, bin size and sample grid per axis (y, x).
struct Roi {
    start: [f64; 2],
    bin: [f64; 2],
    grid: [usize; 2],
}

impl Roi {
    fn new(a: &RoiAlignAttrs, roi: &[f64]) -> Roi {
        let scale = a.spatial_scale as f64;
        let offset = if a.coord == RoiCoord::HalfPixel {
            0.5
        } else {
            0.0
        };
        let out = [a.out_h as f64, a.out_w as f64];
        // (x1, y1, x2, y2): axis 0 (y) reads entries 1 and 3.
        let axis = |k: usize| {
            let start = roi[1 - k] * scale - offset;
            let mut len = roi[3 - k] * scale - offset - start;
            if a.coord == RoiCoord::OutputHalfPixel {
                len = len.max(1.0);
            }
            let grid = match a.sampling_ratio {
                0 => (len / out[k]).ceil().max(0.0) as usize,
                s => s,
            };
            (start, len / out[k], grid)
        };
        let ((sy, by, gy), (sx, bx, gx)) = (axis(0), axis(1));
        Roi {
            start: [sy, sx],
            bin: [by, bx],
            grid: [gy, gx],
        }
    }

    /// Output bin (ph, pw): its samples pooled.
    fn bin(&self, a: &RoiAlignAttrs, plane: &Plane, ph: usize, pw: usize) -> f64 {
        let [gy, gx] = self.grid;
        let mut sum = 0.0;
        let mut max = f64::NEG_INFINITY;
        for iy in 0..gy {
            let y = self.start[0] + self.bin[0] * (ph as f64 + (iy as f64 + 0.5) / gy as f64);
            for ix in 0..gx {
                let x = self.start[1] + self.bin[1] * (pw as f64 + (ix as f64 + 0.5) / gx as f64);
                let c = plane.corners(y, x);
                sum += c.iter().sum::<f64>();
                let top = if plane.abs {
                    c.iter().sum::<f64>()
                } else {
                    c.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                };
                max = max.max(top);
            }
        }
        match a.mode {
            RoiMode::Avg => sum / (gy * gx).max(1) as f64,
            RoiMode::Max if gy * gx == 0 => 0.0,
            RoiMode::Max => max,
        }
    }
}

/// NonMaxSuppression-10/11: (n, 3) int64 (batch, class, box) rows.
fn nms(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let a = NmsAttrs::decode(ctx, x)?;
    let boxes: Vec<[f64; 4]> = float_input(ctx, x, 0)?
        .iter()
        .copied()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|b| corners(a.format, b))
        .collect();
    let scores: Vec<f64> = float_input(ctx, x, 1)?.iter().copied().collect();
    let n = a.boxes;
    let mut rows = Vec::new();
    for b in 0..a.batches {
        let bx = &boxes[b * n..][..n];
        for c in 0..a.classes {
            let s = &scores[(b * a.classes + c) * n..][..n];
            let mut order: Vec<usize> = (0..n).collect();
            // Stable: equal scores keep the lower box index first.
            order.sort_by(|&i, &j| s[j].total_cmp(&s[i]));
            for k in a.select(&order, s, |i, j| iou(&bx[i], &bx[j])) {
                rows.extend([b as i64, c as i64, k as i64]);
            }
        }
    }
    let out = ArrayD::from_shape_vec(IxDyn(&[rows.len() / 3, 3]), rows).expect("rows of 3");
    Ok(Lowered::one(RefTensor::exact(Tensor::I64(out)), How::Spec))
}

/// A box as (y_min, x_min, y_max, x_max).
fn corners(format: BoxFormat, b: &[f64]) -> [f64; 4] {
    match format {
        BoxFormat::Corners => [
            b[0].min(b[2]),
            b[1].min(b[3]),
            b[0].max(b[2]),
            b[1].max(b[3]),
        ],
        BoxFormat::Center => {
            let (hw, hh) = (b[2] / 2.0, b[3] / 2.0);
            [b[1] - hh, b[0] - hw, b[1] + hh, b[0] + hw]
        }
    }
}

/// Intersection over union of two boxes; 0 when either has no area.
fn iou(p: &[f64; 4], q: &[f64; 4]) -> f64 {
    let area = |b: &[f64; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    let (ap, aq) = (area(p), area(q));
    let ih = (p[2].min(q[2]) - p[0].max(q[0])).max(0.0);
    let iw = (p[3].min(q[3]) - p[1].max(q[1])).max(0.0);
    let inter = ih * iw;
    if ap <= 0.0 || aq <= 0.0 {
        return 0.0;
    }
    inter / (ap + aq - inter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_half_overlapping_boxes_and_degenerate_ones() {
        assert_eq!(iou(&[0.0, 0.0, 1.0, 2.0], &[0.0, 0.0, 1.0, 1.0]), 0.5);
        assert_eq!(iou(&[0.0, 0.0, 0.0, 2.0], &[0.0, 0.0, 0.0, 2.0]), 0.0);
        let c = corners(BoxFormat::Center, &[1.0, 2.0, 2.0, 4.0]);
        assert_eq!(c, [0.0, 0.0, 4.0, 2.0]);
        assert_eq!(
            corners(BoxFormat::Corners, &[1.0, 2.0, 0.0, 0.0]),
            [0.0, 0.0, 1.0, 2.0]
        );
    }

    #[test]
    fn neighbours_clamp_at_both_ends() {
        assert_eq!(neighbours(-0.5, 4), (0, 1, 0.0));
        assert_eq!(neighbours(3.25, 4), (3, 3, 0.0));
        assert_eq!(neighbours(1.25, 4), (1, 2, 0.25));
    }
}
