//! A graph's weights, checked when the model loads and converted to host
//! tensors only where they are read.
//!
//! A real network's weights are a hundred MB and more. Converting them all
//! at load cost a copy of every weight (114 MB and ~60 ms on swin_t) that
//! most readers never keep: the reference converts each weight again to
//! float64 when its first reader runs, and the judge's error bounds do the
//! same. So loading only checks each initializer (dtype, dims, byte count:
//! every way the conversion can fail, [`Tensor::check_proto`]), and keeps
//! its `TensorProto`, whose bytes are a slice of the model file's buffer or
//! of its mapped external data (nothing is copied). A reader then either
//! keeps the conversion ([`Initializers::get`]), or uses it and lets it go
//! ([`Initializers::with`]), as the interpreting engines and the bounds do,
//! so that the weights are not held a second time as host tensors. Bytes
//! that are pages of a mapped side file are handed back once converted
//! ([`Mappings::release`]): a weight read once is not held for the rest of
//! the run as resident file pages either (114 MB on swin_t).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use super::external::Mappings;
use super::GraphError;
use crate::onnx::TensorProto;
use crate::tensor::{DType, Tensor};

/// The initializers of a graph by name (the last of a repeated name wins).
#[derive(Default)]
pub struct Initializers {
    map: BTreeMap<String, Initializer>,
    /// The side files whose pages hold the external weights' bytes.
    mapped: Mappings,
}

/// One weight: its checked proto, and its tensor once a reader kept it.
struct Initializer {
    proto: TensorProto,
    tensor: OnceLock<Tensor>,
}

impl Initializers {
    /// Checks each of `protos` in the model's order (the first malformed one
    /// is the error) and keeps them for conversion on first read; `mapped`
    /// are the side files the external ones are slices of.
    pub(super) fn check(
        protos: &[TensorProto],
        mapped: Mappings,
    ) -> Result<Initializers, GraphError> {
        let mut map = BTreeMap::new();
        for p in protos {
            Tensor::check_proto(p).map_err(|source| GraphError::Initializer {
                name: p.name.clone(),
                source,
            })?;
            let entry = Initializer {
                proto: p.clone(),
                tensor: OnceLock::new(),
            };
            map.insert(p.name.clone(), entry);
        }
        Ok(Initializers { map, mapped })
    }

    /// `i` converted now, its file pages (if mapped) handed back after.
    fn convert(&self, i: &Initializer) -> Tensor {
        let t = Tensor::from_proto(&i.proto).expect("checked when the graph was built");
        self.mapped.release(&i.proto.raw_data);
        t
    }

    /// The tensor `name`, converted on first use and kept.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.get_key_value(name).map(|(_, t)| t)
    }

    /// [`Initializers::get`] with the stored name.
    pub fn get_key_value(&self, name: &str) -> Option<(&String, &Tensor)> {
        let (key, i) = self.map.get_key_value(name)?;
        Some((key, i.tensor.get_or_init(|| self.convert(i))))
    }

    /// `f` on the tensor `name`: the kept one, or one converted for `f`
    /// alone and dropped after it (a reader that makes its own copy, such
    /// as a float64 upload, does not hold the weight twice).
    pub fn with<R>(&self, name: &str, f: impl FnOnce(&Tensor) -> R) -> Option<R> {
        let i = self.map.get(name)?;
        Some(match i.tensor.get() {
            Some(t) => f(t),
            None => f(&self.convert(i)),
        })
    }

    /// `name` with its float elements widened to float64, and its stored
    /// dtype: what the float64 reference reads. A weight not kept is
    /// widened straight from its bytes ([`Tensor::from_proto_widened`]),
    /// with no copy in its own dtype in between, and not kept either.
    pub fn widened(&self, name: &str) -> Option<(Tensor, DType)> {
        let i = self.map.get(name)?;
        Some(match i.tensor.get() {
            Some(t) if t.dtype().is_float() => (t.cast(DType::F64), t.dtype()),
            Some(t) => (t.clone(), t.dtype()),
            None => {
                let t =
                    Tensor::from_proto_widened(&i.proto).expect("checked when the graph was built");
                self.mapped.release(&i.proto.raw_data);
                let dtype =
                    DType::from_onnx(i.proto.data_type).expect("checked when the graph was built");
                (t, dtype)
            }
        })
    }

    /// The shape of `name`, from its dims (checked at load), without
    /// converting it: a reader that needs only the shape (an embedding
    /// table's, say) does not pay for, or keep, the weights.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        let p = &self.map.get(name)?.proto;
        Some(p.dims.iter().map(|&d| d as usize).collect())
    }

    /// The stored name `name` (borrowed from the graph), without converting.
    pub fn key(&self, name: &str) -> Option<&str> {
        self.map.get_key_value(name).map(|(k, _)| k.as_str())
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// Every initializer by name, each converted and kept.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Tensor)> {
        self.map.keys().filter_map(|k| self.get_key_value(k))
    }

    /// How many have been converted and kept (what they cost in memory
    /// beyond the model's own bytes).
    pub fn kept(&self) -> usize {
        self.map
            .values()
            .filter(|i| i.tensor.get().is_some())
            .count()
    }
}

impl PartialEq for Initializers {
    fn eq(&self, other: &Initializers) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for Initializers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::data_type as dt;

    fn none() -> Mappings {
        Mappings::default()
    }

    fn proto(name: &str, values: &[f32]) -> TensorProto {
        TensorProto {
            dims: vec![values.len() as i64],
            data_type: dt::FLOAT,
            name: name.into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn weights_are_converted_when_read_and_kept_only_by_get() {
        let inits =
            Initializers::check(&[proto("a", &[1.0, 2.0]), proto("b", &[3.0])], none()).unwrap();
        assert_eq!(inits.kept(), 0, "nothing converted at load");
        let len = inits.with("a", |t| t.len()).unwrap();
        assert_eq!(len, 2);
        assert_eq!(inits.kept(), 0, "`with` does not keep its conversion");
        assert_eq!(inits.get("b").unwrap().len(), 1);
        assert_eq!(inits.kept(), 1, "`get` keeps it");
        assert_eq!(inits.shape("a"), Some(vec![2]));
        assert_eq!(inits.kept(), 1, "`shape` converts nothing");
        assert!(inits.shape("c").is_none());
        assert!(inits.with("c", |t| t.len()).is_none());
        assert!(inits.get("c").is_none());
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_mapped_weight_hands_its_pages_back_once_converted() {
        use super::super::external::tests::{mapped_model, resident};
        let len = 64 * 4096;
        let dir = tempfile::tempdir().unwrap();
        let (model, mapped) = mapped_model(dir.path(), len);
        let protos = &model.graph.as_ref().unwrap().initializer;
        let bytes = &protos[0].raw_data;
        let inits = Initializers::check(protos, mapped).unwrap();
        // Touched before the conversion, as a reader before it would.
        assert!(bytes.iter().map(|&b| b as usize).sum::<usize>() > 0);
        assert!(resident(bytes) >= len);
        let n = inits.with("w", |t| t.len()).unwrap();
        assert_eq!(n, len / 4);
        assert!(resident(bytes) < len / 8, "{} bytes left", resident(bytes));
        let kept = inits.get("w").unwrap().clone();
        assert!(resident(bytes) < len / 8, "`get` hands them back too");
        assert_eq!(kept, Tensor::from_proto(&protos[0]).unwrap());
    }

    #[test]
    fn the_first_malformed_weight_in_model_order_is_the_error() {
        let mut short = proto("z_short", &[1.0, 2.0]);
        short.dims = vec![3];
        let mut negative = proto("a_negative", &[1.0]);
        negative.dims = vec![-1];
        let err = Initializers::check(&[proto("ok", &[1.0]), short.clone(), negative], none())
            .unwrap_err()
            .to_string();
        assert!(err.contains("z_short"), "{err}");
        // The check refuses exactly what the conversion refuses, with its words.
        let converted = Tensor::from_proto(&short).unwrap_err().to_string();
        assert!(err.contains(&converted), "{err} / {converted}");
    }
}
