//! Reference ops: RNN, GRU and LSTM (7, 14), written from the spec's
//! equations over `op::recurrent::RecurrentPlan`, one batch entry and one
//! direction at a time, step by step in f64: each gate's pre-activation is
//! `W·x + R·h + Wb + Rb` (clipped when `clip` is set), GRU's hidden gate
//! applies `r` before (`linear_before_reset = 0`) or after the `R` product,
//! LSTM adds the peepholes `P ⊙ c`. Steps past a batch entry's
//! `sequence_lens` leave its state alone and write zeros to `Y`.

use ndarray::{ArrayD, IxDyn};

use super::util::float_input;
use super::RefTensor;
use crate::backend::interp::{Coverage, How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::optional;
use crate::op::recurrent::{Cell, RecurrentPlan};

const SPEC: &[Coverage] = &[Coverage {
    when: "all attributes",
    label: Label::Spec,
}];

pub fn register(r: &mut OpRegistry<RefTensor>) {
    r.range("RNN", 7, u32::MAX, recurrent, spec!("RNN"), SPEC);
    r.range("GRU", 7, u32::MAX, recurrent, spec!("GRU"), SPEC);
    r.range("LSTM", 7, u32::MAX, recurrent, spec!("LSTM"), SPEC);
}

/// The node's float inputs, flat; absent optional ones are zeros.
struct Params {
    x: Vec<f64>,
    w: Vec<f64>,
    r: Vec<f64>,
    b: Vec<f64>,
    h0: Vec<f64>,
    c0: Vec<f64>,
    p: Vec<f64>,
}

impl Params {
    fn read(ctx: &OpCtx, x: &[Option<&RefTensor>], plan: &RecurrentPlan) -> OpResult<Params> {
        let flat = |i: usize| -> OpResult<Vec<f64>> {
            Ok(float_input(ctx, x, i)?.iter().copied().collect())
        };
        let (d, g, h) = (plan.dirs(), plan.cell.gates(), plan.hidden);
        let state = d * plan.batch * h;
        let opt = |i: usize, n: usize| -> OpResult<Vec<f64>> {
            let v = match optional(x, i) {
                Some(_) => flat(i)?,
                None => vec![0.0; n],
            };
            match v.len() == n {
                true => Ok(v),
                false => Err(ctx.fail(format!("input #{i} has {} values, expected {n}", v.len()))),
            }
        };
        Ok(Params {
            x: flat(0)?,
            w: flat(1)?,
            r: opt(2, d * g * h * h)?,
            b: opt(3, d * 2 * g * h)?,
            h0: opt(5, state)?,
            c0: opt(6, if plan.cell == Cell::Lstm { state } else { 0 })?,
            p: opt(
                7,
                if plan.cell == Cell::Lstm {
                    d * 3 * h
                } else {
                    0
                },
            )?,
        })
    }
}

/// The outputs being built: `Y`, `Y_h`, `Y_c`.
struct Outs {
    y: Vec<f64>,
    yh: Vec<f64>,
    yc: Vec<f64>,
}

fn recurrent(ctx: &OpCtx, x: &[Option<&RefTensor>]) -> OpResult<Lowered<RefTensor>> {
    let plan = RecurrentPlan::decode(ctx, x)?;
    let params = Params::read(ctx, x, &plan)?;
    let state = plan.dirs() * plan.batch * plan.hidden;
    let mut outs = Outs {
        y: vec![0.0; plan.y_shape().iter().product()],
        yh: vec![0.0; state],
        yc: vec![0.0; state],
    };
    for d in 0..plan.dirs() {
        for b in 0..plan.batch {
            run_sequence(&plan, &params, d, b, &mut outs);
        }
    }
    let dtype = ctx.input(x, 0)?.dtype;
    let wrap = |shape: Vec<usize>, v: Vec<f64>| {
        RefTensor::float(
            ArrayD::from_shape_vec(IxDyn(&shape), v).expect("shape matches"),
            dtype,
        )
    };
    let mut ts = vec![
        wrap(plan.y_shape(), outs.y),
        wrap(plan.state_shape(), outs.yh),
    ];
    if plan.cell == Cell::Lstm {
        ts.push(wrap(plan.state_shape(), outs.yc));
    }
    Ok(Lowered::many(ts, How::Spec))
}

/// One direction `d` of batch entry `b`, step by step.
fn run_sequence(plan: &RecurrentPlan, p: &Params, d: usize, b: usize, outs: &mut Outs) {
    let hn = plan.hidden;
    let mut h: Vec<f64> = (0..hn).map(|j| p.h0[plan.state_at(d, b, j)]).collect();
    let mut c: Vec<f64> = match plan.cell {
        Cell::Lstm => (0..hn).map(|j| p.c0[plan.state_at(d, b, j)]).collect(),
        _ => vec![0.0; hn],
    };
    for t in plan.steps(d).into_iter().filter(|&t| t < plan.lens[b]) {
        let xt: Vec<f64> = (0..plan.input).map(|i| p.x[plan.x_at(t, b, i)]).collect();
        let (nh, nc) = step(plan, p, d, &xt, &h, &c);
        h = nh;
        c = nc;
        for (j, v) in h.iter().enumerate() {
            outs.y[plan.y_at(t, d, b, j)] = *v;
        }
    }
    for j in 0..hn {
        outs.yh[plan.state_at(d, b, j)] = h[j];
        outs.yc[plan.state_at(d, b, j)] = c[j];
    }
}

/// Row `row` of gate `gate` of direction `d` of a `[D, G·H, n]` matrix, dotted with `v`.
fn dot(m: &[f64], plan: &RecurrentPlan, d: usize, gate: usize, row: usize, v: &[f64]) -> f64 {
    let rows = plan.cell.gates() * plan.hidden;
    let start = ((d * rows) + gate * plan.hidden + row) * v.len();
    m[start..start + v.len()]
        .iter()
        .zip(v)
        .map(|(a, b)| a * b)
        .sum()
}

/// One step: the new `(h, c)` from `x_t` and the previous state.
fn step(
    plan: &RecurrentPlan,
    p: &Params,
    d: usize,
    xt: &[f64],
    h: &[f64],
    c: &[f64],
) -> (Vec<f64>, Vec<f64>) {
    let (hn, g) = (plan.hidden, plan.cell.gates());
    let clip = |v: f64| plan.clip.map_or(v, |k| v.clamp(-k, k));
    let wb = |gate: usize, j: usize| p.b[d * 2 * g * hn + gate * hn + j];
    let rb = |gate: usize, j: usize| p.b[d * 2 * g * hn + (g + gate) * hn + j];
    let wx = |gate: usize, j: usize| dot(&p.w, plan, d, gate, j, xt) + wb(gate, j);
    let rh = |gate: usize, j: usize, v: &[f64]| dot(&p.r, plan, d, gate, j, v) + rb(gate, j);
    let acts = &plan.acts[d];
    match plan.cell {
        Cell::Rnn => (
            (0..hn)
                .map(|j| acts[0].apply(clip(wx(0, j) + rh(0, j, h))))
                .collect(),
            c.to_vec(),
        ),
        Cell::Gru => {
            let z: Vec<f64> = (0..hn)
                .map(|j| acts[0].apply(clip(wx(0, j) + rh(0, j, h))))
                .collect();
            let r: Vec<f64> = (0..hn)
                .map(|j| acts[0].apply(clip(wx(1, j) + rh(1, j, h))))
                .collect();
            let rh_prev: Vec<f64> = r.iter().zip(h).map(|(a, b)| a * b).collect();
            let new = (0..hn).map(|j| {
                let pre = match plan.linear_before_reset {
                    false => wx(2, j) + rh(2, j, &rh_prev),
                    true => wx(2, j) + r[j] * rh(2, j, h),
                };
                let ht = acts[1].apply(clip(pre));
                (1.0 - z[j]) * ht + z[j] * h[j]
            });
            (new.collect(), c.to_vec())
        }
        Cell::Lstm => {
            let peep = |k: usize, j: usize| p.p[d * 3 * hn + k * hn + j];
            let (mut nh, mut nc) = (vec![0.0; hn], vec![0.0; hn]);
            for j in 0..hn {
                let i = acts[0].apply(clip(wx(0, j) + rh(0, j, h) + peep(0, j) * c[j]));
                let f = match plan.input_forget {
                    true => 1.0 - i,
                    false => acts[0].apply(clip(wx(2, j) + rh(2, j, h) + peep(2, j) * c[j])),
                };
                let cand = acts[1].apply(clip(wx(3, j) + rh(3, j, h)));
                nc[j] = f * c[j] + i * cand;
                let o = acts[0].apply(clip(wx(1, j) + rh(1, j, h) + peep(1, j) * nc[j]));
                nh[j] = o * acts[2].apply(nc[j]);
            }
            (nh, nc)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::run_op;
    use super::super::util::{f, test_node};
    use crate::graph::Attr;

    #[test]
    fn a_relu_rnn_accumulates_and_reverse_runs_backwards() {
        // H = 1, W = 1, R = 1, no bias: h_t = relu(x_t + h_{t-1}).
        let x = f(&[3, 1, 1], &[1., 2., 3.]);
        let w = f(&[1, 1, 1], &[1.]);
        let r = f(&[1, 1, 1], &[1.]);
        let run = |dir: &str| {
            let n = test_node(
                "RNN",
                3,
                2,
                vec![
                    ("activations", Attr::Strings(vec!["Relu".into()])),
                    ("direction", Attr::String(dir.into())),
                ],
            );
            let out = run_op(&n, 14, &[Some(&x), Some(&w), Some(&r)]).unwrap();
            out.into_iter()
                .map(|t| t.unwrap().data.to_f64_vec())
                .collect::<Vec<_>>()
        };
        assert_eq!(run("forward"), vec![vec![1., 3., 6.], vec![6.]]);
        assert_eq!(run("reverse"), vec![vec![6., 5., 3.], vec![6.]]);
    }
}
