//! Reference ops: linalg family (see the module docs of `reference`).

use super::RefTensor;
use crate::backend::interp::OpRegistry;

pub fn register(_r: &mut OpRegistry<RefTensor>) {}
