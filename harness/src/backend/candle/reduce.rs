//! candle lowerings: ReduceMean and Softmax.
//!
//! candle reduces f16/bf16 in the native dtype (no f32 accumulation); that
//! is candle's behaviour and is exposed, not corrected.

use candle_core::Tensor;

use super::{host_ints, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::softmax::SoftmaxAttrs;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    let spec = "https://onnx.ai/onnx/operators/onnx__ReduceMean.html";
    let cov = cov![
        "keepdims=1" => Native("mean_keepdim"),
        "keepdims=0" => Native("mean"),
        "empty axes with noop_with_empty_axes=1" => Native("clone"),
    ];
    r.range("ReduceMean", 1, 17, reduce_mean, spec, cov);
    r.range("ReduceMean", 18, u32::MAX, reduce_mean, spec, cov);
    let spec = "https://onnx.ai/onnx/operators/onnx__Softmax.html";
    r.range("Softmax", 1, 12, softmax, spec, cov![
            "axis = last (coercion is a no-op)" => Native("candle_nn::ops::softmax_last_dim"),
            "other axis (input coerced to 2-D at axis)" => Composed("reshape, candle_nn::ops::softmax_last_dim, reshape"),
        ]);
    r.range(
        "Softmax",
        13,
        u32::MAX,
        softmax,
        spec,
        cov![
            "axis = last" => Native("candle_nn::ops::softmax_last_dim"),
            "other axis" => Native("candle_nn::ops::softmax"),
        ],
    );
}

/// ReduceMean-1/11/13 (axes attribute) / ReduceMean-18 (axes input, noop_with_empty_axes).
fn reduce_mean(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let keep = ctx.int("keepdims", 1)? != 0;
    let axes = if ctx.opset < 18 {
        ctx.ints("axes")?
    } else {
        x.get(1).copied().flatten().map(host_ints).transpose()?
    };
    let axes: Vec<usize> = match axes {
        Some(v) if !v.is_empty() => {
            let mut v: Vec<usize> = v
                .iter()
                .map(|&i| ctx.axis(i, a.rank()))
                .collect::<OpResult<_>>()?;
            v.sort_unstable();
            v.dedup();
            v
        }
        _ if ctx.opset >= 18 && ctx.int("noop_with_empty_axes", 0)? != 0 => {
            return Ok(Lowered::one(a.clone(), How::native("clone")));
        }
        _ => (0..a.rank()).collect(),
    };
    if keep {
        Ok(Lowered::one(
            a.mean_keepdim(axes).ce()?,
            How::native("mean_keepdim"),
        ))
    } else {
        Ok(Lowered::one(a.mean(axes).ce()?, How::native("mean")))
    }
}

/// Softmax-1/11 (default axis 1, input coerced to 2-D) / Softmax-13 (one axis, default -1).
fn softmax(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let SoftmaxAttrs { axis: ax, coerced } = SoftmaxAttrs::decode(ctx, a.rank())?;
    if ax + 1 == a.rank() {
        let y = candle_nn::ops::softmax_last_dim(&a.contiguous().ce()?).ce()?;
        return Ok(Lowered::one(
            y,
            How::native("candle_nn::ops::softmax_last_dim"),
        ));
    }
    if !coerced {
        let y = candle_nn::ops::softmax(a, ax).ce()?;
        return Ok(Lowered::one(y, How::native("candle_nn::ops::softmax")));
    }
    let outer: usize = a.dims()[..ax].iter().product();
    let y = a
        .reshape((outer, a.elem_count() / outer.max(1)))
        .and_then(|t| candle_nn::ops::softmax_last_dim(&t))
        .and_then(|t| t.reshape(a.dims()))
        .ce()?;
    Ok(Lowered::one(
        y,
        How::composed("reshape, candle_nn::ops::softmax_last_dim, reshape"),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn softmax_opset11_coerces_to_2d() {
        // shape [1, 2, 2], axis 1: normalizes over all 4 values together.
        let x = f32t(&[1, 2, 2], &[0.0, 0.0, 0.0, 0.0]);
        let (v, dims, how) = run1(
            &node("Softmax", 1, 1, vec![("axis", Attr::Int(1))]),
            11,
            &[Some(&x)],
        );
        assert_eq!(dims, vec![1, 2, 2]);
        close(&v, &[0.25; 4], 1e-6);
        assert!(how.starts_with("composed"), "{how}");
        let (v, _, how) = run1(
            &node("Softmax", 1, 1, vec![("axis", Attr::Int(1))]),
            13,
            &[Some(&x)],
        );
        close(&v, &[0.5; 4], 1e-6);
        assert_eq!(how, "native: candle_nn::ops::softmax");
    }

    #[test]
    fn reduce_mean_axes_and_keepdims() {
        let x = f32t(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let n = node(
            "ReduceMean",
            1,
            1,
            vec![("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(0))],
        );
        let (v, dims, how) = run1(&n, 13, &[Some(&x)]);
        assert_eq!((v, dims), (vec![2.0, 5.0], vec![2]));
        assert_eq!(how, "native: mean");
    }
}
