//! NonMaxSuppression: its box format and parameter inputs decoded once, and
//! the greedy selection the composed framework lowerings run over their own
//! IoU matrix.
//!
//! Spec: <https://onnx.ai/onnx/operators/onnx__NonMaxSuppression.html>.
//! Opset 10 introduced it; 11 only clarified the text. Attribute
//! `center_point_box`: 0 (default) reads a box as (y1, x1, y2, x2), any
//! diagonal pair of corners; 1 as (x_center, y_center, width, height).
//! Inputs: boxes (B, N, 4), scores (B, C, N), optional
//! max_output_boxes_per_class (int64 scalar, default 0: no output),
//! iou_threshold (float, default 0; a box is suppressed when its IoU with a
//! selected box is *greater* than it) and score_threshold (float; when given,
//! only boxes whose score is greater than it are candidates). Output
//! selected_indices (n, 3) int64 rows (batch, class, box), by batch, then
//! class, then selection order (descending score). Equal scores: the lower
//! box index first (ONNX Runtime and the node tests). A box of zero area has
//! IoU 0 with every box.

use super::space::{Dim, Kind, Space};
use super::{optional, HostView, OpCtx, OpResult};
use crate::tensor::Tensor;

/// How a box's four numbers are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxFormat {
    /// (y1, x1, y2, x2), corners in either order.
    Corners,
    /// (x_center, y_center, width, height).
    Center,
}

/// A decoded NonMaxSuppression node with its parameter inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NmsAttrs {
    pub format: BoxFormat,
    pub max_per_class: usize,
    pub iou_threshold: f64,
    pub score_threshold: Option<f64>,
    pub batches: usize,
    pub classes: usize,
    pub boxes: usize,
}

impl NmsAttrs {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<Self> {
        let format = match ctx.int("center_point_box", 0)? {
            0 => BoxFormat::Corners,
            1 => BoxFormat::Center,
            v => return Err(ctx.attr_error("center_point_box", format!("{v} (expected 0 or 1)"))),
        };
        let (b, s) = (ctx.input(x, 0)?.dims(), ctx.input(x, 1)?.dims());
        let (batches, boxes) = match b[..] {
            [nb, n, 4] => (nb, n),
            _ => return Err(ctx.fail(format!("input `boxes` must be (B, N, 4), got {b:?}"))),
        };
        let classes = match s[..] {
            [nb, c, n] if nb == batches && n == boxes => c,
            _ => {
                return Err(ctx.fail(format!(
                    "input `scores` must be ({batches}, C, {boxes}), got {s:?}"
                )))
            }
        };
        let max = match optional(x, 2) {
            Some(t) => scalar(ctx, t.host_ints()?, "max_output_boxes_per_class")?,
            None => 0,
        };
        let float = |i: usize, name: &str| -> OpResult<Option<f64>> {
            optional(x, i)
                .map(|t| scalar(ctx, t.host_floats()?, name))
                .transpose()
        };
        let iou_threshold = float(3, "iou_threshold")?.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&iou_threshold) {
            return Err(ctx.fail(format!("iou_threshold {iou_threshold} must be in [0, 1]")));
        }
        Ok(NmsAttrs {
            format,
            max_per_class: max.max(0) as usize,
            iou_threshold,
            score_threshold: float(4, "score_threshold")?,
            batches,
            classes,
            boxes,
        })
    }

    /// The greedy selection over one (batch, class): `order` the candidate
    /// boxes by descending score (ties: lower index first), `scores` theirs,
    /// `iou(i, j)` the IoU of two boxes. Returns the selected box indices.
    pub fn select(
        &self,
        order: &[usize],
        scores: &[f64],
        iou: impl Fn(usize, usize) -> f64,
    ) -> Vec<usize> {
        let mut kept: Vec<usize> = Vec::new();
        for &i in order {
            if kept.len() >= self.max_per_class {
                break;
            }
            if self.score_threshold.is_some_and(|t| scores[i] <= t) {
                continue;
            }
            if kept.iter().all(|&k| iou(k, i) <= self.iou_threshold) {
                kept.push(i);
            }
        }
        kept
    }
}

/// The one value of a scalar (or one-element) parameter input.
fn scalar<V: Copy>(ctx: &OpCtx, v: Vec<V>, name: &str) -> OpResult<V> {
    match v[..] {
        [one] => Ok(one),
        _ => Err(ctx.fail(format!(
            "input `{name}` must hold one value, got {}",
            v.len()
        ))),
    }
}

/// NonMaxSuppression's fingerprint space: the box format
/// (`center_point_box`: corners, or torchvision/TF-style centres).
pub fn space(ctx: &OpCtx, _: &[Option<&Tensor>]) -> Option<Space> {
    let model = ctx.int("center_point_box", 0).ok()?;
    Some(Space::plain(vec![Dim::new(
        "center_point_box",
        Kind::Int,
        model.to_string(),
        &["0", "1"],
    )]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;
    use ndarray::{ArrayD, IxDyn};

    fn f(shape: &[usize], v: &[f32]) -> Tensor {
        Tensor::F32(ArrayD::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap())
    }

    fn decode(cpb: i64, params: [Option<Tensor>; 3]) -> OpResult<NmsAttrs> {
        let boxes = f(&[1, 2, 4], &[0.0; 8]);
        let scores = f(&[1, 3, 2], &[0.0; 6]);
        let mut x: Vec<Option<&Tensor>> = vec![Some(&boxes), Some(&scores)];
        x.extend(params.iter().map(|p| p.as_ref()));
        with(
            "NonMaxSuppression",
            11,
            vec![("center_point_box", Attr::Int(cpb))],
            |c| NmsAttrs::decode(c, &x),
        )
    }

    #[test]
    fn decodes_parameters_and_defaults() {
        let max = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[1]), vec![3]).unwrap());
        let a = decode(1, [Some(max), Some(f(&[1], &[0.5])), None]).unwrap();
        assert_eq!(
            (a.format, a.max_per_class, a.iou_threshold),
            (BoxFormat::Center, 3, 0.5)
        );
        assert_eq!((a.score_threshold, a.classes, a.boxes), (None, 3, 2));
        let none = decode(0, [None, None, None]).unwrap();
        assert_eq!((none.max_per_class, none.iou_threshold), (0, 0.0));
    }

    #[test]
    fn rejects_bad_format_and_threshold() {
        assert!(decode(2, [None, None, None]).is_err());
        assert!(decode(0, [None, Some(f(&[1], &[1.5])), None]).is_err());
    }

    #[test]
    fn select_suppresses_strictly_above_the_threshold_and_caps() {
        let a = NmsAttrs {
            format: BoxFormat::Corners,
            max_per_class: 2,
            iou_threshold: 0.5,
            score_threshold: Some(0.1),
            batches: 1,
            classes: 1,
            boxes: 4,
        };
        let scores = [0.9, 0.8, 0.7, 0.1];
        let iou = |i: usize, j: usize| {
            if i.min(j) == 0 && i.max(j) == 1 {
                0.6
            } else {
                0.5
            }
        };
        assert_eq!(a.select(&[0, 1, 2, 3], &scores, iou), vec![0, 2]);
        let one = NmsAttrs {
            max_per_class: 5,
            ..a
        };
        assert_eq!(one.select(&[0, 1, 2, 3], &scores, iou), vec![0, 2]);
    }
}
