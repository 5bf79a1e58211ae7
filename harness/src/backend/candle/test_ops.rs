//! Test-only ops that crash the process, so that lane isolation
//! (`crate::isolate`) is tested with real crashes rather than mocks:
//! `XdiffTestAbort` calls `std::process::abort()`, `XdiffTestSegfault`
//! raises SIGSEGV, `XdiffTestHang` loops forever. They are registered in
//! candle's table only when the environment variable
//! [`crate::isolate::TEST_OPS_ENV`] is `1` (set by `tests/isolation.rs`
//! for the xdiff it starts), so a user's graph can never trip them and
//! `xdiff ops` never lists them; inline graphs have no domain, hence the
//! `XdiffTest` prefix instead of a domain of their own.

use candle_core::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};

/// Registers the crashing ops when the tests ask for them.
pub fn register(r: &mut OpRegistry<Tensor>) {
    if !crate::isolate::test_ops_enabled() {
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

fn segfault(ctx: &OpCtx, x: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    // SAFETY: raising a signal has no memory-safety preconditions; the
    // default SIGSEGV action ends the process.
    unsafe {
        libc::raise(libc::SIGSEGV);
    }
    let input = ctx.input(x, 0)?;
    Ok(Lowered::one(input.clone(), How::Native("identity".into())))
}

fn hang(_: &OpCtx, _: &[Option<&Tensor>]) -> OpResult<Lowered<Tensor>> {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
