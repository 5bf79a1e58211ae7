//! Conformance matrix for sweep cases (issue 5): attribute combination ×
//! backend → matches spec / differs / unsupported / error. Placeholder API,
//! filled in by the resize-conventions work.

use crate::run::CaseReport;

/// The matrix of one swept case file.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Matrix {
    pub case: String,
    pub lanes: Vec<String>,
    pub rows: Vec<MatrixRow>,
}

/// One variant (attribute combination).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MatrixRow {
    pub variant: String,
    /// Lane -> cell text (e.g. `ok`, `differs 5.0e-1 25% ≈ asymmetric+floor`).
    pub cells: std::collections::BTreeMap<String, String>,
}

impl Matrix {
    /// Builds one matrix per case file from the reports of its variants
    /// (reports without a variant are ignored).
    pub fn from_reports(reports: &[CaseReport]) -> Vec<Matrix> {
        let _ = reports;
        Vec::new()
    }

    pub fn to_text(&self) -> String {
        String::new()
    }

    pub fn to_markdown(&self) -> String {
        String::new()
    }
}
