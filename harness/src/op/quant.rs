//! QuantizeLinear-10/13/19/21/23
//! (<https://onnx.ai/onnx/operators/onnx__QuantizeLinear.html>):
//! `y = saturate(round_half_even(x / y_scale) + y_zero_point)`;
//! DequantizeLinear (same opsets,
//! <https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html>):
//! `y = (x − x_zero_point) · x_scale`. Opset 10 has per-tensor scales only;
//! 13 added `axis` (a 1-D scale per slice of that axis); 19 added float8 and
//! `saturate` (which only float8 outputs read); 21 added int16/uint16 (and
//! int4) and `block_size` (the scale has `x`'s shape with the axis divided
//! into blocks of `block_size`); QuantizeLinear-21 and DequantizeLinear-23
//! added `output_dtype`. Without a zero point the quantized dtype is uint8.
//!
//! Both ops address scales the same way, so the decode turns the shapes into
//! one [`ScaleMap`]; the reference and every framework lowering read the
//! quantized dtype and its range from here. float8 and int4 are out of scope
//! (xdiff has no such dtypes) and decode as unsupported.
//!
//! QuantizeLinear's fingerprint space ([`space`]) is the tie rounding, a
//! pseudo dimension (the spec has no attribute for it): `half_away` (C's
//! `round`, PyTorch's `torch.round` is half-even like the spec) is asked of
//! the reference by replacing `x` with `round_half_away(x / scale) · scale`,
//! whose quotient is within an ulp of that integer, so the reference's
//! half-even rounding lands on it. `saturate` only concerns float8 outputs,
//! which are out of scope, so it is not a dimension.

use super::space::{always, value_probes, Dim, InputEdit, Kind, Space};
use super::{OpCtx, OpResult};
use crate::graph::Node;
use crate::tensor::{DType, Tensor};

/// How a scale (and zero point) maps onto the elements of `x`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScaleMap {
    /// One scale for every element.
    PerTensor,
    /// One scale per index along `axis`.
    PerAxis { axis: usize },
    /// One scale per block of `block` indices along `axis`; the scale has
    /// `x`'s shape with that axis `ceil(d / block)` long.
    Blocked { axis: usize, block: usize },
}

impl ScaleMap {
    /// Decodes `axis`/`block_size` against `x`'s and the scale's shapes.
    pub fn decode(ctx: &OpCtx, x: &[usize], scale: &[usize]) -> OpResult<ScaleMap> {
        let block = if ctx.opset >= 21 {
            ctx.int("block_size", 0)?
        } else {
            0
        };
        let per_tensor = scale.iter().product::<usize>() == 1 && scale.len() <= 1;
        if per_tensor && block == 0 {
            return Ok(ScaleMap::PerTensor);
        }
        if ctx.opset < 13 {
            return Err(ctx.fail(format!(
                "scale has shape {scale:?}: opset {} takes a scalar scale only",
                ctx.opset
            )));
        }
        let axis = ctx.axis(ctx.int("axis", 1)?, x.len())?;
        let d = x[axis];
        if block < 0 {
            return Err(ctx.fail("attribute `block_size` must be >= 0"));
        }
        if block == 0 {
            if scale != [d] {
                return Err(ctx.fail(format!(
                    "scale has shape {scale:?}, expected [{d}] (axis {axis} of x {x:?})"
                )));
            }
            return Ok(ScaleMap::PerAxis { axis });
        }
        let block = block as usize;
        let mut want = x.to_vec();
        want[axis] = d.div_ceil(block);
        if scale != want.as_slice() {
            return Err(ctx.fail(format!(
                "scale has shape {scale:?}, expected {want:?} (x {x:?}, axis {axis}, block_size {block})"
            )));
        }
        Ok(ScaleMap::Blocked { axis, block })
    }

    /// The flat scale index of every element of `x` (row-major).
    pub fn indices(&self, x: &[usize]) -> Vec<usize> {
        let n: usize = x.iter().product();
        match *self {
            ScaleMap::PerTensor => vec![0; n],
            ScaleMap::PerAxis { axis } => {
                let inner: usize = x[axis + 1..].iter().product();
                (0..n).map(|i| (i / inner) % x[axis]).collect()
            }
            ScaleMap::Blocked { axis, block } => {
                let inner: usize = x[axis + 1..].iter().product();
                let (d, nb) = (x[axis], x[axis].div_ceil(block));
                (0..n)
                    .map(|i| {
                        let (outer, j, r) = (i / (inner * d), (i / inner) % d, i % inner);
                        (outer * nb + j / block) * inner + r
                    })
                    .collect()
            }
        }
    }

    /// For the frameworks: the shape the scale is viewed as so it
    /// broadcasts against `x` (after `block_ids` for blocked scales).
    pub fn view_shape(&self, x: &[usize], scale: &[usize]) -> Vec<usize> {
        match *self {
            ScaleMap::PerTensor => vec![1; x.len()],
            ScaleMap::PerAxis { axis } => {
                let mut v = vec![1; x.len()];
                v[axis] = x[axis];
                v
            }
            ScaleMap::Blocked { .. } => scale.to_vec(),
        }
    }

    /// For blocked scales: the axis and the block of each index along it
    /// (an `index_select` table that widens the scale to `x`'s shape).
    pub fn block_ids(&self, x: &[usize]) -> Option<(usize, Vec<i64>)> {
        match *self {
            ScaleMap::Blocked { axis, block } => {
                Some((axis, (0..x[axis]).map(|j| (j / block) as i64).collect()))
            }
            _ => None,
        }
    }
}

/// The integer range of a quantized dtype, or unsupported for the others.
pub fn range(ctx: &OpCtx, dt: DType) -> OpResult<(f64, f64)> {
    match dt {
        DType::U8 => Ok((0.0, 255.0)),
        DType::I8 => Ok((-128.0, 127.0)),
        DType::U16 if ctx.opset >= 21 => Ok((0.0, 65535.0)),
        DType::I16 if ctx.opset >= 21 => Ok((-32768.0, 32767.0)),
        DType::I32 => Ok((i32::MIN as f64, i32::MAX as f64)),
        _ => Err(ctx.unsupported(
            "output_dtype",
            format!("quantized dtype {dt} at opset {}", ctx.opset),
        )),
    }
}

/// QuantizeLinear's output dtype: `output_dtype` (21+), else the zero
/// point's dtype, else uint8; the two must agree when both are given.
pub fn quantize_dtype(ctx: &OpCtx, zero_point: Option<DType>) -> OpResult<DType> {
    let code = if ctx.opset >= 21 {
        ctx.int("output_dtype", 0)?
    } else {
        0
    };
    let attr = match code {
        0 => None,
        c => Some(
            DType::from_onnx(c as i32)
                .ok_or_else(|| ctx.unsupported("output_dtype", format!("ONNX dtype code {c}")))?,
        ),
    };
    let dt = match (attr, zero_point) {
        (Some(a), Some(z)) if a != z => {
            return Err(ctx.fail(format!(
                "attribute `output_dtype` ({a}) differs from y_zero_point's dtype ({z})"
            )))
        }
        (Some(a), _) => a,
        (None, Some(z)) => z,
        (None, None) => DType::U8,
    };
    if dt == DType::I32 {
        return Err(ctx.fail("QuantizeLinear cannot produce int32"));
    }
    range(ctx, dt)?;
    Ok(dt)
}

/// DequantizeLinear's output dtype: `output_dtype` (23+), else the scale's.
pub fn dequantize_dtype(ctx: &OpCtx, scale: DType) -> OpResult<DType> {
    let code = if ctx.opset >= 23 {
        ctx.int("output_dtype", 0)?
    } else {
        0
    };
    match code {
        0 => Ok(scale),
        c => DType::from_onnx(c as i32)
            .filter(|d| d.is_float())
            .ok_or_else(|| {
                ctx.fail(format!(
                    "attribute `output_dtype` = {c} is not a float dtype"
                ))
            }),
    }
}

/// QuantizeLinear's fingerprint space: the tie `rounding` (pseudo,
/// `half_even` as the spec says, or `half_away`); `None` when the scales do
/// not decode.
pub fn space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let shape = |i: usize| x.get(i).copied().flatten().map(|t| t.shape());
    ScaleMap::decode(ctx, shape(0)?, shape(1)?).ok()?;
    Some(Space {
        dims: vec![Dim::new(
            "rounding",
            Kind::Pseudo,
            "half_even".into(),
            &["half_away"],
        )],
        relevant: always,
        apply: rounding_apply,
        probes: value_probes,
    })
}

/// The `rounding` pseudo dim: `half_away` replaces `x` by each element's
/// half-away-from-zero quotient `round(fl32(x / scale))` times its scale.
fn rounding_apply(
    dim: &str,
    value: &str,
    node: &mut Node,
    x: &[Option<&Tensor>],
    _: &[usize],
) -> Option<Vec<InputEdit>> {
    match (dim, value) {
        ("rounding", "half_even") => return Some(Vec::new()),
        ("rounding", "half_away") => {}
        _ => return None,
    }
    let (xt, st) = (x.first().copied().flatten()?, x.get(1).copied().flatten()?);
    // The node decoded at its own opset when the space was built; the
    // latest opset reads the same axis and block_size.
    let map = super::with_node(node, 23, |ctx| {
        ScaleMap::decode(ctx, xt.shape(), st.shape())
    })
    .ok()?;
    let scales = st.to_f64_vec();
    let moved: Vec<f64> = xt
        .to_f64_vec()
        .iter()
        .zip(map.indices(xt.shape()))
        .map(|(&v, i)| ((v / scales[i]) as f32 as f64).round() * scales[i])
        .collect();
    Some(vec![(
        0,
        Some(Tensor::from_f64(DType::F64, xt.shape(), &moved)),
    )])
}

/// DynamicQuantizeLinear-11's uint8 scale and zero point from the data's
/// range widened to include 0: `scale = (max − min) / 255`,
/// `zp = saturate(round_half_even(−min / scale))` (0 when all data is 0),
/// each division rounded by `fl` (to the input's float dtype).
pub fn dynamic_params(min: f64, max: f64, fl: impl Fn(f64) -> f64) -> (f64, f64) {
    let (lo, hi) = (min.min(0.0), max.max(0.0));
    let scale = fl((hi - lo) / 255.0);
    let zp = if scale == 0.0 {
        0.0
    } else {
        fl(-lo / scale).round_ties_even().clamp(0.0, 255.0)
    };
    (scale, zp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::reference::util::f;
    use crate::fingerprint::tests::{checked, pairs};
    use crate::graph::Attr;
    use crate::op::test_node;
    use ndarray::{ArrayD, IxDyn};

    fn with_test_ctx(node: &crate::graph::Node, opset: u32, f: impl FnOnce(&OpCtx)) {
        crate::op::with_node(node, opset, f)
    }

    #[test]
    fn blocked_scales_index_blocks_along_the_axis() {
        let n = test_node(
            "QuantizeLinear",
            2,
            1,
            vec![("block_size", Attr::Int(2)), ("axis", Attr::Int(1))],
        );
        with_test_ctx(&n, 21, |ctx| {
            let m = ScaleMap::decode(ctx, &[2, 3], &[2, 2]).unwrap();
            assert_eq!(m, ScaleMap::Blocked { axis: 1, block: 2 });
            assert_eq!(m.indices(&[2, 3]), vec![0, 0, 1, 2, 2, 3]);
            assert_eq!(m.block_ids(&[2, 3]), Some((1, vec![0, 0, 1])));
        });
    }

    #[test]
    fn per_axis_needs_opset_13_and_a_matching_length() {
        let n = test_node("QuantizeLinear", 2, 1, vec![("axis", Attr::Int(0))]);
        with_test_ctx(&n, 13, |ctx| {
            let m = ScaleMap::decode(ctx, &[2, 3], &[2]).unwrap();
            assert_eq!(m.indices(&[2, 3]), vec![0, 0, 0, 1, 1, 1]);
            assert!(ScaleMap::decode(ctx, &[2, 3], &[3]).is_err());
        });
        with_test_ctx(&n, 10, |ctx| {
            assert!(ScaleMap::decode(ctx, &[2, 3], &[2]).is_err())
        });
    }

    #[test]
    fn dtypes_follow_the_zero_point_and_int16_needs_21() {
        let n = test_node("QuantizeLinear", 3, 1, vec![]);
        with_test_ctx(&n, 13, |ctx| {
            assert_eq!(quantize_dtype(ctx, None).unwrap(), DType::U8);
            assert_eq!(quantize_dtype(ctx, Some(DType::I8)).unwrap(), DType::I8);
            assert!(quantize_dtype(ctx, Some(DType::I16)).is_err());
        });
        with_test_ctx(&n, 21, |ctx| {
            assert_eq!(quantize_dtype(ctx, Some(DType::I16)).unwrap(), DType::I16)
        });
    }

    #[test]
    fn dynamic_range_includes_zero_and_rounds_half_even() {
        // [1, 2.55] widens to [0, 2.55]: zero point 0.
        let (s, zp) = dynamic_params(1.0, 2.55, |v| v);
        assert!((s - 0.01).abs() < 1e-15 && zp == 0.0, "{s} {zp}");
        // [-1, 1.55]: -min / scale = 100 exactly after rounding.
        let (s, zp) = dynamic_params(-1.0, 1.55, |v| v);
        assert!((s - 0.01).abs() < 1e-15, "{s}");
        assert_eq!(zp, 100.0);
        // A tie: [-0.5, 0.5] gives -min / scale = 127.5, rounded to 128.
        assert_eq!(dynamic_params(-0.5, 0.5, |v| v).1, 128.0);
        assert_eq!(dynamic_params(0.0, 0.0, |v| v), (0.0, 0.0));
    }

    #[test]
    fn a_lane_rounding_ties_away_from_zero_is_fingerprinted() {
        // x / 0.5: ties -2.5 .. 2.5 and two non-ties; int8, zero point 1.
        let x = f(&[8], &[-1.25, -0.75, -0.25, 0.25, 0.75, 1.25, 1.1, -2.6]);
        let scale = f(&[], &[0.5]);
        let zp = crate::backend::reference::RefTensor::exact(Tensor::I8(
            ArrayD::from_shape_vec(IxDyn(&[]), vec![1]).unwrap(),
        ));
        let ins = [Some(&x), Some(&scale), Some(&zp)];
        let away: Vec<i8> = vec![-2, -1, 0, 2, 3, 4, 3, -4];
        let lane = Tensor::I8(ArrayD::from_shape_vec(IxDyn(&[8]), away).unwrap());
        let model = test_node("QuantizeLinear", 3, 1, vec![]);
        let fp = checked(&model, 13, &ins, &lane);
        assert!(fp.exact && fp.ambiguous.is_empty(), "{fp:?}");
        assert_eq!(fp.attrs, pairs(&[("rounding", "half_away")]));
        assert_eq!(
            fp.description,
            "behaves as half_away (model asks half_even)"
        );
    }
}
