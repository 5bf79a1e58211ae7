//! Where libtorch lives. Loading libtorch costs every process that links it
//! about 0.3 s before `main` (its libraries' relocations and static op
//! registrations) and brings libgomp, whose wait policy can only be set
//! before it loads. So the `xdiff` binary does not link it: the tch lane
//! runs in a worker of `xdiff-tch`, the same program with libtorch linked
//! (`src/bin/xdiff-tch.rs`, which calls [`link`] first). Runs without a tch
//! lane, and the ort and candle workers, never pay for libtorch.
//!
//! The linker keeps libtorch out of `xdiff` because nothing reachable from
//! its `main` names a libtorch symbol: the engine and its registry are
//! reached only through the function pointers [`link`] stores.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::{BuildFn, CoverageFn, EngineError};

/// The name of the executable that links libtorch, next to `xdiff`.
pub const TORCH_EXE: &str = "xdiff-tch";

/// The environment variable that names `xdiff-tch` when it is not next to
/// the running executable (or one folder up: tests run from `deps/`).
pub const TORCH_EXE_ENV: &str = "XDIFF_TCH_EXE";

/// The in-process libtorch engine and registry, once [`link`]ed.
static LINKED: OnceLock<(BuildFn, CoverageFn)> = OnceLock::new();

/// Makes the tch lane run in this process: called first by `xdiff-tch`'s
/// `main` (and by the unit tests, which link libtorch anyway).
#[cfg(feature = "tch-backend")]
pub fn link() {
    let _ = LINKED.set((
        || Ok(Box::new(super::libtorch::TchEngine)),
        || super::op_entries(super::libtorch::registry()),
    ));
}

/// The in-process engine and registry, where libtorch is linked.
fn in_process() -> Option<&'static (BuildFn, CoverageFn)> {
    #[cfg(all(test, feature = "tch-backend"))]
    link();
    LINKED.get()
}

/// Whether libtorch is linked into this process (the tch lane can run here).
pub fn linked() -> bool {
    in_process().is_some()
}

/// Whether lanes of `backend` need libtorch.
pub fn needs_torch(backend: &str) -> bool {
    backend == "tch"
}

/// The tch engine, in this process; elsewhere an error that says where it runs.
pub(super) fn build() -> Result<Box<dyn super::Engine>, EngineError> {
    match in_process() {
        Some((build, _)) => build(),
        None => Err(EngineError::Missing {
            engine: "tch",
            why: format!(
                "libtorch is not linked into this program; the tch lane runs in `{TORCH_EXE}` \
                 (built next to `xdiff` by `cargo build --release -p xdiff`)"
            ),
        }),
    }
}

/// The tch lowering registry's coverage; empty where libtorch is not linked
/// (`xdiff ops` runs in `xdiff-tch` for it).
pub(super) fn coverage() -> Vec<super::OpEntry> {
    match in_process() {
        Some((_, coverage)) => coverage(),
        None => vec![],
    }
}

/// `xdiff-tch` for a worker or re-exec: `$XDIFF_TCH_EXE`, else next to
/// `beside` (the xdiff executable), else one folder up from it (a test
/// binary in `target/<profile>/deps/`). `None` when there is none.
pub fn exe_beside(beside: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(TORCH_EXE_ENV) {
        return Some(PathBuf::from(p));
    }
    let dir = beside.parent()?;
    [dir.join(TORCH_EXE), dir.parent()?.join(TORCH_EXE)]
        .into_iter()
        .find(|p| p.is_file())
}

/// `xdiff-tch` beside the running executable.
pub fn exe() -> Option<PathBuf> {
    exe_beside(&std::env::current_exe().ok()?)
}
