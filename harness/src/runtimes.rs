//! Where the runtimes xdiff links against live, and what to tell a user when
//! one is missing.
//!
//! `ci/setup-runtimes` installs ONNX Runtime, torch and onnx from PyPI into one
//! versioned directory under the cache root (`$XDIFF_CACHE`, default
//! `~/.cache/xdiff`) and writes an `env.sh` there. The binary looks for the
//! same directory so it also runs without that environment sourced.

use std::path::PathBuf;

/// The versioned directory name; must equal `STAMP_ID` in `ci/setup-runtimes`
/// (a test checks that).
pub const RUNTIMES_ID: &str = "ort1.31.1-torch2.11.0-onnx1.19.1-v1";

/// The ONNX Runtime version xdiff expects.
pub const ORT_VERSION: &str = "1.31.1";

/// The command that installs every runtime.
pub const INSTALL_HINT: &str = "ci/setup-runtimes (from the xdiff checkout)";

/// The cache root.
pub fn cache_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDIFF_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("xdiff")
}

/// The runtimes directory (`$XDIFF_RUNTIMES` if set by `env.sh`).
pub fn runtimes_dir() -> PathBuf {
    match std::env::var_os("XDIFF_RUNTIMES") {
        Some(d) => PathBuf::from(d),
        None => cache_root().join(format!("runtimes-{RUNTIMES_ID}")),
    }
}

/// `site-packages` of the runtimes venv, if it exists.
fn site_packages() -> Option<PathBuf> {
    let lib = runtimes_dir().join("venv").join("lib");
    std::fs::read_dir(&lib)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
}

/// A runtime that is not where xdiff looks for it; says how to install it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime {ORT_VERSION}: ORT_DYLIB_PATH points to {}, which does not exist; install with: {INSTALL_HINT}",
        .0.display()
    )]
    OrtPathMissing(PathBuf),
    #[error(
        "ONNX Runtime {ORT_VERSION} is not installed (looked in {}); install it with: {INSTALL_HINT}",
        .0.display()
    )]
    OrtNotInstalled(PathBuf),
}

/// The ONNX Runtime shared library: `$ORT_DYLIB_PATH`, else the cache's.
pub fn ort_library() -> Result<PathBuf, RuntimeError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(RuntimeError::OrtPathMissing(p))
        };
    }
    let capi = site_packages().map(|s| s.join("onnxruntime").join("capi"));
    let lib = capi
        .as_ref()
        .map(|c| c.join(format!("libonnxruntime.so.{ORT_VERSION}")));
    match lib {
        Some(l) if l.is_file() => Ok(l),
        _ => Err(RuntimeError::OrtNotInstalled(runtimes_dir())),
    }
}

/// The Python of the runtimes venv (used by test generators), if installed.
pub fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("XDIFF_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let p = runtimes_dir().join("venv").join("bin").join("python");
    p.is_file().then_some(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn setup_script_uses_the_same_runtime_id() {
        let script = include_str!("../../ci/setup-runtimes");
        let id = "STAMP_ID=\"ort${ORT_VERSION}-torch${TORCH_VERSION}-onnx${ONNX_VERSION}-v1\"";
        assert!(
            script.contains(id),
            "ci/setup-runtimes STAMP_ID changed; update RUNTIMES_ID"
        );
        for v in [
            "ORT_VERSION=1.31.1",
            "TORCH_VERSION=2.11.0",
            "ONNX_VERSION=1.19.1",
        ] {
            assert!(
                script.contains(v),
                "ci/setup-runtimes no longer pins {v}; update RUNTIMES_ID"
            );
        }
        assert_eq!(super::RUNTIMES_ID, "ort1.31.1-torch2.11.0-onnx1.19.1-v1");
    }
}
