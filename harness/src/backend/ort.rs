//! ONNX Runtime backend (placeholder until written).
use super::*;
pub struct OrtEngine;
impl Engine for OrtEngine {
    fn name(&self) -> &'static str { "ort" }
    fn prepare(&self, _graph: &Graph, _opts: &EngineOptions) -> Result<Box<dyn Session>, EngineError> {
        Err(EngineError::Failed { engine: "ort", why: "todo".into() })
    }
}
