//! libtorch lowerings of RNN, GRU and LSTM (7, 14). Native where torch's op
//! has ONNX's meaning: `rnn_tanh`/`rnn_relu`/`gru`/`lstm` with the weights
//! re-laid-out to torch's gate order (LSTM `i, f, g, o` from ONNX's
//! `i, o, f, c`; GRU `r, z, n` from `z, r, h`), `B` split into `b_ih`/`b_hh`,
//! a reverse-only pass run forward over the time-flipped sequence. torch's
//! GRU is ONNX's `linear_before_reset = 1`, and torch has no clip,
//! peepholes, coupled forget gate, per-entry lengths (without packing) or
//! other activations: those nodes run a composed step loop of torch ops
//! (`matmul`, the activations, `where`), which is xdiff's own code.
//! The idiomatic port (`EngineOptions::port`) hands ONNX's `W`, `R`, `B` to
//! the native op as they are, gates in ONNX's order (the classic porting
//! mistake); nodes that need the step loop stay faithful.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::optional;
use crate::op::recurrent::{Act, Cell, RecurrentPlan};

const STEPS: &str = "step loop: matmul, add, mul, sigmoid, tanh, relu, clamp, where";

pub fn register(r: &mut OpRegistry<Tensor>) {
    let rows = cov![
        "default activations, no clip/P/input_forget, full sequence_lens (GRU: linear_before_reset=1)" => Label::Native("rnn_tanh/rnn_relu, gru, lstm"),
        "otherwise (GRU linear_before_reset=0, clip, peepholes, input_forget, sequence_lens, other activations)" => Label::Composed(STEPS),
    ];
    r.range("RNN", 7, u32::MAX, recurrent, spec!("RNN"), rows);
    r.range("GRU", 7, u32::MAX, recurrent, spec!("GRU"), rows);
    r.range("LSTM", 7, u32::MAX, recurrent, spec!("LSTM"), rows);
}

fn recurrent(ctx: &OpCtx, x: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    let plan = RecurrentPlan::decode(ctx, x)?;
    let io = Io::read(ctx, x, &plan)?;
    let native = plan.default_acts() || plan.cell == Cell::Rnn && all_relu(&plan);
    let native = native
        && plan.clip.is_none()
        && !plan.input_forget
        && plan.full_lengths()
        && optional(x, 7).is_none()
        && (plan.cell != Cell::Gru || plan.linear_before_reset);
    let (y, hs, cs, how) = match native {
        true => native_run(&plan, &io, ctx.options.port)?,
        false => composed(&plan, &io)?,
    };
    let mut ts = vec![io.y_out(&plan, y)?, io.state_out(&plan, hs)?];
    if plan.cell == Cell::Lstm {
        ts.push(io.state_out(&plan, cs)?);
    }
    Ok(Lowered::many(ts, how))
}

fn all_relu(plan: &RecurrentPlan) -> bool {
    plan.acts.iter().all(|a| a[..] == [Act::Relu])
}

/// The inputs in ONNX's seq-first layout: `x` `[S, B, I]`, `b` `[D, 2·G·H]`,
/// states `[D, B, H]`.
struct Io {
    x: Tensor,
    w: Tensor,
    r: Tensor,
    b: Tensor,
    h0: Tensor,
    c0: Tensor,
    p: Option<Tensor>,
}

impl Io {
    fn read(ctx: &OpCtx, x: &[Option<&Tensor>], plan: &RecurrentPlan) -> OpResult<Io> {
        let xs = ctx.input(x, 0)?;
        let (d, g, h, b) = (
            plan.dirs() as i64,
            plan.cell.gates() as i64,
            plan.hidden as i64,
            plan.batch as i64,
        );
        let opts = (xs.kind(), xs.device());
        let seq_first = |t: &Tensor| {
            if plan.batch_first {
                t.transpose(0, 1)
            } else {
                t.shallow_clone()
            }
        };
        let state = |i: usize| match optional(x, i) {
            Some(t) => seq_first(t),
            None => Tensor::zeros([d, b, h], opts),
        };
        Ok(Io {
            x: seq_first(xs),
            w: ctx.input(x, 1)?.shallow_clone(),
            r: ctx.input(x, 2)?.shallow_clone(),
            b: optional(x, 3).map_or_else(
                || Tensor::zeros([d, 2 * g * h], opts),
                |t| t.shallow_clone(),
            ),
            h0: state(5),
            c0: state(6),
            p: optional(x, 7).map(|t| t.shallow_clone()),
        })
    }

    /// `Y` from `[S, D, B, H]` into the node's layout.
    fn y_out(&self, plan: &RecurrentPlan, y: Tensor) -> OpResult<Tensor> {
        Ok(match plan.batch_first {
            true => y.f_permute([2, 0, 1, 3])?.f_contiguous()?,
            false => y,
        })
    }

    /// A state from `[D, B, H]` into the node's layout.
    fn state_out(&self, plan: &RecurrentPlan, s: Tensor) -> OpResult<Tensor> {
        Ok(match plan.batch_first {
            true => s.f_transpose(0, 1)?.f_contiguous()?,
            false => s,
        })
    }
}

type Run = (Tensor, Tensor, Tensor, How);

/// Gate blocks of a `[G·H, n]` (or `[G·H]`) tensor in `order`.
fn reorder(t: &Tensor, h: i64, order: &[i64]) -> OpResult<Tensor> {
    let blocks = order
        .iter()
        .map(|&k| t.f_narrow(0, k * h, h))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Tensor::f_cat(&blocks, 0)?)
}

/// torch's `[w_ih, w_hh, b_ih, b_hh]` per direction; with `port`, the
/// gates left in ONNX's order.
fn torch_params(plan: &RecurrentPlan, io: &Io, port: bool) -> OpResult<Vec<Tensor>> {
    let order: &[i64] = match plan.cell {
        _ if port => &[0, 1, 2, 3][..plan.cell.gates()],
        Cell::Rnn => &[0],
        Cell::Gru => &[1, 0, 2],
        Cell::Lstm => &[0, 2, 3, 1],
    };
    let (h, gh) = (plan.hidden as i64, (plan.cell.gates() * plan.hidden) as i64);
    let mut params = Vec::new();
    for d in 0..plan.dirs() as i64 {
        let b = io.b.f_select(0, d)?;
        params.push(reorder(&io.w.f_select(0, d)?, h, order)?);
        params.push(reorder(&io.r.f_select(0, d)?, h, order)?);
        params.push(reorder(&b.f_narrow(0, 0, gh)?, h, order)?);
        params.push(reorder(&b.f_narrow(0, gh, gh)?, h, order)?);
    }
    Ok(params)
}

fn native_run(plan: &RecurrentPlan, io: &Io, port: bool) -> OpResult<Run> {
    let params = torch_params(plan, io, port)?;
    let reverse_only = plan.reverse == [true];
    let xs = if reverse_only {
        io.x.f_flip([0])?
    } else {
        io.x.shallow_clone()
    };
    let bi = plan.dirs() == 2;
    let (out, hn, cn, op) = match plan.cell {
        Cell::Lstm => {
            let (o, h, c) = xs.f_lstm(
                &[&io.h0, &io.c0],
                &params.iter().collect::<Vec<_>>(),
                true,
                1,
                0.0,
                false,
                bi,
                false,
            )?;
            (o, h, c, "lstm")
        }
        Cell::Gru => {
            let (o, h) = xs.f_gru(&io.h0, &params, true, 1, 0.0, false, bi, false)?;
            (o, h, io.c0.shallow_clone(), "gru")
        }
        Cell::Rnn if all_relu(plan) => {
            let (o, h) = xs.f_rnn_relu(&io.h0, &params, true, 1, 0.0, false, bi, false)?;
            (o, h, io.c0.shallow_clone(), "rnn_relu")
        }
        Cell::Rnn => {
            let (o, h) = xs.f_rnn_tanh(&io.h0, &params, true, 1, 0.0, false, bi, false)?;
            (o, h, io.c0.shallow_clone(), "rnn_tanh")
        }
    };
    let (s, b, d, h) = (
        plan.seq as i64,
        plan.batch as i64,
        plan.dirs() as i64,
        plan.hidden as i64,
    );
    let y = out.f_reshape([s, b, d, h])?;
    let y = if reverse_only { y.f_flip([0])? } else { y };
    let how = match port && plan.cell != Cell::Rnn {
        true => How::native(format!("{op} (idiomatic port: ONNX gate order as is)")),
        false => How::native(op),
    };
    Ok((y.f_permute([0, 2, 1, 3])?.f_contiguous()?, hn, cn, how))
}

fn act(a: Act, x: &Tensor) -> OpResult<Tensor> {
    Ok(match a {
        Act::Relu => x.f_relu()?,
        Act::Tanh => x.f_tanh()?,
        Act::Sigmoid => x.f_sigmoid()?,
        Act::Affine(a, b) => x.f_mul_scalar(a)?.f_add_scalar(b)?,
        Act::LeakyRelu(a) => x
            .f_clamp_min(0.0)?
            .f_add(&x.f_clamp_max(0.0)?.f_mul_scalar(a)?)?,
        Act::ThresholdedRelu(a) => x.f_mul(&x.f_gt(a)?.f_to_kind(x.kind())?)?,
        Act::ScaledTanh(a, b) => x.f_mul_scalar(b)?.f_tanh()?.f_mul_scalar(a)?,
        Act::HardSigmoid(a, b) => x.f_mul_scalar(a)?.f_add_scalar(b)?.f_clamp(0.0, 1.0)?,
        Act::Elu(a) => x.f_clamp_min(0.0)?.f_add(
            &x.f_clamp_max(0.0)?
                .f_exp()?
                .f_sub_scalar(1.0)?
                .f_mul_scalar(a)?,
        )?,
        Act::Softsign => x.f_div(&x.f_abs()?.f_add_scalar(1.0)?)?,
        Act::Softplus => x.f_exp()?.f_log1p()?,
    })
}

/// One direction's weights: `[G·H, n]` matrices and `[G·H]` biases.
struct Dir {
    w: Tensor,
    r: Tensor,
    wb: Tensor,
    rb: Tensor,
    p: Option<Tensor>,
}

fn composed(plan: &RecurrentPlan, io: &Io) -> OpResult<Run> {
    let gh = (plan.cell.gates() * plan.hidden) as i64;
    let lens: Vec<i64> = plan.lens.iter().map(|&l| l as i64).collect();
    let lens = Tensor::from_slice(&lens)
        .f_to_device(io.x.device())?
        .f_reshape([-1, 1])?;
    let (mut ys, mut hs, mut cs) = (vec![], vec![], vec![]);
    for d in 0..plan.dirs() {
        let di = d as i64;
        let b = io.b.f_select(0, di)?;
        let dir = Dir {
            w: io.w.f_select(0, di)?.f_tr()?,
            r: io.r.f_select(0, di)?.f_tr()?,
            wb: b.f_narrow(0, 0, gh)?,
            rb: b.f_narrow(0, gh, gh)?,
            p: io.p.as_ref().map(|p| p.f_select(0, di)).transpose()?,
        };
        let (mut h, mut c) = (io.h0.f_select(0, di)?, io.c0.f_select(0, di)?);
        let mut y = (0..plan.seq)
            .map(|_| h.f_zeros_like())
            .collect::<Result<Vec<_>, _>>()?;
        for t in plan.steps(d) {
            let (nh, nc) = step(plan, d, &dir, &io.x.f_get(t as i64)?, &h, &c)?;
            let live = lens.f_gt(t as i64)?;
            y[t] = nh.f_where_self(&live, &nh.f_zeros_like()?)?;
            h = nh.f_where_self(&live, &h)?;
            c = nc.f_where_self(&live, &c)?;
        }
        ys.push(Tensor::f_stack(&y, 0)?);
        hs.push(h);
        cs.push(c);
    }
    Ok((
        Tensor::f_stack(&ys, 1)?,
        Tensor::f_stack(&hs, 0)?,
        Tensor::f_stack(&cs, 0)?,
        How::composed(STEPS),
    ))
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
    let hn = plan.hidden as i64;
    let acts = &plan.acts[d];
    let clip = |v: Tensor| -> OpResult<Tensor> {
        Ok(match plan.clip {
            Some(k) => v.f_clamp(-k, k)?,
            None => v,
        })
    };
    let xw = x.f_matmul(&dir.w)?.f_add(&dir.wb)?;
    let hr = h.f_matmul(&dir.r)?.f_add(&dir.rb)?;
    let gate = |t: &Tensor, k: i64| t.f_narrow(1, k * hn, hn);
    let pre = |k: i64| -> OpResult<Tensor> { Ok(gate(&xw, k)?.f_add(&gate(&hr, k)?)?) };
    let peep = |k: i64, s: &Tensor| -> OpResult<Tensor> {
        match &dir.p {
            Some(p) => Ok(p.f_narrow(0, k * hn, hn)?.f_mul(s)?),
            None => Ok(s.f_zeros_like()?),
        }
    };
    match plan.cell {
        Cell::Rnn => Ok((act(acts[0], &clip(pre(0)?)?)?, c.shallow_clone())),
        Cell::Gru => {
            let z = act(acts[0], &clip(pre(0)?)?)?;
            let r = act(acts[0], &clip(pre(1)?)?)?;
            let cand = match plan.linear_before_reset {
                true => gate(&xw, 2)?.f_add(&r.f_mul(&gate(&hr, 2)?)?)?,
                false => {
                    let rh = r.f_mul(h)?.f_matmul(&dir.r.f_narrow(1, 2 * hn, hn)?)?;
                    gate(&xw, 2)?
                        .f_add(&rh)?
                        .f_add(&dir.rb.f_narrow(0, 2 * hn, hn)?)?
                }
            };
            let cand = act(acts[1], &clip(cand)?)?;
            let keep = z.f_mul(h)?;
            Ok((
                z.f_neg()?.f_add_scalar(1.0)?.f_mul(&cand)?.f_add(&keep)?,
                c.shallow_clone(),
            ))
        }
        Cell::Lstm => {
            let i = act(acts[0], &clip(pre(0)?.f_add(&peep(0, c)?)?)?)?;
            let f = match plan.input_forget {
                true => i.f_neg()?.f_add_scalar(1.0)?,
                false => act(acts[0], &clip(pre(2)?.f_add(&peep(2, c)?)?)?)?,
            };
            let cand = act(acts[1], &clip(pre(3)?)?)?;
            let nc = f.f_mul(c)?.f_add(&i.f_mul(&cand)?)?;
            let o = act(acts[0], &clip(pre(1)?.f_add(&peep(1, &nc)?)?)?)?;
            Ok((o.f_mul(&act(acts[2], &nc)?)?, nc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use crate::graph::Attr;

    /// A bidirectional LSTM, native and forced onto the step loop by a
    /// zero clip-free peephole input, agree with each other.
    #[test]
    fn native_lstm_matches_the_step_loop() {
        let v = |n: usize, s: f32| {
            (0..n)
                .map(|i| ((i as f32 * 0.37 + s).sin()) * 0.5)
                .collect::<Vec<_>>()
        };
        let x = f32s(&[3, 2, 2], &v(12, 0.1));
        let w = f32s(&[2, 8, 2], &v(32, 0.2));
        let r = f32s(&[2, 8, 2], &v(32, 0.3));
        let b = f32s(&[2, 16], &v(32, 0.4));
        let h0 = f32s(&[2, 2, 2], &v(8, 0.5));
        let c0 = f32s(&[2, 2, 2], &v(8, 0.6));
        let p = f32s(&[2, 6], &[0.0; 12]);
        let n = node(
            "LSTM",
            8,
            3,
            vec![("direction", Attr::String("bidirectional".into()))],
        );
        let native = run(
            &n,
            14,
            &[
                Some(&x),
                Some(&w),
                Some(&r),
                Some(&b),
                None,
                Some(&h0),
                Some(&c0),
            ],
        )
        .unwrap();
        let looped = run(
            &n,
            14,
            &[
                Some(&x),
                Some(&w),
                Some(&r),
                Some(&b),
                None,
                Some(&h0),
                Some(&c0),
                Some(&p),
            ],
        )
        .unwrap();
        assert_eq!(native.how.label(), "native: lstm");
        assert!(looped.how.label().starts_with("composed"));
        for (a, b) in native.outputs.iter().zip(&looped.outputs) {
            let (a, b) = (vals(a.as_ref().unwrap()), vals(b.as_ref().unwrap()));
            assert!(
                a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5),
                "{a:?} vs {b:?}"
            );
        }
    }
}
