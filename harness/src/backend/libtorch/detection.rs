//! libtorch lowerings: RoiAlign and NonMaxSuppression (decodes in
//! `op::roi_align` and `op::nms`).
//!
//! ATen has neither (both are torchvision's), so both are composed. RoiAlign
//! reads the rois and batch indices (small parameter tensors) to the host,
//! builds each roi's bilinear tap table (`RoiAlignAttrs::taps`), and on the
//! device gathers X's plane at the taps (`index_select`), weights them, and
//! pools each bin (`sum`/count or `amax`). NonMaxSuppression computes the
//! boxes' corners, areas and the pairwise IoU matrix with torch ops, orders
//! each class by a stable descending `sort`, and runs the greedy selection
//! (`NmsAttrs::select`) on the host over that matrix. In the idiomatic port
//! (`--port`), RoiAlign follows torchvision's default `aligned=False`
//! (output_half_pixel) whatever the model asks.

use tch::{Kind, Tensor};

use super::{host_floats, host_ints};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::nms::{BoxFormat, NmsAttrs};
use crate::op::roi_align::{RoiAlignAttrs, RoiCoord, RoiMode};

type X<'a> = [Option<&'a Tensor>];

const ROI_OPS: &str = "index_select at host-built bilinear taps, mul, sum/amax";
const NMS_OPS: &str =
    "IoU matrix (minimum, maximum, clamp, div), stable sort; greedy selection on host";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "RoiAlign",
        10,
        u32::MAX,
        roi_align,
        spec!("RoiAlign"),
        cov![
            "all attributes (ATen has no roi_align; torchvision's)" => Label::Composed(ROI_OPS),
        ],
    );
    r.range(
        "NonMaxSuppression",
        10,
        u32::MAX,
        nms,
        spec!("NonMaxSuppression"),
        cov![
            "all attributes (ATen has no nms; torchvision's)" => Label::Composed(NMS_OPS),
        ],
    );
}

/// RoiAlign-10/16: each roi's plane gathered at its taps and pooled per bin.
fn roi_align(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let mut a = RoiAlignAttrs::decode(ctx)?;
    if ctx.options.port {
        a = a.with_coord(RoiCoord::OutputHalfPixel);
    }
    let data = ctx.input(x, 0)?;
    let rois = host_floats(ctx.input(x, 1)?)?;
    let batch = host_ints(ctx.input(x, 2)?)?;
    let [n, c, h, w] = <[i64; 4]>::try_from(data.size())
        .map_err(|_| ctx.fail(format!("input `X` must be 4-D, got {:?}", data.size())))?;
    if rois.len() != batch.len() * 4 {
        return Err(ctx.fail("inputs `rois` and `batch_indices` must be (R, 4) and (R)"));
    }
    let (oh, ow) = (a.out_h as i64, a.out_w as i64);
    let planes = data.f_reshape([n, c, h * w])?;
    let mut out = Vec::with_capacity(batch.len());
    for (i, &b) in batch.iter().enumerate() {
        if !(0..n).contains(&b) {
            return Err(ctx.fail(format!("batch_indices[{i}] = {b} outside [0, {n})")));
        }
        let (g, taps) = a.taps(&rois[i * 4..][..4], h as usize, w as usize);
        let samples = (g.grid[0] * g.grid[1]) as i64;
        if samples == 0 {
            out.push(data.f_new_zeros([c, oh, ow], (data.kind(), data.device()))?);
            continue;
        }
        let idx: Vec<i64> = taps.iter().map(|t| t.0 as i64).collect();
        let wts: Vec<f64> = taps.iter().map(|t| t.1).collect();
        let idx = Tensor::from_slice(&idx).f_to_device(data.device())?;
        let wts = Tensor::from_slice(&wts)
            .f_to_kind(data.kind())?
            .f_to_device(data.device())?;
        let v = planes
            .f_get(b)?
            .f_index_select(1, &idx)?
            .f_mul(&wts)?
            .f_reshape([c, oh * ow, samples * 4])?;
        let pooled = match a.mode {
            RoiMode::Avg => v
                .f_sum_dim_intlist(-1, false, data.kind())?
                .f_div_scalar(samples)?,
            RoiMode::Max => v.f_amax(-1, false)?,
        };
        out.push(pooled.f_reshape([c, oh, ow])?);
    }
    let y = if out.is_empty() {
        data.f_new_zeros([0, c, oh, ow], (data.kind(), data.device()))?
    } else {
        Tensor::f_stack(&out, 0)?
    };
    let how = if ctx.options.port {
        How::port(format!("torchvision roi_align(aligned=False) as {ROI_OPS}"))
    } else {
        How::composed(ROI_OPS)
    };
    Ok(Lowered::one(y, how))
}

/// NonMaxSuppression-10/11: torch IoU matrix and order, host greedy loop.
fn nms(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let a = NmsAttrs::decode(ctx, x)?;
    let (boxes, scores) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let iou = host_floats(&iou_matrix(&corners(boxes, a.format)?)?)?;
    let (_, order) = scores.f_sort_stable(true, -1, true)?;
    let order = host_ints(&order)?;
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
    let y = Tensor::from_slice(&rows)
        .f_reshape([-1, 3])?
        .f_to_device(boxes.device())?;
    Ok(Lowered::one(y, How::composed(NMS_OPS)))
}

/// (y_min, x_min, y_max, x_max) of (B, N, 4) boxes, each (B, N, 1).
fn corners(boxes: &Tensor, format: BoxFormat) -> OpResult<[Tensor; 4]> {
    let col = |i: i64| boxes.f_narrow(-1, i, 1);
    let (a, b, c, d) = (col(0)?, col(1)?, col(2)?, col(3)?);
    Ok(match format {
        BoxFormat::Corners => [
            a.f_minimum(&c)?,
            b.f_minimum(&d)?,
            a.f_maximum(&c)?,
            b.f_maximum(&d)?,
        ],
        BoxFormat::Center => {
            let (hw, hh) = (c.f_div_scalar(2.0)?, d.f_div_scalar(2.0)?);
            [b.f_sub(&hh)?, a.f_sub(&hw)?, b.f_add(&hh)?, a.f_add(&hw)?]
        }
    })
}

/// The (B, N, N) IoU of every pair; 0 where either box has no area.
fn iou_matrix(k: &[Tensor; 4]) -> OpResult<Tensor> {
    let t = |v: &Tensor| v.f_transpose(-1, -2);
    let ih = k[2]
        .f_minimum(&t(&k[2])?)?
        .f_sub(&k[0].f_maximum(&t(&k[0])?)?)?
        .f_clamp_min(0.0)?;
    let iw = k[3]
        .f_minimum(&t(&k[3])?)?
        .f_sub(&k[1].f_maximum(&t(&k[1])?)?)?
        .f_clamp_min(0.0)?;
    let inter = ih.f_mul(&iw)?;
    let area = k[2].f_sub(&k[0])?.f_mul(&k[3].f_sub(&k[1])?)?;
    let union = area.f_add(&t(&area)?)?.f_sub(&inter)?;
    let valid = area.f_gt(0.0)?.f_logical_and(&t(&area)?.f_gt(0.0)?)?;
    let iou = inter.f_div(&union)?;
    Ok(iou
        .f_where_self(&valid, &iou.f_zeros_like()?)?
        .f_to_kind(Kind::Double)?)
}
