//! Prints a JSON report with its unstable values masked
//! (`xdiff::report::json::mask`: timings and lane thread counts), so two
//! runs' reports compare with `cmp` (`ci/shard-check`).
//!
//!     cargo run --release --example mask-report -- out/report.json

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: mask-report REPORT.json");
        return ExitCode::from(2);
    };
    let masked = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|text| xdiff::report::json::mask(&text).map_err(|e| e.to_string()));
    match masked {
        // A reader that stops early (`cmp`) is not an error.
        Ok(m) => {
            let _ = std::io::Write::write_all(&mut std::io::stdout(), m.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mask-report: {path}: {e}");
            ExitCode::from(2)
        }
    }
}
