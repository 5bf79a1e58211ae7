//! Patched lanes (`[[lane]]`): a backend running the case's graph with one
//! node's attributes replaced or added, the way silent mistakes happen (an
//! epsilon, an approximation, a coordinate mode). The engine gets the
//! patched graph; the reference keeps the original, so the local comparison
//! at the patched node judges the lane against the spec's meaning.
//!
//! Everything is checked at load, one line naming the file and key: the
//! backend, the node, each attribute against the op's spec (`op_attrs`:
//! the name must be one the spec defines, the value of the spec's kind,
//! integers accepted for floats), and the patched model must still load as
//! a graph. Whether the op *decodes* the new value is left to the run: a
//! value the op layer rejects makes the lane report `unsupported`/`error`
//! at that node, which fails the case unless declared.

use std::path::Path;
use std::sync::Arc;

use super::inline::attr_proto;
use super::op_attrs::spec_attrs;
use super::raw::RawLane;
use super::CaseError;
use crate::backend;
use crate::graph::{Graph, GraphError, Node};
use crate::lane::{EngineLane, Patch, REFERENCE};
use crate::onnx::{AttributeProto, ModelProto};
use crate::options::Device;

/// One `[[lane]]` of a case, resolved.
#[derive(Debug, Clone)]
pub struct PatchedLane {
    pub backend: String,
    /// The lane's name after `<backend>:`, unique in the case.
    pub name: String,
    /// The patched node.
    pub node: String,
    /// What changed, `attr=value` per attribute (shown in the lane's settings).
    pub change: String,
    /// The patch's attributes as the case file gives them (for `--repro`,
    /// which writes the same patch beside a reproduction).
    pub attrs: std::collections::BTreeMap<String, toml::Value>,
    /// The case's graph with the patch applied: what this lane's engine runs.
    pub graph: Arc<Graph>,
}

impl PatchedLane {
    /// The typed lane, `<backend>:<name>` on `device`.
    pub fn lane(&self, device: Device) -> EngineLane {
        EngineLane::patched(&self.backend, device, Patch::Attrs(self.name.clone()))
    }
}

/// Resolves a case file's `[[lane]]` tables against its `graph`.
pub(super) fn patched_lanes(
    file: &Path,
    raw: &[RawLane],
    graph: &Graph,
) -> Result<Vec<PatchedLane>, CaseError> {
    let mut lanes: Vec<PatchedLane> = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let key = format!("lane[{i}]");
        let lane = patched_lane(file, &key, l, graph)?;
        if lane.name == Patch::Port.name() || lanes.iter().any(|o| o.name == lane.name) {
            return Err(CaseError::new(
                file,
                format!(
                    "key `{key}.name`: lane name `{}` is already taken (names must be unique and not `port`)",
                    lane.name
                ),
            ));
        }
        lanes.push(lane);
    }
    Ok(lanes)
}

fn patched_lane(
    file: &Path,
    key: &str,
    l: &RawLane,
    graph: &Graph,
) -> Result<PatchedLane, CaseError> {
    let bad = |k: &str, m: String| CaseError::new(file, format!("key `{key}.{k}`: {m}"));
    if l.backend == REFERENCE || backend::info(&l.backend).is_none() {
        let expected = backend::names_where(|b| b.name != REFERENCE, " or ");
        return Err(bad(
            "backend",
            format!(
                "`{}` cannot run a patched lane (expected {expected})",
                l.backend
            ),
        ));
    }
    let node = graph
        .nodes
        .iter()
        .find(|n| n.name == l.patch.node)
        .ok_or_else(|| {
            bad(
                "patch.node",
                format!("`{}` is not a node of the graph", l.patch.node),
            )
        })?;
    if l.patch.attrs.is_empty() {
        return Err(bad("patch.attrs", "names no attribute".into()));
    }
    let mut protos = Vec::new();
    for (name, value) in &l.patch.attrs {
        let k = format!("{key}.patch.attrs.{name}");
        let kind =
            spec_kind(node, name).map_err(|m| CaseError::new(file, format!("key `{k}`: {m}")))?;
        protos.push(attr_proto(file, &k, name, &promote(value, kind))?);
    }
    let patched = patch_graph(graph, node.index, protos)
        .map_err(|e| bad("patch", format!("the patched graph does not load: {e}")))?;
    check_kinds(file, key, &patched.nodes[node.index], l)?;
    let name = match &l.name {
        Some(n) => n.clone(),
        None => default_name(&l.patch.node, l.patch.attrs.keys()),
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        let hint = if l.name.is_some() {
            ""
        } else {
            " (derived from node and attributes; give `name`)"
        };
        return Err(bad(
            "name",
            format!("`{name}` must be letters, digits, `-`, `_` or `.`{hint}"),
        ));
    }
    Ok(PatchedLane {
        backend: l.backend.clone(),
        name,
        node: node.name.clone(),
        change: l
            .patch
            .attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", super::show_value(v)))
            .collect::<Vec<_>>()
            .join(" "),
        attrs: l.patch.attrs.clone(),
        graph: Arc::new(patched),
    })
}

/// The kind of value the spec of `node`'s op gives attribute `name`.
fn spec_kind(node: &Node, name: &str) -> Result<&'static str, String> {
    let spec = spec_attrs(&node.op_type).unwrap_or(&[]);
    spec.iter()
        .find(|(a, _)| *a == name)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| {
            let names: Vec<&str> = spec.iter().map(|(a, _)| *a).collect();
            format!(
                "node `{}` ({}) has no attribute `{name}` in the ONNX spec (it defines: {})",
                node.name,
                node.op_type,
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            )
        })
}

/// Integers where the spec wants floats are written as floats.
fn promote(v: &toml::Value, kind: &str) -> toml::Value {
    let float = |x: &toml::Value| {
        toml::Value::Float(
            x.as_float()
                .unwrap_or_else(|| x.as_integer().unwrap_or(0) as f64),
        )
    };
    match (kind, v) {
        ("float", toml::Value::Integer(_)) => float(v),
        ("floats", toml::Value::Array(xs)) => {
            let table = [(
                "floats".to_string(),
                toml::Value::Array(xs.iter().map(float).collect()),
            )];
            toml::Value::Table(table.into_iter().collect())
        }
        _ => v.clone(),
    }
}

/// Each patched attribute, as the patched graph decodes it, has the kind the spec gives it.
fn check_kinds(file: &Path, key: &str, node: &Node, l: &RawLane) -> Result<(), CaseError> {
    for name in l.patch.attrs.keys() {
        let want = spec_kind(node, name).map_err(|m| CaseError::new(file, m))?;
        let got = node.attrs.get(name).map_or("nothing", |a| a.kind());
        if got != want {
            return Err(CaseError::new(
                file,
                format!(
                    "key `{key}.patch.attrs.{name}`: `{}` ({}) takes a {want} there, not a {got}",
                    node.name, node.op_type
                ),
            ));
        }
    }
    Ok(())
}

/// `graph` with node `index`'s attributes `attrs` replaced (or added).
fn patch_graph(
    graph: &Graph,
    index: usize,
    attrs: Vec<AttributeProto>,
) -> Result<Graph, GraphError> {
    let mut model = ModelProto::clone(&graph.model);
    let g = model.graph.as_mut().ok_or(GraphError::NoGraph)?;
    let node = &mut g.node[index];
    for a in attrs {
        node.attribute.retain(|old| old.name != a.name);
        node.attribute.push(a);
    }
    Graph::from_model(model)
}

/// `<node>-<attr>[-<attr>...]`.
fn default_name<'a>(node: &str, attrs: impl Iterator<Item = &'a String>) -> String {
    let mut parts = vec![node.to_string()];
    parts.extend(attrs.cloned());
    parts.join("-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::raw::RawGraph;
    use crate::graph::Attr;

    fn graph() -> Graph {
        let g: RawGraph = toml::from_str(
            r#"
inputs = [{ name = "X", shape = [2, 4] }]
outputs = ["Y"]
nodes = [
  { name = "sm", op = "Softmax", inputs = ["X"], outputs = ["S"] },
  { name = "ln", op = "LayerNormalization", inputs = ["S", "W"], outputs = ["Y"], attrs = { epsilon = 1e-5 } },
]
initializers = [{ name = "W", shape = [4], values = [1, 1, 1, 1] }]
"#,
        )
        .unwrap();
        super::super::graph_from_inline(Path::new("g.toml"), &g, 0).unwrap()
    }

    fn lanes(text: &str) -> Result<Vec<PatchedLane>, String> {
        #[derive(serde::Deserialize)]
        struct L {
            lane: Vec<RawLane>,
        }
        let raw: L = toml::from_str(text).unwrap();
        patched_lanes(Path::new("c.toml"), &raw.lane, &graph()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_patch_replaces_or_adds_attributes_in_the_lane_graph_only() {
        let g = graph();
        let l = lanes(
            "[[lane]]\nbackend = \"ort\"\npatch = { node = \"ln\", attrs = { epsilon = 1, axis = 0 } }\n\
             [[lane]]\nname = \"sm-rows\"\nbackend = \"tch\"\npatch = { node = \"sm\", attrs = { axis = 0 } }",
        )
        .unwrap();
        assert_eq!(l[0].name, "ln-axis-epsilon");
        assert_eq!(l[0].change, "axis=0 epsilon=1");
        assert_eq!(l[0].lane(Device::Cpu).to_string(), "ort:ln-axis-epsilon");
        let ln = &l[0].graph.nodes[1];
        assert_eq!(ln.attrs["epsilon"], Attr::Float(1.0));
        assert_eq!(ln.attrs["axis"], Attr::Int(0));
        assert_eq!(g.nodes[1].attrs["epsilon"], Attr::Float(1e-5));
        assert_eq!(l[1].graph.nodes[0].attrs["axis"], Attr::Int(0));
        assert!(!g.nodes[0].attrs.contains_key("axis"));
        // The model ORT gets is patched too.
        let bytes = Graph::from_bytes(&l[1].graph.to_bytes()).unwrap();
        assert_eq!(bytes.nodes[0].attrs["axis"], Attr::Int(0));
    }

    #[test]
    fn bad_patches_name_the_key() {
        let one = |lane: &str| lanes(&format!("[[lane]]\n{lane}")).unwrap_err();
        let engines = backend::names_where(|b| b.name != REFERENCE, " or ");
        assert_eq!(
            one("backend = \"reference\"\npatch = { node = \"ln\", attrs = { epsilon = 1.0 } }"),
            format!("c.toml: key `lane[0].backend`: `reference` cannot run a patched lane (expected {engines})")
        );
        assert_eq!(
            one("backend = \"ort\"\npatch = { node = \"nope\", attrs = { epsilon = 1.0 } }"),
            "c.toml: key `lane[0].patch.node`: `nope` is not a node of the graph"
        );
        assert_eq!(
            one("backend = \"ort\"\npatch = { node = \"ln\", attrs = { epsilom = 1.0 } }"),
            "c.toml: key `lane[0].patch.attrs.epsilom`: node `ln` (LayerNormalization) has no attribute `epsilom` in the ONNX spec (it defines: axis, epsilon, stash_type)"
        );
        assert_eq!(
            one("backend = \"ort\"\npatch = { node = \"ln\", attrs = { epsilon = \"small\" } }"),
            "c.toml: key `lane[0].patch.attrs.epsilon`: `ln` (LayerNormalization) takes a float there, not a string"
        );
        let dup = "[[lane]]\nbackend = \"ort\"\npatch = { node = \"sm\", attrs = { axis = 0 } }\n\
                   [[lane]]\nbackend = \"tch\"\npatch = { node = \"sm\", attrs = { axis = 0 } }";
        assert_eq!(
            lanes(dup).unwrap_err(),
            "c.toml: key `lane[1].name`: lane name `sm-axis` is already taken (names must be unique and not `port`)"
        );
    }
}
