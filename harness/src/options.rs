//! What a lane runs on and with: the device and the engine options a case
//! passes to every engine. It sits below both the op layer (lowerings read the
//! device and options from their context) and the engines.

use std::fmt;

/// Where a backend runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Device {
    Cpu,
    Cuda(usize),
}

impl Device {
    /// Parses `cpu`, `cuda` (= `cuda:0`) or `cuda:N`.
    pub fn parse(s: &str) -> Option<Device> {
        match s {
            "cpu" => Some(Device::Cpu),
            "cuda" => Some(Device::Cuda(0)),
            _ => s.strip_prefix("cuda:")?.parse().ok().map(Device::Cuda),
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// ONNX Runtime graph optimization level (a case option, shown in reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptLevel {
    Disable,
    Basic,
    Extended,
    All,
}

impl OptLevel {
    pub fn name(self) -> &'static str {
        match self {
            OptLevel::Disable => "disable",
            OptLevel::Basic => "basic",
            OptLevel::Extended => "extended",
            OptLevel::All => "all",
        }
    }
}

/// Options a case passes to every engine; each engine reads what concerns it
/// and reports what it actually used in [`Session::settings`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub device: Device,
    pub ort_optimization: OptLevel,
    /// libtorch/ORT TF32 for matmul and convolution on CUDA; `None` = framework default.
    pub tf32: Option<bool>,
    /// Intra-op threads (0 = the framework's default).
    pub threads: usize,
    /// Idiomatic-port lowering (issue 5): every Resize/Upsample node is
    /// lowered the way a typical port writes it (`F.interpolate` defaults in
    /// libtorch, `upsample_*` from the output size in candle), whatever its
    /// attributes; every other node lowers as usual. Read by the libtorch and
    /// candle resize lowerings; the lane is named `<backend>:port`.
    pub port: bool,
}

impl EngineOptions {
    /// The intra-op threads a CPU session runs with: `threads`, or the
    /// machine's cores when 0 (set explicitly, and reported, in every lane).
    pub fn cpu_threads(&self) -> usize {
        match self.threads {
            0 => cores(),
            n => n,
        }
    }
}

/// The cores this process may use, asked once: the standard library reads
/// the cgroup's files on every call, which was a tenth of the ORT worker's
/// time on `cases/resize.toml` (several calls per variant).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            device: Device::Cpu,
            ort_optimization: OptLevel::All,
            tf32: None,
            threads: 0,
            port: false,
        }
    }
}

/// Set to `1` to accept and run the crashing test ops (`XdiffTestAbort`,
/// `XdiffTestSegfault`, `XdiffTestHang`: `backend/candle/test_ops.rs`) that
/// test lane isolation (docs/isolation.md); only `tests/isolation.rs` sets it.
pub const TEST_OPS_ENV: &str = "XDIFF_TEST_OPS";

/// Whether the crashing test ops are enabled ([`TEST_OPS_ENV`]).
pub fn test_ops_enabled() -> bool {
    std::env::var(TEST_OPS_ENV).is_ok_and(|v| v == "1")
}

/// Whether `op` is one of the crashing test ops and they are enabled.
pub fn is_test_op(op: &str) -> bool {
    op.starts_with("XdiffTest") && test_ops_enabled()
}
