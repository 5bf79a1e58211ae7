//! libtorch lowerings: shape and indexing ops (Concat, Reshape, Flatten,
//! Transpose, Slice, Split, Squeeze, Unsqueeze, Identity, Constant, Shape,
//! Gather, Pad).

use tch::{Kind, Tensor};

use super::{dims, host_ints, upload};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::pad::{PadAttrs, PadMode};
use crate::op::reshape::ReshapeAttrs;
use crate::op::slice::SliceAttrs;
use crate::tensor::{DType, Tensor as HostTensor};

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "Concat",
        concat,
        spec!("Concat"),
        cov!["all" => Label::Native("cat")],
    );
    r.op(
        "Reshape",
        reshape,
        spec!("Reshape"),
        cov!["0 copies the input dim unless allowzero=1" => Label::Native("reshape")],
    );
    r.op(
        "Flatten",
        flatten,
        spec!("Flatten"),
        cov!["all" => Label::Native("reshape")],
    );
    r.op(
        "Transpose",
        transpose,
        spec!("Transpose"),
        cov!["all" => Label::Native("permute")],
    );
    r.op(
        "Slice",
        slice,
        spec!("Slice"),
        cov!["positive steps, one axis" => Label::Native("slice"),
             "several axes" => Label::Composed("slice per axis"),
             "negative steps" => Label::Composed("flip, slice")],
    );
    r.op(
        "Split",
        split,
        spec!("Split"),
        cov!["all" => Label::Native("split_with_sizes")],
    );
    r.op(
        "Squeeze",
        squeeze,
        spec!("Squeeze"),
        cov!["axes given (checked to be 1)" => Label::Native("squeeze(dims)"), "no axes" => Label::Native("squeeze")],
    );
    r.op(
        "Unsqueeze",
        unsqueeze,
        spec!("Unsqueeze"),
        cov!["all" => Label::Native("reshape")],
    );
    r.op(
        "Identity",
        identity,
        spec!("Identity"),
        cov!["all" => Label::Native("alias")],
    );
    for (since, until) in [(15, 17), (18, u32::MAX)] {
        r.range(
            "OptionalHasElement",
            since,
            until,
            optional_has_element,
            spec!("OptionalHasElement"),
            cov!["tensor or omitted input" => Label::Native("tensor(bool)")],
        );
        r.range(
            "OptionalGetElement",
            since,
            until,
            identity,
            spec!("OptionalGetElement"),
            cov!["tensor input" => Label::Native("alias")],
        );
    }
    r.op(
        "Constant",
        constant,
        spec!("Constant"),
        cov!["value, value_float(s), value_int(s)" => Label::Native("tensor"),
             "sparse_value, value_string(s)" => Label::Unsupported("sparse_value")],
    );
    r.op(
        "Shape",
        shape,
        spec!("Shape"),
        cov!["all (start/end from opset 15)" => Label::Native("sizes")],
    );
    r.op(
        "Gather",
        gather,
        spec!("Gather"),
        cov!["any index shape, negative indices" => Label::Native("index (advanced indexing)")],
    );
    r.op(
        "Pad",
        pad,
        spec!("Pad"),
        cov!["constant" => Label::Native("pad(constant)"),
             "reflect/edge/wrap on the last 1-3 axes, rank = padded + 1|2" => Label::Native("pad(reflect|replicate|circular)"),
             "reflect/edge/wrap with more leading axes" => Label::Composed("reshape, pad, reshape"),
             "reflect/edge/wrap on leading axes, reflect pad >= dim" => Label::Unsupported("pads")],
    );
}

/// Concat-4/11/13.
fn concat(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let ts: Vec<&Tensor> = x.iter().flatten().copied().collect();
    let first = ts
        .first()
        .ok_or_else(|| ctx.fail("Concat needs at least one input"))?;
    let axis = ctx.axis(ctx.int("axis", 0)?, first.dim())? as i64;
    Ok(Lowered::one(Tensor::f_cat(&ts, axis)?, How::native("cat")))
}

/// Reshape-5/13/14/19/21: 0 copies the input dimension (unless allowzero=1), -1 is inferred.
fn reshape(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let target: Vec<i64> = ReshapeAttrs::decode(ctx, x)?
        .target
        .iter()
        .map(|&d| d as i64)
        .collect();
    Ok(Lowered::one(
        input.f_reshape(target.as_slice())?,
        How::native("reshape"),
    ))
}

/// Flatten-1/9/11/13/21: 2-D (prod(d[..axis]), prod(d[axis..])).
fn flatten(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let d = dims(input);
    let mut axis = ctx.int("axis", 1)?;
    if axis < 0 {
        axis += d.len() as i64;
    }
    if axis < 0 || axis > d.len() as i64 {
        return Err(ctx.fail(format!("axis {axis} out of range for rank {}", d.len())));
    }
    let outer: i64 = d[..axis as usize].iter().product();
    let inner: i64 = d[axis as usize..].iter().product();
    Ok(Lowered::one(
        input.f_reshape([outer, inner])?,
        How::native("reshape"),
    ))
}

/// Transpose-1/13/21: perm defaults to reversing the axes.
fn transpose(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let r = input.dim() as i64;
    let perm = ctx.ints("perm")?.unwrap_or_else(|| (0..r).rev().collect());
    Ok(Lowered::one(
        input.f_permute(perm.as_slice())?,
        How::native("permute"),
    ))
}

/// Slice-1 (attributes) and -10/11/13 (inputs starts, ends, axes, steps).
fn slice(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let mut y = input.shallow_clone();
    let mut ops: Vec<&str> = Vec::new();
    for a in SliceAttrs::decode(ctx, x)?.axes {
        let (axis, dim) = (a.axis as i64, dims(input)[a.axis]);
        if a.step > 0 {
            y = y.f_slice(axis, a.start, a.end.max(a.start), a.step)?;
            ops.push("slice");
        } else {
            // Elements s, s+step, ... while > e, with s in [0, dim-1], e in [-1, dim-1];
            // on the flipped axis j = dim-1-i that is a forward slice.
            let (fs, fe) = (dim - 1 - a.start, dim - 1 - a.end);
            y = y.f_flip([axis])?.f_slice(axis, fs, fe.max(fs), -a.step)?;
            ops.push("flip");
            ops.push("slice");
        }
    }
    let how = match ops.as_slice() {
        [] => How::native("alias"),
        [one] => How::native(*one),
        _ if ops.contains(&"flip") => How::composed("flip, slice"),
        _ => How::composed("slice per axis"),
    };
    Ok(Lowered::one(y, how))
}

/// Split-2/11/13/18: sizes from `split` (attribute < 13, input >= 13) or equal
/// parts (ceil-sized, the last smaller, as opset 18's num_outputs).
fn split(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let axis = ctx.axis(ctx.int("axis", 0)?, input.dim())? as i64;
    let dim = dims(input)[axis as usize];
    let given = if ctx.opset >= 13 {
        x.get(1).copied().flatten().map(host_ints).transpose()?
    } else {
        ctx.ints("split")?
    };
    let sizes = match given {
        Some(s) if !s.is_empty() => s,
        _ => {
            let n = if ctx.opset >= 18 && ctx.has("num_outputs") {
                ctx.int("num_outputs", 1)?
            } else {
                ctx.node.outputs.len() as i64
            };
            if n <= 0 {
                return Err(ctx.fail("Split needs at least one output"));
            }
            let chunk = (dim + n - 1) / n;
            (0..n).map(|i| (dim - i * chunk).clamp(0, chunk)).collect()
        }
    };
    let parts = input.f_split_with_sizes(sizes.as_slice(), axis)?;
    Ok(Lowered::many(parts, How::native("split_with_sizes")))
}

fn axes_arg(ctx: &OpCtx, x: &X) -> OpResult<Option<Vec<i64>>> {
    if ctx.opset >= 13 {
        x.get(1).copied().flatten().map(host_ints).transpose()
    } else {
        ctx.ints("axes")
    }
}

/// Squeeze-1/11/13/21: ONNX fails on a listed axis whose size is not 1 (torch would ignore it).
fn squeeze(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let d = dims(input);
    match axes_arg(ctx, x)? {
        Some(axes) if !axes.is_empty() => {
            let axes: Vec<i64> = axes
                .iter()
                .map(|&a| ctx.axis(a, d.len()).map(|v| v as i64))
                .collect::<OpResult<_>>()?;
            if let Some(a) = axes.iter().find(|&&a| d[a as usize] != 1) {
                return Err(ctx.fail(format!(
                    "cannot squeeze axis {a} of size {}",
                    d[*a as usize]
                )));
            }
            Ok(Lowered::one(
                input.f_squeeze_dims(axes.as_slice())?,
                How::native("squeeze(dims)"),
            ))
        }
        _ => Ok(Lowered::one(input.f_squeeze()?, How::native("squeeze"))),
    }
}

/// Unsqueeze-1/11/13/21: axes refer to the output rank.
fn unsqueeze(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let d = dims(input);
    let axes = axes_arg(ctx, x)?.ok_or_else(|| ctx.fail("axes is required"))?;
    let out_rank = d.len() + axes.len();
    let mut axes: Vec<i64> = axes
        .iter()
        .map(|&a| ctx.axis(a, out_rank).map(|v| v as i64))
        .collect::<OpResult<_>>()?;
    axes.sort_unstable();
    if axes.windows(2).any(|w| w[0] == w[1]) {
        return Err(ctx.fail("axes contains duplicates"));
    }
    let mut src = d.iter();
    let shape: Vec<i64> = (0..out_rank as i64)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                *src.next().expect("rank adds up")
            }
        })
        .collect();
    Ok(Lowered::one(
        input.f_reshape(shape.as_slice())?,
        How::native("reshape"),
    ))
}

/// Identity-1/13/14/16/19/21.
fn identity(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    Ok(Lowered::one(
        ctx.input(x, 0)?.f_alias()?,
        How::native("alias"),
    ))
}

/// OptionalHasElement-15/18 on xdiff's values (tensors, never optional):
/// whether the input is given (see the reference's `optional_has_element`).
fn optional_has_element(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let present = x.first().copied().flatten().is_some();
    let host = HostTensor::Bool(ndarray::arr0(present).into_dyn());
    Ok(Lowered::one(
        upload(&host, device_of(ctx)).map_err(|e| ctx.fail(e))?,
        How::native("tensor(bool)"),
    ))
}

/// Constant-1/9/11/12/13/19/21.
fn constant(ctx: &OpCtx, _x: &X) -> OpResult<Lowered<Tensor>> {
    let host = if let Some(t) = ctx.tensor("value")? {
        t.clone()
    } else if ctx.has("value_float") {
        HostTensor::from_f64(DType::F32, &[], &[ctx.float("value_float", 0.0)? as f64])
    } else if let Some(v) = ctx.floats("value_floats")? {
        HostTensor::from_f64(
            DType::F32,
            &[v.len()],
            &v.iter().map(|&f| f as f64).collect::<Vec<_>>(),
        )
    } else if ctx.has("value_int") {
        let v = ctx.int("value_int", 0)?;
        HostTensor::I64(ndarray::arr0(v).into_dyn())
    } else if let Some(v) = ctx.ints("value_ints")? {
        HostTensor::I64(ndarray::Array1::from(v).into_dyn())
    } else {
        let which = ["sparse_value", "value_string", "value_strings"]
            .into_iter()
            .find(|a| ctx.has(a));
        return Err(match which {
            Some(a) => ctx.unsupported(a, "only numeric dense constants are handled"),
            None => ctx.fail("Constant has no value attribute"),
        });
    };
    let device = device_of(ctx);
    Ok(Lowered::one(
        upload(&host, device).map_err(|e| ctx.fail(e))?,
        How::native("tensor"),
    ))
}

fn device_of(ctx: &OpCtx) -> tch::Device {
    match ctx.device {
        crate::options::Device::Cpu => tch::Device::Cpu,
        crate::options::Device::Cuda(n) => tch::Device::Cuda(n),
    }
}

/// Shape-1/13/15/19/21: int64 1-D; start/end (opset 15) clamp like slicing.
fn shape(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let d = dims(input);
    let r = d.len() as i64;
    let adj = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r);
    let (s, e) = if ctx.opset >= 15 {
        (adj(ctx.int("start", 0)?), adj(ctx.int("end", r)?))
    } else {
        (0, r)
    };
    let part = if s < e {
        d[s as usize..e as usize].to_vec()
    } else {
        Vec::new()
    };
    let t = Tensor::f_from_slice(&part)?.f_to_device(input.device())?;
    Ok(Lowered::one(t, How::native("sizes")))
}

/// Gather-1/11/13: out = data[:axis] + indices.shape + data[axis+1:], negative
/// indices count from the end. torch advanced indexing (`data[:, :, idx]`) has
/// exactly this shape rule and wraps negatives; out-of-range indices raise.
fn gather(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (data, idx) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let axis = ctx.axis(ctx.int("axis", 0)?, data.dim())? as i64;
    let idx = match idx.f_kind()? {
        Kind::Int64 => idx.shallow_clone(),
        Kind::Int => idx.f_to_kind(Kind::Int64)?,
        k => return Err(ctx.fail(format!("Gather indices must be int32/int64, got {k:?}"))),
    };
    let mut index: Vec<Option<Tensor>> = (0..axis).map(|_| None).collect();
    index.push(Some(idx));
    Ok(Lowered::one(
        data.f_index(&index)?,
        How::native("index (advanced indexing)"),
    ))
}

/// Pad-2/11/13/18/19/21: pads `[x1_begin, ..., x1_end, ...]` over `axes`.
fn pad(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let rank = input.dim();
    let p = PadAttrs::decode(ctx, x)?;
    let (b, e) = (&p.begin, &p.end);
    let torch_mode = match p.mode {
        PadMode::Constant => {
            // torch's pad list runs from the last axis; constant mode accepts negative pads (crops).
            let tp: Vec<i64> = (0..rank).rev().flat_map(|i| [b[i], e[i]]).collect();
            return Ok(Lowered::one(
                input.f_pad(tp.as_slice(), "constant", p.value)?,
                How::native("pad(constant)"),
            ));
        }
        PadMode::Reflect => "reflect",
        PadMode::Edge => "replicate",
        PadMode::Wrap => "circular",
    };
    let Some(first) = (0..rank).find(|&i| b[i] != 0 || e[i] != 0) else {
        return Ok(Lowered::one(input.f_alias()?, How::native("alias")));
    };
    refuse_mode_pad(ctx, &p, first, &dims(input))?;
    let tp: Vec<i64> = (first..rank).rev().flat_map(|i| [b[i], e[i]]).collect();
    // torch wants rank k+1 or k+2 for k padded axes: merge extra leading axes into one batch axis.
    if rank <= first + 2 {
        let y = input.f_pad(tp.as_slice(), torch_mode, None::<f64>)?;
        return Ok(Lowered::one(y, How::native(format!("pad({torch_mode})"))));
    }
    let d = dims(input);
    let merged: Vec<i64> = std::iter::once(d[..first].iter().product())
        .chain(d[first..].iter().copied())
        .collect();
    let y = input
        .f_reshape(merged.as_slice())?
        .f_pad(tp.as_slice(), torch_mode, None::<f64>)?;
    let out: Vec<i64> = d[..first].iter().chain(&y.size()[1..]).copied().collect();
    Ok(Lowered::one(
        y.f_reshape(out.as_slice())?,
        How::composed(format!("reshape, pad({torch_mode}), reshape")),
    ))
}

/// What torch's reflect/replicate/circular pads cannot express: more than
/// the last 3 axes, reflect pads not smaller than the axis. Negative pads go
/// to torch as they are: its reflect and replicate pads crop the padded
/// axis (the reference's order), its circular pad crops first and wraps over
/// the cropped axis (a declared divergence, docs/findings.md).
fn refuse_mode_pad<T>(ctx: &OpCtx, p: &PadAttrs<T>, first: usize, d: &[i64]) -> OpResult<()> {
    let (mode, rank) = (p.mode.name(), d.len());
    let k = rank - first;
    if k > 3 {
        return Err(ctx.unsupported(
            "pads",
            format!("{mode} padding of {k} axes: torch pads at most the last 3"),
        ));
    }
    if p.mode == PadMode::Reflect && (first..rank).any(|i| p.begin[i] >= d[i] || p.end[i] >= d[i]) {
        return Err(ctx.unsupported("pads", "reflect pads must be smaller than the dimension"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn gather_negative_index() {
        let data = f32s(&[3, 2], &[1., 2., 3., 4., 5., 6.]);
        let idx = i64s(&[2], &[-1, 0]);
        let l = run(
            &node("Gather", 2, 1, vec![]),
            13,
            &[Some(&data), Some(&idx)],
        )
        .unwrap();
        let y = l.outputs[0].as_ref().unwrap();
        assert_eq!(y.size(), vec![2, 2]);
        assert_eq!(vals(y), vec![5., 6., 1., 2.]);
        // axis 1 with a 0-d index drops the axis: data[:, -2].
        let idx0 = tch::Tensor::from(-2i64);
        let l = run(
            &node("Gather", 2, 1, vec![("axis", Attr::Int(1))]),
            13,
            &[Some(&data), Some(&idx0)],
        )
        .unwrap();
        let y = l.outputs[0].as_ref().unwrap();
        assert_eq!(y.size(), vec![3]);
        assert_eq!(vals(y), vec![1., 3., 5.]);
        // Out of range is an error, not a wrap.
        let bad = i64s(&[1], &[3]);
        assert!(run(
            &node("Gather", 2, 1, vec![]),
            13,
            &[Some(&data), Some(&bad)]
        )
        .is_err());
    }

    #[test]
    fn slice_negative_step() {
        let x = f32s(&[5], &[0., 1., 2., 3., 4.]);
        let (s, e, a, st) = (
            i64s(&[1], &[-1]),
            i64s(&[1], &[i64::MIN]),
            i64s(&[1], &[0]),
            i64s(&[1], &[-2]),
        );
        let l = run(
            &node("Slice", 5, 1, vec![]),
            13,
            &[Some(&x), Some(&s), Some(&e), Some(&a), Some(&st)],
        )
        .unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![4., 2., 0.]);
        assert_eq!(l.how.label(), "composed: flip, slice");
    }

    #[test]
    fn split_equal_parts_and_pad_reflect() {
        let x = f32s(&[5], &[0., 1., 2., 3., 4.]);
        let l = run(&node("Split", 1, 2, vec![]), 13, &[Some(&x)]).unwrap();
        assert_eq!(
            l.outputs
                .iter()
                .map(|t| t.as_ref().unwrap().size()[0])
                .collect::<Vec<_>>(),
            vec![3, 2]
        );
        let x = f32s(&[1, 3], &[1., 2., 3.]);
        let p = i64s(&[4], &[0, 2, 0, 1]);
        let n = node("Pad", 2, 1, vec![("mode", Attr::String("reflect".into()))]);
        let l = run(&n, 13, &[Some(&x), Some(&p)]).unwrap();
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap()),
            vec![3., 2., 1., 2., 3., 2.]
        );
        assert_eq!(l.how.label(), "native: pad(reflect)");
    }

    /// Negative pads go to torch's own pad (xdiff used to refuse them):
    /// reflect and replicate pad the axis and crop after, as the reference
    /// does; circular crops first and wraps over the cropped axis.
    #[test]
    fn pad_negative_is_torchs_own_op() {
        use crate::backend::reference::{run_op as reference, util};
        let (v, pads) = ([0., 1., 2., 3.], [0, -1, 0, 2]);
        let x = f32s(&[1, 4], &v.map(|v| v as f32));
        let p = i64s(&[4], &pads);
        let (rx, rp) = (util::f(&[1, 4], &v), util::i(&[4], &pads));
        for (mode, torch, want) in [
            ("reflect", "reflect", [1., 2., 3., 2., 1.]),
            ("edge", "replicate", [1., 2., 3., 3., 3.]),
            ("wrap", "circular", [1., 2., 3., 1., 2.]),
        ] {
            let n = node("Pad", 2, 1, vec![("mode", Attr::String(mode.into()))]);
            let l = run(&n, 19, &[Some(&x), Some(&p)]).unwrap();
            assert_eq!(vals(l.outputs[0].as_ref().unwrap()), want, "{mode}");
            assert_eq!(l.how.label(), format!("native: pad({torch})"));
            let r = reference(&n, 19, &[Some(&rx), Some(&rp)]).unwrap()[0]
                .clone()
                .unwrap()
                .floats()
                .unwrap();
            // The reference pads [0,1,2,3] first: wrap gives [1,2,3,0,1].
            assert_eq!(r == want, mode != "wrap", "{mode}: {r:?}");
        }
    }

    #[test]
    fn squeeze_rejects_non_unit_axis() {
        let x = f32s(&[2, 1], &[1., 2.]);
        let axes = i64s(&[1], &[0]);
        assert!(run(&node("Squeeze", 2, 1, vec![]), 13, &[Some(&x), Some(&axes)]).is_err());
    }
}
