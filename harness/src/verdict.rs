//! The case verdict: what fails a case once every lane has been compared
//! node by node. Two rules keep a verdict trustworthy: a FAIL names a real,
//! undeclared departure, and a PASS means every node was compared. So a node
//! a lane could not run (`unsupported`, `error`, `skipped`) fails unless an
//! `[[expect]]` declares it; a node the reference could not run makes the
//! case fail with "cannot judge"; a lane that compared nothing fails;
//! declarations are strict (one that stops happening, or never applies,
//! fails). Also each lane's coverage, and the vacuous comparisons (outputs
//! the reference computes as zero or below tolerance everywhere), which are
//! warnings, not failures.

use std::collections::{BTreeMap, HashMap};

use crate::case::{Case, Declared, Expectation};
use crate::lane::{EXPECTED, REFERENCE};
use crate::outcome::{Coverage, LaneInfo, LaneResult, NodeReport, Origin, OutputResult, Verdict};

/// At most this many node names are listed in one failure line.
const MAX_NAMES: usize = 8;

/// What the reference computed: the judge of every lane.
#[derive(Debug, Clone)]
pub enum Judge {
    /// The reference was not asked for (`--backends` without `reference`).
    Absent,
    /// The whole reference lane failed.
    Failed(String),
    /// Per node (graph order): `None` where the reference ran it, else its
    /// verdict (`unsupported`, `error`, `skipped`) and message.
    Nodes(Vec<Option<(Verdict, String)>>),
}

impl Judge {
    /// Whether the reference has a value for node `i`.
    fn judged(&self, i: usize) -> bool {
        matches!(self, Judge::Nodes(v) if v.get(i).is_some_and(Option::is_none))
    }
}

/// The verdict of a case: its failures and warnings; fills `declared` on the
/// node results and `coverage` on the lanes.
pub fn judge(
    case: &Case,
    judge: &Judge,
    nodes: &mut [NodeReport],
    lanes: &mut [LaneInfo],
) -> (Vec<String>, Vec<String>) {
    let mut failures = reference_failures(judge, nodes);
    for lane in lanes.iter_mut() {
        lane.coverage = Some(coverage(nodes, &lane.name));
        if lane.name == REFERENCE {
            continue;
        }
        let mut lane_failures = lane_failures(case, judge, nodes, lane);
        lane_failures.extend(unexplained_outputs(nodes, lane));
        if lane_failures.is_empty() && judge_ok(judge) {
            lane_failures.extend(nothing_compared(nodes, lane));
        }
        failures.extend(lane_failures);
    }
    failures.extend(never_applies(case, lanes));
    (failures, vacuous_warnings(nodes))
}

fn judge_ok(judge: &Judge) -> bool {
    matches!(judge, Judge::Nodes(_))
}

/// Nodes of `lane` compared with the reference (for the reference itself:
/// nodes it computed).
fn coverage(nodes: &[NodeReport], lane: &str) -> Coverage {
    let compared = nodes
        .iter()
        .filter_map(|n| n.lanes.get(lane))
        .filter(|x| {
            if lane == REFERENCE {
                x.verdict == Verdict::Ok
            } else {
                x.outputs.values().any(OutputResult::compared)
            }
        })
        .count();
    Coverage {
        compared,
        total: nodes.len(),
    }
}

/// `reference: ...` when the reference is absent, failed or could not run
/// some nodes: those nodes cannot be judged on any lane.
fn reference_failures(judge: &Judge, nodes: &[NodeReport]) -> Vec<String> {
    let total = nodes.len();
    match judge {
        Judge::Absent => vec![format!(
            "{REFERENCE}: nothing can be judged without the reference: the backends have no `{REFERENCE}` (add it, e.g. --backends ort,{REFERENCE}); 0 of {total} nodes compared"
        )],
        Judge::Failed(e) => vec![format!(
            "{REFERENCE}: cannot judge {total} of {total} nodes: the reference failed: {e}"
        )],
        Judge::Nodes(status) => cannot_judge(status, nodes).into_iter().collect(),
    }
}

/// "cannot judge N of M nodes: reference has no lowering for `Op` (`node`)..."
fn cannot_judge(status: &[Option<(Verdict, String)>], nodes: &[NodeReport]) -> Option<String> {
    // A node downstream of one the reference could not run is still judged
    // where a lane compared it on its own inputs.
    let judged_locally = |n: &NodeReport| {
        n.lanes
            .iter()
            .any(|(l, r)| l != REFERENCE && r.outputs.values().any(OutputResult::compared))
    };
    let missing: Vec<(&NodeReport, &(Verdict, String))> = nodes
        .iter()
        .zip(status)
        .filter_map(|(n, s)| s.as_ref().map(|s| (n, s)))
        .filter(|(n, (v, _))| *v != Verdict::Skipped || !judged_locally(n))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut no_lowering: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut parts = Vec::new();
    let mut downstream = Vec::new();
    for (n, (verdict, message)) in &missing {
        match verdict {
            Verdict::Unsupported => no_lowering.entry(&n.op).or_default().push(&n.name),
            Verdict::Skipped => downstream.push(n.name.as_str()),
            _ => parts.push(format!("failed on `{}` ({}): {message}", n.name, n.op)),
        }
    }
    if !no_lowering.is_empty() {
        let ops: Vec<String> = no_lowering
            .iter()
            .map(|(op, names)| format!("`{op}` ({})", names_list(names)))
            .collect();
        parts.insert(
            0,
            format!("reference has no lowering for {}", ops.join(", ")),
        );
    }
    if !downstream.is_empty() {
        parts.push(format!("downstream {}", names_list(&downstream)));
    }
    Some(format!(
        "{REFERENCE}: cannot judge {} of {} nodes: {}",
        missing.len(),
        nodes.len(),
        parts.join("; ")
    ))
}

/// `` `a`, `b`, … (+N more) ``
fn names_list(names: &[&str]) -> String {
    let mut s: Vec<String> = names
        .iter()
        .take(MAX_NAMES)
        .map(|n| format!("`{n}`"))
        .collect();
    if names.len() > MAX_NAMES {
        s.push(format!("… (+{} more)", names.len() - MAX_NAMES));
    }
    s.join(", ")
}

fn declared_matches(d: Declared, v: Verdict) -> bool {
    matches!(
        (d, v),
        (Declared::Diverged, Verdict::Diverged)
            | (Declared::Unsupported, Verdict::Unsupported)
            | (Declared::Error, Verdict::Error)
            | (Declared::Skipped, Verdict::Skipped)
    )
}

/// Applies the declarations to one lane's nodes (strictly) and collects its
/// failures: undeclared divergences introduced here, nodes it could not run
/// (runs of skipped nodes grouped by their upstream cause), declarations
/// that did not happen. A lane that failed as a whole fails once.
fn lane_failures(
    case: &Case,
    judge: &Judge,
    nodes: &mut [NodeReport],
    lane: &LaneInfo,
) -> Vec<String> {
    let name = lane.name.as_str();
    let mut failures = Vec::new();
    if let Some(e) = &lane.error {
        let declared = case
            .expects
            .iter()
            .any(|x| x.names_lane(name) && x.verdict == Declared::Error);
        if !declared {
            failures.push(format!("{name}: lane failed: {e}"));
        }
    }
    let mut skipped: Vec<usize> = Vec::new();
    let mut not_run: Vec<NotRun> = Vec::new();
    for node in nodes.iter_mut() {
        let judged = judge.judged(node.index);
        let (id, op) = (node.name.clone(), node.op.clone());
        let Some(r) = node.lanes.get_mut(name) else {
            continue;
        };
        let graph_node = &case.graph.nodes[node.index];
        let applicable: Vec<&Expectation> = case
            .expects
            .iter()
            .filter(|e| e.applies(name, &case.graph, graph_node, &case.params))
            .collect();
        if let Some(e) = applicable
            .iter()
            .find(|e| declared_matches(e.verdict, r.verdict))
        {
            r.declared = Some(e.reason.clone());
            if let Some(f) = composed_declaration(name, &id, &op, r) {
                failures.push(f);
            }
            continue;
        }
        if lane.error.is_some() || (!judged && r.verdict == Verdict::Skipped) {
            continue;
        }
        if let Some(e) = applicable.first() {
            failures.push(format!(
                "{name}: node `{id}` ({op}) was declared {} ({}) but is {}",
                e.verdict.name(),
                e.reason,
                r.verdict.name()
            ));
            continue;
        }
        match r.verdict {
            Verdict::Skipped if name != EXPECTED => skipped.push(node.index),
            Verdict::Unsupported | Verdict::Error => {
                let key = (r.verdict, op, r.message.clone().unwrap_or_default());
                match not_run.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, ids)) => ids.push(id),
                    None => not_run.push((key, vec![id])),
                }
            }
            Verdict::Diverged if r.origin != Some(Origin::Inherited) => {
                failures.push(undeclared(name, &id, &op, r));
            }
            _ => {}
        }
    }
    failures.extend(
        not_run
            .into_iter()
            .map(|(k, ids)| not_run_line(name, k, &ids)),
    );
    failures.extend(skipped_runs(case, nodes, name, &skipped));
    failures
}

/// A lane's nodes it could not run for one reason, keyed by verdict, op and message.
type NotRun = ((Verdict, String, String), Vec<String>);

/// One failure line per reason a lane could not run nodes: `<lane>: node
/// `x` (Op) unsupported: why` for one node, `<lane>: 36 `Op` nodes
/// unsupported: why (`a`, `b`, …)` for several (a 1,000-node model says
/// each cause once).
fn not_run_line(
    lane: &str,
    (verdict, op, message): (Verdict, String, String),
    ids: &[String],
) -> String {
    let what = if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    };
    match ids {
        [one] => format!("{lane}: node `{one}` ({op}) {}{what}", verdict.name()),
        _ => {
            let names: Vec<&str> = ids.iter().map(String::as_str).collect();
            format!(
                "{lane}: {} `{op}` nodes {}{what} ({})",
                ids.len(),
                verdict.name(),
                names_list(&names)
            )
        }
    }
}

/// A divergence declared on a composed lowering: that lowering is xdiff's
/// own code, so its departure is a bug in xdiff to fix, never a finding
/// about the framework (only native lowerings carry declared divergences).
/// (A port lowering, label `port: ...`, plants its mistake on purpose and
/// may be declared.)
fn composed_declaration(lane: &str, node: &str, op: &str, r: &LaneResult) -> Option<String> {
    let lowering = r.lowering.as_deref()?;
    (r.verdict == Verdict::Diverged
        && r.origin == Some(Origin::Introduced)
        && lowering.starts_with("composed"))
    .then(|| {
        format!(
            "{lane}: node `{node}` ({op}) declared diverged, but its lowering is xdiff's own ({lowering}): a composed lowering that departs from the reference is a bug in xdiff, not a finding"
        )
    })
}

/// `<lane>: node `x` (Op) <verdict>: <message>`
fn undeclared(lane: &str, node: &str, op: &str, r: &LaneResult) -> String {
    let what = r
        .message
        .as_ref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    format!("{lane}: node `{node}` ({op}) {}{what}", r.verdict.name())
}

/// One line per upstream cause: "N nodes skipped after `x` (Op) unsupported: ...".
fn skipped_runs(case: &Case, nodes: &[NodeReport], lane: &str, skipped: &[usize]) -> Vec<String> {
    let producer: HashMap<&str, usize> = case
        .graph
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n.index)))
        .collect();
    let verdict = |i: usize| nodes[i].lanes.get(lane).map(|x| x.verdict);
    let mut cause: Vec<Option<usize>> = vec![None; nodes.len()];
    let mut runs: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
    for &i in skipped {
        let upstream = case.graph.nodes[i]
            .inputs
            .iter()
            .filter_map(|inp| producer.get(inp.as_str()).copied())
            .find(|&p| !matches!(verdict(p), Some(Verdict::Ok | Verdict::Diverged) | None));
        let c = match upstream {
            Some(p) if verdict(p) == Some(Verdict::Skipped) => cause[p].unwrap_or(p),
            Some(p) => p,
            None => i,
        };
        cause[i] = Some(c);
        runs.entry(c).or_default().push(&nodes[i].name);
    }
    runs.into_iter()
        .map(|(c, names)| {
            let n = &nodes[c];
            let how = n.lanes.get(lane).map(|x| x.verdict.name()).unwrap_or("?");
            let plural = if names.len() == 1 { "" } else { "s" };
            format!(
                "{lane}: {} node{plural} skipped after `{}` ({}) {how}: {}",
                names.len(),
                n.name,
                n.op,
                names_list(&names)
            )
        })
        .collect()
}

/// Model outputs outside the application tolerance on a lane where no node
/// introduced a divergence or failed to run: nothing explains them, so they
/// fail on their own (accumulated float32 rounding beyond the case's
/// tolerance, or, for the deployed ORT model, a fusion that tapping blocks).
/// Where a node did depart, that node's failure (or declaration) says why.
fn unexplained_outputs(nodes: &[NodeReport], lane: &LaneInfo) -> Option<String> {
    let outputs = lane.model_outputs.as_ref().filter(|m| !m.agree)?;
    let explained = nodes
        .iter()
        .filter_map(|n| n.lanes.get(&lane.name))
        .any(|r| {
            r.origin == Some(Origin::Introduced)
                || matches!(
                    r.verdict,
                    Verdict::Unsupported | Verdict::Error | Verdict::Skipped
                )
        });
    if explained {
        return None;
    }
    let why = if outputs.deployed {
        "no traced node introduced a divergence: the deployed model differs from the traced one (a fusion tapping disables) or float32 rounding accumulated beyond this tolerance"
    } else {
        "no node introduced a divergence: float32 rounding accumulated beyond this tolerance (widen the case's [tolerance] if that is acceptable)"
    };
    Some(format!(
        "{}: model outputs {}; {why}",
        lane.name,
        outputs.summary()
    ))
}

/// A lane that compared nothing, where not every node is declared.
fn nothing_compared(nodes: &[NodeReport], lane: &LaneInfo) -> Option<String> {
    let cov = lane.coverage?;
    let declared = nodes
        .iter()
        .filter_map(|n| n.lanes.get(&lane.name))
        .all(|x| x.declared.is_some());
    (cov.total > 0 && cov.compared == 0 && !declared).then(|| {
        format!(
            "{}: nothing compared (0 of {} nodes): the lane produced no values to compare",
            lane.name, cov.total
        )
    })
}

/// Declarations of the case file that apply to no variant, for lanes of this run.
fn never_applies(case: &Case, lanes: &[LaneInfo]) -> Vec<String> {
    case.never_applies
        .iter()
        .filter(|e| lanes.iter().any(|l| l.name == e.backend))
        .map(|e| {
            format!(
                "{}: declared divergence never applies: {} matches no node of any variant",
                e.backend,
                e.describe()
            )
        })
        .collect()
}

/// One warning per case listing the outputs whose comparison is vacuous.
fn vacuous_warnings(nodes: &[NodeReport]) -> Vec<String> {
    let vacuous: Vec<String> = nodes
        .iter()
        .flat_map(|n| {
            n.outputs
                .iter()
                .filter(|o| o.vacuous)
                .map(move |o| format!("{}:{}", n.name, o.name))
        })
        .collect();
    if vacuous.is_empty() {
        return vec![];
    }
    let names: Vec<&str> = vacuous.iter().map(String::as_str).collect();
    let total: usize = nodes.iter().map(|n| n.outputs.len()).sum();
    vec![format!(
        "vacuous: {} of {total} outputs are zero or below tolerance everywhere in the reference, so any lane agrees ({}); use other inputs or weights",
        vacuous.len(),
        names_list(&names)
    )]
}
