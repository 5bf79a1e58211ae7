//! Reference ops: the shape family (Concat, Reshape, Slice, Pad, Cast, ...).
//!
//! These ops move values around rather than compute with them, so they are
//! written once, generically over the element type, and dispatched on the
//! stored dtype. The dtype plumbing they need (picking a typed array out of a
//! [`Tensor`], exact integer widening, float→int conversion as x86 numpy/ORT
//! do it) lives here too and is shared with the other reference families.

use half::{bf16, f16};
use ndarray::{concatenate, ArrayD, ArrayViewD, Axis, IxDyn};

use super::util::by_dtype;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpDef, OpRegistry, OpResult};
use crate::graph::Attr;
use crate::op::normalize_axis as norm_axis;
use crate::op::pad::{PadAttrs, PadMode};
use crate::op::reshape::ReshapeAttrs;
use crate::op::slice::SliceAttrs;
use crate::tensor::{DType, Element, Tensor};

// ---------------------------------------------------------------------------
// dtype plumbing shared with the other reference families

/// A host element type whose typed array can be picked out of a [`Tensor`].
pub(super) trait Pick: Element + PartialOrd {
    fn pick(t: &Tensor) -> Option<&ArrayD<Self>>;
}

macro_rules! pick {
    ($($t:ty => $v:ident),*) => {$(
        impl Pick for $t {
            fn pick(t: &Tensor) -> Option<&ArrayD<Self>> {
                match t {
                    Tensor::$v(a) => Some(a),
                    _ => None,
                }
            }
        }
    )*};
}
pick!(f16 => F16, bf16 => BF16, f32 => F32, f64 => F64, i8 => I8, i16 => I16, i32 => I32,
      i64 => I64, u8 => U8, u16 => U16, u32 => U32, u64 => U64, bool => Bool);

/// The typed array of `t`, which the caller dispatched on (cannot fail).
pub(super) fn arr<T: Pick>(t: &Tensor) -> &ArrayD<T> {
    T::pick(t).expect("dispatched on this dtype")
}

/// Exact integer contents (any int dtype or bool) widened to i128.
pub(super) fn wide_ints(t: &Tensor) -> Option<ArrayD<i128>> {
    Some(match t {
        Tensor::I8(a) => a.mapv(i128::from),
        Tensor::I16(a) => a.mapv(i128::from),
        Tensor::I32(a) => a.mapv(i128::from),
        Tensor::I64(a) => a.mapv(i128::from),
        Tensor::U8(a) => a.mapv(i128::from),
        Tensor::U16(a) => a.mapv(i128::from),
        Tensor::U32(a) => a.mapv(i128::from),
        Tensor::U64(a) => a.mapv(i128::from),
        Tensor::Bool(a) => a.mapv(i128::from),
        _ => return None,
    })
}

/// i128 values to an integer or bool dtype with C-cast semantics (wrapping).
pub(super) fn ints_to(a: &ArrayD<i128>, to: DType) -> Tensor {
    match to {
        DType::I8 => Tensor::I8(a.mapv(|v| v as i8)),
        DType::I16 => Tensor::I16(a.mapv(|v| v as i16)),
        DType::I32 => Tensor::I32(a.mapv(|v| v as i32)),
        DType::I64 => Tensor::I64(a.mapv(|v| v as i64)),
        DType::U8 => Tensor::U8(a.mapv(|v| v as u8)),
        DType::U16 => Tensor::U16(a.mapv(|v| v as u16)),
        DType::U32 => Tensor::U32(a.mapv(|v| v as u32)),
        DType::U64 => Tensor::U64(a.mapv(|v| v as u64)),
        DType::Bool => Tensor::Bool(a.mapv(|v| v != 0)),
        f => Tensor::F64(a.mapv(|v| round_to(v as f64, f))),
    }
}

/// x86 `cvttsd2si` with a 32-bit destination: truncation, INT32_MIN when NaN or out of range.
fn cvtt32(v: f64) -> i32 {
    if v > -2147483649.0 && v < 2147483648.0 {
        v as i32
    } else {
        i32::MIN
    }
}

/// x86 `cvttsd2si` with a 64-bit destination: truncation, INT64_MIN when NaN or out of range.
fn cvtt64(v: f64) -> i64 {
    if (-9223372036854775808.0..9223372036854775808.0).contains(&v) {
        v as i64
    } else {
        i64::MIN
    }
}

/// Float → integer or bool. The spec truncates toward zero and leaves NaN and
/// out-of-range values undefined; we reproduce what numpy `astype` and ONNX
/// Runtime give on x86-64 (checked against both): int8/16, uint8/16 and int32
/// go through a 32-bit truncating convert (INT32_MIN on overflow or NaN) and
/// then keep the low bits (300.0 → int8 44, 1e10 → int8 0); int64 uses the
/// 64-bit convert (INT64_MIN); uint32/uint64 convert values ≥ 2^31 / 2^63 by
/// subtracting that bound first (NaN → 2^31 / 2^63, 1e20 → 0, -1 → MAX).
/// Bool is `v != 0` (NaN → true).
pub(super) fn float_to(a: &ArrayD<f64>, to: DType) -> Tensor {
    const P31: f64 = 2147483648.0;
    const P63: f64 = 9223372036854775808.0;
    match to {
        DType::I8 => Tensor::I8(a.mapv(|v| cvtt32(v) as i8)),
        DType::I16 => Tensor::I16(a.mapv(|v| cvtt32(v) as i16)),
        DType::I32 => Tensor::I32(a.mapv(cvtt32)),
        DType::I64 => Tensor::I64(a.mapv(cvtt64)),
        DType::U8 => Tensor::U8(a.mapv(|v| cvtt32(v) as u8)),
        DType::U16 => Tensor::U16(a.mapv(|v| cvtt32(v) as u16)),
        DType::U32 => Tensor::U32(a.mapv(|v| {
            if v >= P31 {
                (cvtt32(v - P31) as u32) ^ 0x8000_0000
            } else {
                cvtt32(v) as u32
            }
        })),
        DType::U64 => Tensor::U64(a.mapv(|v| {
            if v >= P63 {
                (cvtt64(v - P63) as u64) ^ (1 << 63)
            } else {
                cvtt64(v) as u64
            }
        })),
        DType::Bool => Tensor::Bool(a.mapv(|v| v != 0.0)),
        f => Tensor::F64(a.mapv(|v| round_to(v, f))),
    }
}

/// Rounds an f64 through float dtype `to` (round to nearest even), since a
/// value cast to float32/16 really is one.
pub(super) fn round_to(v: f64, to: DType) -> f64 {
    match to {
        DType::F32 => v as f32 as f64,
        DType::F16 => f16::from_f64(v).to_f64(),
        DType::BF16 => bf16::from_f64(v).to_f64(),
        _ => v,
    }
}

/// Keeps `x`'s logical dtype for data of the same storage type.
fn same(x: &RefTensor, data: Tensor) -> RefTensor {
    RefTensor {
        data,
        dtype: x.dtype,
    }
}

/// Contents in logical order with a new shape (element count checked by
/// caller): a row-major array's buffer copied as it is.
fn reshaped<T: Clone>(a: &ArrayD<T>, shape: &[usize]) -> ArrayD<T> {
    let v = match a.as_slice() {
        Some(row_major) => row_major.to_vec(),
        None => a.iter().cloned().collect(),
    };
    ArrayD::from_shape_vec(IxDyn(shape), v).expect("element count checked")
}

/// Picks `idx[k]` along every axis `k` (indices already validated); an
/// axis picked whole and in order is not copied for itself.
fn take_axes<T: Clone>(a: &ArrayD<T>, idx: &[Option<Vec<usize>>]) -> ArrayD<T> {
    let whole = |k: usize, ix: &[usize]| {
        ix.len() == a.len_of(Axis(k)) && ix.iter().enumerate().all(|(i, &j)| i == j)
    };
    let mut out: Option<ArrayD<T>> = None;
    for (k, ix) in idx.iter().enumerate() {
        if let Some(ix) = ix.as_deref().filter(|ix| !whole(k, ix)) {
            out = Some(match out {
                Some(o) => o.select(Axis(k), ix),
                None => a.select(Axis(k), ix),
            });
        }
    }
    out.unwrap_or_else(|| a.as_standard_layout().into_owned())
}

/// An integer list from an optional input (`name` for errors).
fn int_input(
    ctx: &OpCtx,
    x: &[Option<&RefTensor>],
    i: usize,
    name: &str,
) -> OpResult<Option<Vec<i64>>> {
    match x.get(i).copied().flatten() {
        None => Ok(None),
        Some(t) => match t.data.to_i64_vec() {
            Some(v) => Ok(Some(v)),
            None => Err(ctx.fail(format!(
                "input `{name}` must be int64 or int32, got {}",
                t.dtype
            ))),
        },
    }
}

/// Normalizes `axis` with a message naming what it is.
fn ax(ctx: &OpCtx, what: &str, a: i64, rank: usize) -> OpResult<usize> {
    norm_axis(a, rank).map_err(|_| ctx.fail(format!("{what} {a} is out of range for rank {rank}")))
}

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];
const CAST_COV: &[Coverage] = &[
    Coverage {
        when: "to: float16/bfloat16/float/double, (u)int8-64, bool",
        label: Label::Spec,
    },
    Coverage {
        when: "to: string, float8, int4, complex",
        label: Label::Unsupported("dtype not represented by xdiff tensors"),
    },
];
const CONSTANT_COV: &[Coverage] = &[
    Coverage {
        when: "value, value_float(s), value_int(s)",
        label: Label::Spec,
    },
    Coverage {
        when: "value_string(s), sparse_value",
        label: Label::Unsupported("no string/sparse tensors"),
    },
];
const DROPOUT_COV: &[Coverage] = &[
    Coverage {
        when: "inference, or training_mode with ratio 0",
        label: Label::Spec,
    },
    Coverage {
        when: "training_mode=1 with ratio>0",
        label: Label::Unsupported("random mask"),
    },
];

fn def(
    op: &'static str,
    since: u32,
    until: u32,
    run: crate::backend::interp::OpFn<RefTensor>,
    spec: &'static str,
) -> OpDef<RefTensor> {
    OpDef {
        op,
        since,
        until,
        run,
        spec,
        coverage: SPEC,
    }
}

pub fn register(r: &mut OpRegistry<RefTensor>) {
    const SLICE: &str = "https://onnx.ai/onnx/operators/onnx__Slice.html";
    const SPLIT: &str = "https://onnx.ai/onnx/operators/onnx__Split.html";
    const SQUEEZE: &str = "https://onnx.ai/onnx/operators/onnx__Squeeze.html";
    const UNSQUEEZE: &str = "https://onnx.ai/onnx/operators/onnx__Unsqueeze.html";
    const PAD: &str = "https://onnx.ai/onnx/operators/onnx__Pad.html";
    const DROPOUT: &str = "https://onnx.ai/onnx/operators/onnx__Dropout.html";
    r.op(
        "Concat",
        concat,
        "https://onnx.ai/onnx/operators/onnx__Concat.html",
        SPEC,
    );
    r.op(
        "Reshape",
        reshape,
        "https://onnx.ai/onnx/operators/onnx__Reshape.html",
        SPEC,
    );
    r.op(
        "Flatten",
        flatten,
        "https://onnx.ai/onnx/operators/onnx__Flatten.html",
        SPEC,
    );
    r.op(
        "Transpose",
        transpose,
        "https://onnx.ai/onnx/operators/onnx__Transpose.html",
        SPEC,
    );
    r.add(def("Slice", 1, 9, slice, SLICE));
    r.add(def("Slice", 10, u32::MAX, slice, SLICE));
    r.add(def("Split", 1, 12, split, SPLIT));
    r.add(def("Split", 13, 17, split, SPLIT));
    r.add(def("Split", 18, u32::MAX, split, SPLIT));
    r.add(def("Squeeze", 1, 12, squeeze, SQUEEZE));
    r.add(def("Squeeze", 13, u32::MAX, squeeze, SQUEEZE));
    r.add(def("Unsqueeze", 1, 12, unsqueeze, UNSQUEEZE));
    r.add(def("Unsqueeze", 13, u32::MAX, unsqueeze, UNSQUEEZE));
    r.op(
        "Identity",
        identity,
        "https://onnx.ai/onnx/operators/onnx__Identity.html",
        SPEC,
    );
    for (since, until) in [(15, 17), (18, u32::MAX)] {
        r.range(
            "OptionalHasElement",
            since,
            until,
            optional_has_element,
            "https://onnx.ai/onnx/operators/onnx__OptionalHasElement.html",
            SPEC,
        );
        r.range(
            "OptionalGetElement",
            since,
            until,
            identity,
            "https://onnx.ai/onnx/operators/onnx__OptionalGetElement.html",
            SPEC,
        );
    }
    r.op(
        "Constant",
        constant,
        "https://onnx.ai/onnx/operators/onnx__Constant.html",
        CONSTANT_COV,
    );
    r.op(
        "Shape",
        shape,
        "https://onnx.ai/onnx/operators/onnx__Shape.html",
        SPEC,
    );
    r.op(
        "Gather",
        gather,
        "https://onnx.ai/onnx/operators/onnx__Gather.html",
        SPEC,
    );
    r.op(
        "Cast",
        cast,
        "https://onnx.ai/onnx/operators/onnx__Cast.html",
        CAST_COV,
    );
    r.add(def("Pad", 1, 10, pad, PAD));
    r.add(def("Pad", 11, u32::MAX, pad, PAD));
    r.range("Dropout", 1, 11, dropout, DROPOUT, SPEC);
    r.range("Dropout", 12, u32::MAX, dropout, DROPOUT, DROPOUT_COV);
}

/// Concat-4/11/13: joins inputs along `axis` (negative allowed since 11).
fn concat(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let ins: Vec<&RefTensor> = x.iter().copied().flatten().collect();
    let first = *ins
        .first()
        .ok_or_else(|| ctx.fail("Concat needs at least one input"))?;
    if !ctx.has("axis") {
        return Err(ctx.fail("attribute `axis` is required"));
    }
    let rank = first.shape().len();
    let a = ax(ctx, "attribute `axis`", ctx.int("axis", 0)?, rank)?;
    if let Some(bad) = ins
        .iter()
        .find(|t| t.data.dtype() != first.data.dtype() || t.shape().len() != rank)
    {
        return Err(ctx.fail(format!(
            "inputs must share dtype and rank: {} {:?} vs {} {:?}",
            first.dtype,
            first.shape(),
            bad.dtype,
            bad.shape()
        )));
    }
    let out = by_dtype!(first.data.dtype(), T => {
        let views: Vec<ArrayViewD<T>> = ins.iter().map(|t| arr::<T>(&t.data).view()).collect();
        T::wrap(concatenate(Axis(a), &views).map_err(|e| ctx.fail(format!("Concat on axis {a}: {e}")))?)
    });
    Ok(Lowered::one(same(first, out), How::Spec))
}

/// Reshape-5/13/14/19/21: shape input with 0 (copy) and -1 (infer); `allowzero` (14).
fn reshape(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let target = ReshapeAttrs::decode(ctx, x)?.target;
    let out = by_dtype!(data.data.dtype(), T => T::wrap(reshaped(arr::<T>(&data.data), &target)));
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Flatten-1/9/11/13/21: 2-D (prod(d[..axis]), prod(d[axis..])); axis in [-r, r].
fn flatten(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = data.shape();
    let r = s.len() as i64;
    let a = ctx.int("axis", 1)?;
    if a < -r || a > r {
        return Err(ctx.fail(format!("attribute `axis` {a} is out of range for rank {r}")));
    }
    let a = if a < 0 { a + r } else { a } as usize;
    let target = [
        s[..a].iter().product::<usize>(),
        s[a..].iter().product::<usize>(),
    ];
    let out = by_dtype!(data.data.dtype(), T => T::wrap(reshaped(arr::<T>(&data.data), &target)));
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Transpose-1/13/21: permutes axes by `perm` (default: reversed).
fn transpose(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let r = data.shape().len();
    let perm: Vec<usize> = match ctx.ints("perm")? {
        None => (0..r).rev().collect(),
        Some(p) => {
            let mut seen = vec![false; r];
            let mut out = Vec::with_capacity(r);
            for &v in &p {
                let a = ax(ctx, "attribute `perm` entry", v, r)?;
                if seen[a] {
                    return Err(ctx.fail(format!("attribute `perm` {p:?} repeats axis {v}")));
                }
                seen[a] = true;
                out.push(a);
            }
            if out.len() != r {
                return Err(ctx.fail(format!(
                    "attribute `perm` {p:?} is not a permutation of rank {r}"
                )));
            }
            out
        }
    };
    let out = by_dtype!(data.data.dtype(), T => {
        let v = arr::<T>(&data.data).view().permuted_axes(IxDyn(&perm));
        T::wrap(v.as_standard_layout().into_owned())
    });
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Slice-1 (starts/ends/axes attributes), Slice-10/11/13 (inputs, steps).
fn slice(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let mut idx: Vec<Option<Vec<usize>>> = vec![None; data.shape().len()];
    for a in SliceAttrs::decode(ctx, x)?.axes {
        idx[a.axis] = Some(a.indices().into_iter().map(|i| i as usize).collect());
    }
    let out = by_dtype!(data.data.dtype(), T => T::wrap(take_axes(arr::<T>(&data.data), &idx)));
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Split-2/11 (`split` attribute), 13 (`split` input), 18 (`num_outputs`, uneven last chunk).
fn split(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let shape = data.shape().to_vec();
    let a = ax(ctx, "attribute `axis`", ctx.int("axis", 0)?, shape.len())?;
    let dim = shape[a];
    let n_out = ctx.node.outputs.len();
    let given = if ctx.opset < 13 {
        ctx.ints("split")?
    } else {
        int_input(ctx, x, 1, "split")?
    };
    let sizes: Vec<usize> = match given {
        Some(s) if !s.is_empty() => {
            if s.iter().any(|&v| v < 0) || s.iter().sum::<i64>() != dim as i64 {
                return Err(ctx.fail(format!(
                    "`split` {s:?} does not sum to dimension {dim} of axis {a}"
                )));
            }
            s.iter().map(|&v| v as usize).collect()
        }
        _ => {
            let n = if ctx.opset >= 18 && ctx.has("num_outputs") {
                ctx.int("num_outputs", 0)?
            } else {
                n_out as i64
            };
            if n < 1 {
                return Err(ctx.fail(format!("attribute `num_outputs` {n} must be positive")));
            }
            let n = n as usize;
            if ctx.opset >= 18 {
                // ceil-sized chunks, the last one smaller
                let chunk = dim.div_ceil(n);
                (0..n)
                    .map(|k| chunk.min(dim.saturating_sub(k * chunk)))
                    .collect()
            } else {
                if dim % n != 0 {
                    return Err(ctx.fail(format!(
                        "dimension {dim} of axis {a} does not split into {n} equal parts"
                    )));
                }
                vec![dim / n; n]
            }
        }
    };
    if sizes.len() != n_out {
        return Err(ctx.fail(format!("{} split sizes for {n_out} outputs", sizes.len())));
    }
    let mut outs = Vec::with_capacity(n_out);
    let mut at = 0;
    for s in sizes {
        let mut idx: Vec<Option<Vec<usize>>> = vec![None; shape.len()];
        idx[a] = Some((at..at + s).collect());
        at += s;
        let t = by_dtype!(data.data.dtype(), T => T::wrap(take_axes(arr::<T>(&data.data), &idx)));
        outs.push(same(data, t));
    }
    Ok(Lowered::many(outs, How::Spec))
}

/// The `axes` of Squeeze/Unsqueeze: attribute before opset 13, input since.
fn axes_of(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Option<Vec<i64>>> {
    if ctx.opset < 13 {
        ctx.ints("axes")
    } else {
        int_input(ctx, x, 1, "axes")
    }
}

/// Squeeze-1/11/13/21: removes `axes` (all size-1 dims when absent).
fn squeeze(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = data.shape();
    // an empty `axes` input behaves as an absent one (as ONNX Runtime does)
    let drop: Vec<usize> = match axes_of(ctx, x)?.filter(|a| !a.is_empty()) {
        None => (0..s.len()).filter(|&k| s[k] == 1).collect(),
        Some(axes) => {
            let mut v = Vec::new();
            for a in axes {
                let k = ax(ctx, "`axes` entry", a, s.len())?;
                if s[k] != 1 {
                    return Err(ctx.fail(format!("`axes`: axis {a} has size {}, not 1", s[k])));
                }
                v.push(k);
            }
            v
        }
    };
    let target: Vec<usize> = (0..s.len())
        .filter(|k| !drop.contains(k))
        .map(|k| s[k])
        .collect();
    let out = by_dtype!(data.data.dtype(), T => T::wrap(reshaped(arr::<T>(&data.data), &target)));
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Unsqueeze-1/11/13/21: inserts size-1 dims at `axes` (of the output rank).
fn unsqueeze(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = data.shape();
    let axes = axes_of(ctx, x)?.ok_or_else(|| ctx.fail("`axes` is required"))?;
    let r = s.len() + axes.len();
    let mut ones = vec![false; r];
    for &a in &axes {
        let k = ax(ctx, "`axes` entry", a, r)?;
        if ones[k] {
            return Err(ctx.fail(format!("`axes` {axes:?} repeats axis {k}")));
        }
        ones[k] = true;
    }
    let mut it = s.iter();
    let target: Vec<usize> = ones
        .iter()
        .map(|&o| {
            if o {
                1
            } else {
                *it.next().expect("rank adds up")
            }
        })
        .collect();
    let out = by_dtype!(data.data.dtype(), T => T::wrap(reshaped(arr::<T>(&data.data), &target)));
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Identity-1/13/14/16/19/21: the input unchanged.
fn identity(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    Ok(Lowered::one(ctx.input(x, 0)?.clone(), How::Spec))
}

/// OptionalHasElement-15/18: whether the input holds a value. xdiff's
/// values are tensors, never optional, so that is whether the input is
/// given at all (an omitted input, name "", is an empty optional).
/// OptionalGetElement of a tensor is the tensor (`identity`).
fn optional_has_element(_ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let present = x.first().copied().flatten().is_some();
    let t = Tensor::Bool(ArrayD::from_elem(IxDyn(&[]), present));
    Ok(Lowered::one(RefTensor::exact(t), How::Spec))
}

/// Constant-1/9/11/12/13/19/21: `value`, `value_float(s)`, `value_int(s)`.
fn constant(ctx: &OpCtx, _x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let t = if let Some(t) = ctx.tensor("value")? {
        RefTensor::from_host(t)
    } else if ctx.has("value_float") {
        RefTensor::float(
            ArrayD::from_elem(IxDyn(&[]), ctx.float("value_float", 0.0)? as f64),
            DType::F32,
        )
    } else if let Some(v) = ctx.floats("value_floats")? {
        RefTensor::float(
            ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.iter().map(|&f| f as f64).collect())
                .expect("1-D"),
            DType::F32,
        )
    } else if ctx.has("value_int") {
        RefTensor::exact(Tensor::I64(ArrayD::from_elem(
            IxDyn(&[]),
            ctx.int("value_int", 0)?,
        )))
    } else if let Some(v) = ctx.ints("value_ints")? {
        RefTensor::exact(Tensor::I64(
            ArrayD::from_shape_vec(IxDyn(&[v.len()]), v).expect("1-D"),
        ))
    } else {
        for a in ["value_string", "value_strings"] {
            if ctx.has(a) {
                return Err(ctx.unsupported(a, "string tensors are not represented"));
            }
        }
        if ctx.has("sparse_value") {
            return Err(ctx.unsupported("sparse_value", "sparse tensors are not represented"));
        }
        return Err(ctx.fail(
            "Constant needs one of the attributes `value`, `value_float(s)`, `value_int(s)`",
        ));
    };
    Ok(Lowered::one(t, How::Spec))
}

/// Shape-1/13/15/19/21: the dims as int64; `start`/`end` (15) clamp to [0, rank].
fn shape(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = data.shape();
    let r = s.len() as i64;
    let norm = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let start = norm(ctx.int("start", 0)?);
    let end = norm(ctx.int("end", r)?);
    let dims: Vec<i64> = if start < end {
        s[start..end].iter().map(|&d| d as i64).collect()
    } else {
        vec![]
    };
    let out = Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[dims.len()]), dims).expect("1-D"));
    Ok(Lowered::one(RefTensor::exact(out), How::Spec))
}

/// Gather-1/11/13: takes `indices` (negative count from the end) along `axis`.
fn gather(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let (data, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let s = data.shape().to_vec();
    let a = ax(ctx, "attribute `axis`", ctx.int("axis", 0)?, s.len())?;
    if s.is_empty() {
        return Err(ctx.fail("input `data` must have rank >= 1"));
    }
    let raw = ind.data.to_i64_vec().ok_or_else(|| {
        ctx.fail(format!(
            "input `indices` must be int32 or int64, got {}",
            ind.dtype
        ))
    })?;
    let dim = s[a] as i64;
    let mut flat = Vec::with_capacity(raw.len());
    for v in raw {
        let w = if v < 0 { v + dim } else { v };
        if w < 0 || w >= dim {
            return Err(ctx.fail(format!(
                "input `indices`: {v} is out of range for axis {a} of size {dim}"
            )));
        }
        flat.push(w as usize);
    }
    let mut target = s[..a].to_vec();
    target.extend_from_slice(ind.shape());
    target.extend_from_slice(&s[a + 1..]);
    let out = by_dtype!(data.data.dtype(), T => {
        let picked = arr::<T>(&data.data).select(Axis(a), &flat);
        T::wrap(reshaped(&picked, &target))
    });
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// Cast-6/9/13/19/21/23: converts to dtype `to` (see [`float_to`] for float→int).
fn cast(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let input = ctx.input(x, 0)?;
    let code = match ctx.node.attrs.get("to") {
        Some(Attr::Int(v)) => *v,
        // Cast-1..5 spelled `to` as a string; accept the dtype names.
        Some(Attr::String(s)) => match DType::parse(&s.to_lowercase()) {
            Some(d) => d.onnx_code() as i64,
            None => return Err(ctx.unsupported("to", format!("dtype `{s}`"))),
        },
        Some(a) => return Err(ctx.fail(format!("attribute `to`: expected int, got {}", a.kind()))),
        None => return Err(ctx.fail("attribute `to` is required")),
    };
    let to = DType::from_onnx(code as i32).ok_or_else(|| {
        ctx.unsupported("to", format!("ONNX data type {code} is not represented"))
    })?;
    Ok(Lowered::one(cast_to(ctx, input, to)?, How::Spec))
}

/// Cast's conversion of `input` to `to` (shared with CastLike).
pub(super) fn cast_to(ctx: &OpCtx, input: &RefTensor, to: DType) -> OpResult<RefTensor> {
    let data = match &input.data {
        Tensor::F64(a) => float_to(a, to),
        t => ints_to(
            &wide_ints(t).ok_or_else(|| ctx.fail(format!("Cast from {}", input.dtype)))?,
            to,
        ),
    };
    Ok(RefTensor { data, dtype: to })
}

/// How one output position of a padded axis reads its source: `None` = constant.
fn pad_source(o: usize, before: i64, dim: usize, mode: PadMode) -> Option<usize> {
    let d = dim as i64;
    let s = o as i64 - before;
    if (0..d).contains(&s) {
        return Some(s as usize);
    }
    Some(match mode {
        PadMode::Edge => s.clamp(0, d - 1) as usize,
        PadMode::Wrap => s.rem_euclid(d) as usize,
        PadMode::Reflect if d == 1 => 0,
        PadMode::Reflect => {
            let p = 2 * (d - 1);
            let m = s.rem_euclid(p);
            (if m >= d { p - m } else { m }) as usize
        }
        PadMode::Constant => return None,
    })
}

/// Pad-2 (pads/value attributes), Pad-11/13/18/19/21 (inputs pads, constant_value, axes;
/// modes constant/reflect/edge/wrap; negative pads crop).
fn pad(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    let s = data.shape().to_vec();
    let r = s.len();
    let p = PadAttrs::decode(ctx, x)?;
    let (mode, begin, end) = (p.mode, &p.begin, &p.end);
    let mut idx: Vec<Vec<Option<usize>>> = Vec::with_capacity(r);
    for k in 0..r {
        let out_dim = s[k] as i64 + begin[k] + end[k];
        if out_dim < 0 {
            return Err(ctx.fail(format!("`pads` crop axis {k} of size {} below zero", s[k])));
        }
        if s[k] == 0 && out_dim > 0 && mode != PadMode::Constant {
            return Err(ctx.fail(format!(
                "attribute `mode` {} cannot pad the empty axis {k}",
                mode.name()
            )));
        }
        idx.push(
            (0..out_dim as usize)
                .map(|o| pad_source(o, begin[k], s[k], mode))
                .collect(),
        );
    }
    let cv = p.value_input;
    let out = by_dtype!(data.data.dtype(), T => {
        let value: T = match cv {
            Some(c) => match T::pick(&c.data).and_then(|a| a.iter().next().copied()) {
                Some(v) => v,
                None => return Err(ctx.fail(format!("input `constant_value` is {}, data is {}", c.dtype, data.dtype))),
            },
            None => T::from_f64(p.value),
        };
        let src = arr::<T>(&data.data);
        let out = if mode == PadMode::Constant || src.is_empty() {
            constant_pad(src, &idx, value)
        } else {
            // Every output element has a source: no element is `value`.
            let sources: Vec<Option<Vec<usize>>> = idx.iter().map(|v| Some(v.iter().flatten().copied().collect())).collect();
            take_axes(src, &sources)
        };
        T::wrap(out)
    });
    Ok(Lowered::one(same(data, out), How::Spec))
}

/// A constant pad: `value` everywhere, then the source's elements copied
/// into the block where output index `o` reads source index `idx[k][o]`
/// on every axis `k` ([`pad_source`]: in constant mode the sources of one
/// axis are one run of consecutive indices, `None` around it).
fn constant_pad<T: Clone>(src: &ArrayD<T>, idx: &[Vec<Option<usize>>], value: T) -> ArrayD<T> {
    let shape: Vec<usize> = idx.iter().map(Vec::len).collect();
    let mut out = ArrayD::from_elem(IxDyn(&shape), value);
    let mut to = Vec::with_capacity(idx.len());
    let mut from = Vec::with_capacity(idx.len());
    for ix in idx {
        let Some(first) = ix.iter().position(Option::is_some) else {
            return out;
        };
        let n = ix[first..].iter().take_while(|s| s.is_some()).count();
        let start = ix[first].expect("a source");
        debug_assert!(ix[first..first + n]
            .iter()
            .enumerate()
            .all(|(i, s)| *s == Some(start + i)));
        to.push(ndarray::SliceInfoElem::from(first..first + n));
        from.push(ndarray::SliceInfoElem::from(start..start + n));
    }
    out.slice_mut(to.as_slice())
        .assign(&src.slice(from.as_slice()));
    out
}

/// Dropout-7/10 (ratio attribute), 12/13/22 (ratio, training_mode inputs):
/// inference is the identity; the optional mask is all true (ones of T before opset 10,
/// as onnx.reference; ONNX Runtime's Dropout-7..9 kernel writes zeros there instead).
fn dropout(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let data = ctx.input(x, 0)?;
    if ctx.opset >= 12 {
        let training = match x.get(2).copied().flatten() {
            None => false,
            Some(t) => t.data.to_f64_vec().first().is_some_and(|&v| v != 0.0),
        };
        let ratio = match x.get(1).copied().flatten() {
            None => 0.5,
            Some(t) => *t
                .data
                .to_f64_vec()
                .first()
                .ok_or_else(|| ctx.fail("input `ratio` is empty"))?,
        };
        if training && ratio > 0.0 {
            return Err(ctx.unsupported("training_mode", "random mask"));
        }
    }
    let mut outs = vec![Some(data.clone())];
    if ctx.wants_output(1) {
        let shape = IxDyn(data.shape());
        let mask = if ctx.opset < 10 {
            let t = by_dtype!(data.data.dtype(), T => T::wrap(ArrayD::from_elem(shape, T::from_f64(1.0))));
            same(data, t)
        } else {
            RefTensor::exact(Tensor::Bool(ArrayD::from_elem(shape, true)))
        };
        outs.push(Some(mask));
    }
    Ok(Lowered {
        outputs: outs,
        how: How::Spec,
    })
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, i, test_node};
    use super::*;
    use crate::backend::interp::OpError;

    fn run(
        op: &str,
        opset: u32,
        attrs: Vec<(&str, Attr)>,
        ins: &[Option<&RefTensor>],
        n_out: usize,
    ) -> Vec<RefTensor> {
        let node = test_node(op, ins.len(), n_out, attrs);
        run_op(&node, opset, ins)
            .unwrap()
            .into_iter()
            .map(|o| o.unwrap())
            .collect()
    }
    fn vals(t: &RefTensor) -> Vec<f64> {
        t.data.to_f64_vec()
    }

    #[test]
    fn slice_negative_steps_and_clamping() {
        let x = f(&[2, 5], &[0., 1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        // axis 1, start -1 (=4), end far negative (clamped to -1), step -2 -> 4, 2, 0
        let (s, e, a, st) = (
            i(&[1], &[-1]),
            i(&[1], &[i64::MIN]),
            i(&[1], &[1]),
            i(&[1], &[-2]),
        );
        let y = &run(
            "Slice",
            13,
            vec![],
            &[Some(&x), Some(&s), Some(&e), Some(&a), Some(&st)],
            1,
        )[0];
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(vals(y), vec![4., 2., 0., 9., 7., 5.]);
        // opset 1: attributes, end past the dim clamps
        let y = &run(
            "Slice",
            9,
            vec![
                ("starts", Attr::Ints(vec![1, 3])),
                ("ends", Attr::Ints(vec![1000, 1000])),
            ],
            &[Some(&x)],
            1,
        )[0];
        assert_eq!(y.shape(), &[1, 2]);
        assert_eq!(vals(y), vec![8., 9.]);
    }

    #[test]
    fn split_uneven_and_by_input() {
        let x = f(&[7], &[1., 2., 3., 4., 5., 6., 7.]);
        let ys = run(
            "Split",
            18,
            vec![("num_outputs", Attr::Int(3))],
            &[Some(&x)],
            3,
        );
        assert_eq!(
            ys.iter().map(vals).collect::<Vec<_>>(),
            vec![vec![1., 2., 3.], vec![4., 5., 6.], vec![7.]]
        );
        let sp = i(&[2], &[2, 5]);
        let ys = run("Split", 13, vec![], &[Some(&x), Some(&sp)], 2);
        assert_eq!(vals(&ys[1]), vec![3., 4., 5., 6., 7.]);
        let ys = run(
            "Split",
            11,
            vec![("split", Attr::Ints(vec![6, 1]))],
            &[Some(&x)],
            2,
        );
        assert_eq!(vals(&ys[1]), vec![7.]);
        // opset 13 without split: 7 does not divide in 2
        let node = test_node("Split", 1, 2, vec![]);
        assert!(matches!(
            run_op(&node, 13, &[Some(&x)]),
            Err(OpError::Failed(_))
        ));
    }

    #[test]
    fn pad_modes() {
        let x = f(&[1, 3], &[1., 2., 3.]);
        let pads = i(&[4], &[0, 2, 0, 2]);
        let p = |mode: &str| {
            vals(
                &run(
                    "Pad",
                    19,
                    vec![("mode", Attr::String(mode.into()))],
                    &[Some(&x), Some(&pads)],
                    1,
                )[0],
            )
        };
        assert_eq!(p("reflect"), vec![3., 2., 1., 2., 3., 2., 1.]);
        assert_eq!(p("edge"), vec![1., 1., 1., 2., 3., 3., 3.]);
        assert_eq!(p("wrap"), vec![2., 3., 1., 2., 3., 1., 2.]);
        assert_eq!(p("constant"), vec![0., 0., 1., 2., 3., 0., 0.]);
        // constant value input, negative pad crops, axes input
        let cv = f(&[], &[9.]);
        let pads = i(&[2], &[-1, 1]);
        let axes = i(&[1], &[-1]);
        let y = &run(
            "Pad",
            18,
            vec![],
            &[Some(&x), Some(&pads), Some(&cv), Some(&axes)],
            1,
        )[0];
        assert_eq!(vals(y), vec![2., 3., 9.]);
        // opset 2 attributes
        let y = &run(
            "Pad",
            2,
            vec![
                ("pads", Attr::Ints(vec![1, 0, 0, 0])),
                ("value", Attr::Float(1.5)),
            ],
            &[Some(&x)],
            1,
        )[0];
        assert_eq!(y.shape(), &[2, 3]);
        assert_eq!(vals(y), vec![1.5, 1.5, 1.5, 1., 2., 3.]);
    }

    #[test]
    fn a_constant_pad_that_crops_and_pads_at_once_is_the_spec_walk() {
        let data: Vec<f64> = (0..24).map(f64::from).collect();
        let x = f(&[2, 3, 4], &data);
        let (begin, end) = ([0i64, -1, 2], [1i64, 0, -3]);
        let pads = i(&[6], &[0, -1, 2, 1, 0, -3]);
        let cv = f(&[], &[7.]);
        let y = &run("Pad", 19, vec![], &[Some(&x), Some(&pads), Some(&cv)], 1)[0];
        // Output index o reads source o - begin on every axis, else 7.
        let dims = [2usize, 3, 4];
        let out: Vec<usize> = (0..3)
            .map(|k| (dims[k] as i64 + begin[k] + end[k]) as usize)
            .collect();
        assert_eq!(y.shape(), &out[..]);
        let mut want = Vec::new();
        for a in 0..out[0] {
            for b in 0..out[1] {
                for c in 0..out[2] {
                    let src: Vec<i64> = [a, b, c]
                        .iter()
                        .enumerate()
                        .map(|(k, &o)| o as i64 - begin[k])
                        .collect();
                    let inside = src
                        .iter()
                        .zip(dims)
                        .all(|(&s, d)| (0..d as i64).contains(&s));
                    want.push(match inside {
                        true => data[(src[0] * 12 + src[1] * 4 + src[2]) as usize],
                        false => 7.0,
                    });
                }
            }
        }
        assert_eq!(vals(y), want);
    }

    #[test]
    fn reshape_zero_and_allowzero() {
        let x = f(&[2, 3, 4], &[0.; 24]);
        let sh = i(&[3], &[0, -1, 2]);
        assert_eq!(
            run("Reshape", 14, vec![], &[Some(&x), Some(&sh)], 1)[0].shape(),
            &[2, 6, 2]
        );
        let e = f(&[0, 3], &[]);
        let sh = i(&[2], &[3, 0]);
        let y = &run(
            "Reshape",
            14,
            vec![("allowzero", Attr::Int(1))],
            &[Some(&e), Some(&sh)],
            1,
        )[0];
        assert_eq!(y.shape(), &[3, 0]);
        // without allowzero the 0 copies dim 1 (3): 3*3 != 0 elements -> error
        let node = test_node("Reshape", 2, 1, vec![]);
        assert!(matches!(
            run_op(&node, 14, &[Some(&e), Some(&sh)]),
            Err(OpError::Failed(_))
        ));
    }

    #[test]
    fn gather_negative_index_axis1() {
        let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let idx = RefTensor::exact(Tensor::I32(
            ArrayD::from_shape_vec(IxDyn(&[2]), vec![-1, 0]).unwrap(),
        ));
        let y = &run(
            "Gather",
            13,
            vec![("axis", Attr::Int(1))],
            &[Some(&x), Some(&idx)],
            1,
        )[0];
        assert_eq!(y.shape(), &[2, 2]);
        assert_eq!(vals(y), vec![3., 1., 6., 4.]);
        let bad = i(&[1], &[3]);
        let node = test_node("Gather", 2, 1, vec![("axis", Attr::Int(1))]);
        assert!(matches!(
            run_op(&node, 13, &[Some(&x), Some(&bad)]),
            Err(OpError::Failed(_))
        ));
    }

    #[test]
    fn cast_rounds_and_truncates() {
        let x = RefTensor::float(
            ArrayD::from_shape_vec(IxDyn(&[4]), vec![0.1, -2.7, 2.7, 300.0]).unwrap(),
            DType::F64,
        );
        let y = &run("Cast", 13, vec![("to", Attr::Int(1))], &[Some(&x)], 1)[0];
        assert_eq!(y.dtype, DType::F32);
        assert_eq!(vals(y)[0], 0.10000000149011612); // f32 nearest to 0.1
        let y = &run("Cast", 13, vec![("to", Attr::Int(10))], &[Some(&x)], 1)[0];
        assert_eq!(vals(y)[0], 0.0999755859375); // f16 nearest to 0.1
        let y = &run("Cast", 13, vec![("to", Attr::Int(7))], &[Some(&x)], 1)[0];
        assert_eq!(
            y.data,
            Tensor::I64(ArrayD::from_shape_vec(IxDyn(&[4]), vec![0, -2, 2, 300]).unwrap())
        );
        let y = &run("Cast", 13, vec![("to", Attr::Int(3))], &[Some(&x)], 1)[0];
        assert_eq!(vals(y), vec![0., -2., 2., 44.]); // int8: 300 wraps like numpy
        let y = &run("Cast", 13, vec![("to", Attr::Int(9))], &[Some(&x)], 1)[0];
        assert_eq!(
            y.data,
            Tensor::Bool(ArrayD::from_shape_vec(IxDyn(&[4]), vec![true; 4]).unwrap())
        );
        let b = RefTensor::exact(Tensor::Bool(
            ArrayD::from_shape_vec(IxDyn(&[2]), vec![true, false]).unwrap(),
        ));
        let y = &run("Cast", 13, vec![("to", Attr::Int(1))], &[Some(&b)], 1)[0];
        assert_eq!((y.dtype, vals(y)), (DType::F32, vec![1., 0.]));
    }

    #[test]
    fn squeeze_unsqueeze_negative_axes() {
        let x = f(&[1, 3, 1], &[1., 2., 3.]);
        let a = i(&[1], &[-1]);
        assert_eq!(
            run("Squeeze", 13, vec![], &[Some(&x), Some(&a)], 1)[0].shape(),
            &[1, 3]
        );
        assert_eq!(run("Squeeze", 11, vec![], &[Some(&x)], 1)[0].shape(), &[3]);
        let a = i(&[2], &[0, -1]);
        assert_eq!(
            run("Unsqueeze", 13, vec![], &[Some(&x), Some(&a)], 1)[0].shape(),
            &[1, 1, 3, 1, 1]
        );
        let y = &run(
            "Unsqueeze",
            11,
            vec![("axes", Attr::Ints(vec![1]))],
            &[Some(&x)],
            1,
        )[0];
        assert_eq!(y.shape(), &[1, 1, 3, 1]);
        let node = test_node("Squeeze", 1, 1, vec![("axes", Attr::Ints(vec![1]))]);
        assert!(matches!(
            run_op(&node, 11, &[Some(&x)]),
            Err(OpError::Failed(_))
        ));
    }

    #[test]
    fn shape_start_end_and_transpose() {
        let x = f(&[2, 3, 4], &[0.; 24]);
        let y = &run(
            "Shape",
            15,
            vec![("start", Attr::Int(-2)), ("end", Attr::Int(10))],
            &[Some(&x)],
            1,
        )[0];
        assert_eq!(vals(y), vec![3., 4.]);
        let x = f(&[2, 3], &[1., 2., 3., 4., 5., 6.]);
        let y = &run("Transpose", 13, vec![], &[Some(&x)], 1)[0];
        assert_eq!(vals(y), vec![1., 4., 2., 5., 3., 6.]);
    }

    #[test]
    fn dropout_inference_and_training() {
        let x = f(&[2], &[1., 2.]);
        let ys = run("Dropout", 13, vec![], &[Some(&x)], 2);
        assert_eq!(
            ys[1].data,
            Tensor::Bool(ArrayD::from_elem(IxDyn(&[2]), true))
        );
        let t = RefTensor::exact(Tensor::Bool(ArrayD::from_elem(IxDyn(&[]), true)));
        let zero = f(&[], &[0.]);
        let ys = run("Dropout", 13, vec![], &[Some(&x), Some(&zero), Some(&t)], 1);
        assert_eq!(vals(&ys[0]), vec![1., 2.]);
        let node = test_node("Dropout", 3, 1, vec![]);
        assert!(matches!(
            run_op(&node, 13, &[Some(&x), None, Some(&t)]),
            Err(OpError::Unsupported(_))
        ));
    }
}
