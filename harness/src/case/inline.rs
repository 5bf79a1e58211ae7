//! Graphs written inline in a case file (`[model.graph]`), turned into ONNX
//! protos: typed inputs, initializers, nodes with their attributes.

use std::path::Path;

use super::inputs::{generate_tensor, parse_dtype, tensor_seed};
use super::raw::{RawGraph, RawTensor};
use super::CaseError;
use crate::graph::Graph;
use crate::onnx::{self, attribute_type as at};
use crate::tensor::DType;

pub(super) fn attr_proto(
    file: &Path,
    key: &str,
    name: &str,
    v: &toml::Value,
) -> Result<onnx::AttributeProto, CaseError> {
    let mut a = onnx::AttributeProto {
        name: name.to_string(),
        ..Default::default()
    };
    let bad = |what: &str| CaseError::new(file, format!("key `{key}`: {what}"));
    match v {
        toml::Value::Integer(i) => (a.r#type, a.i) = (at::INT, *i),
        toml::Value::Boolean(b) => (a.r#type, a.i) = (at::INT, *b as i64),
        toml::Value::Float(f) => (a.r#type, a.f) = (at::FLOAT, *f as f32),
        toml::Value::String(s) => (a.r#type, a.s) = (at::STRING, s.clone().into_bytes()),
        toml::Value::Array(xs) if xs.iter().all(|x| x.is_integer()) => {
            a.r#type = at::INTS;
            a.ints = xs.iter().filter_map(toml::Value::as_integer).collect();
        }
        toml::Value::Array(xs) if xs.iter().all(|x| x.is_integer() || x.is_float()) => {
            a.r#type = at::FLOATS;
            a.floats = xs.iter().map(|x| x.as_float().unwrap_or_else(|| x.as_integer().unwrap_or(0) as f64) as f32).collect();
        }
        toml::Value::Array(xs) if xs.iter().all(|x| x.is_str()) => {
            a.r#type = at::STRINGS;
            a.strings = xs.iter().filter_map(|x| x.as_str().map(|s| s.as_bytes().to_vec())).collect();
        }
        toml::Value::Table(t) if t.len() == 1 && t.contains_key("floats") => {
            let xs = t["floats"].as_array().ok_or_else(|| bad("`floats` must be an array"))?;
            a.r#type = at::FLOATS;
            a.floats = xs.iter().map(|x| x.as_float().or(x.as_integer().map(|i| i as f64)).unwrap_or(f64::NAN) as f32).collect();
        }
        toml::Value::Table(t) if t.len() == 1 && t.contains_key("float") => {
            let x = &t["float"];
            a.r#type = at::FLOAT;
            a.f = x.as_float().or(x.as_integer().map(|i| i as f64)).ok_or_else(|| bad("`float` must be a number"))? as f32;
        }
        toml::Value::Table(t) if t.contains_key("tensor") => {
            let spec: RawTensor = t["tensor"].clone().try_into().map_err(|e: toml::de::Error| bad(e.message()))?;
            let dtype = parse_dtype(file, key, spec.dtype.as_deref().unwrap_or("float32"))?;
            let shape = spec.shape.clone().unwrap_or_default();
            let tensor = generate_tensor(file, Path::new("."), key, &spec, &shape, dtype, 0)?;
            a.r#type = at::TENSOR;
            a.t = Some(tensor.to_proto(name));
        }
        _ => return Err(bad("unsupported attribute value (use an int, float, string, array, { floats = [...] } or { tensor = {...} })")),
    }
    Ok(a)
}

fn value_info(
    file: &Path,
    key: &str,
    name: &str,
    dtype: DType,
    shape: &[toml::Value],
) -> Result<onnx::ValueInfoProto, CaseError> {
    let dims = shape
        .iter()
        .map(|d| {
            let value = match d {
                toml::Value::Integer(n) if *n >= 0 => onnx::dimension::Value::DimValue(*n),
                toml::Value::String(s) => onnx::dimension::Value::DimParam(s.clone()),
                other => {
                    return Err(CaseError::new(
                        file,
                        format!("key `{key}.shape`: `{other}` is not a dimension"),
                    ))
                }
            };
            Ok(onnx::Dimension {
                value: Some(value),
                denotation: String::new(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tensor = onnx::type_proto::Tensor {
        elem_type: dtype.onnx_code(),
        shape: Some(onnx::TensorShapeProto { dim: dims }),
    };
    Ok(onnx::ValueInfoProto {
        name: name.to_string(),
        r#type: Some(onnx::TypeProto {
            value: Some(onnx::type_proto::Value::TensorType(tensor)),
            denotation: String::new(),
        }),
        ..Default::default()
    })
}

/// Builds an ONNX model from a graph written inline in a case file.
pub fn graph_from_inline(file: &Path, g: &RawGraph, seed: u64) -> Result<Graph, CaseError> {
    let mut gp = onnx::GraphProto {
        name: "inline".into(),
        ..Default::default()
    };
    for (i, v) in g.inputs.iter().enumerate() {
        let key = format!("model.graph.inputs[{i}]");
        let d = parse_dtype(file, &format!("{key}.dtype"), &v.dtype)?;
        gp.input.push(value_info(file, &key, &v.name, d, &v.shape)?);
    }
    for o in &g.outputs {
        gp.output.push(onnx::ValueInfoProto {
            name: o.clone(),
            ..Default::default()
        });
    }
    for (i, init) in g.initializers.iter().enumerate() {
        let key = format!("model.graph.initializers[{i}]");
        let name = init
            .name
            .clone()
            .ok_or_else(|| CaseError::new(file, format!("key `{key}.name`: required")))?;
        let dtype = parse_dtype(
            file,
            &format!("{key}.dtype"),
            init.dtype.as_deref().unwrap_or("float32"),
        )?;
        // A 1-D initializer given by its values may leave out its shape.
        let shape = init
            .shape
            .clone()
            .or_else(|| init.values.as_ref().map(|v| vec![v.len()]))
            .ok_or_else(|| {
                CaseError::new(
                    file,
                    format!("key `{key}.shape`: required (or give `values`)"),
                )
            })?;
        let t = generate_tensor(
            file,
            file.parent().unwrap_or(Path::new(".")),
            &key,
            init,
            &shape,
            dtype,
            tensor_seed(seed, &name),
        )?;
        gp.initializer.push(t.to_proto(&name));
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let mut attrs = Vec::new();
        for (k, v) in &n.attrs {
            attrs.push(attr_proto(
                file,
                &format!("model.graph.nodes[{i}].attrs.{k}"),
                k,
                v,
            )?);
        }
        gp.node.push(onnx::NodeProto {
            name: n
                .name
                .clone()
                .unwrap_or_else(|| format!("{}_{i}", n.op.to_lowercase())),
            op_type: n.op.clone(),
            input: n.inputs.clone(),
            output: n.outputs.clone(),
            attribute: attrs,
            ..Default::default()
        });
    }
    let model = onnx::ModelProto {
        ir_version: if g.opset >= 21 {
            10
        } else if g.opset >= 19 {
            9
        } else {
            8
        },
        producer_name: "xdiff".into(),
        ..onnx::ModelProto::of_graph(gp, g.opset)
    };
    Graph::from_model(model).map_err(|e| CaseError::new(file, format!("key `model.graph`: {e}")))
}
