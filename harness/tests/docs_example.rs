//! The complete example in docs/cases.md must stay a valid, runnable case.

#[test]
fn the_cases_md_example_loads_and_runs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let doc = std::fs::read_to_string(root.join("docs/cases.md")).expect("docs/cases.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("closed block");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("example.toml");
    std::fs::write(&path, &doc[start..end]).unwrap();
    let cases = xdiff::case::load(&path).expect("the documented example loads");
    assert_eq!(
        cases.len(),
        3,
        "one variant per mode of the example's sweep"
    );
    for case in &cases {
        let report = xdiff::run::run_case(case, &["reference".to_string()])
            .expect("runs")
            .report;
        assert!(report
            .nodes
            .iter()
            .all(|n| n.lanes["reference"].verdict == xdiff::outcome::Verdict::Ok));
    }
}
