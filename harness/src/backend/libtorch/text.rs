//! libtorch and TfIdfVectorizer-9: torch has no n-gram counting op, so the
//! node is unsupported on this lane (the reference and ONNX Runtime run it).

use tch::Tensor;

use crate::backend::interp::{Label, OpRegistry};

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.range(
        "TfIdfVectorizer",
        9,
        u32::MAX,
        |c, _| Err(c.unsupported("pool_int64s", "torch has no n-gram counting (TfIdf) op")),
        spec!("TfIdfVectorizer"),
        cov!["all attributes" => Label::Unsupported("pool_int64s (torch has no n-gram counting op)")],
    );
}
