//! Reference ops: normalization (BatchNormalization, LayerNormalization).
//!
//! Normalizations fold several statistics into one op, and frameworks differ
//! in which variance they use (population vs sample), where epsilon goes and
//! how running statistics are updated; the reference writes the ONNX formulas
//! out in f64 so those choices are visible in the diff.

use crate::op::norm::{BatchNormAttrs, LayerNormAttrs};
use ndarray::{ArrayD, IxDyn, Zip};

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::tensor::DType;

const BN_COV: &[Coverage] = &[
    Coverage {
        when: "inference (and spatial=0 before opset 9)",
        label: Label::Spec,
    },
    Coverage {
        when: "training_mode=1 (opset 14+)",
        label: Label::Spec,
    },
    Coverage {
        when: "training outputs before opset 14",
        label: Label::Unsupported("saved_mean/saved_var semantics are implementation-defined"),
    },
];
const LN_COV: &[Coverage] = &[Coverage {
    when: "all attributes; stash_type only sets Mean/InvStdDev dtype (math is f64)",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    const BN: &str = "https://onnx.ai/onnx/operators/onnx__BatchNormalization.html";
    for (since, until) in [(1, 8), (9, 13), (14, u32::MAX)] {
        r.range("BatchNormalization", since, until, batch_norm, BN, BN_COV);
    }
    r.range(
        "LayerNormalization",
        17,
        u32::MAX,
        layer_norm,
        "https://onnx.ai/onnx/operators/onnx__LayerNormalization.html",
        LN_COV,
    );
}

/// A float input as f64, or a failure naming it.
fn float_input<'t>(
    ctx: &OpCtx,
    x: &[Option<&'t RefTensor>],
    i: usize,
    name: &str,
) -> OpResult<&'t ArrayD<f64>> {
    let t = x
        .get(i)
        .copied()
        .flatten()
        .ok_or_else(|| ctx.fail(format!("required input `{name}` is missing")))?;
    t.f64().map_err(|_| {
        ctx.fail(format!(
            "input `{name}` must be a float tensor, got {}",
            t.dtype
        ))
    })
}

/// Reshapes a per-channel parameter so it broadcasts against X (N, C, D...):
/// (C) → (1, C, 1, ...); with `per_activation` (spatial=0) also (C, D...) → (1, C, D...).
fn channel_param(
    ctx: &OpCtx,
    p: &ArrayD<f64>,
    name: &str,
    xs: &[usize],
    per_activation: bool,
) -> OpResult<ArrayD<f64>> {
    let c = xs[1];
    let shape: Vec<usize> = if p.len() == c && (p.ndim() == 1 || !per_activation) {
        (0..xs.len()).map(|k| if k == 1 { c } else { 1 }).collect()
    } else if per_activation && p.shape() == &xs[1..] {
        std::iter::once(1).chain(xs[1..].iter().copied()).collect()
    } else {
        return Err(ctx.fail(format!(
            "input `{name}` has shape {:?}, expected ({c}) for X {xs:?}",
            p.shape()
        )));
    };
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), p.iter().copied().collect()).expect("same count"))
}

/// (x - mean)/sqrt(var + eps)*scale + b with params broadcast against x.
fn normalize(
    x: &ArrayD<f64>,
    mean: &ArrayD<f64>,
    var: &ArrayD<f64>,
    scale: &ArrayD<f64>,
    b: &ArrayD<f64>,
    eps: f64,
) -> ArrayD<f64> {
    let mut y = ArrayD::zeros(x.raw_dim());
    Zip::from(&mut y)
        .and(x)
        .and_broadcast(mean)
        .and_broadcast(var)
        .and_broadcast(scale)
        .and_broadcast(b)
        .for_each(|y, &x, &m, &v, &s, &b| *y = (x - m) / (v + eps).sqrt() * s + b);
    y
}

/// BatchNormalization-7/9/14/15: Y = (X - mean)/√(var + ε)·scale + B per channel
/// (axis 1). Opset 7–8 `spatial=0` takes per-activation (C, D...) parameters.
/// Opset 14+ `training_mode=1` normalizes with the batch mean and population
/// variance and also outputs running_mean/var = running·momentum + batch·(1 − momentum).
fn batch_norm(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xa = float_input(ctx, x, 0, "X")?;
    let xs = xa.shape().to_vec();
    if xs.len() < 2 {
        return Err(ctx.fail(format!("input `X` must have rank >= 2, has shape {xs:?}")));
    }
    let bn = BatchNormAttrs::decode(ctx)?;
    let (eps, momentum, per_activation) = (bn.epsilon, bn.momentum, bn.per_activation);
    let training = if ctx.opset >= 14 {
        bn.training
    } else if bn.wants_statistics {
        return Err(ctx.unsupported(
            "outputs",
            "training outputs (mean, var, saved_mean, saved_var) before opset 14",
        ));
    } else {
        false
    };
    let p = |i, n| -> OpResult<ArrayD<f64>> {
        channel_param(ctx, float_input(ctx, x, i, n)?, n, &xs, per_activation)
    };
    let (scale, b, mean, var) = (
        p(1, "scale")?,
        p(2, "B")?,
        p(3, "input_mean")?,
        p(4, "input_var")?,
    );
    if !training {
        return Ok(Lowered::one(
            RefTensor::float(normalize(xa, &mean, &var, &scale, &b, eps), xt.dtype),
            How::Spec,
        ));
    }
    let c = xs[1];
    let per = xa.len() / c.max(1);
    let mut bmean = vec![0.0; c];
    let mut bvar = vec![0.0; c];
    for (ix, &v) in xa.indexed_iter() {
        bmean[ix[1]] += v;
    }
    bmean.iter_mut().for_each(|m| *m /= per as f64);
    for (ix, &v) in xa.indexed_iter() {
        let d = v - bmean[ix[1]];
        bvar[ix[1]] += d * d;
    }
    bvar.iter_mut().for_each(|v| *v /= per as f64);
    let shape: Vec<usize> = (0..xs.len()).map(|k| if k == 1 { c } else { 1 }).collect();
    let bm = ArrayD::from_shape_vec(IxDyn(&shape), bmean.clone()).expect("C values");
    let bv = ArrayD::from_shape_vec(IxDyn(&shape), bvar.clone()).expect("C values");
    let y = RefTensor::float(normalize(xa, &bm, &bv, &scale, &b, eps), xt.dtype);
    let run_stat = |i: usize, batch: &[f64]| -> OpResult<RefTensor> {
        let t = ctx.input(x, i)?;
        let a = t.f64()?;
        let v: Vec<f64> = a
            .iter()
            .zip(batch)
            .map(|(&r, &s)| r * momentum + s * (1.0 - momentum))
            .collect();
        Ok(RefTensor::float(
            ArrayD::from_shape_vec(IxDyn(a.shape()), v).expect("C values"),
            t.dtype,
        ))
    };
    let mut outs = vec![Some(y)];
    if bn.wants_statistics {
        outs.push(Some(run_stat(3, &bmean)?));
        outs.push(Some(run_stat(4, &bvar)?));
    }
    Ok(Lowered {
        outputs: outs,
        how: How::Spec,
    })
}

/// LayerNormalization-17: normalizes over dims [axis, rank) with population
/// variance: Y = (X - mean)·InvStdDev·Scale + B, InvStdDev = 1/√(var + ε).
/// Optional outputs Mean and InvStdDev have shape X.shape[..axis] + 1s and the
/// dtype `stash_type` names (computation itself is f64 here).
fn layer_norm(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let xt = ctx.input(x, 0)?;
    let xa = float_input(ctx, x, 0, "X")?;
    let xs = xa.shape().to_vec();
    let r = xs.len();
    let ln = LayerNormAttrs::decode(ctx, r)?;
    let (axis, eps, stash) = (ln.axis, ln.epsilon, ln.stash_type);
    let stash_dtype = DType::from_onnx(stash as i32)
        .filter(|d| d.is_float())
        .ok_or_else(|| {
            ctx.fail(format!(
                "attribute `stash_type` {stash} is not a float type"
            ))
        })?;
    let scale = float_input(ctx, x, 1, "Scale")?;
    let bias = match x.get(2).copied().flatten() {
        Some(_) => Some(float_input(ctx, x, 2, "B")?),
        None => None,
    };
    for (p, n) in [(Some(scale), "Scale"), (bias, "B")] {
        if let Some(p) = p {
            if p.broadcast(IxDyn(&xs[axis..])).is_none() {
                return Err(ctx.fail(format!(
                    "input `{n}` of shape {:?} does not broadcast to {:?}",
                    p.shape(),
                    &xs[axis..]
                )));
            }
        }
    }
    let inner: usize = xs[axis..].iter().product();
    let std_x = xa.as_standard_layout();
    let flat = std_x.as_slice().expect("standard layout");
    let groups = flat.len().checked_div(inner).unwrap_or(0);
    let mut norm = Vec::with_capacity(flat.len());
    let (mut means, mut inv) = (Vec::with_capacity(groups), Vec::with_capacity(groups));
    for g in flat.chunks_exact(inner.max(1)).take(groups) {
        let m = g.iter().sum::<f64>() / inner as f64;
        let var = g.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / inner as f64;
        let is = 1.0 / (var + eps).sqrt();
        norm.extend(g.iter().map(|v| (v - m) * is));
        means.push(m);
        inv.push(is);
    }
    norm.resize(flat.len(), 0.0);
    let norm = ArrayD::from_shape_vec(IxDyn(&xs), norm).expect("same count");
    let sb = scale.broadcast(IxDyn(&xs)).expect("checked");
    let mut y = &norm * &sb;
    if let Some(b) = bias {
        y += &b.broadcast(IxDyn(&xs)).expect("checked");
    }
    let stat_shape: Vec<usize> = (0..r).map(|k| if k < axis { xs[k] } else { 1 }).collect();
    let stat = |v: Vec<f64>| {
        RefTensor::float(
            ArrayD::from_shape_vec(IxDyn(&stat_shape), v).expect("group count"),
            stash_dtype,
        )
    };
    let mut outs = vec![Some(RefTensor::float(y, xt.dtype))];
    let wants = |i: usize| ctx.node.outputs.get(i).is_some_and(|o| !o.is_empty());
    if wants(1) || wants(2) {
        outs.push(Some(stat(means)));
        outs.push(Some(stat(inv)));
    }
    Ok(Lowered {
        outputs: outs,
        how: How::Spec,
    })
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use super::*;
    use crate::graph::Attr;

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn batchnorm_inference_and_training() {
        // X (N=2, C=2, 1): channel 0 = [1, 3], channel 1 = [2, 6]
        let x = f(&[2, 2, 1], &[1., 2., 3., 6.]);
        let (scale, b) = (f(&[2], &[1., 2.]), f(&[2], &[0., 1.]));
        let (mean, var) = (f(&[2], &[1., 2.]), f(&[2], &[4., 16.]));
        let ins = [Some(&x), Some(&scale), Some(&b), Some(&mean), Some(&var)];
        let node = test_node(
            "BatchNormalization",
            5,
            1,
            vec![("epsilon", Attr::Float(0.0))],
        );
        let y = run_op(&node, 15, &ins).unwrap().remove(0).unwrap();
        // ch0: (x-1)/2*1+0 -> 0, 1 ; ch1: (x-2)/4*2+1 -> 1, 3
        close(&y.data.to_f64_vec(), &[0., 1., 1., 3.], 1e-12);
        let node = test_node(
            "BatchNormalization",
            5,
            3,
            vec![
                ("epsilon", Attr::Float(0.0)),
                ("training_mode", Attr::Int(1)),
                ("momentum", Attr::Float(0.5)),
            ],
        );
        let out = run_op(&node, 15, &ins).unwrap();
        // batch: ch0 mean 2 var 1; ch1 mean 4 var 4
        // Y ch0: (1-2)/1 = -1, (3-2) = 1; ch1: (2-4)/2*2+1 = -1, (6-4)/2*2+1 = 3
        close(
            &out[0].as_ref().unwrap().data.to_f64_vec(),
            &[-1., -1., 1., 3.],
            1e-12,
        );
        close(
            &out[1].as_ref().unwrap().data.to_f64_vec(),
            &[1.5, 3.],
            1e-12,
        );
        close(
            &out[2].as_ref().unwrap().data.to_f64_vec(),
            &[2.5, 10.],
            1e-12,
        );
        // training outputs before 14 are unsupported
        let node = test_node("BatchNormalization", 5, 3, vec![]);
        assert!(matches!(
            run_op(&node, 9, &ins),
            Err(crate::backend::interp::OpError::Unsupported(_))
        ));
    }

    #[test]
    fn layernorm_axis1_rank3() {
        // X (2, 2, 2); axis=1 normalizes each batch's 4 values
        let x = f(&[2, 2, 2], &[1., 2., 3., 4., 0., 0., 2., 2.]);
        let scale = f(&[2, 2], &[1., 1., 1., 2.]);
        let b = f(&[2], &[0., 10.]);
        let node = test_node(
            "LayerNormalization",
            3,
            3,
            vec![("axis", Attr::Int(1)), ("epsilon", Attr::Float(0.0))],
        );
        let out = run_op(&node, 17, &[Some(&x), Some(&scale), Some(&b)]).unwrap();
        // batch 0: mean 2.5, var 1.25, inv = 1/sqrt(1.25)
        let k = 1.0 / 1.25f64.sqrt();
        let y = out[0].as_ref().unwrap().data.to_f64_vec();
        close(
            &y,
            &[
                -1.5 * k,
                -0.5 * k + 10.,
                0.5 * k,
                2. * 1.5 * k + 10.,
                -1.,
                9.,
                1.,
                12.,
            ],
            1e-12,
        );
        let m = out[1].as_ref().unwrap();
        assert_eq!((m.shape(), m.dtype), (&[2usize, 1, 1][..], DType::F32));
        close(&m.data.to_f64_vec(), &[2.5, 1.], 1e-12);
        close(&out[2].as_ref().unwrap().data.to_f64_vec(), &[k, 1.], 1e-12);
    }
}
