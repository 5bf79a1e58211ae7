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
//! so that the weights are not held a second time as host tensors.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use super::GraphError;
use crate::onnx::TensorProto;
use crate::tensor::Tensor;

/// The initializers of a graph by name (the last of a repeated name wins).
#[derive(Default)]
pub struct Initializers {
    map: BTreeMap<String, Initializer>,
}

/// One weight: its checked proto, and its tensor once a reader kept it.
struct Initializer {
    proto: TensorProto,
    tensor: OnceLock<Tensor>,
}

impl Initializer {
    /// The tensor, converted now if it was not kept.
    fn convert(&self) -> Tensor {
        Tensor::from_proto(&self.proto).expect("checked when the graph was built")
    }
}

impl Initializers {
    /// Checks each of `protos` in the model's order (the first malformed one
    /// is the error) and keeps them for conversion on first read.
    pub(super) fn check(protos: &[TensorProto]) -> Result<Initializers, GraphError> {
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
        Ok(Initializers { map })
    }

    /// The tensor `name`, converted on first use and kept.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.get_key_value(name).map(|(_, t)| t)
    }

    /// [`Initializers::get`] with the stored name.
    pub fn get_key_value(&self, name: &str) -> Option<(&String, &Tensor)> {
        let (key, i) = self.map.get_key_value(name)?;
        Some((key, i.tensor.get_or_init(|| i.convert())))
    }

    /// `f` on the tensor `name`: the kept one, or one converted for `f`
    /// alone and dropped after it (a reader that makes its own copy, such
    /// as a float64 upload, does not hold the weight twice).
    pub fn with<R>(&self, name: &str, f: impl FnOnce(&Tensor) -> R) -> Option<R> {
        let i = self.map.get(name)?;
        Some(match i.tensor.get() {
            Some(t) => f(t),
            None => f(&i.convert()),
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
        let inits = Initializers::check(&[proto("a", &[1.0, 2.0]), proto("b", &[3.0])]).unwrap();
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
    fn the_first_malformed_weight_in_model_order_is_the_error() {
        let mut short = proto("z_short", &[1.0, 2.0]);
        short.dims = vec![3];
        let mut negative = proto("a_negative", &[1.0]);
        negative.dims = vec![-1];
        let err = Initializers::check(&[proto("ok", &[1.0]), short.clone(), negative])
            .unwrap_err()
            .to_string();
        assert!(err.contains("z_short"), "{err}");
        // The check refuses exactly what the conversion refuses, with its words.
        let converted = Tensor::from_proto(&short).unwrap_err().to_string();
        assert!(err.contains(&converted), "{err} / {converted}");
    }
}
