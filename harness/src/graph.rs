//! The graph every backend receives: ONNX nodes in topological order with
//! typed attributes, initializers as host tensors (each converted where it
//! is read, [`Initializers`]), and the `ModelProto` it came from (ONNX
//! Runtime re-serializes that, with extra outputs).
//!
//! Loading validates what later stages rely on — known dtypes, unique and
//! defined value names, a topological order — so that a bad model fails once,
//! up front, with a message naming the node or value. A model loaded from a
//! file may keep its tensors in side files (ONNX external data, `external`):
//! they are mapped at load, each tensor's bytes a slice of its side file, so
//! nothing downstream sees the difference.

mod external;
mod initializers;

pub use external::externalize;
pub use initializers::Initializers;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use crate::onnx::{self, attribute_type as at, ModelProto};
use crate::tensor::{DType, Tensor, TensorError};

/// A node attribute, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Int(i64),
    Float(f32),
    String(String),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    Strings(Vec<String>),
    Tensor(Tensor),
    /// Subgraphs and other kinds xdiff does not execute; kept so lowerings can
    /// report them as unsupported by name.
    Other(&'static str),
}

impl Attr {
    pub fn kind(&self) -> &'static str {
        match self {
            Attr::Int(_) => "int",
            Attr::Float(_) => "float",
            Attr::String(_) => "string",
            Attr::Ints(_) => "ints",
            Attr::Floats(_) => "floats",
            Attr::Strings(_) => "strings",
            Attr::Tensor(_) => "tensor",
            Attr::Other(k) => k,
        }
    }
}

/// One ONNX node.
#[derive(Debug, Clone)]
pub struct Node {
    /// Position in topological order.
    pub index: usize,
    /// The node's name; `<op_type>_<index>` when the model leaves it empty.
    pub name: String,
    pub op_type: String,
    pub domain: String,
    /// Input value names; `""` marks an omitted optional input.
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: BTreeMap<String, Attr>,
}

/// A graph input or output declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueInfo {
    pub name: String,
    pub dtype: Option<DType>,
    /// `None` when the model gives no shape.
    pub shape: Option<Vec<Dim>>,
}

/// A declared dimension.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    Fixed(usize),
    Symbolic(String),
    Unknown,
}

/// A loaded, validated graph.
#[derive(Debug, Clone)]
pub struct Graph {
    pub name: String,
    /// Opset of the default (`ai.onnx`) domain.
    pub opset: u32,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    /// Shared: every engine's session and every case built on the graph
    /// holds the same weights (a clone of a `Graph` copies no tensor); each
    /// converted to a host tensor where it is read ([`Initializers`]).
    pub initializers: Arc<Initializers>,
    pub nodes: Vec<Node>,
    /// The model as loaded (nodes re-sorted topologically), for backends that
    /// consume ONNX directly; shared like the initializers.
    pub model: Arc<ModelProto>,
    /// The file `model` was read from, unchanged ([`Graph::from_file_bytes`]);
    /// `None` for a model built or patched in memory.
    pub file: Option<Arc<ModelFile>>,
}

/// What a graph built for an engine keeps of its model's weights
/// ([`Engine::weights`](crate::backend::Engine::weights)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// The model's bytes, external data mapped in, and its initializers as
    /// host tensors, each converted where it is read ([`Initializers`]).
    Tensors,
    /// The model as its file has it, external data left in the files beside
    /// it: for a runtime that maps them itself ([`ModelFile::external`]).
    AsFiled,
}

/// A model file as it was when read: a lane worker reads the model from
/// it rather than having the whole model (weights included) encoded and
/// piped to it, and refuses it if the file changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    pub path: std::path::PathBuf,
    pub len: u64,
    pub modified: Option<std::time::SystemTime>,
    /// Whether the file keeps initializers in external data files beside
    /// it (a runtime that reads those itself can load the file's own bytes).
    pub external: bool,
}

impl ModelFile {
    /// `path`'s length and modification time now.
    pub fn stat(path: &Path) -> std::io::Result<ModelFile> {
        let meta = std::fs::metadata(path)?;
        Ok(ModelFile {
            path: path.to_path_buf(),
            len: meta.len(),
            modified: meta.modified().ok(),
            external: false,
        })
    }

    /// The file as it is now, or an error naming it if it changed since
    /// `self` was taken (its length, or its mtime where that was known).
    pub fn unchanged(&self) -> std::io::Result<ModelFile> {
        let now = ModelFile::stat(&self.path)?;
        let same =
            now.len == self.len && (self.modified.is_none() || now.modified == self.modified);
        if !same {
            return Err(std::io::Error::other(format!(
                "{} changed while xdiff was running",
                self.path.display()
            )));
        }
        Ok(ModelFile {
            external: self.external,
            ..now
        })
    }
}

/// Everything that can be wrong with a model.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error("not a valid ONNX model (protobuf decode failed: {0}); is the file truncated?")]
    Decode(#[from] prost::DecodeError),
    #[error("the model has no graph")]
    NoGraph,
    #[error("opset {0} of the default domain is outside the supported range 7..=24")]
    Opset(i64),
    #[error("initializer `{name}`: {source}")]
    Initializer { name: String, source: TensorError },
    #[error("node `{node}` ({op}): attribute `{attr}`: {what}")]
    Attribute {
        node: String,
        op: String,
        attr: String,
        what: AttrError,
    },
    #[error("node `{node}` ({op}) reads `{value}`, which no node, input or initializer produces")]
    Undefined {
        node: String,
        op: String,
        value: String,
    },
    #[error("value `{0}` is produced twice")]
    Duplicate(String),
    #[error("the graph has a cycle through node `{0}`")]
    Cycle(String),
    #[error("graph input `{name}` has element type {code}, which xdiff does not handle")]
    InputType { name: String, code: i32 },
    #[error("graph output `{0}` is never produced")]
    MissingOutput(String),
    #[error("node `{node}`: `{op}` is not an ONNX operator (ai.onnx, onnx 1.19 / opset 24)")]
    UnknownOp { node: String, op: String },
    #[error("node `{node}` uses domain `{domain}`; only the default ONNX domain is supported")]
    Domain { node: String, domain: String },
    #[error("{0}")]
    External(#[from] external::ExternalError),
    #[error("the model keeps tensors in external data files, which are found next to the model: load it from its path")]
    ExternalWithoutFolder,
    #[error("cannot read the model: {0}")]
    Read(std::io::Error),
}

impl Graph {
    /// The index of the last node that reads each value (liveness: a value
    /// is needed until that node ran, or was judged).
    pub fn last_uses(&self) -> HashMap<&str, usize> {
        let mut last = HashMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for name in node.inputs.iter().filter(|n| !n.is_empty()) {
                last.insert(name.as_str(), i);
            }
        }
        last
    }

    /// Decodes and validates a serialized model.
    pub fn from_bytes(bytes: &[u8]) -> Result<Graph, GraphError> {
        Graph::from_model(onnx::decode_model(bytes)?)
    }

    /// Decodes a serialized model whose external data files (if any) lie
    /// in or under `dir`, the model's folder, and reads them in.
    pub fn from_bytes_in(bytes: &[u8], dir: &Path) -> Result<Graph, GraphError> {
        let mut model = onnx::decode_model(bytes)?;
        let mapped = external::inline(&mut model, dir)?;
        Graph::build(model, Weights::Tensors, mapped)
    }

    /// Loads the model file at `path`, with its external data.
    pub fn load(path: &Path) -> Result<Graph, GraphError> {
        let bytes = std::fs::read(path).map_err(GraphError::Read)?;
        Graph::from_file_bytes(bytes, path)
    }

    /// [`Graph::from_bytes_in`] for `bytes` read from the file at `path`
    /// (external data beside it), remembering the file ([`Graph::file`]).
    /// The weights are not copied out of `bytes` (nor out of the mapped
    /// side files): the model's tensors are slices of them.
    pub fn from_file_bytes(bytes: Vec<u8>, path: &Path) -> Result<Graph, GraphError> {
        let file = ModelFile::stat(path).map_err(GraphError::Read)?;
        let model = onnx::decode_model_shared(bytes.into())?;
        Graph::from_file_model(model, file, Weights::Tensors)
    }

    /// The graph of `model`, decoded from `file`, keeping `weights` (the
    /// file says whether it has external data, mapped in unless `AsFiled`).
    fn from_file_model(
        mut model: ModelProto,
        mut file: ModelFile,
        weights: Weights,
    ) -> Result<Graph, GraphError> {
        file.external = external::any(&model);
        let mut mapped = external::Mappings::default();
        if weights != Weights::AsFiled {
            mapped = external::inline(&mut model, file.path.parent().unwrap_or(Path::new(".")))?;
        }
        let mut graph = Graph::build(model, weights, mapped)?;
        graph.file = Some(Arc::new(file));
        Ok(graph)
    }

    /// The model file `file` describes, read again, keeping `weights`; an
    /// error if the file changed since it was described.
    pub fn reload(file: &ModelFile, weights: Weights) -> Result<Graph, GraphError> {
        let now = file.unchanged().map_err(GraphError::Read)?;
        let bytes = std::fs::read(&file.path).map_err(GraphError::Read)?;
        let model = onnx::decode_model_shared(bytes.into())?;
        Graph::from_file_model(model, now, weights)
    }

    /// Validates a decoded model and builds the graph.
    pub fn from_model(model: ModelProto) -> Result<Graph, GraphError> {
        Graph::build(model, Weights::Tensors, external::Mappings::default())
    }

    /// Validates `model` and builds the graph, its initializers checked and
    /// kept for conversion where read (none for `AsFiled`: they are the
    /// runtime's to read); `mapped` are the side files its external data was
    /// mapped from.
    fn build(
        mut model: ModelProto,
        weights: Weights,
        mapped: external::Mappings,
    ) -> Result<Graph, GraphError> {
        if weights != Weights::AsFiled && external::any(&model) {
            return Err(GraphError::ExternalWithoutFolder);
        }
        let opset = default_opset(&model)?;
        let g = model.graph.as_mut().ok_or(GraphError::NoGraph)?;
        let names: HashSet<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
        let initializers = match weights {
            Weights::Tensors => Initializers::check(&g.initializer, mapped)?,
            Weights::AsFiled => Initializers::default(),
        };
        let inputs = g
            .input
            .iter()
            .filter(|v| !names.contains(v.name.as_str()))
            .map(value_info)
            .collect::<Result<Vec<_>, _>>()?;
        let outputs = g
            .output
            .iter()
            .map(value_info)
            .collect::<Result<Vec<_>, _>>()?;
        let order = topo_order(g, &inputs, &names)?;
        drop(names);
        let sorted: Vec<onnx::NodeProto> = order.iter().map(|&i| g.node[i].clone()).collect();
        g.node = sorted;
        let nodes = g
            .node
            .iter()
            .enumerate()
            .map(|(i, n)| node(i, n))
            .collect::<Result<Vec<_>, _>>()?;
        let produced: HashSet<&str> = nodes
            .iter()
            .flat_map(|n| n.outputs.iter().map(String::as_str))
            .chain(inputs.iter().map(|v| v.name.as_str()))
            .chain(g.initializer.iter().map(|t| t.name.as_str()))
            .collect();
        if let Some(o) = outputs.iter().find(|o| !produced.contains(o.name.as_str())) {
            return Err(GraphError::MissingOutput(o.name.clone()));
        }
        Ok(Graph {
            name: g.name.clone(),
            opset,
            inputs,
            outputs,
            initializers: Arc::new(initializers),
            nodes,
            model: Arc::new(model),
            file: None,
        })
    }

    /// The node that produces `value`, if any.
    pub fn producer(&self, value: &str) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|n| n.outputs.iter().any(|o| o == value))
    }

    /// Serializes the model (with any edits made to `self.model`).
    pub fn to_bytes(&self) -> Vec<u8> {
        prost::Message::encode_to_vec(&*self.model)
    }
}

fn default_opset(model: &ModelProto) -> Result<u32, GraphError> {
    let v = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1);
    if !(7..=24).contains(&v) {
        return Err(GraphError::Opset(v));
    }
    Ok(v as u32)
}

fn value_info(v: &onnx::ValueInfoProto) -> Result<ValueInfo, GraphError> {
    use onnx::type_proto::Value;
    let tensor = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(Value::TensorType(t)) => t,
        _ => {
            return Ok(ValueInfo {
                name: v.name.clone(),
                dtype: None,
                shape: None,
            })
        }
    };
    let dtype = if tensor.elem_type == 0 {
        None
    } else {
        Some(
            DType::from_onnx(tensor.elem_type).ok_or(GraphError::InputType {
                name: v.name.clone(),
                code: tensor.elem_type,
            })?,
        )
    };
    let shape = tensor.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(onnx::dimension::Value::DimValue(n)) if *n >= 0 => Dim::Fixed(*n as usize),
                Some(onnx::dimension::Value::DimParam(p)) if !p.is_empty() => {
                    Dim::Symbolic(p.clone())
                }
                _ => Dim::Unknown,
            })
            .collect()
    });
    Ok(ValueInfo {
        name: v.name.clone(),
        dtype,
        shape,
    })
}

/// Kahn's algorithm, stable with respect to the file's node order.
fn topo_order(
    g: &onnx::GraphProto,
    inputs: &[ValueInfo],
    inits: &HashSet<&str>,
) -> Result<Vec<usize>, GraphError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if producer.insert(o, i).is_some() || inits.contains(o.as_str()) {
                return Err(GraphError::Duplicate(o.clone()));
            }
        }
    }
    let external: HashSet<&str> = inputs
        .iter()
        .map(|v| v.name.as_str())
        .chain(inits.iter().copied())
        .collect();
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); g.node.len()];
    for (i, n) in g.node.iter().enumerate() {
        for inp in n.input.iter().filter(|s| !s.is_empty()) {
            match producer.get(inp.as_str()) {
                Some(&p) => deps[i].push(p),
                None if external.contains(inp.as_str()) => {}
                None => {
                    return Err(GraphError::Undefined {
                        node: display_name(n, i),
                        op: n.op_type.clone(),
                        value: inp.clone(),
                    })
                }
            }
        }
    }
    let mut done = vec![false; g.node.len()];
    let mut order = Vec::with_capacity(g.node.len());
    while order.len() < g.node.len() {
        let before = order.len();
        for i in 0..g.node.len() {
            if !done[i] && deps[i].iter().all(|&d| done[d]) {
                done[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            let stuck = (0..g.node.len())
                .find(|&i| !done[i])
                .expect("some node left");
            return Err(GraphError::Cycle(display_name(&g.node[stuck], stuck)));
        }
    }
    Ok(order)
}

fn display_name(n: &onnx::NodeProto, i: usize) -> String {
    if n.name.is_empty() {
        format!("{}_{}", n.op_type, i)
    } else {
        n.name.clone()
    }
}

fn node(index: usize, n: &onnx::NodeProto) -> Result<Node, GraphError> {
    let name = display_name(n, index);
    if !(n.domain.is_empty() || n.domain == "ai.onnx") {
        return Err(GraphError::Domain {
            node: name,
            domain: n.domain.clone(),
        });
    }
    if !ONNX_OPS.contains(&n.op_type.as_str()) && !crate::options::is_test_op(&n.op_type) {
        return Err(GraphError::UnknownOp {
            node: name,
            op: n.op_type.clone(),
        });
    }
    let mut attrs = BTreeMap::new();
    for a in &n.attribute {
        let value = attr(a).map_err(|what| GraphError::Attribute {
            node: name.clone(),
            op: n.op_type.clone(),
            attr: a.name.clone(),
            what,
        })?;
        attrs.insert(a.name.clone(), value);
    }
    Ok(Node {
        index,
        name,
        op_type: n.op_type.clone(),
        domain: n.domain.clone(),
        inputs: n.input.clone(),
        outputs: n.output.clone(),
        attrs,
    })
}

/// Why one attribute of a node cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AttrError {
    #[error("attribute references (functions) are not supported")]
    Reference,
    #[error("string is not UTF-8")]
    NotUtf8,
    #[error("TENSOR attribute without a tensor")]
    NoTensor,
    #[error("{0}")]
    Tensor(#[from] TensorError),
    #[error("unknown attribute type {0}")]
    UnknownType(i32),
}

fn utf8(b: &[u8]) -> Result<String, AttrError> {
    String::from_utf8(b.to_vec()).map_err(|_| AttrError::NotUtf8)
}

fn attr(a: &onnx::AttributeProto) -> Result<Attr, AttrError> {
    if !a.ref_attr_name.is_empty() {
        return Err(AttrError::Reference);
    }
    Ok(match a.r#type {
        at::INT => Attr::Int(a.i),
        at::FLOAT => Attr::Float(a.f),
        at::STRING => Attr::String(utf8(&a.s)?),
        at::INTS => Attr::Ints(a.ints.clone()),
        at::FLOATS => Attr::Floats(a.floats.clone()),
        at::STRINGS => Attr::Strings(
            a.strings
                .iter()
                .map(|s| utf8(s))
                .collect::<Result<_, _>>()?,
        ),
        at::TENSOR => {
            let t = a.t.as_ref().ok_or(AttrError::NoTensor)?;
            Attr::Tensor(Tensor::from_proto(t)?)
        }
        at::GRAPH => Attr::Other("graph"),
        at::GRAPHS => Attr::Other("graphs"),
        at::TENSORS => Attr::Other("tensors"),
        at::SPARSE_TENSOR | at::SPARSE_TENSORS => Attr::Other("sparse tensor"),
        at::TYPE_PROTO | at::TYPE_PROTOS => Attr::Other("type proto"),
        other => return Err(AttrError::UnknownType(other)),
    })
}

/// Every operator of the default ONNX domain (onnx 1.19.1, all opsets),
/// generated with `onnx.defs.get_all_schemas_with_history()`.
pub const ONNX_OPS: &[&str] = &[
    "Abs",
    "Acos",
    "Acosh",
    "Add",
    "AffineGrid",
    "And",
    "ArgMax",
    "ArgMin",
    "Asin",
    "Asinh",
    "Atan",
    "Atanh",
    "Attention",
    "AveragePool",
    "BatchNormalization",
    "Bernoulli",
    "BitShift",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "BlackmanWindow",
    "Cast",
    "CastLike",
    "Ceil",
    "Celu",
    "CenterCropPad",
    "Clip",
    "Col2Im",
    "Compress",
    "Concat",
    "ConcatFromSequence",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvInteger",
    "ConvTranspose",
    "Cos",
    "Cosh",
    "CumSum",
    "DFT",
    "DeformConv",
    "DepthToSpace",
    "DequantizeLinear",
    "Det",
    "Div",
    "Dropout",
    "DynamicQuantizeLinear",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "EyeLike",
    "Flatten",
    "Floor",
    "GRU",
    "Gather",
    "GatherElements",
    "GatherND",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalLpPool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "GridSample",
    "GroupNormalization",
    "HammingWindow",
    "HannWindow",
    "HardSigmoid",
    "HardSwish",
    "Hardmax",
    "Identity",
    "If",
    "ImageDecoder",
    "InstanceNormalization",
    "IsInf",
    "IsNaN",
    "LRN",
    "LSTM",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "Loop",
    "LpNormalization",
    "LpPool",
    "MatMul",
    "MatMulInteger",
    "Max",
    "MaxPool",
    "MaxRoiPool",
    "MaxUnpool",
    "Mean",
    "MeanVarianceNormalization",
    "MelWeightMatrix",
    "Min",
    "Mish",
    "Mod",
    "Mul",
    "Multinomial",
    "Neg",
    "NegativeLogLikelihoodLoss",
    "NonMaxSuppression",
    "NonZero",
    "Not",
    "OneHot",
    "Optional",
    "OptionalGetElement",
    "OptionalHasElement",
    "Or",
    "PRelu",
    "Pad",
    "Pow",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "RMSNormalization",
    "RNN",
    "RandomNormal",
    "RandomNormalLike",
    "RandomUniform",
    "RandomUniformLike",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "RegexFullMatch",
    "Relu",
    "Reshape",
    "Resize",
    "ReverseSequence",
    "RoiAlign",
    "RotaryEmbedding",
    "Round",
    "STFT",
    "Scan",
    "Scatter",
    "ScatterElements",
    "ScatterND",
    "Selu",
    "SequenceAt",
    "SequenceConstruct",
    "SequenceEmpty",
    "SequenceErase",
    "SequenceInsert",
    "SequenceLength",
    "SequenceMap",
    "Shape",
    "Shrink",
    "Sigmoid",
    "Sign",
    "Sin",
    "Sinh",
    "Size",
    "Slice",
    "Softmax",
    "SoftmaxCrossEntropyLoss",
    "Softplus",
    "Softsign",
    "SpaceToDepth",
    "Split",
    "SplitToSequence",
    "Sqrt",
    "Squeeze",
    "StringConcat",
    "StringNormalizer",
    "StringSplit",
    "Sub",
    "Sum",
    "Swish",
    "Tan",
    "Tanh",
    "TensorScatter",
    "TfIdfVectorizer",
    "ThresholdedRelu",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unique",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
];
