//! Slice: starts/ends/axes/steps decoded once and resolved against the
//! input shape, so the clamping rules (the part frameworks disagree on at
//! the edges: huge or negative bounds, negative steps) have one answer.
//!
//! Spec and opset history (<https://onnx.ai/onnx/operators/onnx__Slice.html>):
//! Slice-1 takes `starts`/`ends`/`axes` as attributes; 10 moves them to
//! inputs and adds `steps`; 11 allows negative axes and clarifies the
//! clamping of negative steps; 13 adds bfloat16. Per axis, a negative start
//! or end has the dimension added; then for a positive step start and end
//! clamp to [0, dim], for a negative step start clamps to [0, dim − 1] and
//! end to [−1, dim − 1]. The selected elements are start, start + step, ...
//! while before end.

use super::{HostView, OpCtx, OpResult};

/// One sliced axis, resolved against the input shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceAxis {
    pub axis: usize,
    /// Clamped start (a valid index when the slice is non-empty).
    pub start: i64,
    /// Clamped end (exclusive; −1 can end a negative step).
    pub end: i64,
    pub step: i64,
}

impl SliceAxis {
    /// Resolves (start, end, step) on an axis of `dim` as the spec clamps.
    pub fn resolve(axis: usize, dim: usize, start: i64, end: i64, step: i64) -> SliceAxis {
        let d = dim as i64;
        let adj = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (start, end) = if d == 0 {
            (0, 0)
        } else if step > 0 {
            (adj(start).clamp(0, d), adj(end).clamp(0, d))
        } else {
            (adj(start).clamp(0, d - 1), adj(end).clamp(-1, d - 1))
        };
        SliceAxis {
            axis,
            start,
            end,
            step,
        }
    }

    /// Number of selected elements.
    pub fn len(&self) -> usize {
        let span = if self.step > 0 {
            self.end - self.start
        } else {
            self.start - self.end
        };
        if span <= 0 {
            return 0;
        }
        let step = self.step.unsigned_abs();
        (span as u64).div_ceil(step) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The selected source indices, in output order.
    pub fn indices(&self) -> Vec<i64> {
        (0..self.len() as i64)
            .map(|k| self.start + k * self.step)
            .collect()
    }
}

/// A decoded Slice node: one entry per sliced axis, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SliceAttrs {
    pub axes: Vec<SliceAxis>,
}

/// A required int list: an attribute before opset 10, input `i` after.
fn required<T: HostView>(
    ctx: &OpCtx,
    x: &[Option<&T>],
    name: &str,
    i: usize,
) -> OpResult<Vec<i64>> {
    if ctx.opset < 10 {
        return ctx
            .ints(name)?
            .ok_or_else(|| ctx.attr_error(name, "is required"));
    }
    match x.get(i).copied().flatten() {
        Some(t) => t.host_ints(),
        None => Err(ctx.fail(format!("required input `{name}` is missing"))),
    }
}

/// An optional int list: the `axes` attribute before opset 10, input `i` after.
fn given<T: HostView>(
    ctx: &OpCtx,
    x: &[Option<&T>],
    name: &str,
    i: usize,
) -> OpResult<Option<Vec<i64>>> {
    if ctx.opset < 10 {
        return if name == "axes" {
            ctx.ints(name)
        } else {
            Ok(None)
        };
    }
    x.get(i)
        .copied()
        .flatten()
        .map(|t| t.host_ints())
        .transpose()
}

impl SliceAttrs {
    /// Decodes a Slice node with data `x[0]` (and, from opset 10, parameter
    /// inputs 1-4). Axes may not repeat and steps may not be 0.
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<SliceAttrs> {
        let shape = ctx.input(x, 0)?.dims();
        let starts = required(ctx, x, "starts", 1)?;
        let ends = required(ctx, x, "ends", 2)?;
        let n = starts.len();
        let axes = given(ctx, x, "axes", 3)?.unwrap_or_else(|| (0..n as i64).collect());
        let steps = given(ctx, x, "steps", 4)?.unwrap_or_else(|| vec![1; n]);
        if ends.len() != n || axes.len() != n || steps.len() != n {
            return Err(ctx.fail(format!(
                "starts ({n}), ends ({}), axes ({}) and steps ({}) must have the same length",
                ends.len(),
                axes.len(),
                steps.len()
            )));
        }
        let mut seen = vec![false; shape.len()];
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let a = ctx.axis(axes[k], shape.len())?;
            if std::mem::replace(&mut seen[a], true) {
                return Err(ctx.fail(format!("`axes` {axes:?} repeats axis {a}")));
            }
            if steps[k] == 0 {
                return Err(ctx.fail("`steps` must not contain 0"));
            }
            out.push(SliceAxis::resolve(
                a, shape[a], starts[k], ends[k], steps[k],
            ));
        }
        Ok(SliceAttrs { axes: out })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    fn idx(dim: usize, start: i64, end: i64, step: i64) -> Vec<i64> {
        SliceAxis::resolve(0, dim, start, end, step).indices()
    }

    #[test]
    fn clamping_follows_the_spec() {
        assert_eq!(idx(5, 0, i64::MAX, 2), vec![0, 2, 4]);
        assert_eq!(idx(5, -1, i64::MIN, -2), vec![4, 2, 0]);
        assert_eq!(idx(5, 10, 0, -1), vec![4, 3, 2, 1]);
        assert_eq!(idx(5, 1, 3, 1), vec![1, 2]);
        assert_eq!(idx(5, 3, 1, 1), Vec::<i64>::new());
        assert_eq!(idx(5, -100, 100, 3), vec![0, 3]);
        assert_eq!(idx(0, -1, i64::MIN, -1), Vec::<i64>::new());
        assert_eq!(SliceAxis::resolve(0, 5, 4, -10, -2).len(), 3);
    }

    /// A host-side test value: its shape and integer contents.
    #[derive(Debug)]
    pub(crate) struct Host(pub Vec<usize>, pub Vec<i64>);

    impl HostView for Host {
        fn dims(&self) -> Vec<usize> {
            self.0.clone()
        }
        fn host_ints(&self) -> OpResult<Vec<i64>> {
            Ok(self.1.clone())
        }
        fn host_floats(&self) -> OpResult<Vec<f64>> {
            Ok(self.1.iter().map(|&v| v as f64).collect())
        }
        fn is_float(&self) -> bool {
            false
        }
    }

    fn ints(v: &[i64]) -> Host {
        Host(vec![v.len()], v.to_vec())
    }

    fn decode(opset: u32, attrs: Vec<(&str, Attr)>, x: &[Option<&Host>]) -> OpResult<SliceAttrs> {
        with("Slice", opset, attrs, |c| SliceAttrs::decode(c, x))
    }

    #[test]
    fn inputs_and_attributes() {
        let data = Host(vec![4, 6], vec![]);
        let (s, e, a, st) = (
            ints(&[1, -1]),
            ints(&[i64::MAX, 0]),
            ints(&[1, -2]),
            ints(&[2, -1]),
        );
        let d = decode(
            13,
            vec![],
            &[Some(&data), Some(&s), Some(&e), Some(&a), Some(&st)],
        )
        .unwrap();
        assert_eq!(
            d.axes,
            vec![
                SliceAxis {
                    axis: 1,
                    start: 1,
                    end: 6,
                    step: 2
                },
                SliceAxis {
                    axis: 0,
                    start: 3,
                    end: 0,
                    step: -1
                },
            ]
        );
        let attrs = vec![
            ("starts", Attr::Ints(vec![1])),
            ("ends", Attr::Ints(vec![3])),
            ("axes", Attr::Ints(vec![1])),
        ];
        let d = decode(9, attrs, &[Some(&data)]).unwrap();
        assert_eq!(
            d.axes,
            vec![SliceAxis {
                axis: 1,
                start: 1,
                end: 3,
                step: 1
            }]
        );
    }

    #[test]
    fn bad_inputs_fail() {
        let data = Host(vec![4], vec![]);
        let (s, e) = (ints(&[0, 0]), ints(&[1, 1]));
        let axes = ints(&[0, -1]);
        let err = decode(13, vec![], &[Some(&data), Some(&s), Some(&e), Some(&axes)]).unwrap_err();
        assert!(format!("{err:?}").contains("repeats"));
        let (s, e, z) = (ints(&[0]), ints(&[1]), ints(&[0]));
        let steps = [Some(&data), Some(&s), Some(&e), None, Some(&z)];
        assert!(format!("{:?}", decode(13, vec![], &steps).unwrap_err()).contains("steps"));
        assert!(decode(13, vec![], &[Some(&data), Some(&s)]).is_err());
        assert!(decode(9, vec![], &[Some(&data)]).is_err());
    }
}
