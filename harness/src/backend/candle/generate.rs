//! candle lowerings of the generator ops: ConstantOfShape (the value
//! broadcast), Range (`arange_step`), Expand (`broadcast_as`), EyeLike
//! (`eye`, or a column − row mask), Size and CastLike. Shapes and dtypes
//! come from the shared decode (`op::generate`).

use candle_core::{DType as CDType, Tensor};

use super::{candle_dtype, upload, Ce, Scope};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpFn, OpRegistry, OpResult};
use crate::op::generate as decode;
use crate::op::HostView;
use crate::tensor::DType;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;
/// One registration: op, first opset, lowering, spec link, coverage.
type Row = (
    &'static str,
    u32,
    OpFn<Tensor>,
    &'static str,
    &'static [crate::op::Coverage],
);

pub fn register(r: &mut OpRegistry<Tensor>) {
    use Label::{Composed, Native, Unsupported};
    let ops: &[Row] = &[
        (
            "ConstantOfShape",
            9,
            constant_of_shape,
            spec!("ConstantOfShape"),
            cov!["value of a candle dtype" => Native("broadcast_as"), "int8/uint16/uint64 value" => Unsupported("value")],
        ),
        (
            "Range",
            11,
            range,
            spec!("Range"),
            cov!["float32/64, int32/64 (candle accumulates start + Σdelta)" => Native("arange_step"),
              "other dtypes" => Unsupported("start (dtype)")],
        ),
        (
            "Expand",
            8,
            expand,
            spec!("Expand"),
            cov!["all" => Native("broadcast_as")],
        ),
        (
            "EyeLike",
            9,
            eye_like,
            spec!("EyeLike"),
            cov!["square, k = 0" => Native("eye"), "other" => Composed("arange, broadcast_sub, eq, to_dtype")],
        ),
        (
            "Size",
            1,
            size,
            spec!("Size"),
            cov!["all" => Native("elem_count")],
        ),
        (
            "CastLike",
            15,
            cast_like,
            spec!("CastLike"),
            cov!["all" => Native("to_dtype (ne(0) to bool)")],
        ),
    ];
    for &(op, since, run, spec, cov) in ops {
        r.range(op, since, u32::MAX, run, spec, cov);
    }
}

/// ConstantOfShape-9/20/21/23: the one-element `value` broadcast to the shape.
fn constant_of_shape(ctx: &OpCtx, x: &In) -> Out {
    let input = ctx.input(x, 0)?;
    let shape = decode::target_shape(ctx, input)?;
    let value = decode::fill_value(ctx)?;
    let scope = Scope::of(ctx);
    let v = upload(&value, scope).map_err(|e| ctx.unsupported("value", e))?;
    let y = v
        .reshape(())
        .ce()?
        .broadcast_as(shape)
        .ce()?
        .contiguous()
        .ce()?;
    Ok(Lowered::one(
        super::keep_bool(ctx, &v, y),
        How::native("broadcast_as"),
    ))
}

/// Range-11: candle's `arange_step`, which adds `delta` repeatedly.
fn range(ctx: &OpCtx, x: &In) -> Out {
    let start = ctx.input(x, 0)?;
    let [s, l, d] = [0, 1, 2].map(|i| decode::range_scalar(ctx, x, i));
    let (s, l, d) = (s?, l?, d?);
    let n = decode::range_len(ctx, s, l, d)?;
    if start.dtype() == CDType::F32 && !accumulation_ends(s as f32, l as f32, d as f32, n) {
        return Err(ctx.fail(format!(
            "candle's arange_step accumulates start + Σdelta in float32, which stops \
             advancing before {l} (x + {d} == x from some x on): it would loop and \
             allocate without end, where the spec's length is {n}"
        )));
    }
    let dev = start.device();
    let y = match start.dtype() {
        CDType::F32 => Tensor::arange_step(s as f32, l as f32, d as f32, dev),
        CDType::F64 => Tensor::arange_step(s, l, d, dev),
        CDType::I64 => Tensor::arange_step(s as i64, l as i64, d as i64, dev),
        CDType::I32 => Tensor::arange_step(s as i32, l as i32, d as i32, dev),
        other => return Err(ctx.unsupported("start", format!("candle arange of {other:?}"))),
    }
    .ce()?;
    Ok(Lowered::one(y, How::native("arange_step")))
}

/// Whether candle's float32 `arange_step` loop (`while x < limit { push(x);
/// x += delta }`, reversed for a negative delta) ends within `n + 1` steps,
/// `n` the spec's length: it never ends once `x + delta` rounds back to `x`
/// short of the limit (16777216 + 1 in float32), and would then allocate
/// until the process dies.
fn accumulation_ends(start: f32, limit: f32, delta: f32, n: usize) -> bool {
    let before = |x: f32| if delta > 0.0 { x < limit } else { x > limit };
    let mut x = start;
    for _ in 0..=n {
        if !before(x) {
            return true;
        }
        x += delta;
    }
    !before(x)
}

/// Expand-8/13: `broadcast_as` the bidirectional broadcast shape.
fn expand(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let target = decode::expand_shape(ctx, a.dims(), &ctx.input(x, 1)?.host_ints()?)?;
    let y = a.broadcast_as(target).ce()?.contiguous().ce()?;
    Ok(Lowered::one(
        super::keep_bool(ctx, a, y),
        How::native("broadcast_as"),
    ))
}

/// The ONNX dtype a candle tensor holds (bool where the scope marks it).
fn logical(ctx: &OpCtx, t: &Tensor) -> DType {
    match t.dtype() {
        CDType::U8 if Scope::of(ctx).is_bool(t) => DType::Bool,
        d => super::dtype_of(d),
    }
}

/// EyeLike-9/22: `eye` when square with k = 0, else column − row == k.
fn eye_like(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let dims = HostView::dims(a);
    let (k, dtype) = decode::eye_like(ctx, logical(ctx, a), &dims)?;
    let cd = candle_dtype(dtype)
        .ok_or_else(|| ctx.unsupported("dtype", format!("{dtype} has no candle dtype")))?;
    let (n, m) = (dims[0], dims[1]);
    let y = if k == 0 && n == m {
        (Tensor::eye(n, cd, a.device()).ce()?, How::native("eye"))
    } else {
        let cols = Tensor::arange(0i64, m as i64, a.device())
            .ce()?
            .reshape((1, m))
            .ce()?;
        let rows = Tensor::arange(0i64, n as i64, a.device())
            .ce()?
            .reshape((n, 1))
            .ce()?;
        let mask = cols.broadcast_sub(&rows).ce()?.eq(k as f64).ce()?;
        (
            mask.to_dtype(cd).ce()?,
            How::composed("arange, broadcast_sub, eq, to_dtype"),
        )
    };
    let out = if dtype == DType::Bool {
        Scope::of(ctx).mark_bool(y.0)
    } else {
        y.0
    };
    Ok(Lowered::one(out, y.1))
}

/// Size-1/13/19/21: the element count as an int64 scalar.
fn size(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let y = Tensor::new(a.elem_count() as i64, a.device()).ce()?;
    Ok(Lowered::one(y, How::native("elem_count")))
}

/// CastLike-15/19/21/23: Cast to the dtype of `target_type`.
fn cast_like(ctx: &OpCtx, x: &In) -> Out {
    let to = logical(ctx, ctx.input(x, 1)?);
    super::elementwise::cast_to(ctx, ctx.input(x, 0)?, to)
}

#[cfg(test)]
mod tests {
    use super::accumulation_ends;

    #[test]
    fn an_accumulation_that_stops_advancing_never_ends() {
        // 16777216 + 1 rounds back to 16777216 in float32.
        assert!(!accumulation_ends(16_777_216.0, 16_777_226.0, 1.0, 10));
        assert!(accumulation_ends(0.1, 1.0, 0.1, 9));
        assert!(accumulation_ends(1.0, -1.0, -0.5, 4));
        assert!(accumulation_ends(3.0, 1.0, 1.0, 0));
    }
}
