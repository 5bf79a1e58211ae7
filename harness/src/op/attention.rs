//! Attention-23/24 (<https://onnx.ai/onnx/operators/onnx__Attention.html>):
//! scaled dot-product attention, `Y = softmax(softcap(scale·Q·Kᵀ + bias))·V`
//! per batch and query head. Opset 23 introduced it; opset 24 added the
//! `nonpad_kv_seqlen` input (a per-batch count of valid keys).
//!
//! The conventions this decode fixes once, read from the spec text:
//! - layout: `Q` `[B, Hq, Sq, D]` and `K`/`V` `[B, Hkv, S, D|Dv]`, or 3-D
//!   `[B, S, H·D]` split into `q_num_heads`/`kv_num_heads` heads; `Y` keeps
//!   the input's rank, the present caches are always 4-D;
//! - the KV cache: `present = concat(past, new)` on the sequence axis, so
//!   the total length is `T = P + S`;
//! - GQA/MQA: query head `h` reads key/value head `h / (Hq / Hkv)`;
//! - `scale` defaults to `1/√D`;
//! - the bias: a boolean `attn_mask` attends where true (false is −∞), a
//!   float one is added; a mask shorter than `T` is padded with −∞;
//!   `is_causal` masks key `j > P + i` for query `i` (the upper-left
//!   causal alignment of the new keys, shifted by the past), whatever the
//!   mask; `nonpad_kv_seqlen[b]` masks keys `j ≥ n_b`;
//! - `softcap > 0` caps `c·tanh(x/c)` *after* the bias is added (a masked
//!   −∞ logit becomes −c), before the softmax;
//! - `qk_matmul_output` is the scaled `Q·Kᵀ` (mode 0), plus the bias (1),
//!   after the softcap (2) or after the softmax (3);
//! - a fully masked row is a softmax of −∞ only: NaN, as the formula gives.
//!
//! The reference and both compositions consume the plan and its
//! [`AttentionPlan::bias`]; libtorch's native SDPA takes the user's mask or
//! `is_causal` where they mean the same (see [`AttentionPlan::sdpa_route`]).

use super::{optional, HostView, OpCtx, OpResult};

/// What `qk_matmul_output` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QkMode {
    /// The scaled `Q·Kᵀ`.
    Raw,
    /// Plus the bias (mask, causal, padding).
    Biased,
    /// After the softcap.
    Capped,
    /// After the softmax.
    Softmax,
}

/// The attention mask input, as the plan reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// Its shape right-aligned to `[B, Hq, Sq, Tm]` (ones in front).
    pub dims: [usize; 4],
    /// True for a non-float mask (nonzero attends), false for an additive one.
    pub boolean: bool,
    /// Its values widened to f64 (a boolean mask as 0/1).
    pub values: Vec<f64>,
}

/// How libtorch's native `scaled_dot_product_attention` can take the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpaRoute {
    /// No bias at all.
    Plain,
    /// SDPA's own `is_causal` (upper-left, which is the spec's without a past).
    Causal,
    /// The node's `attn_mask` tensor as it is (bool: true attends; float: added).
    UserMask,
    /// The decoded bias as an additive float mask.
    Bias,
    /// Not SDPA: a softcap or a `qk_matmul_output` (compose it).
    Composed,
}

/// Attention's decoded node.
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionPlan {
    /// The inputs are 3-D `[B, S, H·D]` (else 4-D).
    pub three_d: bool,
    pub batch: usize,
    pub q_heads: usize,
    pub kv_heads: usize,
    pub q_len: usize,
    /// The new keys' length `S` (without the past).
    pub kv_len: usize,
    pub past_len: usize,
    /// The head size of `Q` and `K`.
    pub head: usize,
    /// The head size of `V`.
    pub v_head: usize,
    pub scale: f64,
    pub causal: bool,
    /// The softcap `c` (0: off).
    pub softcap: f64,
    pub mode: QkMode,
    pub mask: Option<Mask>,
    /// `nonpad_kv_seqlen` (opset 24).
    pub nonpad: Option<Vec<usize>>,
}

/// `[B, H, S, D]` of a 3-D (`heads` from an attribute) or 4-D input.
fn heads_of(ctx: &OpCtx, name: &str, dims: &[usize], heads: i64) -> OpResult<[usize; 4]> {
    match *dims {
        [b, h, s, d] => Ok([b, h, s, d]),
        [b, s, hidden] if heads > 0 && hidden % heads as usize == 0 => {
            Ok([b, heads as usize, s, hidden / heads as usize])
        }
        _ => Err(ctx.fail(format!(
            "input `{name}` {dims:?} is neither 4-D nor 3-D with a head count ({heads}) dividing its last axis"
        ))),
    }
}

impl AttentionPlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<AttentionPlan> {
        let (q, k, v) = (
            ctx.input(x, 0)?.dims(),
            ctx.input(x, 1)?.dims(),
            ctx.input(x, 2)?.dims(),
        );
        if q.len() != k.len() || k.len() != v.len() {
            return Err(ctx.fail(format!(
                "Q {q:?}, K {k:?} and V {v:?} must have the same rank"
            )));
        }
        let (qh, kvh) = (ctx.int("q_num_heads", 0)?, ctx.int("kv_num_heads", 0)?);
        let [batch, q_heads, q_len, head] = heads_of(ctx, "Q", &q, qh)?;
        let [kb, kv_heads, kv_len, kd] = heads_of(ctx, "K", &k, kvh)?;
        let [vb, vh, vs, v_head] = heads_of(ctx, "V", &v, kvh)?;
        if (kb, vb) != (batch, batch) || vh != kv_heads || vs != kv_len || kd != head {
            return Err(ctx.fail(format!(
                "K {k:?} and V {v:?} do not fit Q {q:?} (batch, heads, sequence and head size)"
            )));
        }
        if kv_heads == 0 || q_heads % kv_heads != 0 {
            return Err(ctx.fail(format!(
                "{q_heads} query heads are not a multiple of {kv_heads} key/value heads"
            )));
        }
        let past_len = past_len(ctx, x, [batch, kv_heads, head, v_head])?;
        let mode = match ctx.int("qk_matmul_output_mode", 0)? {
            0 => QkMode::Raw,
            1 => QkMode::Biased,
            2 => QkMode::Capped,
            3 => QkMode::Softmax,
            m => return Err(ctx.attr_error("qk_matmul_output_mode", format!("{m} is not 0..3"))),
        };
        let scale = match ctx.has("scale") {
            true => ctx.float("scale", 1.0)? as f64,
            false => 1.0 / (head as f64).sqrt(),
        };
        let mut plan = AttentionPlan {
            three_d: q.len() == 3,
            batch,
            q_heads,
            kv_heads,
            q_len,
            kv_len,
            past_len,
            head,
            v_head,
            scale,
            causal: ctx.int("is_causal", 0)? != 0,
            softcap: (ctx.float("softcap", 0.0)? as f64).max(0.0),
            mode,
            mask: None,
            nonpad: None,
        };
        plan.mask = plan.decode_mask(ctx, x)?;
        plan.nonpad = plan.decode_nonpad(ctx, x)?;
        Ok(plan)
    }

    fn decode_mask<T: HostView>(&self, ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<Option<Mask>> {
        let Some(m) = optional(x, 3) else {
            return Ok(None);
        };
        let md = m.dims();
        let full = [self.batch, self.q_heads, self.q_len, self.total()];
        let mut dims = [1; 4];
        let fits = md.len() <= 4 && !md.is_empty() && {
            dims[4 - md.len()..].copy_from_slice(&md);
            (0..3).all(|a| dims[a] == 1 || dims[a] == full[a]) && dims[3] <= full[3]
        };
        if !fits {
            return Err(ctx.fail(format!(
                "attn_mask {md:?} does not broadcast to {full:?} (its last axis may be shorter)"
            )));
        }
        Ok(Some(Mask {
            dims,
            boolean: !m.is_float(),
            values: m.host_floats()?,
        }))
    }

    fn decode_nonpad<T: HostView>(
        &self,
        ctx: &OpCtx,
        x: &[Option<&T>],
    ) -> OpResult<Option<Vec<usize>>> {
        let Some(n) = optional(x, 6) else {
            return Ok(None);
        };
        if self.past_len > 0 {
            return Err(ctx.fail("nonpad_kv_seqlen cannot be used with past_key/past_value"));
        }
        let n = n.host_ints()?;
        if n.len() != self.batch || n.iter().any(|&v| v < 0) {
            return Err(ctx.fail(format!(
                "nonpad_kv_seqlen {n:?} must hold {} counts ≥ 0",
                self.batch
            )));
        }
        Ok(Some(n.into_iter().map(|v| v as usize).collect()))
    }

    /// The total key length `T = P + S`.
    pub fn total(&self) -> usize {
        self.past_len + self.kv_len
    }

    /// Query heads per key/value head.
    pub fn group(&self) -> usize {
        self.q_heads / self.kv_heads
    }

    /// The additive bias at `(b, h, i, j)` of `[B, Hq, Sq, T]`: the mask
    /// (−∞ where a boolean is false or past a short mask's end), −∞ where
    /// causality or `nonpad_kv_seqlen` hides key `j`.
    pub fn bias_at(&self, b: usize, h: usize, i: usize, j: usize) -> f64 {
        let hidden = (self.causal && j > self.past_len + i)
            || self.nonpad.as_ref().is_some_and(|n| j >= n[b]);
        let mask = self.mask.as_ref().map_or(0.0, |m| {
            let [mb, mh, mi, mt] = m.dims;
            if j >= mt {
                return f64::NEG_INFINITY;
            }
            let at = |v: usize, n: usize| if n == 1 { 0 } else { v };
            let v = m.values[((at(b, mb) * mh + at(h, mh)) * mi + at(i, mi)) * mt + j];
            match (m.boolean, v != 0.0) {
                (true, true) => 0.0,
                (true, false) => f64::NEG_INFINITY,
                (false, _) => v,
            }
        });
        if hidden {
            f64::NEG_INFINITY
        } else {
            mask
        }
    }

    /// The whole bias `[B, Hq, Sq, T]` flat, or `None` when nothing masks.
    pub fn bias(&self) -> Option<Vec<f64>> {
        if self.mask.is_none() && !self.causal && self.nonpad.is_none() {
            return None;
        }
        let mut out = Vec::with_capacity(self.batch * self.q_heads * self.q_len * self.total());
        for b in 0..self.batch {
            for h in 0..self.q_heads {
                for i in 0..self.q_len {
                    out.extend((0..self.total()).map(|j| self.bias_at(b, h, i, j)));
                }
            }
        }
        Some(out)
    }

    /// How libtorch's `scaled_dot_product_attention` can compute `Y`:
    /// SDPA has no softcap and returns no scores; its `is_causal` is the
    /// upper-left alignment, the spec's only without a past; the node's own
    /// mask goes through as it is when nothing else masks and it spans `T`.
    pub fn sdpa_route(&self, wants_scores: bool) -> SdpaRoute {
        let only_mask = !self.causal && self.nonpad.is_none();
        match &self.mask {
            _ if self.softcap > 0.0 || wants_scores => SdpaRoute::Composed,
            None if only_mask => SdpaRoute::Plain,
            None if self.causal && self.past_len == 0 && self.nonpad.is_none() => SdpaRoute::Causal,
            Some(m) if only_mask && m.dims[3] == self.total() => SdpaRoute::UserMask,
            _ => SdpaRoute::Bias,
        }
    }

    /// The 4-D `[B, Hq, Sq, Dv]` shape of `Y` before a 3-D input's merge.
    pub fn y_dims(&self) -> [usize; 4] {
        [self.batch, self.q_heads, self.q_len, self.v_head]
    }

    /// `Y`'s shape as the node returns it.
    pub fn y_shape(&self) -> Vec<usize> {
        match self.three_d {
            true => vec![self.batch, self.q_len, self.q_heads * self.v_head],
            false => self.y_dims().to_vec(),
        }
    }
}

/// The past length `P`, after checking `past_key` `[B, Hkv, P, D]` and
/// `past_value` `[B, Hkv, P, Dv]` come together.
fn past_len<T: HostView>(ctx: &OpCtx, x: &[Option<&T>], bhdv: [usize; 4]) -> OpResult<usize> {
    let [b, h, d, dv] = bhdv;
    match (optional(x, 4), optional(x, 5)) {
        (None, None) => Ok(0),
        (Some(pk), Some(pv)) => {
            let (k, v) = (pk.dims(), pv.dims());
            match (&k[..], &v[..]) {
                (&[kb, kh, p, kd], &[vb, vh, pv, vd])
                    if [kb, kh, kd, vb, vh, pv, vd] == [b, h, d, b, h, p, dv] =>
                {
                    Ok(p)
                }
                _ => Err(ctx.fail(format!(
                    "past_key {k:?} / past_value {v:?} are not [{b}, {h}, P, {d}] / [{b}, {h}, P, {dv}]"
                ))),
            }
        }
        _ => Err(ctx.fail("past_key and past_value must be given together")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Attr, Node};
    use crate::op::test_node;
    use crate::tensor::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn zeros(shape: &[usize]) -> Tensor {
        Tensor::F32(ArrayD::zeros(IxDyn(shape)))
    }
    fn decode(node: &Node, x: &[Option<&Tensor>]) -> OpResult<AttentionPlan> {
        crate::op::with_node(node, 23, |ctx| AttentionPlan::decode(ctx, x))
    }

    #[test]
    fn three_d_splits_heads_and_gqa_groups() {
        let n = test_node(
            "Attention",
            3,
            1,
            vec![
                ("q_num_heads", Attr::Int(4)),
                ("kv_num_heads", Attr::Int(2)),
            ],
        );
        let (q, k, v) = (zeros(&[2, 3, 16]), zeros(&[2, 5, 8]), zeros(&[2, 5, 6]));
        let p = decode(&n, &[Some(&q), Some(&k), Some(&v)]).unwrap();
        assert_eq!((p.q_heads, p.kv_heads, p.head, p.v_head), (4, 2, 4, 3));
        assert_eq!((p.group(), p.scale), (2, 0.5));
        assert_eq!(p.y_shape(), vec![2, 3, 12]);
        assert_eq!(p.bias(), None);
        assert_eq!(p.sdpa_route(false), SdpaRoute::Plain);
        let odd = test_node(
            "Attention",
            3,
            1,
            vec![
                ("q_num_heads", Attr::Int(4)),
                ("kv_num_heads", Attr::Int(3)),
            ],
        );
        let k3 = zeros(&[2, 5, 12]);
        assert!(decode(&odd, &[Some(&q), Some(&k3), Some(&k3)]).is_err());
    }

    #[test]
    fn causal_is_aligned_after_the_past_and_short_masks_pad_with_minus_infinity() {
        let n = test_node("Attention", 6, 1, vec![("is_causal", Attr::Int(1))]);
        let (q, k) = (zeros(&[1, 1, 2, 4]), zeros(&[1, 1, 2, 4]));
        let past = zeros(&[1, 1, 1, 4]);
        let mask = Tensor::Bool(
            ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![true, false, true, true]).unwrap(),
        );
        let p = decode(
            &n,
            &[
                Some(&q),
                Some(&k),
                Some(&k),
                Some(&mask),
                Some(&past),
                Some(&past),
            ],
        )
        .unwrap();
        assert_eq!(p.total(), 3);
        let inf = f64::NEG_INFINITY;
        // Row 0 sees keys 0..=1 (past 1 + i 0), row 1 all three; the mask
        // hides (0, 1), its missing third column is −∞.
        assert_eq!(p.bias().unwrap(), vec![0.0, inf, inf, 0.0, 0.0, inf]);
        assert_eq!(p.sdpa_route(false), SdpaRoute::Bias);
        assert_eq!(p.sdpa_route(true), SdpaRoute::Composed);
        let alone = test_node("Attention", 3, 1, vec![("is_causal", Attr::Int(1))]);
        let p = decode(&alone, &[Some(&q), Some(&k), Some(&k)]).unwrap();
        assert_eq!(p.bias().unwrap(), vec![0.0, inf, 0.0, 0.0]);
        assert_eq!(p.sdpa_route(false), SdpaRoute::Causal);
        assert!(decode(&n, &[Some(&q), Some(&k), Some(&k), None, Some(&past), None]).is_err());
    }
}
