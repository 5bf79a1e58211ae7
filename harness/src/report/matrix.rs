//! Writes the conformance matrices of swept case files as JSON
//! (`matrix.json`, an array of matrices) and Markdown (`matrix.md`).

use std::io::Write;
use std::path::PathBuf;

use super::sweep::Matrix;
use super::{Event, Reporter};

/// Writes both files at the end of the run, from the run's matrices.
pub struct MatrixReporter {
    dir: PathBuf,
}

impl MatrixReporter {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        MatrixReporter { dir: dir.into() }
    }

    fn write(&self, matrices: &[Matrix]) -> std::io::Result<()> {
        let mut json =
            std::io::BufWriter::new(std::fs::File::create(self.dir.join("matrix.json"))?);
        serde_json::to_writer_pretty(&mut json, matrices)?;
        writeln!(json)?;
        json.flush()?;
        std::fs::write(self.dir.join("matrix.md"), markdown(matrices))
    }
}

/// The Markdown of every matrix, each under a heading.
pub fn markdown(matrices: &[Matrix]) -> String {
    let mut s = String::new();
    for m in matrices {
        s.push_str(&format!("## Conformance matrix: {}\n\n", m.case));
        s.push_str(&m.to_markdown());
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s.push('\n');
    }
    if matrices.is_empty() {
        s.push_str("No swept case files in this run.\n");
    }
    s
}

impl Reporter for MatrixReporter {
    fn handle(&mut self, event: &Event) -> std::io::Result<()> {
        match *event {
            Event::RunFinished { sweeps, .. } => self.write(sweeps),
            _ => Ok(()),
        }
    }
}
