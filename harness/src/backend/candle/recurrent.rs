//! candle lowerings of RNN, GRU and LSTM (7, 14), composed: candle has no
//! recurrent op, so each direction runs the spec's step loop over the whole
//! batch from candle ops (`matmul` with the transposed `W`/`R`, broadcast
//! bias adds, the activations, `clamp` for `clip`, and a host mask through
//! `where_cond` for `sequence_lens`). This is xdiff's own code, checked
//! against the reference.

use candle_core::Tensor;

use super::Ce;
use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::optional;
use crate::op::recurrent::{Act, Cell, RecurrentPlan};

const STEPS: &str = "step loop: matmul, broadcast_add, mul, sigmoid, tanh, relu, clamp, where_cond";

pub fn register(r: &mut OpRegistry<Tensor>) {
    let rows = cov!["all attributes" => Label::Composed(STEPS)];
    r.range("RNN", 7, u32::MAX, recurrent, spec!("RNN"), rows);
    r.range("GRU", 7, u32::MAX, recurrent, spec!("GRU"), rows);
    r.range("LSTM", 7, u32::MAX, recurrent, spec!("LSTM"), rows);
}

/// One direction's weights: transposed `[n, G·H]` matrices, `[G·H]` biases.
struct Dir {
    w: Tensor,
    r: Tensor,
    wb: Tensor,
    rb: Tensor,
    p: Option<Tensor>,
}

fn recurrent(ctx: &OpCtx, x: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    let plan = RecurrentPlan::decode(ctx, x)?;
    let xs = ctx.input(x, 0)?;
    let (dirs, batch, hidden) = (plan.dirs(), plan.batch, plan.hidden);
    let gh = plan.cell.gates() * hidden;
    let seq_first = |t: &Tensor| -> OpResult<Tensor> {
        match plan.batch_first {
            true => t.transpose(0, 1).ce()?.contiguous().ce(),
            false => Ok(t.clone()),
        }
    };
    let xs = seq_first(xs)?;
    let zeros = |shape: &[usize]| Tensor::zeros(shape, xs.dtype(), xs.device()).ce();
    let state = |i: usize| -> OpResult<Tensor> {
        match optional(x, i) {
            Some(t) => seq_first(t),
            None => zeros(&[dirs, batch, hidden]),
        }
    };
    let (h0, c0) = (state(5)?, state(6)?);
    let bias = match optional(x, 3) {
        Some(b) => b.clone(),
        None => zeros(&[dirs, 2 * gh])?,
    };
    let (mut ys, mut hs, mut cs) = (vec![], vec![], vec![]);
    for d in 0..dirs {
        let b = bias.get(d).ce()?;
        let dir = Dir {
            w: ctx.input(x, 1)?.get(d).ce()?.t().ce()?.contiguous().ce()?,
            r: ctx.input(x, 2)?.get(d).ce()?.t().ce()?.contiguous().ce()?,
            wb: b.narrow(0, 0, gh).ce()?,
            rb: b.narrow(0, gh, gh).ce()?,
            p: optional(x, 7).map(|p| p.get(d).ce()).transpose()?,
        };
        let (mut h, mut c) = (h0.get(d).ce()?, c0.get(d).ce()?);
        let mut y = vec![h.zeros_like().ce()?; plan.seq];
        for t in plan.steps(d) {
            let (nh, nc) = step(&plan, d, &dir, &xs.get(t).ce()?, &h, &c)?;
            match live_mask(&plan, t, &h)? {
                None => {
                    y[t] = nh.clone();
                    (h, c) = (nh, nc);
                }
                Some(m) => {
                    y[t] = m.where_cond(&nh, &y[t]).ce()?;
                    h = m.where_cond(&nh, &h).ce()?;
                    c = m.where_cond(&nc, &c).ce()?;
                }
            }
        }
        ys.push(Tensor::stack(&y, 0).ce()?);
        hs.push(h);
        cs.push(c);
    }
    let y = Tensor::stack(&ys, 1).ce()?;
    let out_state = |v: Vec<Tensor>| -> OpResult<Tensor> { seq_first(&Tensor::stack(&v, 0).ce()?) };
    let y = match plan.batch_first {
        true => y.permute((2, 0, 1, 3)).ce()?.contiguous().ce()?,
        false => y,
    };
    let mut ts = vec![y, out_state(hs)?];
    if plan.cell == Cell::Lstm {
        ts.push(out_state(cs)?);
    }
    Ok(Lowered::many(ts, How::composed(STEPS)))
}

/// Which batch entries step `t` updates (`None`: all of them).
fn live_mask(plan: &RecurrentPlan, t: usize, like: &Tensor) -> OpResult<Option<Tensor>> {
    if plan.full_lengths() {
        return Ok(None);
    }
    let mask: Vec<u8> = plan
        .lens
        .iter()
        .flat_map(|&l| std::iter::repeat_n(u8::from(t < l), plan.hidden))
        .collect();
    Ok(Some(
        Tensor::from_vec(mask, like.dims(), like.device()).ce()?,
    ))
}

fn act(a: Act, x: &Tensor) -> OpResult<Tensor> {
    act_c(a, x).ce()
}

fn act_c(a: Act, x: &Tensor) -> candle_core::Result<Tensor> {
    let neg = |x: &Tensor| x.clamp(f64::MIN, 0.0);
    match a {
        Act::Relu => x.relu(),
        Act::Tanh => x.tanh(),
        Act::Sigmoid => candle_nn::ops::sigmoid(x),
        Act::Affine(a, b) => x.affine(a, b),
        Act::LeakyRelu(a) => x.relu().and_then(|p| p + neg(x)?.affine(a, 0.0)?),
        Act::ThresholdedRelu(a) => x.gt(a).and_then(|m| m.where_cond(x, &x.zeros_like()?)),
        Act::ScaledTanh(a, b) => x.affine(b, 0.0)?.tanh()?.affine(a, 0.0),
        Act::HardSigmoid(a, b) => x.affine(a, b)?.clamp(0.0, 1.0),
        Act::Elu(a) => x.relu().and_then(|p| p + neg(x)?.exp()?.affine(a, -a)?),
        Act::Softsign => x.abs()?.affine(1.0, 1.0).and_then(|d| x / d),
        Act::Softplus => x.exp()?.affine(1.0, 1.0)?.log(),
    }
}

/// One step over the whole batch: `x` `[B, I]`, `h`/`c` `[B, H]`.
fn step(
    plan: &RecurrentPlan,
    d: usize,
    dir: &Dir,
    x: &Tensor,
    h: &Tensor,
    c: &Tensor,
) -> OpResult<(Tensor, Tensor)> {
    let hn = plan.hidden;
    let acts = &plan.acts[d];
    let clip = |v: Tensor| -> OpResult<Tensor> {
        match plan.clip {
            Some(k) => v.clamp(-k, k).ce(),
            None => Ok(v),
        }
    };
    let xw = x.matmul(&dir.w).ce()?.broadcast_add(&dir.wb).ce()?;
    let hr = h.matmul(&dir.r).ce()?.broadcast_add(&dir.rb).ce()?;
    let gate = |t: &Tensor, k: usize| t.narrow(1, k * hn, hn).ce();
    let pre = |k: usize| -> OpResult<Tensor> { (gate(&xw, k)? + gate(&hr, k)?).ce() };
    let peep = |k: usize, s: &Tensor| -> OpResult<Tensor> {
        match &dir.p {
            Some(p) => p.narrow(0, k * hn, hn).ce()?.broadcast_mul(s).ce(),
            None => s.zeros_like().ce(),
        }
    };
    let one_minus = |t: &Tensor| t.affine(-1.0, 1.0).ce();
    match plan.cell {
        Cell::Rnn => Ok((act(acts[0], &clip(pre(0)?)?)?, c.clone())),
        Cell::Gru => {
            let z = act(acts[0], &clip(pre(0)?)?)?;
            let r = act(acts[0], &clip(pre(1)?)?)?;
            let cand = match plan.linear_before_reset {
                true => (gate(&xw, 2)? + (&r * gate(&hr, 2)?).ce()?).ce()?,
                false => {
                    let rh = (&r * h)
                        .ce()?
                        .matmul(&dir.r.narrow(1, 2 * hn, hn).ce()?.contiguous().ce()?)
                        .ce()?;
                    (gate(&xw, 2)? + rh)
                        .ce()?
                        .broadcast_add(&dir.rb.narrow(0, 2 * hn, hn).ce()?)
                        .ce()?
                }
            };
            let cand = act(acts[1], &clip(cand)?)?;
            let nh = ((one_minus(&z)? * cand).ce()? + (&z * h).ce()?).ce()?;
            Ok((nh, c.clone()))
        }
        Cell::Lstm => {
            let i = act(acts[0], &clip((pre(0)? + peep(0, c)?).ce()?)?)?;
            let f = match plan.input_forget {
                true => one_minus(&i)?,
                false => act(acts[0], &clip((pre(2)? + peep(2, c)?).ce()?)?)?,
            };
            let cand = act(acts[1], &clip(pre(3)?)?)?;
            let nc = ((&f * c).ce()? + (&i * cand).ce()?).ce()?;
            let o = act(acts[0], &clip((pre(1)? + peep(1, &nc)?).ce()?)?)?;
            Ok(((o * act(acts[2], &nc)?).ce()?, nc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::backend::reference::{run_op as ref_run, util::f as ref_f};
    use crate::graph::Attr;

    /// A reverse GRU (linear_before_reset = 0) with a short entry agrees
    /// with the reference.
    #[test]
    fn reverse_gru_with_lengths_matches_the_reference() {
        let v = |n: usize, s: f64| {
            (0..n)
                .map(|i| ((i as f64 * 0.37 + s).sin()) * 0.5)
                .collect::<Vec<_>>()
        };
        let shapes: [(&[usize], f64); 5] = [
            (&[3, 2, 2], 0.1),
            (&[1, 6, 2], 0.2),
            (&[1, 6, 2], 0.3),
            (&[1, 12], 0.4),
            (&[1, 2, 2], 0.5),
        ];
        let f32v = |n: usize, s: f64| v(n, s).into_iter().map(|a| a as f32).collect::<Vec<_>>();
        let ct: Vec<_> = shapes
            .iter()
            .map(|(sh, s)| f32t(sh, &f32v(sh.iter().product(), *s)))
            .collect();
        let rt: Vec<_> = shapes
            .iter()
            .map(|(sh, s)| ref_f(sh, &v(sh.iter().product(), *s)))
            .collect();
        let lens = i64t(&[3, 1]);
        let rlens = crate::backend::reference::util::i(&[2], &[3, 1]);
        let n = node(
            "GRU",
            6,
            2,
            vec![("direction", Attr::String("reverse".into()))],
        );
        let (got, dims, how) = run1(
            &n,
            14,
            &[
                Some(&ct[0]),
                Some(&ct[1]),
                Some(&ct[2]),
                Some(&ct[3]),
                Some(&lens),
                Some(&ct[4]),
            ],
        );
        let want = ref_run(
            &n,
            14,
            &[
                Some(&rt[0]),
                Some(&rt[1]),
                Some(&rt[2]),
                Some(&rt[3]),
                Some(&rlens),
                Some(&rt[4]),
            ],
        )
        .unwrap();
        let want: Vec<f32> = want[0]
            .as_ref()
            .unwrap()
            .data
            .to_f64_vec()
            .into_iter()
            .map(|a| a as f32)
            .collect();
        assert_eq!(dims, vec![3, 1, 2, 2]);
        assert!(how.starts_with("composed"));
        assert_eq!(got[6..8], [0.0, 0.0], "past entry 1's length");
        close(&got, &want, 1e-5);
    }
}
