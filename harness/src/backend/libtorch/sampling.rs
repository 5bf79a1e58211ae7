//! libtorch lowerings: DepthToSpace and GridSample (decodes in
//! `op::depth_to_space` and `op::grid_sample`).
//!
//! DepthToSpace's CRD order is torch's `pixel_shuffle`; DCR (the default)
//! has no torch op, so it is the spec's reshape, permute, reshape. The
//! idiomatic port (`EngineOptions::port`) calls `pixel_shuffle` whatever the
//! mode, the classic porting mistake for DCR models.
//! GridSample is torch's `grid_sampler` (2-D and 3-D sampling; bicubic 2-D
//! only), whose interpolation codes 0/1/2 are bilinear/nearest/bicubic and
//! padding codes 0/1/2 zeros/border/reflection, the ONNX orders; the grid is
//! cast to the input's dtype, as torch wants one dtype for both.

use tch::Tensor;

use crate::backend::interp::{How, Label, Lowered, OpCtx, OpRegistry, OpResult};
use crate::op::depth_to_space::{DepthMode, DepthToSpacePlan};
use crate::op::grid_sample::{GridSampleAttrs, SampleMode, SamplePadding};

type X<'a> = [Option<&'a Tensor>];

pub fn register(r: &mut OpRegistry<Tensor>) {
    r.op(
        "DepthToSpace",
        depth_to_space,
        spec!("DepthToSpace"),
        cov![
            "mode = CRD" => Label::Native("pixel_shuffle"),
            "mode = DCR (pixel_shuffle is CRD)" => Label::Composed("reshape, permute, reshape"),
        ],
    );
    r.range(
        "GridSample",
        16,
        u32::MAX,
        grid_sample,
        spec!("GridSample"),
        cov![
            "2-D and 3-D sampling (cubic: 2-D)" => Label::Native("grid_sampler"),
            "1-D or 4+-D sampling, 3-D cubic" => Label::Unsupported("X: grid_sampler takes 4-D/5-D input, bicubic 4-D only"),
        ],
    );
}

fn as_i64(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

/// DepthToSpace-1/11/13: `pixel_shuffle` for CRD (and, in the idiomatic
/// port, for DCR too), the spec's reshape, permute, reshape for DCR.
fn depth_to_space(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let input = ctx.input(x, 0)?;
    let dims: Vec<usize> = input.size().iter().map(|&d| d as usize).collect();
    let plan = DepthToSpacePlan::decode(ctx, &dims)?;
    if plan.mode == DepthMode::Crd || ctx.options.port {
        let y = input.f_pixel_shuffle(plan.blocksize as i64)?;
        let how = match plan.mode {
            DepthMode::Dcr => "pixel_shuffle (idiomatic port: CRD for a DCR node)",
            DepthMode::Crd => "pixel_shuffle",
        };
        return Ok(Lowered::one(y, How::native(how)));
    }
    let y = input
        .f_reshape(as_i64(&plan.split).as_slice())?
        .f_permute(as_i64(&plan.perm).as_slice())?
        .f_reshape(as_i64(&plan.out).as_slice())?;
    Ok(Lowered::one(y, How::composed("reshape, permute, reshape")))
}

/// GridSample-16/20: `grid_sampler` with the ONNX conventions' codes.
fn grid_sample(ctx: &OpCtx, x: &X) -> OpResult<Lowered<Tensor>> {
    let (input, grid) = (ctx.input(x, 0)?, ctx.input(x, 1)?);
    let dims = |t: &Tensor| t.size().iter().map(|&d| d as usize).collect::<Vec<_>>();
    let a = GridSampleAttrs::decode(ctx, &dims(input), &dims(grid))?;
    let spatial = input.dim() - 2;
    if !(2..=3).contains(&spatial) || (spatial == 3 && a.mode == SampleMode::Cubic) {
        return Err(ctx.unsupported(
            "X",
            format!("grid_sampler has no {spatial}-D {:?} sampling", a.mode),
        ));
    }
    let mode = match a.mode {
        SampleMode::Linear => 0,
        SampleMode::Nearest => 1,
        SampleMode::Cubic => 2,
    };
    let padding = match a.padding {
        SamplePadding::Zeros => 0,
        SamplePadding::Border => 1,
        SamplePadding::Reflection => 2,
    };
    let grid = grid.f_to_kind(input.f_kind()?)?;
    let y = input.f_grid_sampler(&grid, mode, padding, a.align_corners)?;
    Ok(Lowered::one(y, How::native("grid_sampler")))
}
