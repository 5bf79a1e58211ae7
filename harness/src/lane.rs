//! Lanes: what a column of a report compares with the reference. A lane is a
//! typed value (a backend on a device, optionally with a [`Patch`], or a
//! backend-test directory's expected data); its name in reports (`tch`,
//! `tch:port`, `ort:ln-eps`, `tch@cpu`, `reference`, `expected`) is
//! rendered from that value and never parsed back.

use std::fmt;

use crate::options::{Device, EngineOptions};

/// The name of the lane that holds a backend-test directory's expected outputs.
pub const EXPECTED: &str = "expected";
/// The name of the lane every other lane is compared with (also its backend's name).
pub const REFERENCE: &str = "reference";

/// A change to what a backend runs, rendered as `<backend>:<patch>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patch {
    /// The idiomatic port (issue 5): every Resize/Upsample lowered the way a
    /// typical port writes it, whatever its attributes
    /// ([`EngineOptions::port`]).
    Port,
    /// A case's `[[lane]]` of this name: the engine runs the case's graph
    /// with one node's attributes replaced (`case::PatchedLane` holds that
    /// graph), while the reference keeps the original, so the local
    /// comparison at the patched node judges the change against the spec.
    Attrs(String),
}

impl Patch {
    /// The suffix of the lane name, after `:`.
    pub fn name(&self) -> &str {
        match self {
            Patch::Port => "port",
            Patch::Attrs(name) => name,
        }
    }

    fn apply(&self, opts: &mut EngineOptions) {
        match self {
            Patch::Port => opts.port = true,
            // The change is in the graph, not in the options.
            Patch::Attrs(_) => {}
        }
    }
}

/// One lane of a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lane {
    Engine(EngineLane),
    /// A backend-test directory's expected outputs: data, not an engine.
    Expected,
}

/// A lane that runs an engine: a backend name from the backend table (an
/// unknown name is refused when the lane's engine is built) on a device,
/// with an optional patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineLane {
    pub backend: String,
    pub device: Device,
    /// The device is part of the lane's name (`tch@cpu`, the cross-device
    /// twin); otherwise it is the case's device (or the reference's CPU).
    pub device_named: bool,
    pub patch: Option<Patch>,
}

impl EngineLane {
    /// The engine options this lane runs with: the case's `options` on the
    /// lane's device, patched.
    pub fn options(&self, case: &EngineOptions) -> EngineOptions {
        let mut opts = EngineOptions {
            device: self.device,
            ..case.clone()
        };
        if let Some(p) = &self.patch {
            p.apply(&mut opts);
        }
        opts
    }

    /// `backend` on the case's `device`: `<backend>`.
    pub fn backend(backend: &str, device: Device) -> EngineLane {
        EngineLane {
            backend: backend.into(),
            device,
            device_named: false,
            patch: None,
        }
    }

    /// The float64 reference, always on the CPU.
    pub fn reference() -> EngineLane {
        EngineLane::backend(REFERENCE, Device::Cpu)
    }

    /// `backend` with `patch` on the case's `device`: `<backend>:<patch>`.
    pub fn patched(backend: &str, device: Device, patch: Patch) -> EngineLane {
        EngineLane {
            backend: backend.into(),
            device,
            device_named: false,
            patch: Some(patch),
        }
    }

    /// `backend` on `device` for the cross-device comparison: `<backend>@<device>`.
    pub fn on_device(backend: &str, device: Device) -> EngineLane {
        EngineLane {
            backend: backend.into(),
            device,
            device_named: true,
            patch: None,
        }
    }
}

impl From<EngineLane> for Lane {
    fn from(e: EngineLane) -> Lane {
        Lane::Engine(e)
    }
}

impl fmt::Display for EngineLane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.backend)?;
        if let Some(p) = &self.patch {
            write!(f, ":{}", p.name())?;
        }
        if self.device_named {
            write!(f, "@{}", self.device)?;
        }
        Ok(())
    }
}

impl fmt::Display for Lane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lane::Engine(e) => e.fmt(f),
            Lane::Expected => f.write_str(EXPECTED),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_render_from_the_typed_lane() {
        let gpu = Device::Cuda(1);
        assert_eq!(EngineLane::backend("tch", gpu).to_string(), "tch");
        assert_eq!(
            EngineLane::patched("tch", gpu, Patch::Port).to_string(),
            "tch:port"
        );
        assert_eq!(
            EngineLane::patched("ort", gpu, Patch::Attrs("ln-eps".into())).to_string(),
            "ort:ln-eps"
        );
        assert_eq!(
            EngineLane::on_device("candle", Device::Cpu).to_string(),
            "candle@cpu"
        );
        assert_eq!(
            Lane::from(EngineLane::on_device("tch", gpu)).to_string(),
            "tch@cuda:1"
        );
        assert_eq!(EngineLane::reference().to_string(), REFERENCE);
        assert_eq!(Lane::Expected.to_string(), EXPECTED);
    }

    #[test]
    fn options_follow_device_and_patch() {
        let case = EngineOptions {
            device: Device::Cuda(1),
            threads: 3,
            ..EngineOptions::default()
        };
        let o = EngineLane::patched("tch", Device::Cuda(1), Patch::Port).options(&case);
        assert_eq!((o.port, o.device, o.threads), (true, Device::Cuda(1), 3));
        let o = EngineLane::on_device("candle", Device::Cpu).options(&case);
        assert_eq!((o.port, o.device, o.threads), (false, Device::Cpu, 3));
        let attrs = Patch::Attrs("ln-eps".into());
        let o = EngineLane::patched("ort", Device::Cpu, attrs).options(&case);
        assert_eq!((o.port, o.device, o.threads), (false, Device::Cpu, 3));
        let o = EngineLane::reference().options(&case);
        assert_eq!((o.port, o.device), (false, Device::Cpu));
    }
}
