//! The libtorch lane (crate `tch` 0.24, torch 2.11): every ONNX node is
//! lowered to libtorch's own ATen ops, so what is diffed is libtorch's
//! kernels, never a re-implementation.
//!
//! Each lowering says how it ran ([`How`]): `native: <op>` when one ATen op
//! has exactly the ONNX semantics for the node's attributes, `composed: <ops>`
//! when several are needed (asymmetric pads, host-computed resize indices...),
//! or it returns `Unsupported` naming the attribute that blocks it. Every
//! libtorch call uses the fallible `f_*` API so a C++ exception becomes an
//! `error` verdict for that node, never an abort.
//!
//! Host values needed to *build* a lowering (shapes, axes, pads, scales,
//! sizes) are read back with `Vec::<i64>::try_from`; data tensors stay in
//! libtorch on the session's device.
//!
//! Threads are set, not left to libtorch: [`set_threads`] gives it
//! `EngineOptions::cpu_threads` intra-op threads and one inter-op thread;
//! the OpenMP workers' wait policy (passive, so that they sleep instead of
//! spinning between ops) is libgomp's, set by the binary before libgomp
//! loads (`main.rs`). The lane's settings report all three.

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
mod text;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use tch::{Kind, TchError};

use super::interp::{self, Interpreter, OpError, OpRegistry, OpResult};
use crate::backend::engine::{Bridge, Engine, EngineError, Session, Trace, TransferError};
use crate::graph::Graph;
use crate::options::{Device, EngineOptions};
use crate::tensor::{DType, Tensor};

const ENGINE: &str = "tch";

/// torch-sys 0.24 refuses to build against any other libtorch (its build
/// script checks `torch.__version__`), so this is the version that runs.
pub const TORCH_VERSION: &str = "2.11.0";

/// libtorch errors become per-node failures; the C++ backtrace that follows
/// "Exception raised from" is dropped so verdicts stay readable.
impl From<TchError> for OpError {
    fn from(e: TchError) -> Self {
        OpError::Failed(short_error(&e.to_string()))
    }
}

fn short_error(msg: &str) -> String {
    let cut = msg.find("\nException raised from").unwrap_or(msg.len());
    msg[..cut].trim().to_string()
}

/// The libtorch engine.
pub struct TchEngine;

/// The libtorch op registry, built once.
pub fn registry() -> &'static OpRegistry<tch::Tensor> {
    static REG: OnceLock<OpRegistry<tch::Tensor>> = OnceLock::new();
    REG.get_or_init(|| {
        let mut r = OpRegistry::new();
        register_all_ops(&mut r);
        r
    })
}

/// Fills the registry family by family.
pub fn register_all_ops(r: &mut OpRegistry<tch::Tensor>) {
    elementwise::register(r);
    nn::register(r);
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
}

/// Loads `libtorch_cuda.so` (once, kept for the process). The linker drops
/// it from the binary because no symbol of it is referenced directly, and
/// without it libtorch registers no CUDA backend. It is found through the
/// binary's rpath to torch's `lib` directory (or `LD_LIBRARY_PATH`).
fn load_torch_cuda() -> Result<(), TransferError> {
    static LOADED: std::sync::OnceLock<Result<(), TransferError>> = std::sync::OnceLock::new();
    LOADED
        .get_or_init(|| {
            // SAFETY: loading libtorch's own CUDA library runs its static
            // initializers, which register the CUDA backend with libtorch.
            match unsafe { libloading::Library::new("libtorch_cuda.so") } {
                Ok(lib) => {
                    std::mem::forget(lib);
                    Ok(())
                }
                Err(e) => Err(TransferError::Framework(format!(
                    "cannot load libtorch_cuda.so (torch's CUDA backend): {e}"
                ))),
            }
        })
        .clone()
}

/// The tch device for an xdiff device, checking that it exists.
pub fn torch_device(device: Device) -> Result<tch::Device, EngineError> {
    match device {
        Device::Cpu => Ok(tch::Device::Cpu),
        Device::Cuda(n) => {
            let why = if let Err(why) = load_torch_cuda() {
                why.to_string()
            } else if !tch::Cuda::is_available() {
                "libtorch reports no CUDA device (tch::Cuda::is_available() is false: no GPU, no driver, or a CPU-only torch wheel)".to_string()
            } else {
                let count = tch::Cuda::device_count();
                if (n as i64) < count {
                    return Ok(tch::Device::Cuda(n));
                }
                format!("libtorch sees {count} CUDA device(s)")
            };
            Err(EngineError::Device {
                engine: ENGINE,
                device,
                why,
            })
        }
    }
}

/// Whether cuDNN convolutions may use TF32 under `opts`: the explicit option,
/// else torch's default (`torch.backends.cudnn.allow_tf32 = True`).
pub(crate) fn conv_tf32(opts: &EngineOptions) -> bool {
    opts.device != Device::Cpu && opts.tf32.unwrap_or(true)
}

/// The tch kind for an ONNX dtype (libtorch has no uint16/32/64 tensors in tch 0.24).
pub fn kind_of(d: DType) -> Option<Kind> {
    Some(match d {
        DType::F16 => Kind::Half,
        DType::BF16 => Kind::BFloat16,
        DType::F32 => Kind::Float,
        DType::F64 => Kind::Double,
        DType::I8 => Kind::Int8,
        DType::I16 => Kind::Int16,
        DType::I32 => Kind::Int,
        DType::I64 => Kind::Int64,
        DType::U8 => Kind::Uint8,
        DType::Bool => Kind::Bool,
        DType::U16 | DType::U32 | DType::U64 => return None,
    })
}

/// The ONNX dtype of a tch kind.
pub fn dtype_of(k: Kind) -> Option<DType> {
    Some(match k {
        Kind::Half => DType::F16,
        Kind::BFloat16 => DType::BF16,
        Kind::Float => DType::F32,
        Kind::Double => DType::F64,
        Kind::Int8 => DType::I8,
        Kind::Int16 => DType::I16,
        Kind::Int => DType::I32,
        Kind::Int64 => DType::I64,
        Kind::Uint8 => DType::U8,
        Kind::Bool => DType::Bool,
        _ => return None,
    })
}

/// Host tensor -> libtorch tensor of the same dtype on `device`.
pub fn upload(t: &Tensor, device: tch::Device) -> Result<tch::Tensor, TransferError> {
    let kind = kind_of(t.dtype()).ok_or_else(|| {
        TransferError::NoDtype(format!("libtorch (tch 0.24) has no {} tensors", t.dtype()))
    })?;
    let mut bytes = Vec::with_capacity(t.len() * t.dtype().size());
    crate::with_array!(t, a => a.iter().for_each(|x| bytes.extend_from_slice(&le_bytes(x))));
    let shape: Vec<i64> = t.shape().iter().map(|&d| d as i64).collect();
    let err = |e: TchError| TransferError::Framework(short_error(&e.to_string()));
    let cpu = tch::Tensor::f_from_data_size(&bytes, &shape, kind).map_err(err)?;
    cpu.f_to_device(device).map_err(err)
}

/// Little-endian bytes of one element (bool as one byte).
fn le_bytes<E: LeBytes>(x: &E) -> E::Bytes {
    x.le()
}

trait LeBytes {
    type Bytes: AsRef<[u8]>;
    fn le(&self) -> Self::Bytes;
}

macro_rules! le_bytes {
    ($($t:ty => $n:expr),*) => {$(
        impl LeBytes for $t {
            type Bytes = [u8; $n];
            fn le(&self) -> [u8; $n] {
                self.to_le_bytes()
            }
        }
    )*};
}
le_bytes!(half::f16 => 2, half::bf16 => 2, f32 => 4, f64 => 8, i8 => 1, i16 => 2, i32 => 4, i64 => 8,
    u8 => 1, u16 => 2, u32 => 4, u64 => 8);
impl LeBytes for bool {
    type Bytes = [u8; 1];
    fn le(&self) -> [u8; 1] {
        [*self as u8]
    }
}

/// libtorch tensor -> host tensor in the same dtype.
pub fn download(t: &tch::Tensor) -> Result<Tensor, TransferError> {
    let err = |e: TchError| TransferError::Framework(short_error(&e.to_string()));
    let kind = t.f_kind().map_err(err)?;
    let dtype = dtype_of(kind).ok_or_else(|| {
        TransferError::NoDtype(format!(
            "libtorch produced {kind:?}, which xdiff does not handle"
        ))
    })?;
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let cpu = t
        .f_to_device(tch::Device::Cpu)
        .map_err(err)?
        .f_contiguous()
        .map_err(err)?;
    let n: usize = shape.iter().product();
    // Copied once, straight into the host array's own buffer.
    Tensor::filled(dtype, &shape, |bytes| match n {
        0 => Ok(()),
        _ => cpu.f_copy_data_u8(bytes, n),
    })
    .map_err(err)
}

// ---- helpers shared by the op families -------------------------------------

/// Integer contents of a (small) tensor read back to the host: shapes, axes, pads.
pub(crate) fn host_ints(t: &tch::Tensor) -> OpResult<Vec<i64>> {
    match t.f_kind()? {
        Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8 => {}
        k => {
            return Err(OpError::Failed(format!(
                "expected an integer tensor, got {k:?}"
            )))
        }
    }
    let flat = t.f_reshape([-1])?.f_to_device(tch::Device::Cpu)?;
    Ok(Vec::<i64>::try_from(&flat)?)
}

/// Float contents of a (small) tensor read back to the host as f64: scales.
pub(crate) fn host_floats(t: &tch::Tensor) -> OpResult<Vec<f64>> {
    let flat = t.f_reshape([-1])?.f_to_device(tch::Device::Cpu)?;
    Ok(Vec::<f64>::try_from(&flat)?)
}

/// The input's shape as i64.
pub(crate) fn dims(t: &tch::Tensor) -> Vec<i64> {
    t.size()
}

pub(crate) fn is_float(t: &tch::Tensor) -> OpResult<bool> {
    Ok(matches!(
        t.f_kind()?,
        Kind::Half | Kind::BFloat16 | Kind::Float | Kind::Double
    ))
}

impl crate::op::HostView for tch::Tensor {
    fn dims(&self) -> Vec<usize> {
        self.size().iter().map(|&d| d as usize).collect()
    }
    fn host_ints(&self) -> OpResult<Vec<i64>> {
        host_ints(self)
    }
    fn host_floats(&self) -> OpResult<Vec<f64>> {
        host_floats(self)
    }
    fn is_float(&self) -> bool {
        is_float(self).unwrap_or(false)
    }
    fn numel(&self) -> usize {
        tch::Tensor::numel(self)
    }
}

// ---- engine and session ----------------------------------------------------

struct TchInterp {
    device: tch::Device,
}

impl Interpreter for TchInterp {
    type T = tch::Tensor;
    const NAME: &'static str = ENGINE;

    fn registry(&self) -> &OpRegistry<tch::Tensor> {
        registry()
    }

    fn upload(&self, t: &Tensor) -> Result<tch::Tensor, TransferError> {
        upload(t, self.device)
    }

    fn download(&self, t: &tch::Tensor) -> Result<Tensor, TransferError> {
        download(t)
    }
}

struct TchSession {
    graph: Graph,
    opts: EngineOptions,
    device: tch::Device,
}

impl Engine for TchEngine {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn prepare(
        &self,
        graph: &Graph,
        opts: &EngineOptions,
    ) -> Result<Box<dyn Session>, EngineError> {
        let device = torch_device(opts.device)?;
        set_threads(opts);
        Ok(Box::new(TchSession {
            graph: graph.clone(),
            opts: opts.clone(),
            device,
        }))
    }
}

/// Inter-op threads: ONNX graphs run node after node, libtorch's inter-op
/// pool (`torch.jit.fork`) has nothing to do.
const INTER_OP_THREADS: i32 = 1;

/// Sets libtorch's thread pools for a session: process-wide in libtorch,
/// so the last session prepared wins; the inter-op pool can be sized only
/// once, before any parallel work.
fn set_threads(opts: &EngineOptions) {
    static INTER_OP: std::sync::Once = std::sync::Once::new();
    INTER_OP.call_once(|| tch::set_num_interop_threads(INTER_OP_THREADS));
    tch::set_num_threads(opts.cpu_threads().min(i32::MAX as usize) as i32);
}

/// libgomp's wait policy as this process loaded it (see `main.rs`).
fn omp_wait_policy() -> String {
    std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| match std::env::var("GOMP_SPINCOUNT") {
        Ok(n) => format!("GOMP_SPINCOUNT={n}"),
        Err(_) => "default (active: workers spin between ops)".into(),
    })
}

/// libtorch's kernel set as this process started (`ATEN_CPU_CAPABILITY`,
/// see `isolate::torch_env`).
fn cpu_capability() -> String {
    std::env::var("ATEN_CPU_CAPABILITY")
        .unwrap_or_else(|_| "default (the machine's best: AVX-512 kernels differ from AVX2)".into())
}

impl Session for TchSession {
    fn run_bridged(
        &mut self,
        inputs: &BTreeMap<String, Tensor>,
        bridge: &dyn Bridge,
    ) -> Result<Trace, EngineError> {
        let _guard = tch::no_grad_guard();
        let interp = TchInterp {
            device: self.device,
        };
        let mut trace = interp::run_graph(&interp, &self.graph, &self.opts, inputs, bridge)?;
        if let tch::Device::Cuda(n) = self.device {
            tch::Cuda::synchronize(n as i64);
        }
        if self.opts.tf32 == Some(true) && self.device != tch::Device::Cpu {
            trace.notes.push(
                "tch: TF32 was requested, but tch 0.24 has no cuBLAS TF32 toggle: MatMul/Gemm ran in full fp32 \
                 (convolutions used TF32 via _convolution(allow_tf32=true))"
                    .into(),
            );
        }
        Ok(trace)
    }

    fn settings(&self) -> Vec<(String, String)> {
        let on_gpu = self.device != tch::Device::Cpu;
        let tf32 = |b: bool| if b { "on" } else { "off" }.to_string();
        let mut s: Vec<(String, String)> = vec![
            ("torch".into(), TORCH_VERSION.into()),
            ("device".into(), self.opts.device.to_string()),
            ("threads".into(), tch::get_num_threads().to_string()),
            (
                "inter-op threads".into(),
                tch::get_num_interop_threads().to_string(),
            ),
            ("omp wait policy".into(), omp_wait_policy()),
            ("cpu capability".into(), cpu_capability()),
            (
                "conv tf32".into(),
                if on_gpu {
                    tf32(conv_tf32(&self.opts))
                } else {
                    "n/a (cpu)".into()
                },
            ),
            // cuBLAS default in torch >= 1.12 (float32_matmul_precision "highest"); tch cannot change it.
            (
                "matmul tf32".into(),
                if on_gpu {
                    tf32(false)
                } else {
                    "n/a (cpu)".into()
                },
            ),
        ];
        if self.opts.port {
            s.push((
                "resize".into(),
                "idiomatic port: F.interpolate defaults (align_corners=false) from the output size"
                    .into(),
            ));
            s.extend(
                [
                    (
                        "depth-to-space",
                        "idiomatic port: pixel_shuffle (CRD) in either mode",
                    ),
                    (
                        "recurrent",
                        "idiomatic port: lstm/gru given ONNX's W, R, B gate order as is",
                    ),
                    (
                        "softmax",
                        "idiomatic port: softmax(dim=axis) before opset 13 too",
                    ),
                    (
                        "quantize",
                        "idiomatic port: half away from zero, trunc(q + 0.5·sign(q))",
                    ),
                ]
                .map(|(k, v)| (k.into(), v.into())),
            );
        }
        s
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Tiny graphs and single nodes for the family tests.
    use super::*;
    use crate::backend::interp::Lowered;
    use crate::graph::{Attr, Node};
    use crate::onnx;

    pub use crate::backend::interp::test_node as node;

    /// Runs one op through the registry on the CPU.
    pub fn run(
        node: &Node,
        opset: u32,
        inputs: &[Option<&tch::Tensor>],
    ) -> OpResult<Lowered<tch::Tensor>> {
        registry().run_node(node, opset, inputs)
    }

    pub fn f32s(shape: &[i64], v: &[f32]) -> tch::Tensor {
        tch::Tensor::from_slice(v).reshape(shape)
    }

    pub fn i64s(shape: &[i64], v: &[i64]) -> tch::Tensor {
        tch::Tensor::from_slice(v).reshape(shape)
    }

    pub fn vals(t: &tch::Tensor) -> Vec<f64> {
        download(t).unwrap().to_f64_vec()
    }

    pub fn attr_ints(v: &[i64]) -> Attr {
        Attr::Ints(v.to_vec())
    }

    /// One test node: (op, inputs, outputs, attributes).
    pub type TestNode<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<&'a str>,
        Vec<onnx::AttributeProto>,
    );

    /// A one-node-per-entry model.
    pub fn graph(
        opset: i64,
        inputs: &[&str],
        nodes: Vec<TestNode<'_>>,
        outputs: &[&str],
    ) -> crate::graph::Graph {
        let vi = |n: &&str| onnx::ValueInfoProto {
            name: n.to_string(),
            ..Default::default()
        };
        let g = onnx::GraphProto {
            name: "t".into(),
            node: nodes
                .into_iter()
                .map(|(op, i, o, a)| onnx::NodeProto {
                    op_type: op.into(),
                    input: i.into_iter().map(String::from).collect(),
                    output: o.into_iter().map(String::from).collect(),
                    attribute: a,
                    ..Default::default()
                })
                .collect(),
            input: inputs.iter().map(vi).collect(),
            output: outputs.iter().map(vi).collect(),
            ..Default::default()
        };
        let model = onnx::ModelProto::of_graph(g, opset);
        crate::graph::Graph::from_model(model).expect("valid test graph")
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;
    use crate::backend::engine::NodeStatus;

    #[test]
    fn upload_download_keeps_dtype() {
        for t in [
            Tensor::from_f64(DType::F16, &[2, 2], &[1.0, -2.5, 0.0, 65504.0]),
            Tensor::from_f64(DType::BF16, &[3], &[1.0, -2.5, 0.0]),
            Tensor::from_f64(DType::I32, &[2], &[7.0, -3.0]),
            Tensor::from_f64(DType::Bool, &[3], &[1.0, 0.0, 1.0]),
            Tensor::from_f64(DType::F64, &[], &[0.1]),
            Tensor::from_f64(DType::F32, &[2, 3], &[1.0, -0.0, 3.5, 1e-40, -7.0, 1e30]),
            Tensor::from_f64(DType::F32, &[0, 3], &[]),
            Tensor::from_f64(DType::I64, &[2], &[-7.0, 1e12]),
            Tensor::from_f64(DType::I8, &[2], &[-7.0, 100.0]),
            Tensor::from_f64(DType::U8, &[2], &[7.0, 200.0]),
        ] {
            let back = download(&upload(&t, tch::Device::Cpu).unwrap()).unwrap();
            assert!(back.same_bits(&t), "{t:?} came back as {back:?}");
        }
        // A strided view comes back in row-major order.
        let x = Tensor::from_f64(DType::F32, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let tr = upload(&x, tch::Device::Cpu).unwrap().transpose(0, 1);
        let want = Tensor::from_f64(DType::F32, &[3, 2], &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert!(download(&tr).unwrap().same_bits(&want));
        let u = Tensor::from_f64(DType::U32, &[1], &[1.0]);
        assert!(upload(&u, tch::Device::Cpu)
            .unwrap_err()
            .to_string()
            .contains("uint32"));
    }

    #[test]
    fn cuda_request_without_gpu_is_a_device_error() {
        if tch::Cuda::is_available() {
            return;
        }
        let g = graph(
            13,
            &["x"],
            vec![("Relu", vec!["x"], vec!["y"], vec![])],
            &["y"],
        );
        let opts = EngineOptions {
            device: Device::Cuda(0),
            ..Default::default()
        };
        match TchEngine.prepare(&g, &opts) {
            Err(EngineError::Device {
                device: Device::Cuda(0),
                why,
                ..
            }) => assert!(why.contains("CUDA"), "{why}"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("prepared on a missing GPU"),
        }
    }

    #[test]
    fn cpp_exception_is_an_error_verdict_not_a_crash() {
        // MatMul [2,3] x [4,5]: libtorch throws; the node must become `error`,
        // the dependent node `skipped`, and the run must go on.
        let g = graph(
            13,
            &["a", "b"],
            vec![
                ("MatMul", vec!["a", "b"], vec!["c"], vec![]),
                ("Relu", vec!["c"], vec!["d"], vec![]),
                ("Relu", vec!["a"], vec!["e"], vec![]),
            ],
            &["d", "e"],
        );
        let mut s = TchEngine.prepare(&g, &EngineOptions::default()).unwrap();
        let inputs = BTreeMap::from([
            (
                "a".to_string(),
                Tensor::from_f64(DType::F32, &[2, 3], &[1.0; 6]),
            ),
            (
                "b".to_string(),
                Tensor::from_f64(DType::F32, &[4, 5], &[1.0; 20]),
            ),
        ]);
        let trace = s.run(&inputs).unwrap();
        match &trace.nodes[0].status {
            NodeStatus::Error(m) => {
                assert!(m.contains("shapes cannot be multiplied"), "{m}");
                assert!(!m.contains("Exception raised from"), "{m}");
            }
            other => panic!("expected an error, got {other:?}"),
        }
        assert!(matches!(trace.nodes[1].status, NodeStatus::Skipped(_)));
        assert_eq!(trace.nodes[2].status, NodeStatus::Ran);
        assert_eq!(trace.nodes[2].lowering.as_deref(), Some("native: relu"));
        assert_eq!(trace.values["e"].dtype(), DType::F32);
    }

    #[test]
    fn settings_report_device_threads_and_version() {
        let g = graph(
            13,
            &["x"],
            vec![("Relu", vec!["x"], vec!["y"], vec![])],
            &["y"],
        );
        let s = TchEngine.prepare(&g, &EngineOptions::default()).unwrap();
        let st: BTreeMap<_, _> = s.settings().into_iter().collect();
        assert_eq!(st["torch"], "2.11.0");
        assert_eq!(st["device"], "cpu");
        assert!(st["threads"].parse::<i32>().unwrap() >= 1);
        assert_eq!(st["inter-op threads"], "1");
    }
}
