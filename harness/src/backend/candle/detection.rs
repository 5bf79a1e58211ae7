//! candle lowerings: RoiAlign and NonMaxSuppression (decodes in
//! `op::roi_align` and `op::nms`), both composed as in libtorch (candle has
//! neither op).
//!
//! RoiAlign reads the rois and batch indices to the host, builds each roi's
//! bilinear tap table (`RoiAlignAttrs::taps`), gathers X's plane at the taps
//! (`index_select`), weights them and pools each bin (`sum`/count or `max`).
//! NonMaxSuppression computes the pairwise IoU matrix with candle ops, orders
//! each class with `arg_sort_last_dim` (a stable sort on the CPU: equal
//! scores keep the lower index first) and runs the greedy selection
//! (`NmsAttrs::select`) on the host. In the idiomatic port (`--port`),
//! RoiAlign follows torchvision's `aligned=False` (output_half_pixel).

use candle_core::{DType, Tensor, D};

use super::{full, host_floats, host_ints, index_tensor, Ce, Scope};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::nms::{BoxFormat, NmsAttrs};
use crate::op::roi_align::{RoiAlignAttrs, RoiCoord, RoiMode};

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

const ROI_OPS: &str = "index_select at host-built bilinear taps, mul, sum/max";
const NMS_OPS: &str =
    "IoU matrix (minimum, maximum, div), arg_sort_last_dim; greedy selection on host";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "RoiAlign",
        10,
        u32::MAX,
        roi_align,
        spec!("RoiAlign"),
        cov!["all attributes (candle has no roi_align)" => Composed(ROI_OPS)],
    );
    r.range(
        "NonMaxSuppression",
        10,
        u32::MAX,
        nms,
        spec!("NonMaxSuppression"),
        cov!["all attributes (candle has no nms)" => Composed(NMS_OPS)],
    );
}

/// RoiAlign-10/16: each roi's plane gathered at its taps and pooled per bin.
fn roi_align(ctx: &OpCtx, x: &In) -> Out {
    let mut a = RoiAlignAttrs::decode(ctx)?;
    if ctx.options.port {
        a = a.with_coord(RoiCoord::OutputHalfPixel);
    }
    let data = ctx.input(x, 0)?;
    let rois = host_floats(ctx.input(x, 1)?)?;
    let batch = host_ints(ctx.input(x, 2)?)?;
    let [n, c, h, w] = <[usize; 4]>::try_from(data.dims())
        .map_err(|_| ctx.fail(format!("input `X` must be 4-D, got {:?}", data.dims())))?;
    if rois.len() != batch.len() * 4 {
        return Err(ctx.fail("inputs `rois` and `batch_indices` must be (R, 4) and (R)"));
    }
    let dev = Scope::of(ctx).device();
    let (oh, ow) = (a.out_h, a.out_w);
    let planes = data.reshape((n, c, h * w)).ce()?;
    let mut out = Vec::with_capacity(batch.len());
    for (i, &b) in batch.iter().enumerate() {
        if b < 0 || b as usize >= n {
            return Err(ctx.fail(format!("batch_indices[{i}] = {b} outside [0, {n})")));
        }
        let (g, taps) = a.taps(&rois[i * 4..][..4], h, w);
        let samples = g.grid[0] * g.grid[1];
        if samples == 0 {
            out.push(full(0.0, &[c, oh, ow], data.dtype(), dev)?);
            continue;
        }
        let idx = index_tensor(taps.iter().map(|t| t.0 as i64).collect(), dev)?;
        let wts: Vec<f64> = taps.iter().map(|t| t.1).collect();
        let wts = Tensor::from_vec(wts, taps.len(), dev)
            .and_then(|t| t.to_dtype(data.dtype()))
            .ce()?;
        let v = planes
            .get(b as usize)
            .and_then(|p| p.index_select(&idx, 1))
            .and_then(|p| p.broadcast_mul(&wts))
            .and_then(|p| p.reshape((c, oh * ow, samples * 4)))
            .ce()?;
        let pooled = match a.mode {
            RoiMode::Avg => v
                .sum(D::Minus1)
                .and_then(|s| s.affine(1.0 / samples as f64, 0.0)),
            RoiMode::Max => v.max(D::Minus1),
        };
        out.push(pooled.and_then(|p| p.reshape((c, oh, ow))).ce()?);
    }
    let y = if out.is_empty() {
        full(0.0, &[0, c, oh, ow], data.dtype(), dev)?
    } else {
        Tensor::stack(&out, 0).ce()?
    };
    let how = if ctx.options.port {
        How::port(format!("torchvision roi_align(aligned=False) as {ROI_OPS}"))
    } else {
        How::composed(ROI_OPS)
    };
    Ok(Lowered::one(y, how))
}

/// NonMaxSuppression-10/11: candle IoU matrix and order, host greedy loop.
fn nms(ctx: &OpCtx, x: &In) -> Out {
    let a = NmsAttrs::decode(ctx, x)?;
    let (boxes, scores) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let iou = host_floats(&iou_matrix(&corners(boxes, a.format).ce()?).ce()?)?;
    let order = host_ints(&scores.arg_sort_last_dim(false).ce()?)?;
    let s = host_floats(scores)?;
    let n = a.boxes;
    let mut rows: Vec<i64> = Vec::new();
    for b in 0..a.batches {
        let m = &iou[b * n * n..][..n * n];
        for c in 0..a.classes {
            let at = (b * a.classes + c) * n;
            let ord: Vec<usize> = order[at..][..n].iter().map(|&i| i as usize).collect();
            for k in a.select(&ord, &s[at..][..n], |i, j| m[i * n + j]) {
                rows.extend([b as i64, c as i64, k as i64]);
            }
        }
    }
    let len = rows.len() / 3;
    let y = Tensor::from_vec(rows, (len, 3), Scope::of(ctx).device()).ce()?;
    Ok(Lowered::one(y, How::composed(NMS_OPS)))
}

/// (y_min, x_min, y_max, x_max) of (B, N, 4) boxes, each (B, N, 1).
fn corners(boxes: &Tensor, format: BoxFormat) -> candle_core::Result<[Tensor; 4]> {
    let col = |i: usize| boxes.narrow(D::Minus1, i, 1);
    let (a, b, c, d) = (col(0)?, col(1)?, col(2)?, col(3)?);
    Ok(match format {
        BoxFormat::Corners => [
            a.minimum(&c)?,
            b.minimum(&d)?,
            a.maximum(&c)?,
            b.maximum(&d)?,
        ],
        BoxFormat::Center => {
            let (hw, hh) = (c.affine(0.5, 0.0)?, d.affine(0.5, 0.0)?);
            [(&b - &hh)?, (&a - &hw)?, (&b + &hh)?, (&a + &hw)?]
        }
    })
}

/// The (B, N, N) IoU of every pair; 0 where either box has no area.
fn iou_matrix(k: &[Tensor; 4]) -> candle_core::Result<Tensor> {
    let t = |v: &Tensor| v.transpose(1, 2);
    let side = |lo: &Tensor, hi: &Tensor| -> candle_core::Result<Tensor> {
        let top = hi.broadcast_minimum(&t(hi)?)?;
        let bottom = lo.broadcast_maximum(&t(lo)?)?;
        (top - bottom)?.relu()
    };
    let inter = (side(&k[0], &k[2])? * side(&k[1], &k[3])?)?;
    let area = ((&k[2] - &k[0])? * (&k[3] - &k[1])?)?;
    let union = area.broadcast_add(&t(&area)?)?.sub(&inter)?;
    let pos = area.gt(0.0)?;
    let valid = pos.broadcast_mul(&t(&pos)?)?;
    let iou = inter.div(&union)?;
    valid
        .where_cond(&iou, &iou.zeros_like()?)?
        .to_dtype(DType::F64)
}
