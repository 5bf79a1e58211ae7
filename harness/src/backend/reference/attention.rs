//! Reference op: Attention-23/24, written from the spec over
//! `op::attention::AttentionPlan` in f64: per batch, query head and query
//! row, the scores `scale·q·kⱼ` against the present keys (past then new) of
//! the head's key/value group, plus the bias, capped `c·tanh(x/c)`, a
//! softmax, and the probabilities' sum of the value rows. Also the local
//! error bound's K and `Σ|terms|` of `Y` (`diff::bound`).

use ndarray::{ArrayD, IxDyn};

use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::attention::{AttentionPlan, QkMode};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes (softmax_precision: the reference is f64 throughout)",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range(
        "Attention",
        23,
        u32::MAX,
        attention,
        spec!("Attention"),
        SPEC,
    );
}

/// The operands in `[B, H, T, D]` order: `Q`, and the present keys and
/// values (the past, then the new rows).
struct Operands {
    q: Vec<f64>,
    k: Vec<f64>,
    v: Vec<f64>,
    bias: Option<Vec<f64>>,
}

/// One query row's stages, each over the `T` keys.
struct Row {
    raw: Vec<f64>,
    biased: Vec<f64>,
    capped: Vec<f64>,
    p: Vec<f64>,
}

fn floats(ctx: &OpCtx, x: &[Option<&RefTensor>], i: usize) -> OpResult<Vec<f64>> {
    let t = ctx.input(x, i)?;
    t.floats().map_err(|_| {
        ctx.fail(format!(
            "input #{i} must be a float tensor, got {}",
            t.dtype
        ))
    })
}

/// A 3-D `[B, S, H·D]` input as `[B, H, S, D]` (a 4-D one as it is).
fn to_bhsd(plan: &AttentionPlan, flat: Vec<f64>, [b, h, s, d]: [usize; 4]) -> Vec<f64> {
    if !plan.three_d {
        return flat;
    }
    let mut out = vec![0.0; flat.len()];
    for bi in 0..b {
        for hi in 0..h {
            for si in 0..s {
                for di in 0..d {
                    out[((bi * h + hi) * s + si) * d + di] =
                        flat[((bi * s + si) * h + hi) * d + di];
                }
            }
        }
    }
    out
}

/// `concat(past, new)` on the sequence axis of `[B, Hkv, ·, d]`.
fn present(plan: &AttentionPlan, past: Option<Vec<f64>>, new: &[f64], d: usize) -> Vec<f64> {
    let Some(past) = past else {
        return new.to_vec();
    };
    let (p, s) = (plan.past_len * d, plan.kv_len * d);
    (0..plan.batch * plan.kv_heads)
        .flat_map(|g| {
            past[g * p..(g + 1) * p]
                .iter()
                .chain(&new[g * s..(g + 1) * s])
        })
        .copied()
        .collect()
}

fn operands(ctx: &OpCtx, x: &[Option<&RefTensor>], plan: &AttentionPlan) -> OpResult<Operands> {
    let (b, hq, hk) = (plan.batch, plan.q_heads, plan.kv_heads);
    let q = to_bhsd(plan, floats(ctx, x, 0)?, [b, hq, plan.q_len, plan.head]);
    let k = to_bhsd(plan, floats(ctx, x, 1)?, [b, hk, plan.kv_len, plan.head]);
    let v = to_bhsd(plan, floats(ctx, x, 2)?, [b, hk, plan.kv_len, plan.v_head]);
    let past = |i: usize| match plan.past_len {
        0 => Ok(None),
        _ => floats(ctx, x, i).map(Some),
    };
    Ok(Operands {
        k: present(plan, past(4)?, &k, plan.head),
        v: present(plan, past(5)?, &v, plan.v_head),
        q,
        bias: plan.bias(),
    })
}

/// Softmax of `z`: NaN throughout when every entry is −∞.
fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// Query row `i` of head `h` in batch `b`.
fn row(plan: &AttentionPlan, o: &Operands, b: usize, h: usize, i: usize) -> Row {
    let (d, t) = (plan.head, plan.total());
    let kh = b * plan.kv_heads + h / plan.group();
    let q = &o.q[((b * plan.q_heads + h) * plan.q_len + i) * d..][..d];
    let raw: Vec<f64> = (0..t)
        .map(|j| {
            let k = &o.k[(kh * t + j) * d..][..d];
            plan.scale * q.iter().zip(k).map(|(a, c)| a * c).sum::<f64>()
        })
        .collect();
    let at = ((b * plan.q_heads + h) * plan.q_len + i) * t;
    let biased: Vec<f64> = match &o.bias {
        Some(bias) => raw
            .iter()
            .zip(&bias[at..at + t])
            .map(|(r, m)| r + m)
            .collect(),
        None => raw.clone(),
    };
    let c = plan.softcap;
    let capped: Vec<f64> = match c > 0.0 {
        true => biased.iter().map(|v| c * (v / c).tanh()).collect(),
        false => biased.clone(),
    };
    let p = softmax(&capped);
    Row {
        raw,
        biased,
        capped,
        p,
    }
}

/// Every row of every head, in `[B, Hq, Sq]` order.
fn rows(plan: &AttentionPlan, o: &Operands) -> Vec<Row> {
    let mut out = Vec::with_capacity(plan.batch * plan.q_heads * plan.q_len);
    for b in 0..plan.batch {
        for h in 0..plan.q_heads {
            out.extend((0..plan.q_len).map(|i| row(plan, o, b, h, i)));
        }
    }
    out
}

/// The flat offset of `Y[b, h, i, e]` in the node's layout.
fn y_offset(plan: &AttentionPlan, b: usize, h: usize, i: usize, e: usize) -> usize {
    let (hq, s, dv) = (plan.q_heads, plan.q_len, plan.v_head);
    match plan.three_d {
        true => ((b * s + i) * hq + h) * dv + e,
        false => ((b * hq + h) * s + i) * dv + e,
    }
}

/// `Σⱼ f(row, j, v[j, e])` for every `Y` element (`row` indexes
/// `[B, Hq, Sq]`), in the node's layout.
fn weighted(plan: &AttentionPlan, o: &Operands, f: impl Fn(usize, usize, f64) -> f64) -> Vec<f64> {
    let (t, dv) = (plan.total(), plan.v_head);
    let mut y = vec![0.0; plan.batch * plan.q_heads * plan.q_len * dv];
    for b in 0..plan.batch {
        for h in 0..plan.q_heads {
            let kh = b * plan.kv_heads + h / plan.group();
            for i in 0..plan.q_len {
                let r = (b * plan.q_heads + h) * plan.q_len + i;
                for e in 0..dv {
                    y[y_offset(plan, b, h, i, e)] =
                        (0..t).map(|j| f(r, j, o.v[(kh * t + j) * dv + e])).sum();
                }
            }
        }
    }
    y
}

fn float(shape: &[usize], flat: Vec<f64>, like: &RefTensor) -> RefTensor {
    let a = ArrayD::from_shape_vec(IxDyn(shape), flat).expect("shape matches");
    RefTensor::float(a, like.dtype)
}

fn attention(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let plan = AttentionPlan::decode(ctx, x)?;
    let o = operands(ctx, x, &plan)?;
    let rows = rows(&plan, &o);
    let y = weighted(&plan, &o, |r, j, v| rows[r].p[j] * v);
    let (q, k, v) = (ctx.input(x, 0)?, ctx.input(x, 1)?, ctx.input(x, 2)?);
    let (b, hk, t) = (plan.batch, plan.kv_heads, plan.total());
    let scores = |r: &Row| -> Vec<f64> {
        match plan.mode {
            QkMode::Raw => r.raw.clone(),
            QkMode::Biased => r.biased.clone(),
            QkMode::Capped => r.capped.clone(),
            QkMode::Softmax => r.p.clone(),
        }
    };
    let qk: Vec<f64> = rows.iter().flat_map(scores).collect();
    let outputs = vec![
        Some(float(&plan.y_shape(), y, q)),
        ctx.wants_output(1)
            .then(|| float(&[b, hk, t, plan.head], o.k.clone(), k)),
        ctx.wants_output(2)
            .then(|| float(&[b, hk, t, plan.v_head], o.v.clone(), v)),
        ctx.wants_output(3)
            .then(|| float(&[b, plan.q_heads, plan.q_len, t], qk, q)),
    ];
    Ok(Lowered {
        outputs,
        how: How::Spec,
    })
}

/// K and `Σ|terms|` of `Y` on `inputs`, for its local error bound: with
/// `K = D + T + 4`, `γ(K)·Σⱼ pⱼ|vⱼ|·(3 + 2A + |zⱼ − max z|)` covers the
/// second product's sum (γ(T)), the softmax's exps and sum (the exponent's
/// rounding relative to `|zⱼ − max z|`, and γ(T)), and twice the largest
/// score error `γ(D+1)·A` it carries, where
/// `A = maxⱼ |scale|·Σ|q·kⱼ| + |biasⱼ| + 10·c` over the keys with a finite
/// bias (10·c: the softcap's tanh and division; a −∞ bias capped is exactly
/// −c). A fully masked row has no terms.
pub fn bound_terms(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<(usize, Vec<f64>)> {
    let plan = AttentionPlan::decode(ctx, x)?;
    let mut o = operands(ctx, x, &plan)?;
    let abs = |v: &[f64]| v.iter().map(|a| a.abs()).collect::<Vec<f64>>();
    let (q, k) = (abs(&o.q), abs(&o.k));
    let bias = o.bias.take();
    let (signed_q, signed_k) = (
        std::mem::replace(&mut o.q, q),
        std::mem::replace(&mut o.k, k),
    );
    let sizes = rows(&plan, &o);
    o.q = signed_q;
    o.k = signed_k;
    o.bias = bias;
    let rows = rows(&plan, &o);
    let spread: Vec<(f64, f64)> = rows
        .iter()
        .zip(&sizes)
        .map(|(r, s)| {
            let live = (0..r.p.len()).filter(|&j| r.p[j] > 0.0);
            // A −∞ bias (capped to exactly −c) carries no score error.
            let a = live
                .clone()
                .filter(|&j| r.biased[j].is_finite())
                .map(|j| s.raw[j].abs() + (r.biased[j] - r.raw[j]).abs())
                .fold(0.0, f64::max);
            let max = live.map(|j| r.capped[j]).fold(f64::NEG_INFINITY, f64::max);
            (3.0 + 2.0 * (a + 10.0 * plan.softcap), max)
        })
        .collect();
    let m = weighted(&plan, &o, |i, j, v| {
        let ((base, max), r) = (spread[i], &rows[i]);
        match r.p[j] > 0.0 {
            true => r.p[j] * v.abs() * (base + (r.capped[j] - max).abs()),
            false => 0.0,
        }
    });
    Ok((plan.head + plan.total() + 4, m))
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use crate::graph::Attr;

    #[test]
    fn two_keys_mix_by_their_softmax_and_causal_keeps_the_first() {
        // One head of size 1: q = 1, keys 0 and ln 3 (scale 1), values 4, 8:
        // p = (1/4, 3/4), y = 7; causal row 0 sees key 0 only: y = 4.
        let (q, k, v) = (
            f(&[1, 1, 1, 1], &[1.]),
            f(&[1, 1, 2, 1], &[0., 3f64.ln()]),
            f(&[1, 1, 2, 1], &[4., 8.]),
        );
        let run = |attrs| {
            let n = test_node("Attention", 3, 1, attrs);
            run_op(&n, 23, &[Some(&q), Some(&k), Some(&v)])
                .unwrap()
                .remove(0)
                .unwrap()
                .data
                .to_f64_vec()
        };
        let y = run(vec![("scale", Attr::Float(1.0))]);
        assert!((y[0] - 7.0).abs() < 1e-12, "{y:?}");
        let y = run(vec![
            ("scale", Attr::Float(1.0)),
            ("is_causal", Attr::Int(1)),
        ]);
        assert_eq!(y, vec![4.0]);
    }
}
