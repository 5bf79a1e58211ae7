//! xdiff: run one ONNX graph through ONNX Runtime, libtorch, candle and a
//! float64 reference written from the ONNX spec, and diff every node's output
//! so a user sees where frameworks start to differ and which convention each
//! one follows.

// The op layer first: its `spec!`/`cov!` macros are used by every backend.
#[macro_use]
pub mod op;

pub mod ahead;
pub mod app;
pub mod backend;
pub mod case;
pub mod cli;
pub mod coverage;
pub mod diff;
pub mod entry;
pub mod fingerprint;
pub mod graph;
pub mod isolate;
pub mod json_float;
pub mod lane;
pub mod merge;
pub mod onnx;
pub mod options;
pub mod outcome;
pub mod partition;
pub mod report;
pub mod repro;
pub mod run;
pub mod runtimes;
pub mod tensor;
pub mod verdict;
