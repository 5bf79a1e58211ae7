//! Test-only ops that crash the process, so that lane isolation
//! (`crate::isolate`) is tested with real crashes rather than mocks:
//! `XdiffTestAbort` calls `std::process::abort()`, `XdiffTestSegfault`
//! raises SIGSEGV, `XdiffTestHang` loops forever. They are registered in
//! candle's table only when the environment variable
//! [`crate::options::TEST_OPS_ENV`] is `1` (set by `tests/isolation.rs`
//! for the xdiff it starts), so a user's graph can never trip them and
//! `xdiff ops` never lists them; inline graphs have no domain, hence the
//! `XdiffTest` prefix instead of a domain of their own.

use candle_core::Tensor;

use crate::backend::interp::{Label, Lowered, OpCtx, OpError, OpRegistry, OpResult};

/// Registers the crashing ops when the tests ask for them.
pub fn register(r: &mut OpRegistry<Tensor>) {
    if !crate::options::test_ops_enabled() {
        return;
    }
    const COV: &[crate::op::Coverage] = cov!["test only" => Label::Native("crash")];
    r.range("XdiffTestAbort", 1, u32::MAX, abort, "", COV);
    r.range("XdiffTestSegfault", 1, u32::MAX, segfault, "", COV);
    r.range("XdiffTestHang", 1, u32::MAX, hang, "", COV);
}

fn abort(_: &OpCtx, _: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    std::process::abort()
}

fn segfault(_: &OpCtx, _: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    // Rust's own SIGSEGV handler (stack-overflow detection) returns from a
    // raised signal, so the default action is restored first.
    // SAFETY: setting a signal's disposition and raising it have no
    // memory-safety preconditions; the default action ends the process.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    Err(OpError::Failed("SIGSEGV did not end the process".into()))
}

fn hang(_: &OpCtx, _: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
