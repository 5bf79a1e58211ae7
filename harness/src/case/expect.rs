//! Declared divergences (`[[expect]]`): what a lane is declared to do at a
//! node, and the checks that keep declarations honest. A declaration that
//! names a backend, node, op or `when` parameter the case does not have is
//! bad input (exit 2, naming what was not found); one whose combination
//! matches no variant at all is kept on the first variant so that the run
//! fails once with "declared divergence never applies".

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::{show_value, Case, CaseError};
use crate::backend;
use crate::graph::{Graph, Node};
use crate::options::Device;

/// What a backend's node is declared to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Declared {
    Diverged,
    Unsupported,
    Error,
    Skipped,
}

impl Declared {
    /// The verdict name as written in a case file.
    pub fn parse(s: &str) -> Option<Declared> {
        Some(match s {
            "diverged" => Declared::Diverged,
            "unsupported" => Declared::Unsupported,
            "error" => Declared::Error,
            "skipped" => Declared::Skipped,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Declared::Diverged => "diverged",
            Declared::Unsupported => "unsupported",
            Declared::Error => "error",
            Declared::Skipped => "skipped",
        }
    }
}

/// A declared divergence: strict, so it fails when it stops happening.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub backend: String,
    pub node: Option<String>,
    pub op: Option<String>,
    /// `skipped` only: the nodes downstream of this node (the upstream
    /// cause of the skip), instead of `node`/`op`.
    pub after: Option<String>,
    pub verdict: Declared,
    pub when: BTreeMap<String, toml::Value>,
    pub reason: String,
}

impl Expectation {
    /// Whether this expectation covers `node` of `graph` in lane `backend`
    /// of a variant with `params`.
    pub fn applies(
        &self,
        backend: &str,
        graph: &Graph,
        node: &Node,
        params: &BTreeMap<String, toml::Value>,
    ) -> bool {
        self.names_lane(backend) && self.admits(graph, node) && self.holds_for(params)
    }

    /// Whether this declaration is about lane `lane`: its backend's own lane,
    /// or that backend's cross-device twin `<backend>@<device>` (the same
    /// framework on the CPU when the case runs on a GPU: what a declaration
    /// measured on the CPU describes).
    pub fn names_lane(&self, lane: &str) -> bool {
        self.backend == lane
            || lane
                .strip_prefix(self.backend.as_str())
                .is_some_and(|rest| rest.starts_with('@'))
    }

    /// Whether the `node`, `op` and `after` filters admit `node`.
    fn admits(&self, graph: &Graph, node: &Node) -> bool {
        self.node.as_deref().is_none_or(|n| n == node.name)
            && self.op.as_deref().is_none_or(|o| o == node.op_type)
            && self
                .after
                .as_deref()
                .is_none_or(|a| downstream(graph, a, node.index))
    }

    /// Whether every `when` condition holds for a variant with `params`.
    fn holds_for(&self, params: &BTreeMap<String, toml::Value>) -> bool {
        self.when
            .iter()
            .all(|(k, v)| params.get(k).is_some_and(|p| param_matches(p, v)))
    }

    /// Whether it covers some node of `case` (its `when` holds there).
    fn applies_to(&self, case: &Case) -> bool {
        self.holds_for(&case.params) && case.graph.nodes.iter().any(|n| self.admits(&case.graph, n))
    }

    /// One line naming what it declares (for failures).
    pub fn describe(&self) -> String {
        let mut what = vec![format!("backend `{}`", self.backend)];
        if let Some(n) = &self.node {
            what.push(format!("node `{n}`"));
        }
        if let Some(o) = &self.op {
            what.push(format!("op `{o}`"));
        }
        if let Some(a) = &self.after {
            what.push(format!("after `{a}`"));
        }
        if !self.when.is_empty() {
            let w: Vec<String> = self
                .when
                .iter()
                .map(|(k, v)| format!("{k}={}", show_value(v)))
                .collect();
            what.push(format!("when {}", w.join(",")));
        }
        format!(
            "{} {} ({})",
            what.join(" "),
            self.verdict.name(),
            self.reason
        )
    }
}

/// Whether node `index` of `graph` consumes, directly or through other
/// nodes, an output of the node named `from` (nodes are in topological order).
fn downstream(graph: &Graph, from: &str, index: usize) -> bool {
    let Some(start) = graph.nodes.iter().find(|n| n.name == from) else {
        return false;
    };
    let mut reached: HashSet<&str> = start.outputs.iter().map(String::as_str).collect();
    for n in &graph.nodes[start.index + 1..=index.max(start.index)] {
        if n.inputs
            .iter()
            .any(|i| !i.is_empty() && reached.contains(i.as_str()))
        {
            if n.index == index {
                return true;
            }
            reached.extend(n.outputs.iter().map(String::as_str));
        }
    }
    false
}

/// A `when` value matches a parameter equal to it (tables by their `name`),
/// or, when it is an array and the parameter is not, any of its elements.
fn param_matches(param: &toml::Value, want: &toml::Value) -> bool {
    let eq = |w: &toml::Value| param == w || show_value(param) == show_value(w);
    match want {
        toml::Value::Array(options) if !param.is_array() => options.iter().any(eq),
        w => eq(w),
    }
}

/// Checks every variant's declarations against the case file's variants
/// (exit 2 on a name not found) and keeps those that apply to no variant on
/// the first variant ([`Case::never_applies`]).
pub(super) fn check(file: &Path, cases: &mut [Case]) -> Result<(), CaseError> {
    // The names are looked up over every variant: once per distinct
    // declaration (variants of a sweep share theirs), not once per variant.
    let mut named: Vec<&Expectation> = Vec::new();
    for c in cases.iter() {
        for (i, e) in c.expects.iter().enumerate() {
            let key = format!("key `expect[{i}]`");
            check_backend(c, e).map_err(|m| CaseError::new(file, format!("{key}: {m}")))?;
            if named.contains(&e) {
                continue;
            }
            check_names(cases, e).map_err(|m| CaseError::new(file, format!("{key}: {m}")))?;
            named.push(e);
        }
    }
    let Some(first) = cases.first() else {
        return Ok(());
    };
    let never: Vec<Expectation> = (0..first.expects.len())
        .filter(|&i| {
            !cases
                .iter()
                .any(|c| c.expects.get(i).is_some_and(|e| e.applies_to(c)))
        })
        .map(|i| first.expects[i].clone())
        .collect();
    cases[0].never_applies = never;
    Ok(())
}

/// The lane a declaration names exists in `case`: a backend of the table
/// (not the reference), a port or `[[lane]]` lane of the case (compared
/// with their rendered names, [`Case::extra_lanes`]), `<backend>@<device>`
/// (cross-device baseline), or `expected` for a backend-test directory.
fn check_backend(case: &Case, e: &Expectation) -> Result<(), String> {
    let name = e.backend.as_str();
    let known = |b: &str| b != crate::lane::REFERENCE && backend::info(b).is_some();
    let ok = if name == crate::lane::EXPECTED {
        case.expected.is_some()
    } else if name.contains(':') {
        case.extra_lanes().iter().any(|l| l.to_string() == name)
    } else if let Some((b, d)) = name.split_once('@') {
        known(b) && Device::parse(d).is_some()
    } else {
        known(name)
    };
    if ok {
        return Ok(());
    }
    let expected = backend::names_where(|b| b.name != crate::lane::REFERENCE, " or ");
    Err(format!(
        "backend `{name}` is not a lane of this case (expected {expected}, `<backend>:port` for a `port` entry, `<backend>:<name>` for a `[[lane]]`, `<backend>@<device>`, or `expected` for a backend-test directory)"
    ))
}

/// A name in a declaration that the case file does not have.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
enum NameError {
    #[error("node `{0}` is not a node of the graph")]
    Node(String),
    #[error("op `{0}` is not in the graph")]
    Op(String),
    #[error("`after` declares skipped nodes; the verdict is `{0}`")]
    AfterVerdict(&'static str),
    #[error("`after` node `{0}` is not a node of the graph")]
    After(String),
    #[error("`when` parameter `{0}` is not a parameter of the case")]
    Param(String),
    #[error("`when.{param}` value `{value}` is not a value of parameter `{param}`")]
    Value { param: String, value: String },
}

/// The node, op and every `when` parameter and value a declaration names
/// exist in some variant of the case file.
fn check_names(cases: &[Case], e: &Expectation) -> Result<(), NameError> {
    let nodes = || cases.iter().flat_map(|c| c.graph.nodes.iter());
    if let Some(n) = &e.node {
        if !nodes().any(|x| &x.name == n) {
            return Err(NameError::Node(n.clone()));
        }
    }
    if let Some(o) = &e.op {
        if !nodes().any(|x| &x.op_type == o) {
            return Err(NameError::Op(o.clone()));
        }
    }
    if let Some(a) = &e.after {
        if e.verdict != Declared::Skipped {
            return Err(NameError::AfterVerdict(e.verdict.name()));
        }
        if !nodes().any(|x| &x.name == a) {
            return Err(NameError::After(a.clone()));
        }
    }
    for (k, v) in &e.when {
        check_when(cases, k, v)?;
    }
    Ok(())
}

/// `when.k = v`: `k` is a parameter of some variant, and `v` (each element
/// of an array of alternatives) is a value it takes.
fn check_when(cases: &[Case], k: &str, v: &toml::Value) -> Result<(), NameError> {
    let values: Vec<&toml::Value> = cases.iter().filter_map(|c| c.params.get(k)).collect();
    if values.is_empty() {
        return Err(NameError::Param(k.to_string()));
    }
    let alternatives: Vec<&toml::Value> = match v {
        toml::Value::Array(a) if values.iter().all(|p| !p.is_array()) => a.iter().collect(),
        w => vec![w],
    };
    for w in alternatives {
        if !values.iter().any(|p| param_matches(p, w)) {
            return Err(NameError::Value {
                param: k.to_string(),
                value: show_value(w),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::raw::RawGraph;

    /// `X -> a -> b -> c` and `X -> d`.
    fn graph() -> Graph {
        let g: RawGraph = toml::from_str(
            r#"
inputs = [{ name = "X", shape = [2] }]
outputs = ["C", "D"]
nodes = [
  { name = "a", op = "Relu", inputs = ["X"], outputs = ["A"] },
  { name = "b", op = "Neg", inputs = ["A"], outputs = ["B"] },
  { name = "c", op = "Abs", inputs = ["B"], outputs = ["C"] },
  { name = "d", op = "Abs", inputs = ["X"], outputs = ["D"] },
]
"#,
        )
        .unwrap();
        super::super::graph_from_inline(Path::new("g.toml"), &g, 0).unwrap()
    }

    #[test]
    fn downstream_follows_consumers_only() {
        let g = graph();
        let at = |name: &str| g.nodes.iter().find(|n| n.name == name).unwrap().index;
        assert!(downstream(&g, "a", at("b")));
        assert!(downstream(&g, "a", at("c")));
        assert!(!downstream(&g, "a", at("a")));
        assert!(!downstream(&g, "a", at("d")));
        assert!(!downstream(&g, "c", at("b")));
        assert!(!downstream(&g, "nope", at("c")));
    }

    #[test]
    fn after_admits_the_nodes_downstream_and_when_filters_variants() {
        let g = graph();
        let e = Expectation {
            backend: "candle".into(),
            node: None,
            op: None,
            after: Some("a".into()),
            verdict: Declared::Skipped,
            when: [("mode".to_string(), toml::Value::from("cubic"))].into(),
            reason: "r".into(),
        };
        let cubic: BTreeMap<String, toml::Value> =
            [("mode".to_string(), toml::Value::from("cubic"))].into();
        let linear: BTreeMap<String, toml::Value> =
            [("mode".to_string(), toml::Value::from("linear"))].into();
        let node = |name: &str| g.nodes.iter().find(|n| n.name == name).unwrap();
        assert!(e.applies("candle", &g, node("c"), &cubic));
        assert!(!e.applies("candle", &g, node("d"), &cubic));
        assert!(!e.applies("candle", &g, node("c"), &linear));
        assert!(!e.applies("tch", &g, node("c"), &cubic));
    }

    #[test]
    fn a_backend_declaration_covers_its_cross_device_twin_only() {
        let g = graph();
        let e = Expectation {
            backend: "tch".into(),
            node: Some("a".into()),
            op: None,
            after: None,
            verdict: Declared::Diverged,
            when: BTreeMap::new(),
            reason: "r".into(),
        };
        let a = &g.nodes[0];
        let none = BTreeMap::new();
        assert!(e.applies("tch", &g, a, &none));
        assert!(e.applies("tch@cpu", &g, a, &none));
        assert!(!e.applies("tch:port", &g, a, &none));
        assert!(!e.applies("tchx", &g, a, &none));
        assert!(!e.applies("candle@cpu", &g, a, &none));
    }
}
