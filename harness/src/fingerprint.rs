//! Convention fingerprint (issue 5): when a backend's output of a node
//! differs from the reference, re-run the node on the float64 reference
//! under the attribute values frameworks commonly confuse (on the same
//! inputs) and report which convention the backend's output actually equals,
//! e.g. "behaves as asymmetric + floor (model asks half_pixel +
//! round_prefer_floor)".
//!
//! This module is only the search. What to search is data in the op layer:
//! each op file builds its [`Space`] (the confusable dimensions with their
//! candidate values, a relevance rule, an `apply` hook for
//! pseudo-attributes such as Resize's "scales vs sizes", and probe inputs)
//! and [`crate::op::FINGERPRINT_SPACES`] lists them. [`fingerprint`] walks
//! the (bounded) product, builds altered copies of the node and runs them
//! with [`run_op`]. The reference's values ([`RefTensor`]) meet the op
//! layer's host [`Tensor`]s only here.
//!
//! **Ambiguity.** When several conventions reproduce the output exactly
//! with as few changes, the inputs cannot tell them apart: all of them are
//! reported (`ambiguous`), none is picked, and the space's probes (another
//! geometry, other values) are run under each tied convention on the
//! reference to name an input on which they all differ (`separated_by`).
//!
//! **Verification.** The search runs on the *reference's* values of the
//! node's inputs. [`verify`] re-runs every claimed convention on the
//! reference from *the lane's own inputs* to the node (the values its own
//! upstream nodes produced) and requires the lane's actual output within
//! the exactness tolerance. The lane's output is a function of the lane's
//! inputs, so a convention that only matched through the reference's
//! slightly different inputs, or a claim that is simply wrong, fails; an
//! inexact fingerprint claims nothing and is never verified. Where the node
//! reads graph inputs directly the two input sets coincide and the check
//! holds the claim to the tolerance on the same evidence; a second seeded
//! input through the backend is not used: xdiff has no one-node entry into
//! the whole-graph runtimes (ORT), which make most of the claims.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::reference::{run_op, RefTensor};
use crate::diff::SameValue;
use crate::graph::{Attr, Node};
use crate::op::space::{same, Kind, Space, SpaceFn};
use crate::op::FINGERPRINT_SPACES;
use crate::tensor::Tensor;

/// What the search found for one diverged output.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// The backend's output equals the reference under `attrs` (within
    /// 1e-6·(1+|ref|) or 4 f32 ULP per element).
    pub exact: bool,
    /// The convention found: only the dimensions that differ from the model
    /// (empty: nothing in the searched space does better than the model's own).
    /// When `ambiguous` is not empty this is only its first member, no more
    /// likely than the others.
    pub attrs: Vec<(String, String)>,
    /// Max abs error between the backend's output and the reference under `attrs`.
    #[serde(deserialize_with = "crate::json_float::f64_or_nan")]
    pub max_abs: f64,
    pub description: String,
    /// Every convention that fits exactly with as few changes, when there
    /// is more than one: the node's inputs cannot tell them apart. Empty when
    /// the convention is unique.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ambiguous: Vec<Vec<(String, String)>>,
    /// For an ambiguous fingerprint: the probe inputs (other geometries or
    /// values, see [`crate::op::space::Probe`]) that together pull every
    /// pair of tied conventions apart, listed as "a, b and c"; `None` when the
    /// probes tried leave some pair tied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub separated_by: Option<String>,
    /// Candidate conventions evaluated.
    pub tried: usize,
    /// Index of the node output that was fingerprinted.
    pub output: usize,
    /// The claim holds on independent evidence (see [`verify`]): every
    /// claimed convention, re-run on the reference from *the lane's own
    /// inputs* to the node, reproduces the lane's output within the
    /// exactness tolerance. Always false for an inexact fingerprint.
    pub verified: bool,
}

impl Fingerprint {
    /// Compact form for tables: `asymmetric+floor`, `epsilon=1e-3`; tied
    /// conventions joined by ` | `.
    pub fn short(&self) -> String {
        if self.attrs.is_empty() {
            return "?".into();
        }
        if self.ambiguous.is_empty() {
            return short_of(&self.attrs);
        }
        let all: Vec<String> = self.ambiguous.iter().map(|c| short_of(c)).collect();
        all.join(" | ")
    }

    /// One line for summaries: the convention, or for a tie its first
    /// member and `| …` (`scale=out/in | …`; the matrix cell lists them all).
    pub fn headline(&self) -> String {
        match self.ambiguous.len() {
            0 | 1 => self.short(),
            _ => format!("{} | …", short_of(&self.ambiguous[0])),
        }
    }

    /// The conventions the fingerprint claims: every tied one, or `attrs`.
    fn claims(&self) -> Vec<&[(String, String)]> {
        if self.ambiguous.is_empty() {
            return vec![&self.attrs];
        }
        self.ambiguous.iter().map(Vec::as_slice).collect()
    }
}

fn short_of(attrs: &[(String, String)]) -> String {
    attrs
        .iter()
        .map(|(k, v)| show_pair(k, v))
        .collect::<Vec<_>>()
        .join("+")
}

fn show_pair(k: &str, v: &str) -> String {
    match (k, v) {
        ("via", "sizes") => return "scale=out/in".into(),
        ("via", "scales") => return "scale as given".into(),
        _ => {}
    }
    if v.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
        v.to_string()
    } else {
        format!("{k}={v}")
    }
}

/// A scored candidate: (changes from the model, exact, max abs).
type Scored = (Vec<(String, String)>, bool, f64);

/// The op layer's space builder for `op`, if it has one.
fn space_fn(op: &str) -> Option<SpaceFn> {
    FINGERPRINT_SPACES
        .iter()
        .find(|(o, _)| *o == op)
        .map(|&(_, f)| f)
}

/// Whether `op` has a fingerprint space (cheap check before any work).
pub fn supports(op: &str) -> bool {
    space_fn(op).is_some()
}

/// The reference's values as the op layer's host tensors (no copy: a
/// float's f64 data is its host value).
fn host<'a>(inputs: impl IntoIterator<Item = Option<&'a RefTensor>>) -> Vec<Option<&'a Tensor>> {
    inputs.into_iter().map(|t| t.map(|t| &t.data)).collect()
}

/// The confusable space of `node` at `opset`, given its inputs; `None` when
/// the op has no space or the node does not decode.
fn space(node: &Node, opset: u32, inputs: &[Option<&RefTensor>]) -> Option<Space> {
    let build = space_fn(&node.op_type)?;
    crate::op::with_node(node, opset, |ctx| build(ctx, &host(inputs.iter().copied())))
}

/// Max work (candidates × output elements) a search may take.
const MAX_WORK: usize = 50_000_000;

/// One candidate convention: the dims' chosen values, in dim order.
type Choice = Vec<(&'static str, Kind, String)>;

fn enumerate(space: &Space) -> Vec<Choice> {
    let mut out: Vec<(Choice, BTreeMap<&'static str, String>)> =
        vec![(Vec::new(), BTreeMap::new())];
    for d in &space.dims {
        let mut next = Vec::new();
        for (choice, chosen) in out {
            let values: &[String] = if (space.relevant)(d.name, &chosen) {
                &d.values
            } else {
                std::slice::from_ref(&d.model)
            };
            for v in values {
                let mut c = choice.clone();
                c.push((d.name, d.kind, v.clone()));
                let mut m = chosen.clone();
                m.insert(d.name, v.clone());
                next.push((c, m));
            }
        }
        out = next;
    }
    out.into_iter().map(|(c, _)| c).collect()
}

/// The dims of `choice` that differ from the model.
fn changes(space: &Space, choice: &Choice) -> Vec<(String, String)> {
    space
        .dims
        .iter()
        .zip(choice)
        .filter(|(d, (_, k, v))| !same(*k, &d.model, v))
        .map(|(d, (_, _, v))| (d.name.to_string(), v.clone()))
        .collect()
}

/// Builds the node and inputs of a convention (only changed dims are written).
fn build(
    space: &Space,
    node: &Node,
    inputs: &[Option<&RefTensor>],
    changed: &[(String, String)],
    out_shape: &[usize],
) -> Option<(Node, Vec<Option<RefTensor>>)> {
    let mut n = node.clone();
    let mut ins: Vec<Option<RefTensor>> = inputs.iter().map(|t| t.cloned()).collect();
    for (name, v) in changed {
        let d = space.dims.iter().find(|d| d.name == name)?;
        let attr = match d.kind {
            Kind::Int => Attr::Int(v.parse().ok()?),
            Kind::Float => Attr::Float(v.parse().ok()?),
            Kind::Str => Attr::String(v.clone()),
            Kind::Pseudo => {
                let edits = (space.apply)(
                    name,
                    v,
                    &mut n,
                    &host(ins.iter().map(Option::as_ref)),
                    out_shape,
                )?;
                for (i, t) in edits {
                    if ins.len() <= i {
                        ins.resize(i + 1, None);
                    }
                    ins[i] = t.as_ref().map(RefTensor::from_host);
                }
                continue;
            }
        };
        n.attrs.insert(name.clone(), attr);
    }
    Some((n, ins))
}

/// (exact, max abs) of `got` against the reference value `want`; `None` on a
/// shape mismatch.
fn measure(got: &Tensor, want: &RefTensor) -> Option<(bool, f64)> {
    if got.shape() != want.shape() {
        return None;
    }
    let same = SameValue::of(got.dtype());
    let (g, w) = (got.to_f64_vec(), want.data.to_f64_vec());
    let mut exact = true;
    let mut max_abs = 0.0f64;
    for (&a, &b) in g.iter().zip(&w) {
        if a == b || (a.is_nan() && b.is_nan()) {
            continue;
        }
        let d = (a - b).abs();
        if d.is_nan() {
            max_abs = f64::INFINITY;
            exact = false;
            continue;
        }
        max_abs = max_abs.max(d);
        if !same.holds(a, b) {
            exact = false;
        }
    }
    Some((exact, max_abs))
}

fn run_output(
    node: &Node,
    opset: u32,
    ins: &[Option<RefTensor>],
    output: usize,
) -> Option<RefTensor> {
    let refs: Vec<Option<&RefTensor>> = ins.iter().map(Option::as_ref).collect();
    run_op(node, opset, &refs)
        .ok()?
        .into_iter()
        .nth(output)
        .flatten()
}

fn describe(space: &Space, attrs: &[(String, String)]) -> (String, String) {
    let got = attrs
        .iter()
        .map(|(k, v)| show_pair(k, v))
        .collect::<Vec<_>>()
        .join(" + ");
    let model = attrs
        .iter()
        .map(|(k, _)| {
            let m = space
                .dims
                .iter()
                .find(|d| d.name == k)
                .map(|d| d.model.clone())
                .unwrap_or_default();
            show_pair(k, &m)
        })
        .collect::<Vec<_>>()
        .join(" + ");
    (got, model)
}

/// The conventions that reproduce the backend's output, before the
/// description: (exact, the primary, every tied exact convention).
struct Found<'a> {
    exact: bool,
    primary: &'a Scored,
    tied: Vec<Vec<(String, String)>>,
}

/// Picks from the scored candidates: the exact ones with fewest changes
/// (all of them when tied), else the closest, which must at least halve
/// the model's own error to be a finding (otherwise it is fitting noise).
fn pick(scored: &[Scored]) -> Option<Found<'_>> {
    let fewest_exact = scored.iter().filter(|s| s.1).map(|s| s.0.len()).min();
    if let Some(k) = fewest_exact {
        let hits: Vec<&Scored> = scored.iter().filter(|s| s.1 && s.0.len() == k).collect();
        let tied = if hits.len() > 1 {
            hits.iter().map(|s| s.0.clone()).collect()
        } else {
            Vec::new()
        };
        return Some(Found {
            exact: true,
            primary: hits.first()?,
            tied,
        });
    }
    let best = scored
        .iter()
        .min_by(|a, b| a.2.total_cmp(&b.2).then(a.0.len().cmp(&b.0.len())))?;
    let own = scored.iter().find(|s| s.0.is_empty());
    let primary = match own {
        Some(own) if best.2.is_nan() || best.2 > 0.5 * own.2 => own,
        _ => best,
    };
    Some(Found {
        exact: false,
        primary,
        tied: Vec::new(),
    })
}

/// The space's probes that together pull every pair of the `tied`
/// conventions apart (output `output` differs beyond the exactness
/// tolerance), in probe order, listed as "a, b and c"; `None` when some pair
/// agrees on every probe.
fn separating_probes(
    space: &Space,
    node: &Node,
    opset: u32,
    inputs: &[Option<&RefTensor>],
    output: usize,
    tied: &[Vec<(String, String)>],
) -> Option<String> {
    let n = tied.len();
    let mut open: Vec<(usize, usize)> = (0..n)
        .flat_map(|i| (i + 1..n).map(move |j| (i, j)))
        .collect();
    let mut used = Vec::new();
    for p in (space.probes)(node, &host(inputs.iter().copied())) {
        let Some(outs) = probe_outputs(space, node, opset, &p.inputs, output, tied) else {
            continue;
        };
        let before = open.len();
        open.retain(|&(i, j)| !differ(&outs[i], &outs[j]));
        if open.len() < before {
            used.push(p.label);
        }
        if open.is_empty() {
            return Some(and_list(&used));
        }
    }
    None
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => items.join(""),
    }
}

/// Each tied convention's value of `output` on a probe's inputs.
fn probe_outputs(
    space: &Space,
    node: &Node,
    opset: u32,
    probe: &[Option<Tensor>],
    output: usize,
    tied: &[Vec<(String, String)>],
) -> Option<Vec<RefTensor>> {
    let ins: Vec<Option<RefTensor>> = probe
        .iter()
        .map(|t| t.as_ref().map(RefTensor::from_host))
        .collect();
    let refs: Vec<Option<&RefTensor>> = ins.iter().map(Option::as_ref).collect();
    let model = run_output(node, opset, &ins, output)?;
    tied.iter()
        .map(|c| {
            let (n, i) = build(space, node, &refs, c, model.shape())?;
            run_output(&n, opset, &i, output)
        })
        .collect()
}

/// Whether two reference values differ beyond the exactness tolerance (a
/// shape difference counts).
fn differ(a: &RefTensor, b: &RefTensor) -> bool {
    !matches!(measure(&a.data, b), Some((true, _)))
}

/// The human-readable claim.
fn description(space: &Space, found: &Found, tried: usize, separated_by: Option<&str>) -> String {
    let (attrs, max_abs) = (&found.primary.0, found.primary.2);
    let (got, model) = describe(space, attrs);
    match (found.exact, attrs.is_empty()) {
        (true, _) if !found.tied.is_empty() => ambiguity(space, &found.tied, separated_by),
        (true, true) => format!("equals the model's own convention within rounding (max abs {max_abs:.1e})"),
        (true, false) => format!("behaves as {got} (model asks {model})"),
        (false, true) => format!(
            "no convention among {tried} tried reproduces it; the model's own is closest (max abs {max_abs:.1e})"
        ),
        (false, false) => format!("closest to {got} (model asks {model}), max abs {max_abs:.1e}, not exact"),
    }
}

/// "ambiguous: equally A, B or C (model asks M); P separates them".
fn ambiguity(space: &Space, tied: &[Vec<(String, String)>], separated_by: Option<&str>) -> String {
    let names: Vec<String> = tied.iter().map(|c| describe(space, c).0).collect();
    let (last, rest) = names.split_last().expect("two or more tied conventions");
    let mut dims: Vec<(String, String)> = Vec::new();
    for (k, v) in tied.iter().flatten() {
        if !dims.iter().any(|(d, _)| d == k) {
            dims.push((k.clone(), v.clone()));
        }
    }
    let model = describe(space, &dims).1;
    let split = match separated_by {
        Some(p) if p.contains(" and ") => format!("{p} separate them"),
        Some(p) => format!("{p} separates them"),
        None => "no probe input tried separates them all".to_string(),
    };
    format!(
        "ambiguous: behaves equally as {} or {last} (model asks {model}); {split}",
        rest.join(", ")
    )
}

/// Searches `node`'s confusable space on the reference for the convention
/// that reproduces `backend` (the backend's value of output `output`), given
/// the reference's values of the node's inputs. `None` when the op has no
/// table, the search would be too large, or no candidate could run. The
/// result is not yet [`verify`]-ed (`verified` is false).
pub fn fingerprint(
    node: &Node,
    opset: u32,
    inputs: &[Option<&RefTensor>],
    output: usize,
    backend: &Tensor,
) -> Option<Fingerprint> {
    let space = space(node, opset, inputs)?;
    let choices = enumerate(&space);
    if choices.len().saturating_mul(backend.len().max(1)) > MAX_WORK {
        return None;
    }
    let out_shape = backend.shape().to_vec();
    // (changes, exact, max_abs), in enumeration order.
    let mut scored: Vec<Scored> = Vec::new();
    let mut tried = 0;
    for c in &choices {
        let changed = changes(&space, c);
        let Some((n, ins)) = build(&space, node, inputs, &changed, &out_shape) else {
            continue;
        };
        tried += 1;
        let Some(want) = run_output(&n, opset, &ins, output) else {
            continue;
        };
        if let Some((exact, max_abs)) = measure(backend, &want) {
            scored.push((changed, exact, max_abs));
        }
    }
    let found = pick(&scored)?;
    let separated_by = (!found.tied.is_empty())
        .then(|| separating_probes(&space, node, opset, inputs, output, &found.tied))
        .flatten();
    Some(Fingerprint {
        exact: found.exact,
        attrs: found.primary.0.clone(),
        max_abs: found.primary.2,
        description: description(&space, &found, tried, separated_by.as_deref()),
        ambiguous: found.tied.clone(),
        separated_by,
        tried,
        output,
        verified: false,
    })
}

/// Checks a claim on evidence the search did not use: `lane_inputs` are the
/// values the lane itself fed the node (its own upstream outputs, upcast),
/// where the search ran on the reference's. Every claimed convention (each
/// tied one) is re-run on the reference from those inputs and must
/// reproduce `backend`, the lane's actual output, within the exactness
/// tolerance. An inexact fingerprint claims no convention: false.
pub fn verify(
    fp: &Fingerprint,
    node: &Node,
    opset: u32,
    lane_inputs: &[Option<&RefTensor>],
    backend: &Tensor,
) -> bool {
    if !fp.exact {
        return false;
    }
    let Some(space) = space(node, opset, lane_inputs) else {
        return false;
    };
    fp.claims().into_iter().all(|attrs| {
        build(&space, node, lane_inputs, attrs, backend.shape())
            .and_then(|(n, ins)| run_output(&n, opset, &ins, fp.output))
            .and_then(|want| measure(backend, &want))
            .is_some_and(|(exact, _)| exact)
    })
}

/// Records the outcome of [`verify`]; an exact claim that fails it says so
/// in its description (the digest shows that).
pub fn mark_verified(fp: &mut Fingerprint, verified: bool) {
    fp.verified = verified;
    if fp.exact && !verified {
        fp.description.push_str(
            "; not verified: the claim does not reproduce the lane's output from its own inputs",
        );
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::backend::reference::util::{f, test_node};
    use crate::tensor::DType;
    use ndarray::{ArrayD, IxDyn};

    fn ramp(shape: &[usize]) -> RefTensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| (i as f32 * 0.37 - 1.0) as f64).collect();
        f(shape, &v)
    }

    pub(crate) fn host(t: &RefTensor) -> Tensor {
        t.data.cast(DType::F32)
    }

    pub(crate) fn run1(node: &Node, opset: u32, ins: &[Option<&RefTensor>]) -> RefTensor {
        run_op(node, opset, ins).unwrap().remove(0).unwrap()
    }

    fn s(v: &str) -> Attr {
        Attr::String(v.into())
    }

    pub(crate) fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// Fingerprints `backend` and checks the claim with `verify`.
    pub(crate) fn checked(
        node: &Node,
        opset: u32,
        ins: &[Option<&RefTensor>],
        backend: &Tensor,
    ) -> Fingerprint {
        let fp = fingerprint(node, opset, ins, 0, backend).expect("fingerprint");
        assert!(
            verify(&fp, node, opset, ins, backend),
            "claim does not verify: {fp:?}"
        );
        fp
    }

    fn resize(attrs: Vec<(&str, Attr)>) -> Node {
        let mut n = test_node("Resize", 3, 1, attrs);
        n.inputs[1] = String::new();
        n
    }

    #[test]
    fn fingerprint_resize_nearest_asymmetric_floor() {
        let x = ramp(&[1, 1, 5, 5]);
        let scales = f(&[4], &[1.0, 1.0, 1.6, 1.6]);
        let ins = [Some(&x), None, Some(&scales)];
        let model = resize(vec![
            ("mode", s("nearest")),
            ("coordinate_transformation_mode", s("half_pixel")),
            ("nearest_mode", s("round_prefer_floor")),
        ]);
        let fake = resize(vec![
            ("mode", s("nearest")),
            ("coordinate_transformation_mode", s("asymmetric")),
            ("nearest_mode", s("floor")),
        ]);
        let backend = host(&run1(&fake, 19, &ins));
        let fp = checked(&model, 19, &ins, &backend);
        assert!(fp.exact, "{fp:?}");
        assert_eq!(
            fp.attrs,
            pairs(&[
                ("coordinate_transformation_mode", "asymmetric"),
                ("nearest_mode", "floor")
            ])
        );
        assert!(
            fp.description.starts_with(
                "behaves as asymmetric + floor (model asks half_pixel + round_prefer_floor)"
            ),
            "{}",
            fp.description
        );
        assert!(fp.tried > 50 && fp.tried < 500, "{}", fp.tried);
    }

    #[test]
    fn fingerprint_resize_linear_align_corners() {
        let x = ramp(&[1, 2, 5, 5]);
        let scales = f(&[4], &[1.0, 1.0, 1.4, 1.4]);
        let ins = [Some(&x), None, Some(&scales)];
        let model = resize(vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s("half_pixel")),
        ]);
        let fake = resize(vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s("align_corners")),
        ]);
        let backend = host(&run1(&fake, 19, &ins));
        let fp = checked(&model, 19, &ins, &backend);
        assert!(fp.exact, "{fp:?}");
        assert_eq!(
            fp.attrs,
            pairs(&[("coordinate_transformation_mode", "align_corners")])
        );
        assert_eq!(fp.short(), "align_corners");
    }

    #[test]
    fn fingerprint_resize_scales_vs_sizes() {
        // 5 -> 7 with scale 1.4 given: align_corners uses the given scale
        // (7/1.4 = 5, fractional target length) vs sizes' ratio 7/5: the same
        // here, so use 6 -> 2 with scale 0.3 (out = floor(1.8) = 1 would
        // differ); instead: half_pixel 5 -> 7 with scale 1.45 (out 7).
        let x = ramp(&[1, 1, 5, 5]);
        let scales = f(&[4], &[1.0, 1.0, 1.45, 1.45]);
        let ins = [Some(&x), None, Some(&scales)];
        let model = resize(vec![
            ("mode", s("linear")),
            ("coordinate_transformation_mode", s("half_pixel")),
        ]);
        let sizes = RefTensor::exact(Tensor::I64(
            ArrayD::from_shape_vec(IxDyn(&[4]), vec![1, 1, 7, 7]).unwrap(),
        ));
        let fake_ins = [Some(&x), None, None, Some(&sizes)];
        let mut fake = model.clone();
        fake.inputs = vec!["in0".into(), String::new(), String::new(), "sizes".into()];
        let backend = host(&run1(&fake, 19, &fake_ins));
        let fp = checked(&model, 19, &ins, &backend);
        assert!(fp.exact, "{fp:?}");
        assert_eq!(fp.attrs, pairs(&[("via", "sizes")]));
        assert_eq!(fp.short(), "scale=out/in");
    }

    #[test]
    fn fingerprint_gelu_tanh() {
        let x = ramp(&[2, 8]);
        let model = test_node("Gelu", 1, 1, vec![]);
        let fake = test_node("Gelu", 1, 1, vec![("approximate", s("tanh"))]);
        let backend = host(&run1(&fake, 20, &[Some(&x)]));
        let fp = checked(&model, 20, &[Some(&x)], &backend);
        assert!(fp.exact);
        assert_eq!(fp.attrs, pairs(&[("approximate", "tanh")]));
        assert_eq!(fp.description, "behaves as tanh (model asks none)");
    }

    #[test]
    fn fingerprint_average_pool_count_include_pad() {
        let x = ramp(&[1, 1, 5, 5]);
        let base = vec![
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
        ];
        let model = test_node("AveragePool", 1, 1, base.clone());
        let mut fa = base;
        fa.push(("count_include_pad", Attr::Int(1)));
        let fake = test_node("AveragePool", 1, 1, fa);
        let backend = host(&run1(&fake, 19, &[Some(&x)]));
        let fp = checked(&model, 19, &[Some(&x)], &backend);
        assert!(fp.exact);
        assert_eq!(fp.attrs, pairs(&[("count_include_pad", "1")]));
        assert_eq!(fp.short(), "count_include_pad=1");
    }

    #[test]
    fn fingerprint_layer_norm_epsilon_and_inexact() {
        let x = ramp(&[2, 3]);
        let scale = f(&[3], &[1.0, 0.5, 2.0]);
        let ins = [Some(&x), Some(&scale)];
        let model = test_node("LayerNormalization", 2, 1, vec![]);
        let fake = test_node(
            "LayerNormalization",
            2,
            1,
            vec![("epsilon", Attr::Float(1e-3))],
        );
        let backend = host(&run1(&fake, 17, &ins));
        let fp = checked(&model, 17, &ins, &backend);
        assert!(fp.exact, "{fp:?}");
        assert_eq!(fp.attrs, pairs(&[("epsilon", "1e-3")]));
        // A perturbation nothing explains: the closest is reported and verifies.
        let mut noisy = run1(&model, 17, &ins).data.to_f64_vec();
        noisy[0] += 0.25;
        let noisy = Tensor::from_f64(DType::F32, &[2, 3], &noisy);
        let fp = fingerprint(&model, 17, &ins, 0, &noisy).expect("fingerprint");
        assert!(
            !verify(&fp, &model, 17, &ins, &noisy),
            "inexact claims never verify"
        );
        assert!(!fp.exact);
        assert!(fp.attrs.is_empty(), "{fp:?}");
        assert!(
            fp.description.starts_with("no convention among"),
            "{}",
            fp.description
        );
    }

    #[test]
    fn tied_conventions_are_all_reported_with_a_separating_geometry() {
        // 5 -> 7 at scale 1.5, nearest: align_corners with out/in maps like
        // half_pixel_symmetric and asymmetric (all x / 1.5).
        let x = ramp(&[1, 1, 5, 5]);
        let scales = f(&[4], &[1.0, 1.0, 1.5, 1.5]);
        let ins = [Some(&x), None, Some(&scales)];
        let model = resize(vec![
            ("mode", s("nearest")),
            ("coordinate_transformation_mode", s("align_corners")),
        ]);
        let sizes = RefTensor::exact(Tensor::I64(
            ArrayD::from_shape_vec(IxDyn(&[4]), vec![1, 1, 7, 7]).unwrap(),
        ));
        let mut fake = model.clone();
        fake.inputs = vec!["in0".into(), String::new(), String::new(), "sizes".into()];
        let backend = host(&run1(&fake, 19, &[Some(&x), None, None, Some(&sizes)]));
        let fp = checked(&model, 19, &ins, &backend);
        assert_eq!(
            fp.ambiguous,
            vec![
                pairs(&[("via", "sizes")]),
                pairs(&[("coordinate_transformation_mode", "half_pixel_symmetric")]),
                pairs(&[("coordinate_transformation_mode", "asymmetric")]),
            ]
        );
        assert_eq!(
            fp.separated_by.as_deref(),
            Some("input length 5 at scale 1.6 (5→8)")
        );
        assert!(
            fp.description.starts_with("ambiguous: behaves equally as scale=out/in, half_pixel_symmetric or asymmetric (model asks scale as given + align_corners); input length 5 at scale 1.6 (5→8) separates them"),
            "{}",
            fp.description
        );
        assert_eq!(
            fp.short(),
            "scale=out/in | half_pixel_symmetric | asymmetric"
        );
    }

    #[test]
    fn a_claim_that_only_fits_the_reference_s_inputs_does_not_verify() {
        // The backend computed tanh-Gelu of the *reference's* inputs, but the
        // lane fed the node other values: its output is not tanh-Gelu of
        // what it received, so the claim fails on the lane's own inputs.
        let x = ramp(&[2, 8]);
        let model = test_node("Gelu", 1, 1, vec![]);
        let fake = test_node("Gelu", 1, 1, vec![("approximate", s("tanh"))]);
        let backend = host(&run1(&fake, 20, &[Some(&x)]));
        let fp = fingerprint(&model, 20, &[Some(&x)], 0, &backend).unwrap();
        assert!(fp.exact && verify(&fp, &model, 20, &[Some(&x)], &backend));
        let lane: Vec<f64> = x.data.to_f64_vec().iter().map(|v| v + 0.01).collect();
        let lane = f(&[2, 8], &lane);
        assert!(!verify(&fp, &model, 20, &[Some(&lane)], &backend));
        let mut marked = fp.clone();
        mark_verified(&mut marked, false);
        assert!(marked.description.ends_with("from its own inputs"));
    }

    #[test]
    fn fingerprint_verify_rejects_wrong_claims() {
        let x = ramp(&[2, 8]);
        let model = test_node("Gelu", 1, 1, vec![]);
        let backend = host(&run1(&model, 20, &[Some(&x)]));
        let fp = Fingerprint {
            exact: true,
            attrs: pairs(&[("approximate", "tanh")]),
            max_abs: 0.0,
            description: String::new(),
            ambiguous: vec![],
            separated_by: None,
            tried: 2,
            output: 0,
            verified: false,
        };
        assert!(!verify(&fp, &model, 20, &[Some(&x)], &backend));
        assert!(fingerprint(
            &test_node("Relu", 1, 1, vec![]),
            14,
            &[Some(&x)],
            0,
            &backend
        )
        .is_none());
    }
}
