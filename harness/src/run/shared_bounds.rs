//! Error bounds at the reference's own inputs, computed once per case and
//! shared by every lane judged, so that an accumulating node already within
//! its bound is not re-run per lane.
//!
//! A node's local error is its error on its own inputs: the reference re-runs
//! the node on the lane's values and the lane's output is compared with that,
//! under the op's bound ([`bound::bound_for`]). For an accumulating op (a
//! product, a convolution, a normalization, a softmax) that costs the op
//! twice per lane: once on the inputs, once on their magnitudes (the bound of
//! a product is `γ·|A|·|B|`). But a lane whose output is already within that
//! bound of the reference's *own* output, the error it carried in from
//! upstream included, shows nothing the bound could call the node's: the
//! re-run could only find an error that the carried-in one exactly cancels.
//! So such a node is not re-run, and its local comparison is that one. The
//! bound at the reference's inputs does not depend on the lane, so it is
//! computed once per node and case, whichever lanes ask.
//!
//! Only nodes whose total comparison is within the case tolerance take this
//! path: a node past it goes through the full local evaluation, which also
//! tells whether its inputs were the reference's bit for bit (and so whether
//! the difference is the node's own). Exact, rounded and transcendental ops
//! always do: their re-run is elementwise and cheap, and their bound (a few
//! ulps) is one the carried-in error always exceeds.

use std::sync::Mutex;

use super::{reference_inputs, reference_value};
use crate::backend::Trace;
use crate::case::Case;
use crate::diff::bound::{self, Bound, Class};
use crate::diff::Comparison;
use crate::graph::Node;

/// Per node, the bound of each output at the reference's inputs, computed
/// on first use (`None` where the reference has no value or no bound), and
/// dropped once every lane judged the node ([`SharedBounds::forget`]).
pub(super) struct SharedBounds {
    slots: Vec<Mutex<Slot>>,
}

/// One node's bounds.
enum Slot {
    Unknown,
    Known(Option<Vec<Option<Bound>>>),
    /// Every lane judged the node: its bounds are gone, and so may be the
    /// reference's values they were computed from.
    Forgotten,
}

impl SharedBounds {
    /// Room for a graph of `nodes` nodes; nothing is computed yet.
    pub(super) fn new(nodes: usize) -> SharedBounds {
        SharedBounds {
            slots: (0..nodes).map(|_| Mutex::new(Slot::Unknown)).collect(),
        }
    }

    /// The local comparisons of `node`'s outputs in `trace` when `node` is
    /// accumulating and every output the lane has is within the bound of
    /// the reference's own output; `None` otherwise (the node is then
    /// re-evaluated on the lane's inputs).
    pub(super) fn within(
        &self,
        case: &Case,
        trace: &Trace,
        reference: &Trace,
        node: &Node,
    ) -> Option<Vec<(String, Comparison)>> {
        if !matches!(bound::class(node), Class::Accumulating(_)) {
            return None;
        }
        let mut slot = self.slot(node.index)?;
        let bounds = slot.known(case, reference, node)?.as_ref()?;
        let mut out = Vec::new();
        for (name, b) in node.outputs.iter().zip(bounds) {
            let Some(got) = trace.values.get(name) else {
                continue;
            };
            let want = reference.values.get(name)?;
            let dtype = super::reference_dtype(reference, name, want);
            let c = bound::compare_bounded_to(got, want, dtype, b.as_ref()?);
            if !c.ok() {
                return None;
            }
            out.push((name.clone(), c));
        }
        (!out.is_empty()).then_some(out)
    }

    /// Computes the bound of every accumulating node now, one after the
    /// other, so that judging finds them ready. The reference's thread
    /// calls this as soon as the reference ran, while the other lanes still
    /// run, so the cores it would leave idle do judging's heaviest part.
    /// One at a time (the op's own kernels are parallel): in parallel,
    /// several nodes' input copies and magnitudes were alive at once, and
    /// on swin_t the parent's peak varied 251–323 MB against 282–289 MB
    /// this way, at the same wall time. The bounds are the ones
    /// [`SharedBounds::within`] would compute on first use: only when they
    /// are computed changes (and a node that no lane brings within the case
    /// tolerance has its bound computed for nothing: 15 of swin_t's 131
    /// accumulating nodes).
    pub(super) fn prefill(&self, case: &Case, reference: &Trace) {
        case.graph
            .nodes
            .iter()
            .filter(|n| matches!(bound::class(n), Class::Accumulating(_)))
            .for_each(|node| self.prefill_node(case, reference, node));
    }

    /// Computes `node`'s bound now if it is accumulating (see [`prefill`](Self::prefill)).
    pub(super) fn prefill_node(&self, case: &Case, reference: &Trace, node: &Node) {
        if matches!(bound::class(node), Class::Accumulating(_)) {
            if let Some(mut slot) = self.slot(node.index) {
                slot.known(case, reference, node);
            }
        }
    }

    /// Drops node `index`'s bounds: every lane judged it.
    pub(super) fn forget(&self, index: usize) {
        if let Some(mut slot) = self.slot(index) {
            *slot = Slot::Forgotten;
        }
    }

    fn slot(&self, index: usize) -> Option<std::sync::MutexGuard<'_, Slot>> {
        let slot = self.slots.get(index)?;
        Some(slot.lock().unwrap_or_else(|p| p.into_inner()))
    }

    #[cfg(test)]
    fn computed(&self, index: usize) -> bool {
        self.slot(index)
            .is_some_and(|s| matches!(*s, Slot::Known(_)))
    }
}

impl Slot {
    /// The bounds, computed now if not yet; `None` once forgotten.
    fn known(
        &mut self,
        case: &Case,
        reference: &Trace,
        node: &Node,
    ) -> Option<&Option<Vec<Option<Bound>>>> {
        if matches!(self, Slot::Unknown) {
            *self = Slot::Known(at_reference(case, reference, node));
        }
        match self {
            Slot::Known(b) => Some(b),
            _ => None,
        }
    }
}

/// The bound of each output of `node` at the reference's inputs and output.
fn at_reference(case: &Case, reference: &Trace, node: &Node) -> Option<Vec<Option<Bound>>> {
    let mut inputs = reference_inputs(case, reference, node)?;
    // A multilinear bound reads its inputs' absolute values only (and their
    // shapes): made so in place, this copy of the inputs is the only one.
    if matches!(
        bound::class(node),
        Class::Accumulating(bound::Magnitude::Multilinear)
    ) {
        inputs.iter_mut().flatten().for_each(bound::abs_in_place);
    }
    let refs: Vec<_> = inputs.iter().map(Option::as_ref).collect();
    let bounds = node
        .outputs
        .iter()
        .enumerate()
        .map(|(k, name)| {
            if name.is_empty() {
                return None;
            }
            // The reference's own value, borrowed from its trace (a graph
            // input or weight that is also an output is converted).
            let converted;
            let (want, dtype) = match reference.values.get(name) {
                Some(t) => (t, super::reference_dtype(reference, name, t)),
                None => {
                    converted = reference_value(case, reference, name)?;
                    (&converted.data, converted.dtype)
                }
            };
            let opset = case.graph.opset;
            bound::bound_for(node, opset, &refs, k, want, dtype, &case.tolerances).ok()
        })
        .collect();
    Some(bounds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{NodeRun, NodeStatus};
    use crate::tensor::{DType, Tensor};

    /// `Y = Relu(X·W)`: an accumulating node, then an exact-ish one.
    const CASE: &str = r#"
name = "matmul-relu"
seed = 5
[model.graph]
opset = 17
inputs = [{ name = "X", shape = [4, 64] }]
outputs = ["Y"]
[[model.graph.initializers]]
name = "W"
shape = [64, 8]
dist = "normal"
[[model.graph.nodes]]
name = "mm"
op = "MatMul"
inputs = ["X", "W"]
outputs = ["M"]
[[model.graph.nodes]]
name = "relu"
op = "Relu"
inputs = ["M"]
outputs = ["Y"]
"#;

    fn case() -> (Case, Trace) {
        super::super::case_and_reference(CASE)
    }

    /// A lane whose every value is the reference's rounded to float32 and
    /// then moved by `shift` (relative).
    fn lane(reference: &Trace, shift: f64) -> Trace {
        let mut trace = Trace::default();
        for (name, t) in &reference.values {
            let v: Vec<f64> = t.to_f64_vec().iter().map(|v| v * (1.0 + shift)).collect();
            trace
                .values
                .insert(name.clone(), Tensor::from_f64(DType::F32, t.shape(), &v));
        }
        let ran = NodeRun {
            status: NodeStatus::Ran,
            lowering: None,
            bridged: None,
        };
        trace.nodes = vec![ran.clone(), ran];
        trace
    }

    #[test]
    fn a_product_within_its_bound_of_the_reference_is_not_rerun() {
        let (case, reference) = case();
        let bounds = SharedBounds::new(case.graph.nodes.len());
        let mm = &case.graph.nodes[0];
        let near = lane(&reference, 0.0);
        let got = bounds
            .within(&case, &near, &reference, mm)
            .expect("within the bound");
        assert_eq!(got.len(), 1);
        let (name, c) = &got[0];
        assert_eq!(name, "M");
        // The comparison is against the reference's own output: its error
        // is exactly the float32 rounding of that output.
        let Comparison::Metrics(m) = c else {
            panic!("{c:?}")
        };
        let rounding = reference.values["M"]
            .to_f64_vec()
            .iter()
            .map(|v| (v - (*v as f32) as f64).abs())
            .fold(0.0, f64::max);
        assert_eq!(m.max_abs, rounding);
        assert!(m.bound_ratio.is_some_and(|r| r > 0.0 && r <= 1.0), "{m:?}");
        // Computed once, for whichever lane asks next.
        assert!(bounds.computed(0) && !bounds.computed(1));
        let again = bounds.within(&case, &lane(&reference, 0.0), &reference, mm);
        assert_eq!(again.map(|g| g[0].1.clone()), Some(c.clone()));
    }

    #[test]
    fn past_the_bound_or_not_accumulating_the_node_is_rerun() {
        let (case, reference) = case();
        let bounds = SharedBounds::new(case.graph.nodes.len());
        // 1 % off: far past γ·|X|·|W| for 64 float32 terms.
        let far = lane(&reference, 0.01);
        assert!(bounds
            .within(&case, &far, &reference, &case.graph.nodes[0])
            .is_none());
        // Relu is exact: always re-run on the lane's own inputs.
        let near = lane(&reference, 0.0);
        assert!(bounds
            .within(&case, &near, &reference, &case.graph.nodes[1])
            .is_none());
        assert!(!bounds.computed(1));
    }

    #[test]
    fn prefilled_bounds_are_the_ones_computed_on_first_use() {
        let (case, reference) = case();
        let (lazy, early) = (
            SharedBounds::new(case.graph.nodes.len()),
            SharedBounds::new(case.graph.nodes.len()),
        );
        early.prefill(&case, &reference);
        // Only the accumulating node's bound is computed.
        assert!(early.computed(0) && !early.computed(1));
        let mm = &case.graph.nodes[0];
        for shift in [0.0, 0.01] {
            let l = lane(&reference, shift);
            let a = lazy.within(&case, &l, &reference, mm);
            let b = early.within(&case, &l, &reference, mm);
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "shift {shift}");
        }
    }
}
