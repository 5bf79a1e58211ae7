//! The generator ops' decode: what ConstantOfShape, EyeLike, Range and Expand
//! produce, shared by the reference and every lowering.
//!
//! ConstantOfShape-9/20/21/23 (<https://onnx.ai/onnx/operators/onnx__ConstantOfShape.html>):
//! a one-element `value` tensor (default float32 0) fills the shape given by
//! the int64 input. EyeLike-9/22: ones on the diagonal `k` of a 2-D shape,
//! in `dtype` (default: the input's). Range-11: `max(ceil((limit - start) /
//! delta), 0)` elements `start + i·delta`. Expand-8/13: the output shape is
//! the bidirectional (numpy) broadcast of the input's shape and `shape`.

use super::{HostView, OpCtx, OpResult};
use crate::tensor::{DType, Tensor};

/// ConstantOfShape's one-element fill tensor (float32 0 by default).
pub fn fill_value(ctx: &OpCtx) -> OpResult<Tensor> {
    match ctx.tensor("value")? {
        None => Ok(Tensor::F32(ndarray::ArrayD::zeros(ndarray::IxDyn(&[1])))),
        Some(t) if t.len() == 1 => Ok(t.clone()),
        Some(t) => Err(ctx.attr_error(
            "value",
            format!("must hold one element, has shape {:?}", t.shape()),
        )),
    }
}

/// The output shape of ConstantOfShape: the int64 input, every entry ≥ 0.
pub fn target_shape<T: HostView>(ctx: &OpCtx, input: &T) -> OpResult<Vec<usize>> {
    input
        .host_ints()?
        .into_iter()
        .map(|d| {
            usize::try_from(d)
                .map_err(|_| ctx.fail(format!("input `input`: negative dimension {d}")))
        })
        .collect()
}

/// EyeLike's (k, output dtype) for an input of dtype `input` and shape `dims`.
pub fn eye_like(ctx: &OpCtx, input: DType, dims: &[usize]) -> OpResult<(i64, DType)> {
    if dims.len() != 2 {
        return Err(ctx.fail(format!("input must be 2-D, has shape {dims:?}")));
    }
    let dtype = match ctx.node.attrs.get("dtype") {
        None => input,
        Some(_) => {
            let code = ctx.int("dtype", 0)?;
            DType::from_onnx(code as i32)
                .ok_or_else(|| ctx.unsupported("dtype", format!("ONNX data type {code}")))?
        }
    };
    Ok((ctx.int("k", 0)?, dtype))
}

/// Range's element count `max(ceil((limit - start) / delta), 0)`.
pub fn range_len(ctx: &OpCtx, start: f64, limit: f64, delta: f64) -> OpResult<usize> {
    if delta == 0.0 {
        return Err(ctx.fail("input `delta` is 0"));
    }
    let n = ((limit - start) / delta).ceil();
    if !n.is_finite() {
        return Err(ctx.fail(format!(
            "Range({start}, {limit}, {delta}) has no finite length"
        )));
    }
    Ok(n.max(0.0) as usize)
}

/// The scalar value of a Range input (a one-element tensor).
pub fn range_scalar<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], i: usize) -> OpResult<f64> {
    let names = ["start", "limit", "delta"];
    let v = ctx.input(x, i)?.host_floats()?;
    match v.as_slice() {
        [s] => Ok(*s),
        _ => Err(ctx.fail(format!(
            "input `{}` must be a scalar, has {} elements",
            names[i],
            v.len()
        ))),
    }
}

/// Expand's output shape: `dims` broadcast with the requested `shape`.
pub fn expand_shape(ctx: &OpCtx, dims: &[usize], shape: &[i64]) -> OpResult<Vec<usize>> {
    let n = dims.len().max(shape.len());
    let at = |v: &[usize], i: usize| {
        if i + v.len() >= n {
            v[i + v.len() - n]
        } else {
            1
        }
    };
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let s = if i + shape.len() >= n {
            shape[i + shape.len() - n]
        } else {
            1
        };
        let s = usize::try_from(s)
            .map_err(|_| ctx.fail(format!("input `shape`: negative dimension {s}")))?;
        let d = at(dims, i);
        out.push(match (d, s) {
            (a, b) if a == b => a,
            (1, b) => b,
            (a, 1) => a,
            _ => {
                return Err(ctx.fail(format!(
                    "input shape {dims:?} cannot be expanded to {shape:?}"
                )))
            }
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::window::tests::with;

    #[test]
    fn range_and_expand_shapes() {
        assert_eq!(
            with("Range", 11, vec![], |c| range_len(c, 3.0, 10.0, 3.0).ok()),
            Some(3)
        );
        assert_eq!(
            with("Range", 11, vec![], |c| range_len(c, 10.0, 6.0, -3.0).ok()),
            Some(2)
        );
        assert_eq!(
            with("Range", 11, vec![], |c| range_len(c, 1.0, 0.0, 1.0).ok()),
            Some(0)
        );
        assert!(with("Range", 11, vec![], |c| range_len(c, 1.0, 3.0, 0.0).ok()).is_none());
        assert_eq!(
            with("Expand", 13, vec![], |c| expand_shape(
                c,
                &[3, 1],
                &[2, 1, 6]
            )
            .ok()),
            Some(vec![2, 3, 6])
        );
        assert!(
            with("Expand", 13, vec![], |c| expand_shape(c, &[3, 2], &[4])
                .ok())
            .is_none()
        );
    }
}
