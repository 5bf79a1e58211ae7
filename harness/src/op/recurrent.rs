//! The recurrent ops, decoded once: RNN-7/14
//! (<https://onnx.ai/onnx/operators/onnx__RNN.html>), GRU-7/14
//! (<https://onnx.ai/onnx/operators/onnx__GRU.html>) and LSTM-7/14
//! (<https://onnx.ai/onnx/operators/onnx__LSTM.html>). Opset 14 added
//! `layout` (1: `X`/`Y`/states batch-first); opset 7 dropped
//! `output_sequence`. Inputs `X, W, R, B, sequence_lens, initial_h` (LSTM:
//! `initial_c, P`); outputs `Y, Y_h` (LSTM: `Y_c`). ONNX's gate order is
//! RNN `i`, GRU `z, r, h`, LSTM `i, o, f, c` (peepholes `P`: `i, o, f`);
//! `B` is `[Wb, Rb]`. `activations` list `f` (RNN), `f, g` (GRU) or
//! `f, g, h` (LSTM) per direction, `activation_alpha`/`_beta` are consumed
//! in order by the activations that take them; `clip` bounds every gate's
//! pre-activation; `input_forget` couples LSTM's forget gate to `1 − i`.
//!
//! The plan fixes the shapes, directions, activations and lengths once, so
//! the reference and the framework lowerings run the same recurrence and
//! the lowerings can tell when a framework's native op has the same meaning.
//!
//! The fingerprint space ([`space`], LSTM and GRU) is the gate order, a
//! pseudo dimension whose `torch` value re-lays `W`, `R` and `B`'s gate
//! blocks so that the reference reads them as PyTorch does (LSTM `i, f, g,
//! o`, GRU `r, z, n`: a lane that copied weights without reordering), and
//! GRU's `linear_before_reset`.

use super::space::{always, bool_dim, value_probes, Dim, InputEdit, Kind, Space};
use super::{optional, HostView, OpCtx, OpResult};
use crate::graph::Node;
use crate::tensor::Tensor;

/// Which recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Rnn,
    Gru,
    Lstm,
}

impl Cell {
    /// Gates stacked in `W`/`R`.
    pub fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru => 3,
            Cell::Lstm => 4,
        }
    }

    /// Activation functions per direction.
    pub fn functions(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru => 2,
            Cell::Lstm => 3,
        }
    }

    fn defaults(self) -> &'static [&'static str] {
        match self {
            Cell::Rnn => &["Tanh"],
            Cell::Gru => &["Sigmoid", "Tanh"],
            Cell::Lstm => &["Sigmoid", "Tanh", "Tanh"],
        }
    }
}

/// One of the spec's activation functions with its `alpha`/`beta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Act {
    Relu,
    Tanh,
    Sigmoid,
    Affine(f64, f64),
    LeakyRelu(f64),
    ThresholdedRelu(f64),
    ScaledTanh(f64, f64),
    HardSigmoid(f64, f64),
    Elu(f64),
    Softsign,
    Softplus,
}

impl Act {
    /// The function in f64, as the spec defines it.
    pub fn apply(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Affine(a, b) => a * x + b,
            Act::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Act::ThresholdedRelu(a) => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            Act::ScaledTanh(a, b) => a * (b * x).tanh(),
            Act::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
            Act::Elu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * (x.exp() - 1.0)
                }
            }
            Act::Softsign => x / (1.0 + x.abs()),
            Act::Softplus => x.exp().ln_1p(),
        }
    }

    /// The parameters it takes and their defaults (`None`: none taken).
    fn params(name: &str) -> Option<(Option<f64>, Option<f64>)> {
        Some(match name.to_ascii_lowercase().as_str() {
            "relu" | "tanh" | "sigmoid" | "softsign" | "softplus" => (None, None),
            "affine" => (Some(1.0), Some(0.0)),
            "leakyrelu" => (Some(0.01), None),
            "thresholdedrelu" => (Some(1.0), None),
            "scaledtanh" => (Some(1.0), Some(1.0)),
            "hardsigmoid" => (Some(0.2), Some(0.5)),
            "elu" => (Some(1.0), None),
            _ => return None,
        })
    }

    fn build(name: &str, a: f64, b: f64) -> Act {
        match name.to_ascii_lowercase().as_str() {
            "relu" => Act::Relu,
            "tanh" => Act::Tanh,
            "sigmoid" => Act::Sigmoid,
            "softsign" => Act::Softsign,
            "softplus" => Act::Softplus,
            "affine" => Act::Affine(a, b),
            "leakyrelu" => Act::LeakyRelu(a),
            "thresholdedrelu" => Act::ThresholdedRelu(a),
            "scaledtanh" => Act::ScaledTanh(a, b),
            "hardsigmoid" => Act::HardSigmoid(a, b),
            _ => Act::Elu(a),
        }
    }
}

/// A recurrent node's decoded plan.
#[derive(Debug, Clone, PartialEq)]
pub struct RecurrentPlan {
    pub cell: Cell,
    /// Direction of each of the `num_directions` passes: `false` forward.
    pub reverse: Vec<bool>,
    pub hidden: usize,
    pub seq: usize,
    pub batch: usize,
    pub input: usize,
    /// `layout = 1`: `X`, `Y` and the states are batch-first.
    pub batch_first: bool,
    pub clip: Option<f64>,
    /// Per direction, `Cell::functions` activations.
    pub acts: Vec<Vec<Act>>,
    pub linear_before_reset: bool,
    pub input_forget: bool,
    /// Valid steps per batch entry (`seq` for all when absent).
    pub lens: Vec<usize>,
}

impl RecurrentPlan {
    pub fn decode<T: HostView>(ctx: &OpCtx, x: &[Option<&T>]) -> OpResult<RecurrentPlan> {
        let cell = match ctx.node.op_type.as_str() {
            "RNN" => Cell::Rnn,
            "GRU" => Cell::Gru,
            _ => Cell::Lstm,
        };
        let reverse = match ctx.string("direction", "forward")?.as_str() {
            "forward" => vec![false],
            "reverse" => vec![true],
            "bidirectional" => vec![false, true],
            d => return Err(ctx.attr_error("direction", format!("`{d}` is not defined"))),
        };
        let batch_first = match ctx.int("layout", 0)? {
            0 => false,
            1 if ctx.opset >= 14 => true,
            l => {
                return Err(ctx.attr_error(
                    "layout",
                    format!("{l} is not defined at opset {}", ctx.opset),
                ))
            }
        };
        let xd = ctx.input(x, 0)?.dims();
        let [a, b, input] = xd[..] else {
            return Err(ctx.fail(format!("input `X` must be 3-D, got {xd:?}")));
        };
        let (seq, batch) = if batch_first { (b, a) } else { (a, b) };
        let wd = ctx.input(x, 1)?.dims();
        let (g, dirs) = (cell.gates(), reverse.len());
        let hidden = wd.get(1).map_or(0, |r| r / g);
        let hidden_attr = ctx.int("hidden_size", hidden as i64)?;
        if wd != [dirs, g * hidden, input] || hidden_attr != hidden as i64 || hidden == 0 {
            return Err(ctx.fail(format!(
                "input `W` {wd:?} does not fit {dirs} direction(s), {g} gates, input size {input} and hidden_size {hidden_attr}"
            )));
        }
        let lens = match optional(x, 4) {
            Some(l) => l
                .host_ints()?
                .into_iter()
                .map(|v| {
                    usize::try_from(v)
                        .ok()
                        .filter(|&n| n <= seq)
                        .ok_or_else(|| {
                            ctx.fail(format!("input `sequence_lens`: {v} is outside 0..={seq}"))
                        })
                })
                .collect::<OpResult<Vec<_>>>()?,
            None => vec![seq; batch],
        };
        if lens.len() != batch {
            return Err(ctx.fail(format!(
                "input `sequence_lens` has {} entries for a batch of {batch}",
                lens.len()
            )));
        }
        let clip = match ctx.has("clip") {
            true => Some(ctx.float("clip", 0.0)? as f64),
            false => None,
        };
        Ok(RecurrentPlan {
            cell,
            acts: decode_acts(ctx, cell, dirs)?,
            reverse,
            hidden,
            seq,
            batch,
            input,
            batch_first,
            clip,
            linear_before_reset: ctx.int("linear_before_reset", 0)? != 0,
            input_forget: ctx.int("input_forget", 0)? != 0,
            lens,
        })
    }

    pub fn dirs(&self) -> usize {
        self.reverse.len()
    }

    /// Whether every activation is the op's default (per direction).
    pub fn default_acts(&self) -> bool {
        let want: Vec<Act> = self
            .cell
            .defaults()
            .iter()
            .map(|n| Act::build(n, 0.0, 0.0))
            .collect();
        self.acts.iter().all(|a| *a == want)
    }

    /// Whether every batch entry runs the whole sequence.
    pub fn full_lengths(&self) -> bool {
        self.lens.iter().all(|&l| l == self.seq)
    }

    /// The step order of direction `d` (time indices).
    pub fn steps(&self, d: usize) -> Vec<usize> {
        match self.reverse[d] {
            false => (0..self.seq).collect(),
            true => (0..self.seq).rev().collect(),
        }
    }

    /// The flat offset in `X` of `(t, b, i)`.
    pub fn x_at(&self, t: usize, b: usize, i: usize) -> usize {
        let (outer, inner) = if self.batch_first { (b, t) } else { (t, b) };
        let n = if self.batch_first {
            self.seq
        } else {
            self.batch
        };
        (outer * n + inner) * self.input + i
    }

    /// The flat offset in `Y` of `(t, d, b, j)` (`[S, D, B, H]`, or
    /// `[B, S, D, H]` batch-first).
    pub fn y_at(&self, t: usize, d: usize, b: usize, j: usize) -> usize {
        let (dirs, h) = (self.dirs(), self.hidden);
        match self.batch_first {
            false => ((t * dirs + d) * self.batch + b) * h + j,
            true => ((b * self.seq + t) * dirs + d) * h + j,
        }
    }

    /// The flat offset in a state (`initial_h`, `Y_h`, ...) of `(d, b, j)`.
    pub fn state_at(&self, d: usize, b: usize, j: usize) -> usize {
        let (dirs, h) = (self.dirs(), self.hidden);
        match self.batch_first {
            false => (d * self.batch + b) * h + j,
            true => (b * dirs + d) * h + j,
        }
    }

    pub fn y_shape(&self) -> Vec<usize> {
        let (s, d, b, h) = (self.seq, self.dirs(), self.batch, self.hidden);
        match self.batch_first {
            false => vec![s, d, b, h],
            true => vec![b, s, d, h],
        }
    }

    pub fn state_shape(&self) -> Vec<usize> {
        let (d, b, h) = (self.dirs(), self.batch, self.hidden);
        match self.batch_first {
            false => vec![d, b, h],
            true => vec![b, d, h],
        }
    }
}

/// For each ONNX gate (in ONNX order), the block PyTorch's order puts it
/// in: LSTM ONNX `i, o, f, c` sit at torch's `i, f, g, o` blocks 0, 3, 1,
/// 2; GRU ONNX `z, r, h` at torch's `r, z, n` blocks 1, 0, 2.
fn torch_blocks(cell: Cell) -> &'static [usize] {
    match cell {
        Cell::Lstm => &[0, 3, 1, 2],
        Cell::Gru => &[1, 0, 2],
        Cell::Rnn => &[0],
    }
}

/// LSTM/GRU's fingerprint space: the gate order (pseudo, `onnx` or
/// `torch`) and GRU's `linear_before_reset`; `None` for RNN (one gate,
/// nothing to confuse) or when the node does not decode.
pub fn space(ctx: &OpCtx, x: &[Option<&Tensor>]) -> Option<Space> {
    let p = RecurrentPlan::decode(ctx, x).ok()?;
    let mut dims = vec![Dim::new("gates", Kind::Pseudo, "onnx".into(), &["torch"])];
    match p.cell {
        Cell::Rnn => return None,
        Cell::Gru => dims.push(bool_dim("linear_before_reset", p.linear_before_reset)),
        Cell::Lstm => {}
    }
    Some(Space {
        dims,
        relevant: always,
        apply: gates_apply,
        probes: value_probes,
    })
}

/// The `gates` pseudo dim: `torch` replaces `W`, `R` and `B` (when
/// present) by their gate blocks in the order the reference must read to
/// compute what a lane reading them in PyTorch's order computes.
fn gates_apply(
    dim: &str,
    value: &str,
    node: &mut Node,
    x: &[Option<&Tensor>],
    _: &[usize],
) -> Option<Vec<InputEdit>> {
    if dim != "gates" {
        return None;
    }
    if value == "onnx" {
        return Some(Vec::new());
    }
    let cell = match node.op_type.as_str() {
        "LSTM" => Cell::Lstm,
        "GRU" => Cell::Gru,
        _ => return None,
    };
    let blocks = torch_blocks(cell);
    // `B` is [Wb, Rb]: two runs of gate blocks per direction.
    [(1, 1), (2, 1), (3, 2)]
        .into_iter()
        .filter_map(|(i, runs)| optional(x, i).map(|t| (i, t, runs)))
        .map(|(i, t, runs)| Some((i, Some(regate(t, cell.gates() * runs, blocks)?))))
        .collect()
}

/// `t` ([dirs, n·H, ...]) with its `n` gate blocks of `H` rows along axis
/// 1 reordered: output block `k` of each run of `blocks.len()` is input
/// block `blocks[k]` of that run.
fn regate(t: &Tensor, n: usize, blocks: &[usize]) -> Option<Tensor> {
    let shape = t.shape();
    let (rows, g) = (*shape.get(1)?, blocks.len());
    if shape.len() < 2 || rows % n != 0 {
        return None;
    }
    let (h, inner) = (rows / n, shape[2..].iter().product::<usize>());
    let v = t.to_f64_vec();
    let mut out = Vec::with_capacity(v.len());
    for d in 0..shape[0] {
        for r in 0..rows {
            let (run, k, j) = (r / (g * h), (r / h) % g, r % h);
            let src = (d * rows + (run * g + blocks[k]) * h + j) * inner;
            out.extend_from_slice(&v[src..src + inner]);
        }
    }
    Some(Tensor::from_f64(t.dtype(), shape, &out))
}

/// `activations` (with `activation_alpha`/`_beta`) for `dirs` directions.
fn decode_acts(ctx: &OpCtx, cell: Cell, dirs: usize) -> OpResult<Vec<Vec<Act>>> {
    let k = cell.functions();
    let names: Vec<String> = match ctx.node.attrs.get("activations") {
        None => cell
            .defaults()
            .iter()
            .cycle()
            .take(k * dirs)
            .map(|s| s.to_string())
            .collect(),
        Some(crate::graph::Attr::Strings(v)) => v.clone(),
        Some(_) => return Err(ctx.attr_error("activations", "expected strings")),
    };
    if names.len() != k * dirs {
        return Err(ctx.attr_error(
            "activations",
            format!(
                "has {} functions, expected {k} per direction for {dirs}",
                names.len()
            ),
        ));
    }
    let alphas = ctx.floats("activation_alpha")?.unwrap_or_default();
    let betas = ctx.floats("activation_beta")?.unwrap_or_default();
    let (mut ai, mut bi) = (alphas.iter(), betas.iter());
    let acts = names
        .iter()
        .map(|n| {
            let (a, b) = Act::params(n).ok_or_else(|| {
                ctx.attr_error("activations", format!("`{n}` is not a defined function"))
            })?;
            let a = a.map_or(0.0, |d| ai.next().map_or(d, |&v| v as f64));
            let b = b.map_or(0.0, |d| bi.next().map_or(d, |&v| v as f64));
            Ok(Act::build(n, a, b))
        })
        .collect::<OpResult<Vec<_>>>()?;
    Ok(acts.chunks(k).map(|c| c.to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::reference::util::f;
    use crate::backend::reference::RefTensor;
    use crate::fingerprint::tests::{checked, host, pairs, run1};
    use crate::graph::Attr;
    use crate::op::space::varied;
    use crate::op::test_node;
    use ndarray::{ArrayD, IxDyn};

    fn zeros(shape: &[usize]) -> Tensor {
        Tensor::F32(ArrayD::zeros(IxDyn(shape)))
    }
    fn decode(node: &Node, opset: u32, x: &[Option<&Tensor>]) -> OpResult<RecurrentPlan> {
        crate::op::with_node(node, opset, |ctx| RecurrentPlan::decode(ctx, x))
    }

    #[test]
    fn bidirectional_batch_first_gru_with_alpha_consumed_in_order() {
        let n = test_node(
            "GRU",
            3,
            2,
            vec![
                ("direction", Attr::String("bidirectional".into())),
                ("layout", Attr::Int(1)),
                (
                    "activations",
                    Attr::Strings(vec![
                        "Sigmoid".into(),
                        "LeakyRelu".into(),
                        "HardSigmoid".into(),
                        "Tanh".into(),
                    ]),
                ),
                ("activation_alpha", Attr::Floats(vec![0.5, 0.25])),
            ],
        );
        let (x, w, r) = (zeros(&[2, 5, 3]), zeros(&[2, 12, 3]), zeros(&[2, 12, 4]));
        let p = decode(&n, 14, &[Some(&x), Some(&w), Some(&r)]).unwrap();
        assert_eq!((p.seq, p.batch, p.hidden, p.dirs()), (5, 2, 4, 2));
        assert_eq!(p.acts[0], vec![Act::Sigmoid, Act::LeakyRelu(0.5)]);
        assert_eq!(p.acts[1], vec![Act::HardSigmoid(0.25, 0.5), Act::Tanh]);
        assert_eq!(p.steps(1), vec![4, 3, 2, 1, 0]);
        assert_eq!(p.y_shape(), vec![2, 5, 2, 4]);
        assert!(!p.default_acts());
    }

    #[test]
    fn layout_before_14_and_a_wrong_w_are_errors() {
        let n = test_node("LSTM", 3, 3, vec![("layout", Attr::Int(1))]);
        let (x, w, r) = (zeros(&[2, 1, 3]), zeros(&[1, 8, 3]), zeros(&[1, 8, 2]));
        assert!(decode(&n, 7, &[Some(&x), Some(&w), Some(&r)]).is_err());
        let n = test_node("LSTM", 3, 3, vec![("hidden_size", Attr::Int(3))]);
        let err = decode(&n, 14, &[Some(&x), Some(&w), Some(&r)]).unwrap_err();
        assert!(format!("{err:?}").contains("hidden_size 3"), "{err:?}");
    }

    fn reference(t: &Tensor) -> RefTensor {
        RefTensor::from_host(t)
    }

    /// A lane that reads W, R and B in PyTorch's gate order.
    fn torch_lane(model: &Node, ins: &[Option<&RefTensor>]) -> Tensor {
        let hosts: Vec<Option<&Tensor>> = ins.iter().map(|t| t.map(|t| &t.data)).collect();
        let mut n = model.clone();
        let edits = gates_apply("gates", "torch", &mut n, &hosts, &[]).unwrap();
        let mut lane: Vec<Option<RefTensor>> = ins.iter().map(|t| t.cloned()).collect();
        for (i, t) in edits {
            lane[i] = t.as_ref().map(reference);
        }
        let refs: Vec<Option<&RefTensor>> = lane.iter().map(Option::as_ref).collect();
        host(&run1(&n, 14, &refs))
    }

    #[test]
    fn regate_moves_whole_blocks_in_each_run() {
        // 2 runs of 3 gates of H = 1 rows of 2 columns: [r, z, n] twice.
        let v: Vec<f64> = (0..12).map(|i| i as f64).collect();
        let t = Tensor::from_f64(crate::tensor::DType::F32, &[1, 6, 2], &v);
        let got = regate(&t, 6, torch_blocks(Cell::Gru)).unwrap().to_f64_vec();
        assert_eq!(got, vec![2., 3., 0., 1., 4., 5., 8., 9., 6., 7., 10., 11.]);
    }

    #[test]
    fn a_lane_reading_torch_gate_order_is_fingerprinted() {
        // LSTM, H = 2, input 3: ONNX's and torch's orders share only `i`.
        let x = reference(&varied(&[4, 1, 3], 0.5));
        let w = reference(&varied(&[1, 8, 3], 0.4));
        let r = reference(&varied(&[1, 8, 2], 0.3));
        let b = f(
            &[1, 16],
            &(0..16).map(|i| i as f64 * 0.05 - 0.4).collect::<Vec<_>>(),
        );
        let ins = [Some(&x), Some(&w), Some(&r), Some(&b)];
        let model = test_node("LSTM", 4, 1, vec![("hidden_size", Attr::Int(2))]);
        let lane = torch_lane(&model, &ins);
        let fp = checked(&model, 14, &ins, &lane);
        assert!(fp.exact && fp.ambiguous.is_empty(), "{fp:?}");
        assert_eq!(fp.attrs, pairs(&[("gates", "torch")]));
    }

    #[test]
    fn a_gru_lane_with_the_other_reset_placement_is_fingerprinted() {
        let x = reference(&varied(&[3, 2, 2], 0.7));
        let w = reference(&varied(&[1, 6, 2], 0.6));
        let r = reference(&varied(&[1, 6, 2], 0.8));
        let b = f(
            &[1, 12],
            &(0..12).map(|i| i as f64 * 0.1 - 0.5).collect::<Vec<_>>(),
        );
        let ins = [Some(&x), Some(&w), Some(&r), Some(&b)];
        let model = test_node("GRU", 4, 1, vec![("hidden_size", Attr::Int(2))]);
        let mut lbr = model.clone();
        lbr.attrs.insert("linear_before_reset".into(), Attr::Int(1));
        let lane = host(&run1(&lbr, 14, &ins));
        let fp = checked(&model, 14, &ins, &lane);
        assert!(fp.exact && fp.ambiguous.is_empty(), "{fp:?}");
        assert_eq!(fp.attrs, pairs(&[("linear_before_reset", "1")]));
        // Both conventions at once.
        let lane = torch_lane(&lbr, &ins);
        let fp = checked(&model, 14, &ins, &lane);
        assert_eq!(
            fp.attrs,
            pairs(&[("gates", "torch"), ("linear_before_reset", "1")])
        );
    }
}
