//! Pad: the mode, per-axis (begin, end) pads and the constant value decoded
//! once, whichever opset carried them as attributes or inputs.
//!
//! Spec and opset history (<https://onnx.ai/onnx/operators/onnx__Pad.html>):
//! Pad-1 takes `paddings` and `value` attributes; 2 renames `paddings` to
//! `pads`; 11 moves `pads` and the constant value to inputs (negative pads
//! crop); 13 adds bfloat16; 18 adds the optional `axes` input; 19 adds mode
//! `wrap`; 21 more types. `pads` lists all begins, then all ends:
//! `[x1_begin, x2_begin, ..., x1_end, x2_end, ...]` over `axes` (default all).
//! How each backend treats negative pads in a non-constant mode (crop first
//! or pad first) is its lowering's business, not the decode's.

use super::{optional, HostView, OpCtx, OpResult};

/// Pad's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadMode {
    Constant,
    Reflect,
    Edge,
    Wrap,
}

impl PadMode {
    fn decode(ctx: &OpCtx) -> OpResult<PadMode> {
        match ctx.string("mode", "constant")?.as_str() {
            "constant" => Ok(PadMode::Constant),
            "reflect" => Ok(PadMode::Reflect),
            "edge" => Ok(PadMode::Edge),
            "wrap" if ctx.opset >= 19 => Ok(PadMode::Wrap),
            "wrap" => Err(ctx.attr_error(
                "mode",
                format!(
                    "`wrap` is not defined before opset 19 (node at opset {})",
                    ctx.opset
                ),
            )),
            other => Err(ctx.attr_error("mode", format!("unknown mode `{other}`"))),
        }
    }

    /// For an edge, reflect or wrap pad of `begin` before and `end` after an
    /// axis of `dim` (negative crops), the source index of each of the
    /// `dim + begin + end` output positions: the host plan a gather-based
    /// lowering applies. Output `o` reads position `o − begin` of the padded
    /// axis, i.e. the axis is padded first and cropped after, the order the
    /// float64 reference follows (so a crop and a wrap on one axis wrap over
    /// the whole axis, not the cropped one). Reflect reflects repeatedly when
    /// a pad reaches past the axis (numpy's `reflect`). An error names the
    /// geometry where nothing can fill it: an empty axis, or crops larger
    /// than the axis.
    pub fn source_indices(
        self,
        ctx: &OpCtx,
        begin: i64,
        end: i64,
        dim: usize,
    ) -> OpResult<Vec<i64>> {
        let d = dim as i64;
        let out = d + begin + end;
        if self == PadMode::Constant || out < 0 || (dim == 0 && out > 0) {
            let m = self.name();
            return Err(ctx.fail(format!("{m} pad ({begin}, {end}) on an axis of {dim}")));
        }
        let period = 2 * (d - 1);
        let map = |s: i64| match self {
            _ if (0..d).contains(&s) => s,
            PadMode::Edge => s.clamp(0, d - 1),
            PadMode::Wrap => s.rem_euclid(d),
            PadMode::Reflect if d == 1 => 0,
            _ => {
                let m = s.rem_euclid(period);
                if m >= d {
                    period - m
                } else {
                    m
                }
            }
        };
        Ok((0..out).map(|o| map(o - begin)).collect())
    }

    /// The spec's name of the mode.
    pub fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Reflect => "reflect",
            PadMode::Edge => "edge",
            PadMode::Wrap => "wrap",
        }
    }
}

/// A decoded Pad node.
#[derive(Debug)]
pub struct PadAttrs<'t, T> {
    pub mode: PadMode,
    /// Pads before each input axis (0 for axes not listed; negative crops).
    pub begin: Vec<i64>,
    /// Pads after each input axis.
    pub end: Vec<i64>,
    /// The constant as f64: attribute `value` before opset 11, else the
    /// first element of input `constant_value` (0 when absent or empty).
    pub value: f64,
    /// Input `constant_value` when present and non-empty, for backends that
    /// keep the constant in the data's own dtype.
    pub value_input: Option<&'t T>,
}

impl<T> PadAttrs<'_, T> {
    /// Whether any axis is padded or cropped.
    pub fn any(&self) -> bool {
        self.begin.iter().chain(&self.end).any(|&p| p != 0)
    }

    /// Whether any pad crops.
    pub fn crops(&self) -> bool {
        self.begin.iter().chain(&self.end).any(|&p| p < 0)
    }
}

/// The flat `pads` list: an attribute (`pads`, or Pad-1's `paddings`) before
/// opset 11, input 1 after.
fn pads<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<Vec<i64>> {
    if ctx.opset < 11 {
        return ctx
            .ints("pads")?
            .or(ctx.ints("paddings")?)
            .ok_or_else(|| ctx.attr_error("pads", "is required"));
    }
    match x.get(1).copied().flatten() {
        Some(t) => t.host_ints(),
        None => Err(ctx.fail("required input `pads` is missing")),
    }
}

impl<'t, T: HostView> PadAttrs<'t, T> {
    /// Decodes a Pad node with data `x[0]`.
    pub fn decode(ctx: &OpCtx, x: &[Option<&'t T>]) -> OpResult<PadAttrs<'t, T>> {
        let rank = ctx.input(x, 0)?.dims().len();
        let mode = PadMode::decode(ctx)?;
        let flat = pads(ctx, x)?;
        let axes: Vec<usize> = match x.get(3).copied().flatten().filter(|_| ctx.opset >= 11) {
            Some(t) => t
                .host_ints()?
                .iter()
                .map(|&a| ctx.axis(a, rank))
                .collect::<OpResult<_>>()?,
            None => (0..rank).collect(),
        };
        let n = axes.len();
        if flat.len() != 2 * n {
            return Err(ctx.fail(format!(
                "`pads` has {} values, expected {} (2 per axis)",
                flat.len(),
                2 * n
            )));
        }
        let (mut begin, mut end) = (vec![0; rank], vec![0; rank]);
        for (k, &a) in axes.iter().enumerate() {
            begin[a] = flat[k];
            end[a] = flat[k + n];
        }
        let value_input = if ctx.opset < 11 { None } else { optional(x, 2) };
        let value = match value_input {
            Some(t) => t.host_floats()?.first().copied().unwrap_or(0.0),
            None if ctx.opset < 11 => ctx.float("value", 0.0)? as f64,
            None => 0.0,
        };
        Ok(PadAttrs {
            mode,
            begin,
            end,
            value,
            value_input,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::slice::tests::Host;
    use super::*;
    use crate::graph::Attr;
    use crate::op::window::tests::with;

    fn decode<'t>(
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        x: &[Option<&'t Host>],
    ) -> OpResult<PadAttrs<'t, Host>> {
        with("Pad", opset, attrs, |c| PadAttrs::decode(c, x))
    }

    fn mode(m: &str) -> (&'static str, Attr) {
        ("mode", Attr::String(m.into()))
    }

    #[test]
    fn pads_from_inputs_with_axes_and_value() {
        let data = Host(vec![2, 3, 4], vec![]);
        let pads = Host(vec![4], vec![1, -1, 2, 0]);
        let value = Host(vec![1], vec![7]);
        let axes = Host(vec![2], vec![-1, 0]);
        let p = decode(
            18,
            vec![mode("edge")],
            &[Some(&data), Some(&pads), Some(&value), Some(&axes)],
        )
        .unwrap();
        assert_eq!(
            (p.mode, p.begin.clone(), p.end.clone(), p.value),
            (PadMode::Edge, vec![-1, 0, 1], vec![0, 0, 2], 7.0)
        );
        assert!(p.any() && p.crops());
        // No axes: all axes; an empty constant_value means 0.
        let pads = Host(vec![6], vec![0, 0, 1, 0, 0, 0]);
        let empty = Host(vec![0], vec![]);
        let p = decode(13, vec![], &[Some(&data), Some(&pads), Some(&empty)]).unwrap();
        assert_eq!(
            (p.begin, p.end, p.value, p.value_input.is_none()),
            (vec![0, 0, 1], vec![0, 0, 0], 0.0, true)
        );
    }

    #[test]
    fn pads_from_attributes_before_opset_11() {
        let data = Host(vec![3], vec![]);
        let p = decode(
            2,
            vec![
                ("pads", Attr::Ints(vec![1, 2])),
                ("value", Attr::Float(1.5)),
            ],
            &[Some(&data)],
        )
        .unwrap();
        assert_eq!((p.begin, p.end, p.value), (vec![1], vec![2], 1.5));
        let p = decode(
            1,
            vec![("paddings", Attr::Ints(vec![0, 1]))],
            &[Some(&data)],
        )
        .unwrap();
        assert_eq!(p.end, vec![1]);
    }

    /// Pad first, crop after (the reference's order): a crop and a wrap on
    /// one axis wrap over the whole axis; reflect repeats past the axis as
    /// numpy's `reflect` does.
    #[test]
    fn source_indices_pad_then_crop() {
        let idx = |m: PadMode, b, e, d| with("Pad", 19, vec![], |c| m.source_indices(c, b, e, d));
        assert_eq!(idx(PadMode::Wrap, -1, 2, 4).unwrap(), vec![1, 2, 3, 0, 1]);
        assert_eq!(idx(PadMode::Wrap, 2, 1, 3).unwrap(), vec![1, 2, 0, 1, 2, 0]);
        assert_eq!(
            idx(PadMode::Reflect, -1, 2, 4).unwrap(),
            vec![1, 2, 3, 2, 1]
        );
        assert_eq!(
            idx(PadMode::Reflect, 4, 0, 3).unwrap(),
            vec![0, 1, 2, 1, 0, 1, 2]
        );
        assert_eq!(idx(PadMode::Reflect, 2, 0, 1).unwrap(), vec![0, 0, 0]);
        // Crop past the padding on the other side: edge keeps the pad.
        assert_eq!(idx(PadMode::Edge, 2, -4, 4).unwrap(), vec![0, 0]);
        assert!(idx(PadMode::Edge, 0, -5, 4).is_err());
        assert!(idx(PadMode::Wrap, 1, 0, 0).is_err());
        assert!(idx(PadMode::Constant, 1, 0, 3).is_err());
    }

    #[test]
    fn bad_nodes_are_one_clear_error() {
        let data = Host(vec![3], vec![]);
        let pads = Host(vec![2], vec![1, 1]);
        let err = |opset, a| {
            format!(
                "{:?}",
                decode(opset, a, &[Some(&data), Some(&pads)]).unwrap_err()
            )
        };
        assert!(err(19, vec![mode("mirror")]).contains("mode"));
        assert!(err(18, vec![mode("wrap")]).contains("opset 19"));
        assert!(decode(19, vec![mode("wrap")], &[Some(&data), Some(&pads)]).is_ok());
        let three = Host(vec![3], vec![1, 1, 1]);
        assert!(format!(
            "{:?}",
            decode(13, vec![], &[Some(&data), Some(&three)]).unwrap_err()
        )
        .contains("2 per axis"));
        assert!(decode(13, vec![], &[Some(&data)]).is_err());
        assert!(decode(2, vec![], &[Some(&data)]).is_err());
    }
}
