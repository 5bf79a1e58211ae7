//! libtorch lowering of Attention-23/24. `Y` is torch's own
//! `scaled_dot_product_attention` wherever it means what the node means:
//! the scale passed through, GQA by `enable_gqa` (torch's
//! `repeat_interleave`: query head `h` reads key head `h / group`, as the
//! spec), its `is_causal` (upper-left, the spec's alignment without a past),
//! the node's own mask (bool attends where true, float is added, as the
//! spec), or else the decoded bias as an additive mask. SDPA has no softcap
//! and returns no scores, so a softcap or a `qk_matmul_output` is composed
//! from torch's matmul, tanh and softmax. The present caches are `cat`.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::attention::{AttentionPlan, QkMode, SdpaRoute};
use crate::op::optional;

const SDPA: &str = "scaled_dot_product_attention";
const HOW: &str = "matmul, mul, add, tanh, softmax, matmul, repeat_interleave";

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "Attention",
        23,
        u32::MAX,
        attention,
        spec!("Attention"),
        cov![
            "no softcap, no qk_matmul_output: no mask, or is_causal without a past" => Label::Native("scaled_dot_product_attention (is_causal)"),
            "no softcap, no qk_matmul_output: attn_mask alone, spanning the keys" => Label::Native("scaled_dot_product_attention (attn_mask)"),
            "no softcap, no qk_matmul_output: is_causal after a past, a short mask, nonpad_kv_seqlen" => Label::Native("scaled_dot_product_attention (attn_mask = the decoded bias)"),
            "softcap, or qk_matmul_output asked for" => Label::Composed(HOW),
        ],
    );
}

/// A 3-D `[B, S, H·D]` input as `[B, H, S, D]` (a 4-D one as it is).
fn heads(plan: &AttentionPlan, t: &Tensor, h: usize) -> OpResult<Tensor> {
    if !plan.three_d {
        return Ok(t.shallow_clone());
    }
    let s = t.size();
    Ok(t.f_reshape([s[0], s[1], h as i64, -1])?
        .f_permute([0, 2, 1, 3])?)
}

/// `concat(past, new)` on the sequence axis.
fn present(new: Tensor, past: Option<&Tensor>) -> OpResult<Tensor> {
    Ok(match past {
        Some(p) => Tensor::f_cat(&[p, &new], 2)?,
        None => new,
    })
}

/// The decoded bias `[B, Hq, Sq, T]` in `like`'s kind and device.
fn bias(plan: &AttentionPlan, like: &Tensor) -> OpResult<Option<Tensor>> {
    let Some(b) = plan.bias() else {
        return Ok(None);
    };
    let dims = [plan.batch, plan.q_heads, plan.q_len, plan.total()].map(|d| d as i64);
    Ok(Some(
        Tensor::from_slice(&b)
            .f_reshape(dims)?
            .f_to_kind(like.kind())?
            .f_to_device(like.device())?,
    ))
}

/// `Y` by SDPA, with the mask `route` chooses.
fn sdpa(
    plan: &AttentionPlan,
    route: SdpaRoute,
    [q, k, v]: [&Tensor; 3],
    user_mask: Option<&Tensor>,
) -> OpResult<Tensor> {
    let mask = match route {
        SdpaRoute::UserMask => user_mask.map(Tensor::shallow_clone),
        SdpaRoute::Bias => bias(plan, q)?,
        _ => None,
    };
    let causal = route == SdpaRoute::Causal;
    Ok(Tensor::f_scaled_dot_product_attention(
        q,
        k,
        v,
        mask,
        0.0,
        causal,
        plan.scale,
        plan.group() > 1,
    )?)
}

/// `Y` and the scores of `plan.mode`, composed.
fn composed(plan: &AttentionPlan, [q, k, v]: [&Tensor; 3]) -> OpResult<(Tensor, Tensor)> {
    let g = plan.group() as i64;
    let spread = |t: &Tensor| -> OpResult<Tensor> {
        Ok(match g {
            1 => t.shallow_clone(),
            _ => t.f_repeat_interleave_self_int(g, 1, None)?,
        })
    };
    let raw = q
        .f_matmul(&spread(k)?.f_transpose(-2, -1)?)?
        .f_mul_scalar(plan.scale)?;
    let biased = match bias(plan, q)? {
        Some(b) => raw.f_add(&b)?,
        None => raw.shallow_clone(),
    };
    let c = plan.softcap;
    let capped = match c > 0.0 {
        true => biased.f_div_scalar(c)?.f_tanh()?.f_mul_scalar(c)?,
        false => biased.shallow_clone(),
    };
    let p = capped.f_softmax(-1, q.kind())?;
    let y = p.f_matmul(&spread(v)?)?;
    let scores = match plan.mode {
        QkMode::Raw => raw,
        QkMode::Biased => biased,
        QkMode::Capped => capped,
        QkMode::Softmax => p,
    };
    Ok((y, scores))
}

fn attention(ctx: &OpCtx, x: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    let plan = AttentionPlan::decode(ctx, x)?;
    let q = heads(&plan, ctx.input(x, 0)?, plan.q_heads)?;
    let k = present(
        heads(&plan, ctx.input(x, 1)?, plan.kv_heads)?,
        optional(x, 4),
    )?;
    let v = present(
        heads(&plan, ctx.input(x, 2)?, plan.kv_heads)?,
        optional(x, 5),
    )?;
    let wants_scores = ctx.wants_output(3);
    let (y, scores, how) = match plan.sdpa_route(wants_scores) {
        SdpaRoute::Composed => {
            let (y, s) = composed(&plan, [&q, &k, &v])?;
            (y, Some(s), How::composed(HOW))
        }
        route => (
            sdpa(&plan, route, [&q, &k, &v], optional(x, 3))?,
            None,
            How::native(SDPA),
        ),
    };
    let y = match plan.three_d {
        true => y
            .f_permute([0, 2, 1, 3])?
            .f_reshape(plan.y_shape().iter().map(|&d| d as i64).collect::<Vec<_>>())?,
        false => y.f_contiguous()?,
    };
    let scores = scores.map(|s| s.f_contiguous()).transpose()?;
    let outputs = vec![
        Some(y),
        ctx.wants_output(1).then_some(k.f_contiguous()?),
        ctx.wants_output(2).then_some(v.f_contiguous()?),
        scores.filter(|_| wants_scores),
    ];
    Ok(Lowered { outputs, how })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    #[test]
    fn sdpa_and_the_composition_agree_and_softcap_caps_a_masked_key_at_minus_c() {
        // One head of size 1: q = 1, keys 0 and ln 3, values 4 and 8.
        let (q, k, v) = (
            f32s(&[1, 1, 1, 1], &[1.]),
            f32s(&[1, 1, 2, 1], &[0., 3f32.ln()]),
            f32s(&[1, 1, 2, 1], &[4., 8.]),
        );
        let scale = ("scale", Attr::Float(1.0));
        let n = node("Attention", 3, 1, vec![scale.clone()]);
        let y = run(&n, 23, &[Some(&q), Some(&k), Some(&v)]).unwrap();
        assert!((vals(y.outputs[0].as_ref().unwrap())[0] - 7.0).abs() < 1e-5);
        // The softcap applies after the mask: the hidden key 1's −∞ becomes
        // −c = −1, so it keeps a weight e^{-1} against key 0's e^{tanh 0}.
        let mask = f32s(&[1, 2], &[0., f32::NEG_INFINITY]);
        let n = node(
            "Attention",
            4,
            1,
            vec![scale, ("softcap", Attr::Float(1.0))],
        );
        let y = run(&n, 23, &[Some(&q), Some(&k), Some(&v), Some(&mask)]).unwrap();
        let (a, b) = (0f64.tanh().exp(), (-1f64).exp());
        let want = (4.0 * a + 8.0 * b) / (a + b);
        assert!((vals(y.outputs[0].as_ref().unwrap())[0] - want).abs() < 1e-5);
    }
}
