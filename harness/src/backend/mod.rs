//! The backends: one folder or file each, and one table ([`BACKENDS`]) from
//! which everything that lists backends is derived (engine construction, CLI
//! validation, defaults, `xdiff backends`, `xdiff ops`, docs/ops.md).
//! Adding a backend is its file, one row and one Cargo feature
//! (`identity.rs` is the worked example).
//!
//! The vocabulary the backends speak (engine, session, trace, per-node
//! status) is in [`engine`]; "unsupported" is a value there, never a crash.
//! Whole-graph runtimes share the output tapping in [`graph_runtime`];
//! node-by-node backends share the driver in [`interp`] and decode each
//! node through the op layer (`crate::op`).

pub mod onnx_ref;
pub mod ort;
pub mod reference;

use crate::op::Coverage;
use interp::OpRegistry;

pub use crate::options::{Device, EngineOptions, OptLevel};
pub use engine::{Deployed, Engine, EngineError, NodeRun, NodeStatus, Session, Trace};

/// A backend's lowering coverage: every registered op definition (op, opset
/// range, coverage rows), for `xdiff ops` and docs/ops.md.
#[derive(Debug, Clone, Copy)]
pub struct OpEntry {
    pub op: &'static str,
    pub since: u32,
    /// Inclusive; `u32::MAX` means open-ended.
    pub until: u32,
    pub coverage: &'static [Coverage],
}

/// The op entries of a lowering registry.
pub fn op_entries<T>(registry: &OpRegistry<T>) -> Vec<OpEntry> {
    registry
        .all()
        .into_iter()
        .map(|d| OpEntry {
            op: d.op,
            since: d.since,
            until: d.until,
            coverage: d.coverage,
        })
        .collect()
}

/// Creates a backend's engine (or says why it cannot).
pub type BuildFn = fn() -> Result<Box<dyn Engine>, EngineError>;
/// Lists a lowering backend's op entries.
pub type CoverageFn = fn() -> Vec<OpEntry>;

/// One row of the backend table: everything xdiff knows about a backend by
/// name. CLI validation, case defaults, `xdiff backends`, `xdiff ops` and
/// docs/ops.md are all derived from [`BACKENDS`].
#[derive(Debug, Clone, Copy)]
pub struct BackendInfo {
    /// Lane name in reports and on the command line.
    pub name: &'static str,
    /// The cargo feature that compiles it in (`None`: always compiled in).
    pub feature: Option<&'static str>,
    /// Whether this binary was built with it.
    pub compiled: bool,
    /// Its engine; a compiled-out backend reports the missing feature.
    pub build: BuildFn,
    /// Its lowering registry's coverage; `None` for whole-graph runtimes
    /// (and compiled-out backends).
    pub coverage: Option<CoverageFn>,
    /// Whether it has an idiomatic-port lane (`<backend>:port`).
    pub port: bool,
    /// Whether cases run it unless they name their backends (a slow lane
    /// such as `onnx-ref` runs only when asked for).
    pub default: bool,
}

/// A [`BackendInfo`] row. The second form is for a backend behind a cargo
/// feature: without the feature its engine and registry are not referenced.
macro_rules! backend {
    ($name:literal, $engine:expr, coverage: $coverage:expr, port: $port:expr) => {
        BackendInfo {
            name: $name,
            feature: None,
            compiled: true,
            build: || Ok(Box::new($engine)),
            coverage: $coverage,
            port: $port,
            default: true,
        }
    };
    ($name:literal, feature $feature:literal, $engine:expr, coverage: $coverage:expr, port: $port:expr) => {
        BackendInfo {
            name: $name,
            feature: Some($feature),
            compiled: cfg!(feature = $feature),
            build: {
                #[cfg(feature = $feature)]
                let build: BuildFn = || Ok(Box::new($engine));
                #[cfg(not(feature = $feature))]
                let build: BuildFn = || {
                    Err(EngineError::Missing {
                        engine: $name,
                        why: concat!(
                            "this xdiff was built without the `",
                            $feature,
                            "` cargo feature"
                        )
                        .into(),
                    })
                };
                build
            },
            coverage: {
                #[cfg(feature = $feature)]
                let coverage: Option<CoverageFn> = $coverage;
                #[cfg(not(feature = $feature))]
                let coverage: Option<CoverageFn> = None;
                coverage
            },
            port: $port,
            default: true,
        }
    };
}

/// Every backend, in the order reports show them. Adding a backend is its
/// module, one row here and one cargo feature.
pub const BACKENDS: &[BackendInfo] = &[
    backend!("ort", ort::OrtEngine, coverage: None, port: false),
    // libtorch is linked only into `xdiff-tch` ([`torch`]): from `xdiff` the
    // lane runs in an `xdiff-tch` worker.
    BackendInfo {
        name: "tch",
        feature: Some("tch-backend"),
        compiled: cfg!(feature = "tch-backend"),
        build: torch::build,
        coverage: Some(torch::coverage),
        port: true,
        default: true,
    },
    backend!("candle", feature "candle-backend", candle::CandleEngine,
        coverage: Some(|| op_entries(candle::registry())), port: true),
    // ONNX's Python reference: only when asked for (`--backends onnx-ref,...`).
    BackendInfo {
        default: false,
        ..backend!("onnx-ref", onnx_ref::OnnxRefEngine, coverage: None, port: false)
    },
    backend!("reference", reference::ReferenceEngine,
        coverage: Some(|| op_entries(reference::registry())), port: false),
    // Test-only: absent from other builds, so it is in no default or message.
    #[cfg(feature = "identity-backend")]
    backend!("identity", feature "identity-backend", identity::IdentityEngine,
        coverage: None, port: false),
];

/// The table row of backend `name`.
pub fn info(name: &str) -> Option<&'static BackendInfo> {
    BACKENDS.iter().find(|b| b.name == name)
}

/// Whether `name` is a backend with an idiomatic-port lane.
pub fn has_port_lane(name: &str) -> bool {
    info(name).is_some_and(|b| b.port)
}

/// The names of the backends `keep` selects (compiled in or not), for
/// messages: joined by `, ` with `last` before the last one (`tch or candle`).
pub fn names_where(keep: impl Fn(&BackendInfo) -> bool, last: &str) -> String {
    let names: Vec<&str> = BACKENDS
        .iter()
        .filter(|b| keep(b))
        .map(|b| b.name)
        .collect();
    match names.split_last() {
        Some((tail, head)) if !head.is_empty() => format!("{}{last}{tail}", head.join(", ")),
        _ => names.join(""),
    }
}

/// Creates an engine by lane name. Backends compiled out report why.
pub fn engine(name: &str) -> Result<Box<dyn Engine>, EngineError> {
    match info(name) {
        Some(b) => (b.build)(),
        None => Err(EngineError::Failed {
            engine: "xdiff",
            why: format!(
                "unknown backend `{name}` (expected one of {})",
                names_where(|_| true, ", ")
            ),
        }),
    }
}

#[cfg(feature = "tch-backend")]
pub mod libtorch;

pub mod torch;

#[cfg(feature = "candle-backend")]
pub mod candle;

#[cfg(feature = "identity-backend")]
pub mod identity;

pub mod engine;
pub mod graph_runtime;
pub mod interp;
