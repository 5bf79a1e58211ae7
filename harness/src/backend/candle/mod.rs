//! The candle backend (candle-core / candle-nn 0.11.1): every ONNX node is
//! lowered to candle's own kernels, node by node, through the shared driver
//! in [`crate::backend::interp`].
//!
//! Each lowering says whether one candle op has exactly the ONNX semantics
//! for the node's attributes (`native: <op>`), whether it had to be built
//! from several candle ops (`composed: <ops>`), or why candle cannot express
//! it (`unsupported`, naming the attribute). Nothing is re-implemented on
//! host data: the host only reads the small tensors that parameterize a node
//! (shapes, axes, pads, scales, sizes) and computes index tables from them.
//! candle-onnx is deliberately not used, so every convention shown is
//! candle's own.
//!
//! Threads: candle's CPU kernels (and `gemm`'s) run on rayon's global pool,
//! sized once by `RAYON_NUM_THREADS` or the cores and shared with the
//! reference and the judge; its idle workers sleep, so there is no spinning
//! to turn off, and a case's `threads` cannot resize it per lane. The lane's
//! settings report its size.
//!
//! Dtypes: float16, bfloat16, float32, float64, uint8, uint32, int16, int32
//! and int64 keep their dtype. bool is stored as candle u8 (0/1, identical
//! values) and remembered per tensor so it comes back as bool. int8,
//! uint16 and uint64 have no candle dtype with identical semantics and are
//! rejected.

mod attention;
mod bitwise;
mod detection;
mod einsum;
mod elementwise;
mod generate;
mod geometry;
mod index;
mod linalg;
mod logic;
mod loss;
mod math;
mod nn;
mod norm2;
mod normalize;
mod pool2;
mod quant;
mod recurrent;
mod reduce;
mod resize;
mod rotary;
mod sampling;
mod select;
mod shape;
mod signal;
mod test_ops;
mod text;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use candle_core::{DType as CDType, Device as CDevice, Tensor as CTensor, TensorId};
use ndarray::{ArrayD, IxDyn};

use super::interp::{self, Interpreter, OpCtx, OpError, OpRegistry, OpResult};
use crate::backend::engine::{Bridge, Engine, EngineError, Session, Trace, TransferError};
use crate::graph::Graph;
use crate::options::{Device, EngineOptions};
use crate::tensor::{DType, Tensor};

/// The candle version this backend is pinned to (Cargo.toml `=0.11.1`).
pub const CANDLE_VERSION: &str = "0.11.1";

/// The candle engine.
pub struct CandleEngine;

/// The candle op registry, built once.
pub fn registry() -> &'static OpRegistry<CTensor> {
    static REG: OnceLock<OpRegistry<CTensor>> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = OpRegistry::new();
        register_all_ops(&mut r);
        r
    })
}

/// Fills the registry family by family.
pub fn register_all_ops(r: &mut OpRegistry<CTensor>) {
    elementwise::register(r);
    shape::register(r);
    recurrent::register(r);
    reduce::register(r);
    index::register(r);
    norm2::register(r);
    sampling::register(r);
    detection::register(r);
    normalize::register(r);
    pool2::register(r);
    linalg::register(r);
    nn::register(r);
    resize::register(r);
    logic::register(r);
    math::register(r);
    generate::register(r);
    select::register(r);
    loss::register(r);
    einsum::register(r);
    signal::register(r);
    bitwise::register(r);
    geometry::register(r);
    rotary::register(r);
    attention::register(r);
    quant::register(r);
    text::register(r);
    test_ops::register(r);
}

/// Opens a candle device for an xdiff device.
pub fn candle_device(device: Device) -> Result<CDevice, EngineError> {
    match device {
        Device::Cpu => Ok(CDevice::Cpu),
        Device::Cuda(n) => CDevice::new_cuda(n).map_err(|e| EngineError::Device {
            engine: "candle",
            device,
            why: format!(
                "candle could not open CUDA device {n} ({e}); CUDA needs xdiff built with the `cuda` feature and a GPU"
            ),
        }),
    }
}

/// One candle session's state, seen by its lowerings as [`OpCtx::scope`]:
/// the session's device (constants are created there; CUDA devices compare
/// by instance) and which u8 tensors hold ONNX bool values (candle has no
/// bool dtype).
pub(crate) struct Scope {
    device: CDevice,
    bools: RefCell<HashSet<TensorId>>,
}

impl Scope {
    pub(crate) fn new(device: CDevice) -> Scope {
        Scope {
            device,
            bools: RefCell::new(HashSet::new()),
        }
    }

    /// The scope of the session running `ctx`'s node. A candle lowering
    /// called outside a candle session is a bug in xdiff; the panic becomes
    /// that node's `error` verdict.
    pub(crate) fn of<'a>(ctx: &'a OpCtx) -> &'a Scope {
        ctx.scope
            .downcast_ref::<Scope>()
            .expect("candle lowering run outside a candle session")
    }

    pub(crate) fn device(&self) -> &CDevice {
        &self.device
    }

    /// Marks `t` as holding ONNX bool values (stored as u8 0/1).
    pub(crate) fn mark_bool(&self, t: CTensor) -> CTensor {
        self.bools.borrow_mut().insert(t.id());
        t
    }

    pub(crate) fn is_bool(&self, t: &CTensor) -> bool {
        t.dtype() == CDType::U8 && self.bools.borrow().contains(&t.id())
    }
}

/// `out` keeps the bool-ness of `src` (for data-movement ops).
pub(crate) fn keep_bool(ctx: &OpCtx, src: &CTensor, out: CTensor) -> CTensor {
    let scope = Scope::of(ctx);
    if scope.is_bool(src) {
        scope.mark_bool(out)
    } else {
        out
    }
}

/// candle errors become `error` verdicts.
pub(crate) trait Ce<T> {
    fn ce(self) -> OpResult<T>;
}

impl<T> Ce<T> for candle_core::Result<T> {
    fn ce(self) -> OpResult<T> {
        self.map_err(|e| OpError::Failed(format!("candle: {e}")))
    }
}

/// The candle dtype for an ONNX dtype, where the semantics are identical.
pub fn candle_dtype(d: DType) -> Option<CDType> {
    Some(match d {
        DType::F16 => CDType::F16,
        DType::BF16 => CDType::BF16,
        DType::F32 => CDType::F32,
        DType::F64 => CDType::F64,
        DType::U8 | DType::Bool => CDType::U8,
        DType::U32 => CDType::U32,
        DType::I16 => CDType::I16,
        DType::I32 => CDType::I32,
        DType::I64 => CDType::I64,
        DType::I8 | DType::U16 | DType::U64 => return None,
    })
}

/// The ONNX dtype of a candle dtype, u8 as uint8 (whether a u8 tensor holds
/// bools is the scope's to say: `keep_bool`).
pub(crate) fn dtype_of(d: CDType) -> DType {
    match d {
        CDType::U8 => DType::U8,
        CDType::U32 => DType::U32,
        CDType::I16 => DType::I16,
        CDType::I32 => DType::I32,
        CDType::I64 => DType::I64,
        CDType::F16 => DType::F16,
        CDType::BF16 => DType::BF16,
        CDType::F64 => DType::F64,
        _ => DType::F32,
    }
}

pub(crate) fn is_float(t: &CTensor) -> bool {
    t.dtype().is_float()
}

/// Integer contents of a small parameter tensor (shape, axes, pads, sizes).
pub(crate) fn host_ints(t: &CTensor) -> OpResult<Vec<i64>> {
    if t.dtype().is_float() {
        return Err(OpError::Failed(format!(
            "expected an integer tensor, got {:?}",
            t.dtype()
        )));
    }
    t.flatten_all()
        .and_then(|t| t.to_dtype(CDType::I64))
        .and_then(|t| t.to_vec1::<i64>())
        .ce()
}

/// Float contents of a small parameter tensor (scales, clip bounds).
pub(crate) fn host_floats(t: &CTensor) -> OpResult<Vec<f64>> {
    t.flatten_all()
        .and_then(|t| t.to_dtype(CDType::F64))
        .and_then(|t| t.to_vec1::<f64>())
        .ce()
}

impl crate::op::HostView for CTensor {
    fn dims(&self) -> Vec<usize> {
        CTensor::dims(self).to_vec()
    }
    fn host_ints(&self) -> OpResult<Vec<i64>> {
        host_ints(self)
    }
    fn host_floats(&self) -> OpResult<Vec<f64>> {
        host_floats(self)
    }
    fn is_float(&self) -> bool {
        is_float(self)
    }
    fn numel(&self) -> usize {
        self.elem_count()
    }
}

/// An int64 index tensor on `device` (that of the tensor it indexes).
pub(crate) fn index_tensor(idx: Vec<i64>, device: &CDevice) -> OpResult<CTensor> {
    let n = idx.len();
    CTensor::from_vec(idx, n, device).ce()
}

/// A tensor of `dtype` filled with `value` (exactly representable values
/// such as 0, ±inf or a pad constant).
pub(crate) fn full(
    value: f64,
    shape: &[usize],
    dtype: CDType,
    device: &CDevice,
) -> OpResult<CTensor> {
    CTensor::full(value, shape, device)
        .and_then(|t| t.to_dtype(dtype))
        .ce()
}

/// Pads `x` along `dim` with `value` (`left`/`right` elements) by
/// concatenation; a zero value uses candle's `pad_with_zeros`.
pub(crate) fn pad_const(
    x: &CTensor,
    dim: usize,
    left: usize,
    right: usize,
    value: f64,
) -> OpResult<CTensor> {
    if left == 0 && right == 0 {
        return Ok(x.clone());
    }
    if value == 0.0 && !(value.is_sign_negative() && x.dtype().is_float()) {
        return x.pad_with_zeros(dim, left, right).ce();
    }
    let mut parts = Vec::new();
    let mut dims = x.dims().to_vec();
    if left > 0 {
        dims[dim] = left;
        parts.push(full(value, &dims, x.dtype(), x.device())?);
    }
    parts.push(x.clone());
    if right > 0 {
        dims[dim] = right;
        parts.push(full(value, &dims, x.dtype(), x.device())?);
    }
    CTensor::cat(&parts, dim).ce()
}

/// Uploads a host tensor.
pub(crate) fn upload(t: &Tensor, scope: &Scope) -> Result<CTensor, TransferError> {
    let device = scope.device();
    fn mk<E: candle_core::WithDType>(
        a: &ArrayD<E>,
        device: &CDevice,
    ) -> Result<CTensor, TransferError> {
        let v: Vec<E> = a.iter().copied().collect();
        CTensor::from_vec(v, a.shape(), device).map_err(|e| TransferError::Framework(e.to_string()))
    }
    let no = |d: DType| {
        TransferError::NoDtype(format!("candle 0.11.1 has no {d} dtype (nor one with identical semantics); values of this dtype cannot be uploaded"))
    };
    match t {
        Tensor::F16(a) => mk(a, device),
        Tensor::BF16(a) => mk(a, device),
        Tensor::F32(a) => mk(a, device),
        Tensor::F64(a) => mk(a, device),
        Tensor::U8(a) => mk(a, device),
        Tensor::U32(a) => mk(a, device),
        Tensor::I16(a) => mk(a, device),
        Tensor::I32(a) => mk(a, device),
        Tensor::I64(a) => mk(a, device),
        Tensor::Bool(a) => mk(&a.mapv(u8::from), device).map(|t| scope.mark_bool(t)),
        Tensor::I8(_) | Tensor::U16(_) | Tensor::U64(_) => Err(no(t.dtype())),
    }
}

/// Downloads a candle tensor to the host in its dtype (bool where marked).
pub(crate) fn download(t: &CTensor, scope: &Scope) -> Result<Tensor, TransferError> {
    fn get<E: candle_core::WithDType>(t: &CTensor) -> Result<ArrayD<E>, TransferError> {
        let v = t
            .flatten_all()
            .and_then(|f| f.to_vec1::<E>())
            .map_err(|e| TransferError::Framework(e.to_string()))?;
        ArrayD::from_shape_vec(IxDyn(t.dims()), v)
            .map_err(|e| TransferError::Framework(e.to_string()))
    }
    Ok(match t.dtype() {
        CDType::U8 if scope.is_bool(t) => Tensor::Bool(get::<u8>(t)?.mapv(|v| v != 0)),
        CDType::U8 => Tensor::U8(get(t)?),
        CDType::U32 => Tensor::U32(get(t)?),
        CDType::I16 => Tensor::I16(get(t)?),
        CDType::I32 => Tensor::I32(get(t)?),
        CDType::I64 => Tensor::I64(get(t)?),
        CDType::F16 => Tensor::F16(get(t)?),
        CDType::BF16 => Tensor::BF16(get(t)?),
        CDType::F32 => Tensor::F32(get(t)?),
        CDType::F64 => Tensor::F64(get(t)?),
        other => {
            return Err(TransferError::NoDtype(format!(
                "candle dtype {other:?} has no xdiff equivalent"
            )))
        }
    })
}

struct CandleInterp {
    scope: Scope,
}

impl Interpreter for CandleInterp {
    type T = CTensor;
    const NAME: &'static str = "candle";

    fn registry(&self) -> &OpRegistry<CTensor> {
        registry()
    }

    fn upload(&self, t: &Tensor) -> Result<CTensor, TransferError> {
        upload(t, &self.scope)
    }

    fn download(&self, t: &CTensor) -> Result<Tensor, TransferError> {
        download(t, &self.scope)
    }

    fn scope(&self) -> &dyn std::any::Any {
        &self.scope
    }
}

struct CandleSession {
    graph: Graph,
    opts: EngineOptions,
    device: CDevice,
}

impl Engine for CandleEngine {
    fn name(&self) -> &'static str {
        "candle"
    }

    fn prepare(
        &self,
        graph: &Graph,
        opts: &EngineOptions,
    ) -> Result<Box<dyn Session>, EngineError> {
        let device = candle_device(opts.device)?;
        Ok(Box::new(CandleSession {
            graph: graph.clone(),
            opts: opts.clone(),
            device,
        }))
    }
}

impl Session for CandleSession {
    fn run_bridged(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        bridge: &dyn Bridge,
    ) -> Result<Trace, EngineError> {
        let interp = CandleInterp {
            scope: Scope::new(self.device.clone()),
        };
        interp::run_graph(&interp, &self.graph, &self.opts, inputs, bridge)
    }

    fn settings(&self) -> Vec<(String, String)> {
        let mut s = vec![
            ("device".into(), self.opts.device.to_string()),
            ("candle".into(), CANDLE_VERSION.into()),
            (
                "dtypes".into(),
                "native dtype kept (f16/bf16/f32/f64/u8/u32/i16/i32/i64); bool as u8 0/1; int8/uint16/uint64 rejected"
                    .into(),
            ),
            ("tf32".into(), "off (candle default)".into()),
            (
                "threads".into(),
                format!(
                    "{} (rayon's global pool, shared with the reference and the judge; RAYON_NUM_THREADS)",
                    candle_core::utils::get_num_threads()
                ),
            ),
        ];
        if self.opts.port {
            s.push((
                "resize".into(),
                "idiomatic port: upsample_nearest2d / upsample_bilinear2d(false) from the output size".into(),
            ));
            s.extend(
                [
                    (
                        "softmax",
                        "idiomatic port: candle_nn::ops::softmax(axis) before opset 13 too",
                    ),
                    (
                        "quantize",
                        "idiomatic port: candle's round, half away from zero",
                    ),
                ]
                .map(|(k, v)| (k.into(), v.into())),
            );
        }
        s
    }
}

/// Runs a single op through candle (tests and the fingerprint search).
pub fn run_op(
    node: &crate::graph::Node,
    opset: u32,
    inputs: &[Option<&CTensor>],
) -> OpResult<(Vec<Option<CTensor>>, interp::How)> {
    let l = registry().run_node_in(&Scope::new(CDevice::Cpu), node, opset, inputs)?;
    Ok((l.outputs, l.how))
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers for the candle lowering tests.
    use super::*;
    use crate::graph::Node;

    pub use crate::backend::interp::test_node as node;

    pub fn f32t(shape: &[usize], v: &[f32]) -> CTensor {
        CTensor::from_vec(v.to_vec(), shape, &CDevice::Cpu).unwrap()
    }

    pub fn i64t(v: &[i64]) -> CTensor {
        CTensor::from_vec(v.to_vec(), v.len(), &CDevice::Cpu).unwrap()
    }

    /// Runs `node` at `opset` and returns the first output flattened, with its label.
    pub fn run1(
        node: &Node,
        opset: u32,
        inputs: &[Option<&CTensor>],
    ) -> (Vec<f32>, Vec<usize>, String) {
        let (outs, how) = run_op(node, opset, inputs).unwrap_or_else(|e| panic!("{e:?}"));
        let t = outs[0].clone().expect("output");
        let v = t
            .to_dtype(CDType::F32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        (v, t.dims().to_vec(), how.label())
    }

    pub fn close(a: &[f32], b: &[f32], tol: f32) {
        assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
        for (x, y) in a.iter().zip(b) {
            assert!(
                (x - y).abs() <= tol || (x.is_nan() && y.is_nan()),
                "{a:?} vs {b:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::engine::NodeStatus;
    use crate::onnx::{type_proto, GraphProto, ModelProto, NodeProto, TypeProto, ValueInfoProto};

    fn vi(name: &str) -> ValueInfoProto {
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: crate::onnx::data_type::FLOAT,
                    shape: None,
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A one-node graph `op(inputs) -> y` with float inputs.
    fn graph(op: &str, inputs: &[&str], opset: i64) -> Graph {
        let graph = GraphProto {
            name: "g".into(),
            node: vec![NodeProto {
                input: inputs.iter().map(|s| s.to_string()).collect(),
                output: vec!["y".into()],
                name: "n0".into(),
                op_type: op.into(),
                ..Default::default()
            }],
            input: inputs.iter().map(|s| vi(s)).collect(),
            output: vec![vi("y")],
            ..Default::default()
        };
        Graph::from_model(ModelProto::of_graph(graph, opset)).expect("valid graph")
    }

    fn host(shape: &[usize], v: &[f64]) -> Tensor {
        Tensor::from_f64(DType::F32, shape, v)
    }

    #[test]
    fn matmul_shape_mismatch_is_an_error_verdict() {
        let g = graph("MatMul", &["a", "b"], 13);
        let inputs: BTreeMap<String, Tensor> = [
            ("a".to_string(), host(&[2, 3], &[1.0; 6])),
            ("b".to_string(), host(&[4, 2], &[1.0; 8])),
        ]
        .into_iter()
        .collect();
        let mut s = CandleEngine.prepare(&g, &EngineOptions::default()).unwrap();
        let trace = s.run(&inputs).unwrap();
        match &trace.nodes[0].status {
            NodeStatus::Error(m) => assert!(m.contains("candle"), "{m}"),
            other => panic!("expected an error verdict, got {other:?}"),
        }
        assert!(!trace.values.contains_key("y"));
    }

    #[test]
    fn graph_run_keeps_dtype_and_labels_lowering() {
        let g = graph("Add", &["a", "b"], 14);
        let inputs: BTreeMap<String, Tensor> = [
            ("a".to_string(), host(&[2], &[1.0, 2.0])),
            ("b".to_string(), host(&[1], &[0.5])),
        ]
        .into_iter()
        .collect();
        let mut s = CandleEngine.prepare(&g, &EngineOptions::default()).unwrap();
        let trace = s.run(&inputs).unwrap();
        assert_eq!(trace.nodes[0].status, NodeStatus::Ran);
        assert_eq!(
            trace.nodes[0].lowering.as_deref(),
            Some("native: broadcast_add")
        );
        assert_eq!(trace.values["y"], host(&[2], &[1.5, 2.5]));
    }

    #[test]
    fn cuda_request_is_a_device_error() {
        let g = graph("Relu", &["x"], 14);
        let opts = EngineOptions {
            device: Device::Cuda(0),
            ..Default::default()
        };
        match CandleEngine.prepare(&g, &opts) {
            Err(EngineError::Device {
                engine: "candle",
                device: Device::Cuda(0),
                why,
            }) => {
                assert!(why.contains("CUDA"), "{why}")
            }
            Err(e) => panic!("wrong error {e}"),
            // A CUDA build on a GPU machine may legitimately open the device.
            Ok(_) if cfg!(feature = "cuda") => {}
            Ok(_) => panic!("cuda opened without the cuda feature"),
        }
    }

    #[test]
    fn bool_round_trips_and_int8_is_rejected() {
        let b = Tensor::from_f64(DType::Bool, &[3], &[1.0, 0.0, 1.0]);
        let scope = Scope::new(CDevice::Cpu);
        let t = upload(&b, &scope).unwrap();
        assert_eq!(t.dtype(), CDType::U8);
        assert_eq!(download(&t, &scope).unwrap(), b);
        let h = Tensor::from_f64(DType::F16, &[2], &[1.5, -2.0]);
        assert_eq!(download(&upload(&h, &scope).unwrap(), &scope).unwrap(), h);
        let i8t = Tensor::from_f64(DType::I8, &[1], &[3.0]);
        assert!(upload(&i8t, &scope)
            .unwrap_err()
            .to_string()
            .contains("int8"));
    }

    #[test]
    fn registry_covers_the_op_set() {
        let ops = "Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Erf Relu LeakyRelu Sigmoid HardSigmoid HardSwish \
                   Tanh Gelu Clip Conv ConvTranspose MaxPool AveragePool GlobalAveragePool BatchNormalization \
                   LayerNormalization Gemm MatMul Softmax Dropout Resize Upsample Pad Concat Reshape Flatten \
                   Transpose Slice Split Squeeze Unsqueeze Identity Constant Shape Gather Cast ReduceMean";
        for op in ops.split_whitespace() {
            let opset = match op {
                "Gelu" => 20,
                "LayerNormalization" => 17,
                "Upsample" => 9,
                _ => 13,
            };
            assert!(
                registry().lookup(op, opset).is_ok(),
                "{op} missing at opset {opset}"
            );
        }
    }
}
