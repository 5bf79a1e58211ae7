//! Helpers shared by the reference ops: axis normalization, multidirectional
//! (numpy) broadcasting, and building test nodes.

use ndarray::{ArrayD, IxDyn};

use super::RefTensor;
use crate::backend::interp::{OpError, OpResult};

/// Runs `$body` with `$T` bound to the element type stored for dtype `$d`:
/// `by_dtype!(d, T => body)` over every dtype, `by_dtype!(ints d, T => body,
/// _ => other)` over the integer dtypes only (`other` for the rest).
macro_rules! by_dtype {
    (@match $d:expr, $T:ident => $body:expr, [$($V:ident: $ty:ty),*] $(, _ => $other:expr)?) => {{
        use $crate::tensor::DType as D;
        match $d {
            $(D::$V => {
                type $T = $ty;
                $body
            })*
            $(_ => $other,)?
        }
    }};
    (ints $d:expr, $T:ident => $body:expr, _ => $other:expr) => {
        $crate::backend::reference::util::by_dtype!(@match $d, $T => $body,
            [I8: i8, I16: i16, I32: i32, I64: i64, U8: u8, U16: u16, U32: u32, U64: u64],
            _ => $other)
    };
    ($d:expr, $T:ident => $body:expr) => {
        $crate::backend::reference::util::by_dtype!(@match $d, $T => $body,
            [F16: half::f16, BF16: half::bf16, F32: f32, F64: f64, I8: i8, I16: i16, I32: i32,
             I64: i64, U8: u8, U16: u16, U32: u32, U64: u64, Bool: bool])
    };
}
pub(crate) use by_dtype;

/// The broadcast shape of two shapes (ONNX multidirectional broadcasting).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> OpResult<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(OpError::Failed(format!(
                    "shapes {a:?} and {b:?} cannot be broadcast"
                )))
            }
        };
    }
    Ok(out)
}

/// Applies `f` elementwise under broadcasting. Equal shapes in standard
/// layout zip the two slices; otherwise ndarray's `Zip` walks the broadcast
/// views with an inner loop over the last axis (no per-element `IxDyn`
/// indexing); the result keeps the inputs' memory order when they share one.
pub fn broadcast_map<A: Clone, B: Clone, C>(
    a: &ArrayD<A>,
    b: &ArrayD<B>,
    f: impl Fn(A, B) -> C,
) -> OpResult<ArrayD<C>> {
    let shape = broadcast_shape(a.shape(), b.shape())?;
    if let (Some(x), Some(y)) = (a.as_slice(), b.as_slice()) {
        if a.shape() == b.shape() {
            let v = x.iter().zip(y).map(|(p, q)| f(p.clone(), q.clone()));
            return Ok(ArrayD::from_shape_vec(IxDyn(&shape), v.collect()).expect("shape matches"));
        }
    }
    let av = a.broadcast(IxDyn(&shape)).expect("broadcastable");
    let bv = b.broadcast(IxDyn(&shape)).expect("broadcastable");
    Ok(ndarray::Zip::from(&av)
        .and(&bv)
        .map_collect(|p, q| f(p.clone(), q.clone())))
}

pub use crate::backend::interp::test_node;

/// A float reference tensor from values (tests).
pub fn f(shape: &[usize], values: &[f64]) -> RefTensor {
    RefTensor::float(
        ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("shape matches values"),
        crate::tensor::DType::F32,
    )
}

/// An int64 reference tensor from values (tests).
pub fn i(shape: &[usize], values: &[i64]) -> RefTensor {
    RefTensor::exact(crate::tensor::Tensor::I64(
        ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).expect("shape matches values"),
    ))
}

/// Input `i` as f64, or a failure naming it when it is not a float tensor.
pub fn float_input<'a>(
    ctx: &crate::op::OpCtx,
    x: &[Option<&'a RefTensor>],
    i: usize,
) -> crate::backend::interp::OpResult<&'a ndarray::ArrayD<f64>> {
    let t = ctx.input(x, i)?;
    t.f64().map_err(|_| {
        ctx.fail(format!(
            "input #{i} must be a float tensor, got {}",
            t.dtype
        ))
    })
}
