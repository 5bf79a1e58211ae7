//! candle lowerings: layout and indexing ops (Concat, Reshape, Flatten,
//! Transpose, Slice, Split, Squeeze, Unsqueeze, Gather, Pad) and the
//! host-level Constant and Shape.
//!
//! Shapes, axes, starts/ends and pads are read on the host (small tensors);
//! where ONNX semantics need an index table (strided slices, reflect/wrap
//! pads) it is computed on the host and applied with candle's `index_select`.

use candle_core::{DType as CDType, Tensor};

use super::{host_ints, index_tensor, keep_bool, pad_const, Ce};
use crate::backend::interp::{How, Label::*, Lowered, OpCtx, OpRegistry, OpResult};
use crate::graph::Attr;
use crate::op::pad::{PadAttrs, PadMode};
use crate::op::reshape::ReshapeAttrs;
use crate::op::slice::SliceAttrs;

type In<'a> = [Option<&'a Tensor>];
type Out = OpResult<Lowered<Tensor>>;

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "Concat",
        concat,
        "https://onnx.ai/onnx/operators/onnx__Concat.html",
        cov!["all" => Native("cat")],
    );
    r.op(
        "Reshape",
        reshape,
        "https://onnx.ai/onnx/operators/onnx__Reshape.html",
        cov!["all (0 copies, -1 infers; allowzero honoured)" => Native("reshape")],
    );
    r.op(
        "Flatten",
        flatten,
        "https://onnx.ai/onnx/operators/onnx__Flatten.html",
        cov!["all" => Native("reshape")],
    );
    r.op(
        "Transpose",
        transpose,
        "https://onnx.ai/onnx/operators/onnx__Transpose.html",
        cov!["all" => Native("permute")],
    );
    let slice_cov = cov![
        "steps all 1" => Native("narrow"),
        "other steps (incl. negative)" => Composed("narrow, index_select"),
    ];
    let slice_spec = "https://onnx.ai/onnx/operators/onnx__Slice.html";
    r.range("Slice", 1, 9, slice, slice_spec, slice_cov);
    r.range("Slice", 10, u32::MAX, slice, slice_spec, slice_cov);
    let split_cov = cov!["all (uneven num_outputs split: last chunk smaller)" => Native("narrow")];
    let split_spec = "https://onnx.ai/onnx/operators/onnx__Split.html";
    r.range("Split", 1, 12, split, split_spec, split_cov);
    r.range("Split", 13, 17, split, split_spec, split_cov);
    r.range("Split", 18, u32::MAX, split, split_spec, split_cov);
    let sq_spec = "https://onnx.ai/onnx/operators/onnx__Squeeze.html";
    r.range(
        "Squeeze",
        1,
        12,
        squeeze,
        sq_spec,
        cov!["axes attribute" => Native("squeeze")],
    );
    r.range(
        "Squeeze",
        13,
        u32::MAX,
        squeeze,
        sq_spec,
        cov!["axes input" => Native("squeeze")],
    );
    let usq_spec = "https://onnx.ai/onnx/operators/onnx__Unsqueeze.html";
    r.range(
        "Unsqueeze",
        1,
        12,
        unsqueeze,
        usq_spec,
        cov!["axes attribute" => Native("unsqueeze")],
    );
    r.range(
        "Unsqueeze",
        13,
        u32::MAX,
        unsqueeze,
        usq_spec,
        cov!["axes input" => Native("unsqueeze")],
    );
    r.op(
        "Gather",
        gather,
        "https://onnx.ai/onnx/operators/onnx__Gather.html",
        cov![
            "1-D int64 indices, none negative" => Native("index_select"),
            "negative, int32, scalar or N-D indices" => Composed("where_cond, to_dtype, index_select, reshape"),
        ],
    );
    let pad_spec = "https://onnx.ai/onnx/operators/onnx__Pad.html";
    let pad_cov = cov![
        "mode=constant, value 0, pads >= 0" => Native("pad_with_zeros"),
        "mode=edge, pads >= 0" => Native("pad_with_same"),
        "mode=constant with a non-zero value" => Composed("full, cat"),
        "mode=reflect or wrap; edge with negative pads (pad, then crop, as the reference)" => Composed("index_select"),
        "mode=constant with negative pads" => Composed("narrow, ..."),
    ];
    r.range("Pad", 1, 10, pad, pad_spec, pad_cov);
    r.range("Pad", 11, u32::MAX, pad, pad_spec, pad_cov);
    r.op(
        "Constant",
        constant,
        "https://onnx.ai/onnx/operators/onnx__Constant.html",
        cov![
            "value, value_float(s), value_int(s)" => Native("Tensor::from_vec"),
            "sparse_value, value_string(s)" => Unsupported("no sparse or string tensors"),
        ],
    );
    r.op(
        "Shape",
        shape,
        "https://onnx.ai/onnx/operators/onnx__Shape.html",
        cov!["all (start/end honoured)" => Composed("dims, Tensor::from_vec")],
    );
}

/// `ints` from attribute `attr` before `since`, else from input `i`.
fn ints_attr_or_input(
    ctx: &OpCtx,
    x: &In,
    attr: &str,
    i: usize,
    since: u32,
) -> OpResult<Option<Vec<i64>>> {
    if ctx.opset < since {
        ctx.ints(attr)
    } else {
        match x.get(i).copied().flatten() {
            None => Ok(None),
            Some(t) => host_ints(t).map(Some),
        }
    }
}

/// Concat-4/11/13.
fn concat(ctx: &OpCtx, x: &In) -> Out {
    let parts: Vec<&Tensor> = x.iter().flatten().copied().collect();
    let first = *parts
        .first()
        .ok_or_else(|| ctx.fail("Concat needs at least one input"))?;
    let ax = ctx.axis(ctx.int("axis", 0)?, first.rank())?;
    let y = Tensor::cat(&parts, ax).ce()?;
    Ok(Lowered::one(keep_bool(ctx, first, y), How::native("cat")))
}

/// Reshape-5/13/14/19/21: 0 copies the input dim (unless allowzero), -1 infers.
fn reshape(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let dims = ReshapeAttrs::decode(ctx, x)?.target;
    let y = a.reshape(dims).ce()?;
    Ok(Lowered::one(keep_bool(ctx, a, y), How::native("reshape")))
}

/// Flatten-1/9/11/13/21: 2-D (prod(dims[..axis]), prod(dims[axis..])).
fn flatten(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let r = a.rank() as i64;
    let ax = ctx.int("axis", 1)?;
    if ax < -r || ax > r {
        return Err(ctx.fail(format!("axis {ax} out of range for rank {r}")));
    }
    let ax = if ax < 0 { ax + r } else { ax } as usize;
    let outer: usize = a.dims()[..ax].iter().product();
    let y = a.reshape((outer, a.elem_count() / outer.max(1))).ce()?;
    Ok(Lowered::one(keep_bool(ctx, a, y), How::native("reshape")))
}

/// Transpose-1/13/21: perm defaults to reversing the axes.
fn transpose(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let perm: Vec<usize> = match ctx.ints("perm")? {
        Some(p) => p
            .iter()
            .map(|&v| ctx.axis(v, a.rank()))
            .collect::<OpResult<_>>()?,
        None => (0..a.rank()).rev().collect(),
    };
    let y = a.permute(perm).ce()?;
    Ok(Lowered::one(keep_bool(ctx, a, y), How::native("permute")))
}

/// Slice-1 (attributes) / Slice-10/11/13 (inputs starts, ends, axes, steps).
fn slice(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let spec = SliceAttrs::decode(ctx, x)?;
    let mut y = a.clone();
    let mut composed = false;
    for s in spec.axes {
        if s.step == 1 {
            let start = if s.is_empty() { 0 } else { s.start as usize };
            y = y.narrow(s.axis, start, s.len()).ce()?;
        } else {
            composed = true;
            let idx = index_tensor(s.indices(), a.device())?;
            y = y.contiguous().ce()?.index_select(&idx, s.axis).ce()?;
        }
    }
    let how = if composed {
        How::composed("narrow, index_select")
    } else {
        How::native("narrow")
    };
    Ok(Lowered::one(keep_bool(ctx, a, y), how))
}

/// Split-2/11 (split attribute), Split-13 (split input), Split-18 (num_outputs).
fn split(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let ax = ctx.axis(ctx.int("axis", 0)?, a.rank())?;
    let dim = a.dims()[ax];
    let n = ctx.node.outputs.len();
    let sizes: Vec<usize> = match ints_attr_or_input(ctx, x, "split", 1, 13)? {
        Some(s) => s.iter().map(|&v| v.max(0) as usize).collect(),
        None if ctx.opset >= 18 && ctx.has("num_outputs") => {
            let k = ctx.int("num_outputs", 0)?.max(1) as usize;
            let chunk = dim.div_ceil(k);
            (0..k)
                .map(|i| chunk.min(dim.saturating_sub(i * chunk)))
                .collect()
        }
        None => {
            if n == 0 || dim % n != 0 {
                return Err(ctx.fail(format!("cannot split {dim} evenly into {n} outputs")));
            }
            vec![dim / n; n]
        }
    };
    if sizes.iter().sum::<usize>() != dim {
        return Err(ctx.fail(format!("split sizes {sizes:?} do not sum to {dim}")));
    }
    let mut outs = Vec::with_capacity(sizes.len());
    let mut start = 0;
    for s in sizes {
        outs.push(keep_bool(ctx, a, a.narrow(ax, start, s).ce()?));
        start += s;
    }
    Ok(Lowered::many(outs, How::native("narrow")))
}

/// Squeeze-1/11 (axes attribute) / Squeeze-13/21 (axes input); no axes = all 1-dims.
fn squeeze(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let axes: Vec<usize> = match ints_attr_or_input(ctx, x, "axes", 1, 13)? {
        Some(v) => v
            .iter()
            .map(|&v| ctx.axis(v, a.rank()))
            .collect::<OpResult<_>>()?,
        None => (0..a.rank()).filter(|&i| a.dims()[i] == 1).collect(),
    };
    let mut axes = axes;
    axes.sort_unstable();
    axes.dedup();
    let mut y = a.clone();
    for &ax in axes.iter().rev() {
        // candle's squeeze silently keeps a dim that is not 1; ONNX rejects it.
        if a.dims()[ax] != 1 {
            return Err(ctx.fail(format!("cannot squeeze axis {ax} of size {}", a.dims()[ax])));
        }
        y = y.squeeze(ax).ce()?;
    }
    Ok(Lowered::one(keep_bool(ctx, a, y), How::native("squeeze")))
}

/// Unsqueeze-1/11 (axes attribute) / Unsqueeze-13/21 (axes input); axes index the output.
fn unsqueeze(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let raw =
        ints_attr_or_input(ctx, x, "axes", 1, 13)?.ok_or_else(|| ctx.fail("`axes` is required"))?;
    let out_rank = a.rank() + raw.len();
    let mut axes: Vec<usize> = raw
        .iter()
        .map(|&v| ctx.axis(v, out_rank))
        .collect::<OpResult<_>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err(ctx.fail(format!("repeated axes {raw:?}")));
    }
    let mut y = a.clone();
    for ax in axes {
        y = y.unsqueeze(ax).ce()?;
    }
    Ok(Lowered::one(keep_bool(ctx, a, y), How::native("unsqueeze")))
}

/// Gather-1/11/13: out = data.shape[..axis] + indices.shape + data.shape[axis+1..];
/// negative indices count from the end.
fn gather(ctx: &OpCtx, x: &In) -> Out {
    let (data, ind) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let ax = ctx.axis(ctx.int("axis", 0)?, data.rank())?;
    let mut ops = Vec::new();
    let mut idx = match ind.dtype() {
        CDType::I64 => ind.clone(),
        CDType::I32 | CDType::I16 | CDType::U32 | CDType::U8 => {
            ops.push("to_dtype");
            ind.to_dtype(CDType::I64).ce()?
        }
        d => return Err(ctx.fail(format!("Gather indices must be integers, got {d:?}"))),
    };
    let negative = idx
        .lt(0i64)
        .and_then(|m| m.to_dtype(CDType::U32))
        .and_then(|m| m.sum_all())
        .ce()?;
    if negative.to_scalar::<u32>().ce()? > 0 {
        ops.push("where_cond");
        let shifted = (&idx + data.dims()[ax] as f64).ce()?;
        idx = idx
            .lt(0i64)
            .and_then(|m| m.where_cond(&shifted, &idx))
            .ce()?;
    }
    let flat = idx.flatten_all().ce()?;
    let mut y = data.contiguous().ce()?.index_select(&flat, ax).ce()?;
    ops.push("index_select");
    if ind.rank() != 1 {
        let mut dims = data.dims()[..ax].to_vec();
        dims.extend_from_slice(ind.dims());
        dims.extend_from_slice(&data.dims()[ax + 1..]);
        y = y.reshape(dims).ce()?;
        ops.push("reshape");
    }
    let how = if ops.len() == 1 {
        How::native("index_select")
    } else {
        How::composed(ops.join(", "))
    };
    Ok(Lowered::one(keep_bool(ctx, data, y), how))
}

/// Pad-2 (attributes) / Pad-11/13/18/19/21 (inputs pads, constant_value, axes).
/// Per axis: constant mode crops (`narrow`) then pads, which is the same
/// either way round; edge pads natively, and reflect, wrap and any crop in
/// a non-constant mode gather the op layer's pad-then-crop index table
/// ([`PadMode::source_indices`]), the reference's order.
fn pad(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let p = PadAttrs::decode(ctx, x)?;
    let mut ops: Vec<&str> = Vec::new();
    let mut y = a.clone();
    for ax in 0..a.rank() {
        let (b, e) = (p.begin[ax], p.end[ax]);
        if b == 0 && e == 0 {
            continue;
        }
        let gather = matches!(p.mode, PadMode::Reflect | PadMode::Wrap)
            || (p.mode == PadMode::Edge && (b < 0 || e < 0));
        if gather {
            let idx = p.mode.source_indices(ctx, b, e, y.dims()[ax])?;
            let idx = index_tensor(idx, y.device())?;
            y = y.contiguous().ce()?.index_select(&idx, ax).ce()?;
            ops.push("index_select");
            continue;
        }
        y = crop_negative(ctx, &y, ax, b, e, &mut ops)?;
        let (l, h) = (b.max(0) as usize, e.max(0) as usize);
        if l == 0 && h == 0 {
            continue;
        }
        let (next, op) = match p.mode {
            PadMode::Constant if p.value == 0.0 => {
                (y.pad_with_zeros(ax, l, h).ce()?, "pad_with_zeros")
            }
            PadMode::Constant => (pad_const(&y, ax, l, h, p.value)?, "full, cat"),
            _ => (y.pad_with_same(ax, l, h).ce()?, "pad_with_same"),
        };
        y = next;
        ops.push(op);
    }
    ops.dedup();
    let how = match ops.as_slice() {
        [] => How::native("clone"),
        [one] if *one == "pad_with_zeros" || *one == "pad_with_same" => How::native(*one),
        many => How::composed(many.join(", ")),
    };
    Ok(Lowered::one(keep_bool(ctx, a, y), how))
}

/// Constant mode's negative pads on axis `ax`: `narrow` (a constant pad on
/// the other side gives the same values before or after the crop).
fn crop_negative(
    ctx: &OpCtx,
    y: &Tensor,
    ax: usize,
    begin: i64,
    end: i64,
    ops: &mut Vec<&str>,
) -> OpResult<Tensor> {
    let (cut_l, cut_h) = ((-begin).max(0) as usize, (-end).max(0) as usize);
    if cut_l + cut_h == 0 {
        return Ok(y.clone());
    }
    let len = y.dims()[ax]
        .checked_sub(cut_l + cut_h)
        .ok_or_else(|| ctx.fail(format!("negative pads remove more than axis {ax}")))?;
    ops.push("narrow");
    y.narrow(ax, cut_l, len).ce()
}

/// Constant-9/11/12/13/19/21.
fn constant(ctx: &OpCtx, _x: &In) -> Out {
    use crate::tensor::{DType, Tensor as Host};
    let host = match ctx.node.attrs.iter().next() {
        Some((name, Attr::Tensor(t))) if name == "value" => t.clone(),
        Some((name, Attr::Float(v))) if name == "value_float" => {
            Host::from_f64(DType::F32, &[], &[*v as f64])
        }
        Some((name, Attr::Floats(v))) if name == "value_floats" => Host::from_f64(
            DType::F32,
            &[v.len()],
            &v.iter().map(|&f| f as f64).collect::<Vec<_>>(),
        ),
        Some((name, Attr::Int(v))) if name == "value_int" => {
            Host::I64(ndarray::arr0(*v).into_dyn())
        }
        Some((name, Attr::Ints(v))) if name == "value_ints" => {
            Host::I64(ndarray::Array1::from(v.clone()).into_dyn())
        }
        Some((name, a)) => {
            return Err(ctx.unsupported(
                name,
                format!("{} constants have no candle tensor", a.kind()),
            ))
        }
        None => return Err(ctx.fail("Constant without a value attribute")),
    };
    let t = super::upload(&host, super::Scope::of(ctx)).map_err(|e| ctx.unsupported("value", e))?;
    Ok(Lowered::one(t, How::native("Tensor::from_vec")))
}

/// Shape-1/13/15/19/21: the dims as int64, optionally sliced by start/end.
fn shape(ctx: &OpCtx, x: &In) -> Out {
    let a = ctx.input(x, 0)?;
    let r = a.rank() as i64;
    let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
    let s = clampi(ctx.int("start", 0)?);
    let e = clampi(ctx.int("end", r)?);
    let dims: Vec<i64> = a.dims()[s..e.max(s)].iter().map(|&d| d as i64).collect();
    let t = index_tensor(dims, a.device())?;
    Ok(Lowered::one(t, How::composed("dims, Tensor::from_vec")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn strided_slice_is_composed() {
        let x = f32t(&[5], &[0.0, 1.0, 2.0, 3.0, 4.0]);
        let (s, e, ax, st) = (i64t(&[-1]), i64t(&[i64::MIN]), i64t(&[0]), i64t(&[-2]));
        let (v, _, how) = run1(
            &node("Slice", 5, 1, vec![]),
            13,
            &[Some(&x), Some(&s), Some(&e), Some(&ax), Some(&st)],
        );
        assert_eq!(v, vec![4.0, 2.0, 0.0]);
        assert_eq!(how, "composed: narrow, index_select");
    }

    #[test]
    fn gather_negative_and_matrix_indices() {
        let x = f32t(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let idx =
            Tensor::from_vec(vec![-1i64, 0, 1, -3], (2, 2), &candle_core::Device::Cpu).unwrap();
        let (v, dims, how) = run1(&node("Gather", 2, 1, vec![]), 13, &[Some(&x), Some(&idx)]);
        assert_eq!(dims, vec![2, 2, 2]);
        assert_eq!(v, vec![5.0, 6.0, 1.0, 2.0, 3.0, 4.0, 1.0, 2.0]);
        assert_eq!(how, "composed: where_cond, index_select, reshape");
    }

    /// Negative pads in every mode agree with the reference, which pads the
    /// axis first and crops after: wrap [0,1,2,3] with pads (−1, +2) is
    /// [1,2,3,0,1] (candle used to crop first and wrap [1,2,3,1,2]).
    #[test]
    fn pad_negative_agrees_with_the_reference() {
        use crate::backend::reference::{run_op as reference, util};
        let v: Vec<f64> = (0..20).map(f64::from).collect();
        let x = f32t(&[4, 5], &v.iter().map(|&v| v as f32).collect::<Vec<_>>());
        let cases: [[i64; 4]; 4] = [[-1, 2, 2, 1], [0, -1, 0, 2], [2, 0, -4, 0], [-1, -1, 3, 0]];
        for mode in ["constant", "reflect", "edge", "wrap"] {
            for pads in cases {
                let n = node("Pad", 2, 1, vec![("mode", Attr::String(mode.into()))]);
                let (got, dims, _) = run1(&n, 19, &[Some(&x), Some(&i64t(&pads))]);
                let want = reference(
                    &n,
                    19,
                    &[Some(&util::f(&[4, 5], &v)), Some(&util::i(&[4], &pads))],
                )
                .unwrap()[0]
                    .clone()
                    .unwrap();
                assert_eq!(dims, want.shape(), "{mode} {pads:?}");
                let want: Vec<f32> = want.floats().unwrap().iter().map(|&w| w as f32).collect();
                assert_eq!(got, want, "{mode} {pads:?}");
            }
        }
        let n = node("Pad", 2, 1, vec![("mode", Attr::String("wrap".into()))]);
        let row = f32t(&[4], &[0.0, 1.0, 2.0, 3.0]);
        let (got, _, how) = run1(&n, 19, &[Some(&row), Some(&i64t(&[-1, 2]))]);
        assert_eq!(got, vec![1.0, 2.0, 3.0, 0.0, 1.0]);
        assert_eq!(how, "composed: index_select");
    }

    #[test]
    fn pad_reflect_and_constant() {
        let x = f32t(&[3], &[1.0, 2.0, 3.0]);
        let pads = i64t(&[2, 1]);
        let refl = node("Pad", 2, 1, vec![("mode", Attr::String("reflect".into()))]);
        let (v, _, how) = run1(&refl, 13, &[Some(&x), Some(&pads)]);
        assert_eq!(v, vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0]);
        assert_eq!(how, "composed: index_select");
        let val = f32t(&[], &[-1.5]);
        let (v, _, how) = run1(
            &node("Pad", 3, 1, vec![]),
            13,
            &[Some(&x), Some(&pads), Some(&val)],
        );
        assert_eq!(v, vec![-1.5, -1.5, 1.0, 2.0, 3.0, -1.5]);
        assert_eq!(how, "composed: full, cat");
    }
}
