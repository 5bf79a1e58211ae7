//! libtorch lowerings: convolution, pooling, normalization, Dropout.
//!
//! The window geometry comes decoded from `op::window`. ONNX pads are per
//! edge; torch's conv/pool padding is one symmetric value per axis, so asymmetric
//! pads are applied first with `constant_pad_nd` (composed).

use crate::op::norm::{BatchNormAttrs, LayerNormAttrs};
use tch::{Kind, Tensor};

use super::{conv_tf32, dims};
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::window::{self, TransposeAttrs, WindowAttrs};
use crate::op::HostView;

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "Conv",
        conv,
        spec!("Conv"),
        cov!["1-3 spatial dims, symmetric pads (incl. auto_pad)" => Label::Native("_convolution"),
             "asymmetric pads" => Label::Composed("constant_pad_nd, _convolution")],
    );
    r.op(
        "ConvTranspose",
        conv_transpose,
        spec!("ConvTranspose"),
        cov!["symmetric pads (incl. from output_shape/auto_pad)" => Label::Native("_convolution(transposed)"),
             "asymmetric pads" => Label::Composed("_convolution(transposed), slice"),
             "output_shape larger than the full output" => Label::Unsupported("output_shape")],
    );
    r.op(
        "MaxPool",
        max_pool,
        spec!("MaxPool"),
        cov!["symmetric pads <= kernel/2, ceil_mode any" => Label::Native("max_pool{1,2,3}d"),
             "asymmetric or large pads, ceil_mode=0" => Label::Composed("pad(-inf), max_pool{1,2,3}d"),
             "asymmetric pads with ceil_mode=1" => Label::Unsupported("pads"),
             "Indices output" => Label::Composed("max_pool{1,2,3}d_with_indices, flat-index arithmetic"),
             "Indices with storage_order=1 beyond 2-D" => Label::Unsupported("storage_order")],
    );
    r.op(
        "AveragePool",
        avg_pool,
        spec!("AveragePool"),
        cov!["symmetric pads <= kernel/2" => Label::Native("avg_pool{1,2,3}d(count_include_pad explicit)"),
             "asymmetric pads, ceil_mode=0" => Label::Composed("constant_pad_nd, avg_pool, div (valid-count mask)"),
             "asymmetric pads with ceil_mode=1" => Label::Unsupported("pads"),
             "dilations != 1" => Label::Unsupported("dilations")],
    );
    r.op(
        "GlobalAveragePool",
        global_avg_pool,
        spec!("GlobalAveragePool"),
        cov!["all" => Label::Native("mean(dim=2..)")],
    );
    r.op(
        "BatchNormalization",
        batch_norm,
        spec!("BatchNormalization"),
        cov!["inference" => Label::Native("batch_norm(training=false)"),
             "training_mode=1 (running statistics from copies of input_mean/var)" => Label::Native("batch_norm(training=true, momentum=1-m)"),
             "spatial=0 (opset < 9)" => Label::Unsupported("spatial")],
    );
    r.op(
        "LayerNormalization",
        layer_norm,
        spec!("LayerNormalization"),
        cov!["Y only, Scale/B of the normalized shape" => Label::Native("layer_norm(x.shape[axis:])"),
             "Mean/InvStdDev outputs" => Label::Native("native_layer_norm"),
             "Scale/B broadcast to the normalized shape" => Label::Composed("expand, layer_norm")],
    );
    r.op(
        "Dropout",
        dropout,
        spec!("Dropout"),
        cov!["inference" => Label::Native("alias"),
             "mask output" => Label::Composed("alias, ones_like(bool)"),
             "training_mode=true" => Label::Unsupported("training_mode")],
    );
}

/// usize per-axis values as torch's i64.
fn i64s(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

/// The spatial dims (2..) of a tensor.
fn spatial(t: &Tensor) -> Vec<usize> {
    HostView::dims(t)[2..].to_vec()
}

/// torch's pad list: last axis first, `[begin, end]` per axis.
fn torch_pad(begin: &[i64], end: &[i64]) -> Vec<i64> {
    (0..begin.len())
        .rev()
        .flat_map(|i| [begin[i], end[i]])
        .collect()
}

fn spatial_rank(ctx: &OpCtx, x: &Tensor) -> OpResult<usize> {
    let r = x.dim();
    if !(3..=5).contains(&r) {
        return Err(ctx.unsupported(
            "X",
            format!("rank {r}: libtorch conv/pool kernels take 1 to 3 spatial dims"),
        ));
    }
    Ok(r - 2)
}

/// Conv-1/11/22.
pub(super) fn conv(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (input, w) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let bias = x.get(2).copied().flatten();
    let n = spatial_rank(ctx, input)?;
    let g = WindowAttrs::decode(ctx, &spatial(input), Some(&spatial(w)))?;
    let (s, d) = (i64s(&g.strides), i64s(&g.dilations));
    let group = window::group(ctx)? as i64;
    let (b, e) = (g.begins(), g.ends());
    let common: Vec<i64> = b.iter().zip(&e).map(|(p, q)| *p.min(q)).collect();
    let tf32 = conv_tf32(ctx.options);
    let run = |inp: &Tensor| {
        inp.f_internal_convolution(
            w,
            bias,
            s.as_slice(),
            common.as_slice(),
            d.as_slice(),
            false,
            vec![0; n].as_slice(),
            group,
            false,
            false,
            true,
            tf32,
        )
    };
    if b == e {
        return Ok(Lowered::one(run(input)?, How::native("_convolution")));
    }
    let extra_b: Vec<i64> = b.iter().zip(&common).map(|(p, c)| p - c).collect();
    let extra_e: Vec<i64> = e.iter().zip(&common).map(|(p, c)| p - c).collect();
    let padded = input.f_constant_pad_nd(torch_pad(&extra_b, &extra_e))?;
    Ok(Lowered::one(
        run(&padded)?,
        How::composed("constant_pad_nd, _convolution"),
    ))
}

/// ConvTranspose-1/11/22: out = s·(in-1) + output_padding + (k-1)·d + 1 - pad_begin - pad_end.
fn conv_transpose(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (input, w) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let bias = x.get(2).copied().flatten();
    let n = spatial_rank(ctx, input)?;
    let t = TransposeAttrs::decode(ctx, &spatial(input), &spatial(w))?;
    if t.pads.iter().any(|&(b, e)| b < 0 || e < 0) {
        return Err(ctx.unsupported(
            "output_shape",
            format!(
                "{:?} is larger than the full transposed output {:?}",
                t.out, t.full
            ),
        ));
    }
    let (s, d, op) = (i64s(&t.strides), i64s(&t.dilations), &t.output_padding);
    let group = window::group(ctx)? as i64;
    let b: Vec<i64> = t.pads.iter().map(|p| p.0).collect();
    let e: Vec<i64> = t.pads.iter().map(|p| p.1).collect();
    let common: Vec<i64> = b.iter().zip(&e).map(|(p, q)| *p.min(q)).collect();
    let y = input.f_internal_convolution(
        w,
        bias,
        s.as_slice(),
        common.as_slice(),
        d.as_slice(),
        true,
        op.as_slice(),
        group,
        false,
        false,
        true,
        conv_tf32(ctx.options),
    )?;
    if b == e {
        return Ok(Lowered::one(y, How::native("_convolution(transposed)")));
    }
    // torch put `common` on both sides; crop the rest of each side.
    let mut y = y;
    for i in 0..n {
        let start = b[i] - common[i];
        y = y.f_slice((i + 2) as i64, start, start + t.out[i] as i64, 1)?;
    }
    Ok(Lowered::one(
        y,
        How::composed("_convolution(transposed), slice"),
    ))
}

struct PoolGeom {
    n: usize,
    k: Vec<i64>,
    s: Vec<i64>,
    d: Vec<i64>,
    b: Vec<i64>,
    e: Vec<i64>,
    ceil: bool,
    include_pad: bool,
}

fn pool_geom(ctx: &OpCtx, x: &Tensor) -> OpResult<PoolGeom> {
    let n = spatial_rank(ctx, x)?;
    let w = WindowAttrs::decode(ctx, &spatial(x), None)?;
    Ok(PoolGeom {
        n,
        k: i64s(&w.kernel),
        s: i64s(&w.strides),
        d: i64s(&w.dilations),
        b: w.begins(),
        e: w.ends(),
        ceil: w.ceil_mode,
        include_pad: w.count_include_pad,
    })
}

impl PoolGeom {
    /// torch pools take symmetric pads of at most half the effective kernel.
    fn torch_can_pad(&self) -> bool {
        (0..self.n)
            .all(|i| self.b[i] == self.e[i] && self.b[i] <= ((self.k[i] - 1) * self.d[i] + 1) / 2)
    }
}

/// MaxPool-8/10/11/12/22 (Y and optional Indices).
fn max_pool(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let g = pool_geom(ctx, input)?;
    let want_idx = ctx.wants_output(1);
    let (mut src, mut pad, mut how) = (input.shallow_clone(), g.b.clone(), Vec::new());
    if !g.torch_can_pad() {
        if g.ceil {
            return Err(ctx.unsupported("pads", format!("{:?}/{:?} with ceil_mode=1: pre-padding would keep windows that start in the end padding", g.b, g.e)));
        }
        if want_idx {
            return Err(ctx.unsupported("pads", "asymmetric pads with the Indices output"));
        }
        src = input.f_pad(torch_pad(&g.b, &g.e), "constant", f64::NEG_INFINITY)?;
        pad = vec![0; g.n];
        how.push("pad(-inf)");
    }
    let name = ["max_pool1d", "max_pool2d", "max_pool3d"][g.n - 1];
    if !want_idx {
        let y = match g.n {
            1 => src.f_max_pool1d(&g.k, &g.s, &pad, &g.d, g.ceil)?,
            2 => src.f_max_pool2d(&g.k, &g.s, &pad, &g.d, g.ceil)?,
            _ => src.f_max_pool3d(&g.k, &g.s, &pad, &g.d, g.ceil)?,
        };
        how.push(name);
        return Ok(Lowered::one(y, label(how)));
    }
    let (y, idx) = match g.n {
        1 => src.f_max_pool1d_with_indices(&g.k, &g.s, &pad, &g.d, g.ceil)?,
        2 => src.f_max_pool2d_with_indices(&g.k, &g.s, &pad, &g.d, g.ceil)?,
        _ => src.f_max_pool3d_with_indices(&g.k, &g.s, &pad, &g.d, g.ceil)?,
    };
    let xd = dims(input);
    let plane: i64 = xd[2..].iter().product();
    let mut idx = idx;
    if window::column_major(ctx)? {
        if g.n != 2 {
            return Err(
                ctx.unsupported("storage_order", "column-major indices only for 2-D pooling")
            );
        }
        // Row-major h·W + w  ->  column-major w·H + h.
        let (h, w) = (xd[2], xd[3]);
        let row = idx.f_div_scalar_mode(w, "floor")?;
        let col = idx.f_remainder(w)?;
        idx = col.f_mul_scalar(h)?.f_add(&row)?;
    }
    // torch indexes within each (n, c) plane; ONNX over the whole N·C·spatial tensor.
    let nc = xd[0] * xd[1];
    let offset = Tensor::f_arange_start_step(0, nc * plane, plane, (Kind::Int64, input.device()))?
        .f_reshape(
            [xd[0], xd[1]]
                .iter()
                .copied()
                .chain(std::iter::repeat_n(1, g.n))
                .collect::<Vec<_>>(),
        )?;
    let idx = idx.f_add(&offset)?;
    how.push(
        [
            "max_pool1d_with_indices",
            "max_pool2d_with_indices",
            "max_pool3d_with_indices",
        ][g.n - 1],
    );
    how.push("flat-index add");
    Ok(Lowered::many(vec![y, idx], How::composed(how.join(", "))))
}

fn label(ops: Vec<&str>) -> How {
    if ops.len() == 1 {
        How::native(ops[0])
    } else {
        How::composed(ops.join(", "))
    }
}

fn avg(g: &PoolGeom, src: &Tensor, pad: &[i64], include: bool) -> Result<Tensor, tch::TchError> {
    match g.n {
        1 => src.f_avg_pool1d(&g.k, &g.s, pad, g.ceil, include),
        2 => src.f_avg_pool2d(&g.k, &g.s, pad, g.ceil, include, None),
        _ => src.f_avg_pool3d(&g.k, &g.s, pad, g.ceil, include, None),
    }
}

/// AveragePool-7/10/11/19/22. ONNX's count_include_pad defaults to 0, torch's to true:
/// it is always passed explicitly.
fn avg_pool(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let g = pool_geom(ctx, input)?;
    if g.d.iter().any(|&v| v != 1) {
        return Err(ctx.unsupported(
            "dilations",
            format!("{:?}: torch avg_pool has no dilation", g.d),
        ));
    }
    let include = g.include_pad;
    let name = ["avg_pool1d", "avg_pool2d", "avg_pool3d"][g.n - 1];
    if g.torch_can_pad() {
        let y = avg(&g, input, &g.b, include)?;
        return Ok(Lowered::one(
            y,
            How::native(format!("{name}(count_include_pad={include})")),
        ));
    }
    if g.ceil {
        return Err(ctx.unsupported("pads", format!("{:?}/{:?} with ceil_mode=1", g.b, g.e)));
    }
    let zero = vec![0; g.n];
    let padded = input.f_constant_pad_nd(torch_pad(&g.b, &g.e))?;
    let y = avg(&g, &padded, &zero, true)?;
    if include {
        return Ok(Lowered::one(
            y,
            How::composed(format!("constant_pad_nd, {name}")),
        ));
    }
    // Divide by the share of real (unpadded) elements in each window.
    let ones = input
        .f_ones_like()?
        .f_constant_pad_nd(torch_pad(&g.b, &g.e))?;
    let share = avg(&g, &ones, &zero, true)?;
    Ok(Lowered::one(
        y.f_div(&share)?,
        How::composed(format!("constant_pad_nd, {name}, div (valid-count mask)")),
    ))
}

/// GlobalAveragePool-1/22: mean over all spatial axes, kept as size 1.
fn global_avg_pool(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let axes: Vec<i64> = (2..input.dim() as i64).collect();
    if axes.is_empty() {
        return Err(ctx.fail("GlobalAveragePool needs rank >= 3"));
    }
    Ok(Lowered::one(
        input.f_mean_dim(axes.as_slice(), true, None::<Kind>)?,
        How::native("mean(dim=2..)"),
    ))
}

/// BatchNormalization-7/9/14/15: (x - mean) / sqrt(var + eps) · scale + B,
/// with the given statistics (inference) or the batch's (training_mode=1).
fn batch_norm(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let bn = BatchNormAttrs::decode(ctx)?;
    if bn.per_activation {
        return Err(ctx.unsupported("spatial", "0 (per-activation statistics)"));
    }
    if bn.training {
        return batch_norm_training(ctx, x, &bn);
    }
    if bn.wants_statistics {
        return Err(ctx.unsupported(
            "outputs",
            "mean/var/saved outputs exist only in training mode",
        ));
    }
    let p = |i| ctx.input(x, i);
    // Epsilon is an f32 attribute; its exact value (9.99999974738e-06 by default) is passed.
    let y = p(0)?.f_batch_norm(
        Some(p(1)?),
        Some(p(2)?),
        Some(p(3)?),
        Some(p(4)?),
        false,
        0.1,
        bn.epsilon,
        true,
    )?;
    Ok(Lowered::one(y, How::native("batch_norm(training=false)")))
}

/// torch's `momentum` for ONNX's: torch weighs the *batch* statistic by it
/// (running·(1 − m) + batch·m), ONNX the running one, so 1 − m; the port lane
/// copies ONNX's value unchanged, the classic hand-porting mistake.
fn torch_momentum(ctx: &OpCtx, onnx_momentum: f64) -> f64 {
    if ctx.options.port {
        onnx_momentum
    } else {
        1.0 - onnx_momentum
    }
}

/// BatchNormalization-14/15 training_mode=1: torch normalizes with the batch
/// statistics and updates copies of input_mean/input_var in place, which are
/// the running_mean/running_var outputs. torch's running variance is the
/// *unbiased* batch variance (ONNX's is the population one); that is torch's
/// behaviour and is measured, not corrected.
fn batch_norm_training(ctx: &OpCtx, x: &X, bn: &BatchNormAttrs) -> OpResult<Lowered<Tensor>> {
    let p = |i| ctx.input(x, i);
    let (running_mean, running_var) = (p(3)?.copy(), p(4)?.copy());
    let momentum = torch_momentum(ctx, bn.momentum);
    let y = p(0)?.f_batch_norm(
        Some(p(1)?),
        Some(p(2)?),
        Some(&running_mean),
        Some(&running_var),
        true,
        momentum,
        bn.epsilon,
        true,
    )?;
    let how = if ctx.options.port {
        How::native("batch_norm(training=true, momentum=m) [port: ONNX momentum copied]")
    } else {
        How::native("batch_norm(training=true, momentum=1-m)")
    };
    let outputs = if bn.wants_statistics {
        vec![y, running_mean, running_var]
    } else {
        vec![y]
    };
    Ok(Lowered::many(outputs, how))
}

/// LayerNormalization-17: normalizes axes [axis, r).
fn layer_norm(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let scale = ctx.input(x, 1)?;
    let bias = x.get(2).copied().flatten();
    let ln = LayerNormAttrs::decode(ctx, input.dim())?;
    let (axis, eps, stash) = (ln.axis, ln.epsilon, ln.stash_type);
    let kind = input.f_kind()?;
    if stash != 1 && matches!(kind, Kind::Half | Kind::BFloat16) {
        return Err(ctx.unsupported(
            "stash_type",
            format!("{stash}: torch always computes half-precision layer_norm in float"),
        ));
    }
    let shape: Vec<i64> = dims(input)[axis..].to_vec();
    let mut composed = false;
    let fit = |t: &Tensor, composed: &mut bool| -> OpResult<Tensor> {
        if dims(t) == shape {
            Ok(t.shallow_clone())
        } else {
            *composed = true;
            Ok(t.f_expand(shape.as_slice(), false)?)
        }
    };
    let w = fit(scale, &mut composed)?;
    let b = bias.map(|b| fit(b, &mut composed)).transpose()?;
    if ctx.wants_output(1) || ctx.wants_output(2) {
        let (y, mean, rstd) =
            input.f_native_layer_norm(shape.as_slice(), Some(&w), b.as_ref(), eps)?;
        // Mean and InvStdDev have the stash type (float by default).
        let (mean, rstd) = if stash == 1 && kind != Kind::Float && kind != Kind::Double {
            composed = true;
            (mean.f_to_kind(Kind::Float)?, rstd.f_to_kind(Kind::Float)?)
        } else {
            (mean, rstd)
        };
        let how = if composed {
            How::composed("expand, native_layer_norm, to")
        } else {
            How::native("native_layer_norm")
        };
        return Ok(Lowered::many(vec![y, mean, rstd], how));
    }
    let y = input.f_layer_norm(shape.as_slice(), Some(&w), b.as_ref(), eps, true)?;
    let how = if composed {
        How::composed("expand, layer_norm")
    } else {
        How::native("layer_norm")
    };
    Ok(Lowered::one(y, how))
}

/// Dropout-7/10/12/13/22 at inference: identity; the mask is all true.
fn dropout(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    if let Some(t) = x.get(2).copied().flatten() {
        if super::host_ints(&t.f_to_kind(Kind::Int64)?)?
            .first()
            .copied()
            .unwrap_or(0)
            != 0
        {
            return Err(ctx.unsupported("training_mode", "true draws random numbers"));
        }
    }
    let y = input.f_alias()?;
    if ctx.wants_output(1) {
        let mask = input.f_ones_like()?.f_to_kind(Kind::Bool)?;
        return Ok(Lowered::many(
            vec![y, mask],
            How::composed("alias, ones_like(bool)"),
        ));
    }
    Ok(Lowered::one(y, How::native("alias")))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn avg_pool_count_include_pad_0_at_a_corner() {
        // 3x3 ones-ramp, k3 s1 p1: the corner window holds 4 real values.
        let x = f32s(&[1, 1, 3, 3], &[1., 2., 3., 4., 5., 6., 7., 8., 9.]);
        let attrs = |c: i64| {
            vec![
                ("kernel_shape", attr_ints(&[3, 3])),
                ("pads", attr_ints(&[1, 1, 1, 1])),
                ("count_include_pad", Attr::Int(c)),
            ]
        };
        let l = run(&node("AveragePool", 1, 1, attrs(0)), 19, &[Some(&x)]).unwrap();
        let v = vals(l.outputs[0].as_ref().unwrap());
        assert_eq!(v[0], (1. + 2. + 4. + 5.) / 4.);
        assert_eq!(l.how.label(), "native: avg_pool2d(count_include_pad=false)");
        let l = run(&node("AveragePool", 1, 1, attrs(1)), 19, &[Some(&x)]).unwrap();
        assert_eq!(
            vals(l.outputs[0].as_ref().unwrap())[0],
            ((1. + 2. + 4. + 5.) / 9f32) as f64
        );
    }

    #[test]
    fn avg_pool_asymmetric_pads_exclude_padding() {
        // 1-D [1,2,3], k2 s1, pads begin 1 end 0: windows [pad,1], [1,2], [2,3].
        let x = f32s(&[1, 1, 3], &[1., 2., 3.]);
        let n = node(
            "AveragePool",
            1,
            1,
            vec![
                ("kernel_shape", attr_ints(&[2])),
                ("pads", attr_ints(&[1, 0])),
            ],
        );
        let l = run(&n, 11, &[Some(&x)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![1.0, 1.5, 2.5]);
        assert!(l.how.label().starts_with("composed: constant_pad_nd"));
    }

    #[test]
    fn conv_with_asymmetric_pads() {
        // 1-D x=[1,2,3], w=[1,1], pads [1,0]: out = [0+1, 1+2, 2+3].
        let x = f32s(&[1, 1, 3], &[1., 2., 3.]);
        let w = f32s(&[1, 1, 2], &[1., 1.]);
        let n = node("Conv", 2, 1, vec![("pads", attr_ints(&[1, 0]))]);
        let l = run(&n, 11, &[Some(&x), Some(&w)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![1.0, 3.0, 5.0]);
        assert_eq!(l.how.label(), "composed: constant_pad_nd, _convolution");
        // SAME_UPPER with k=2: total pad 1, at the end: [1+2, 2+3, 3+0].
        let n = node(
            "Conv",
            2,
            1,
            vec![("auto_pad", Attr::String("SAME_UPPER".into()))],
        );
        let l = run(&n, 11, &[Some(&x), Some(&w)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![3.0, 5.0, 3.0]);
    }

    #[test]
    fn conv_transpose_asymmetric_pads_crop() {
        // x=[1,2], w=[1,1], s=1: full = [1,3,2]; pads [1,0] -> [3,2].
        let x = f32s(&[1, 1, 2], &[1., 2.]);
        let w = f32s(&[1, 1, 2], &[1., 1.]);
        let n = node("ConvTranspose", 2, 1, vec![("pads", attr_ints(&[1, 0]))]);
        let l = run(&n, 11, &[Some(&x), Some(&w)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![3.0, 2.0]);
    }

    #[test]
    fn max_pool_indices_are_flat_over_nc() {
        // N=1, C=2, 2x2 planes; global 2x2 max: plane 1's max at (1,1) -> 4 + 3 = 7.
        let x = f32s(&[1, 2, 2, 2], &[1., 9., 3., 4., 5., 6., 7., 8.]);
        let n = node("MaxPool", 1, 2, vec![("kernel_shape", attr_ints(&[2, 2]))]);
        let l = run(&n, 12, &[Some(&x)]).unwrap();
        assert_eq!(vals(l.outputs[1].as_ref().unwrap()), vec![1.0, 7.0]);
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![9.0, 8.0]);
    }

    #[test]
    fn max_pool_ceil_mode_is_native() {
        let x = f32s(&[1, 1, 5], &[1., 2., 3., 4., 5.]);
        let n = node(
            "MaxPool",
            1,
            1,
            vec![
                ("kernel_shape", attr_ints(&[2])),
                ("strides", attr_ints(&[2])),
                ("ceil_mode", Attr::Int(1)),
            ],
        );
        let l = run(&n, 12, &[Some(&x)]).unwrap();
        assert_eq!(vals(l.outputs[0].as_ref().unwrap()), vec![2.0, 4.0, 5.0]);
        assert_eq!(l.how.label(), "native: max_pool1d");
    }
}
