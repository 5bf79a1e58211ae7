//! Fingerprint claims on real backend outputs (issues 5 and 11): every
//! claim made on the shipped resize case holds on the lane's own inputs,
//! tied conventions are reported as ambiguous with the input that would
//! separate them, and a wrong claim against ONNX Runtime's actual output
//! is not verified.

use xdiff::backend::reference::RefTensor;
use xdiff::case::Case;
use xdiff::fingerprint::{fingerprint, verify};
use xdiff::outcome::CaseReport;
use xdiff::run::run_case;

fn cases(path: &str) -> Vec<Case> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    xdiff::case::load(&p).expect("case loads")
}

fn reports(path: &str) -> Vec<CaseReport> {
    cases(path)
        .iter()
        .map(|c| run_case(c, &c.backends).expect("case runs").report)
        .collect()
}

/// The variant of cases/resize.toml named `variant`.
fn resize_variant(variant: &str) -> Case {
    cases("cases/resize.toml")
        .into_iter()
        .find(|c| c.variant.as_deref() == Some(variant))
        .unwrap_or_else(|| panic!("no variant {variant}"))
}

#[test]
fn every_fingerprint_in_the_resize_case_is_verified() {
    let (mut claims, mut exact, mut ambiguous) = (0, 0, 0);
    for r in reports("cases/resize.toml") {
        for n in &r.nodes {
            for (lane, x) in &n.lanes {
                let Some(fp) = &x.fingerprint else { continue };
                claims += 1;
                exact += fp.exact as usize;
                assert!(
                    fp.verified,
                    "{}[{:?}] {lane} `{}`: claim `{}` does not reproduce the lane's output",
                    r.case, r.variant, n.name, fp.description
                );
                if !fp.ambiguous.is_empty() {
                    ambiguous += 1;
                    // The resize probes pull every tie of this case apart.
                    assert!(
                        fp.separated_by.is_some(),
                        "{}[{:?}] {lane}: {}",
                        r.case,
                        r.variant,
                        fp.description
                    );
                    assert!(
                        fp.description.starts_with("ambiguous: "),
                        "{}",
                        fp.description
                    );
                }
            }
        }
    }
    // ORT alone diverges on 16 variants of cases/resize.toml; each gets a fingerprint.
    assert!(claims >= 16, "only {claims} fingerprints");
    assert!(exact >= 16, "only {exact} exact fingerprints");
    assert!(ambiguous >= 3, "only {ambiguous} ambiguous fingerprints");
}

#[test]
fn align_corners_5_to_7_is_reported_ambiguous_with_a_separating_geometry() {
    let v = "nearest:ctm=align_corners,geometry=5to7,mode=nearest,nearest_mode=floor,via=scales";
    let case = resize_variant(v);
    let backends = ["ort".to_string(), "reference".to_string()];
    let report = run_case(&case, &backends).unwrap().report;
    let fp = report.nodes[0].lanes["ort"]
        .fingerprint
        .clone()
        .expect("ort diverges on this variant");
    let claimed: Vec<String> = fp
        .ambiguous
        .iter()
        .map(|c| c.iter().map(|(k, v)| format!("{k}={v}")).collect())
        .collect();
    assert_eq!(
        claimed,
        [
            "via=sizes",
            "coordinate_transformation_mode=half_pixel_symmetric",
            "coordinate_transformation_mode=asymmetric",
        ]
    );
    // Under floor rounding 5→8 ties align_corners (out/in) with
    // half_pixel_symmetric; 6→3 tells those two apart.
    let both = "input length 5 at scale 1.6 (5→8) and input length 6 at scale 0.5 (6→3)";
    assert_eq!(fp.separated_by.as_deref(), Some(both));
    assert!(fp.verified, "{fp:?}");
    assert!(
        fp.description.ends_with(&format!("; {both} separate them")),
        "{}",
        fp.description
    );
}

#[test]
fn a_wrong_claim_against_ort_s_real_output_is_not_verified() {
    let v = "linear:antialias=0,ctm=align_corners,geometry=5to7,mode=linear,via=scales";
    let case = resize_variant(v);
    let node = &case.graph.nodes[0];
    let mut session = xdiff::backend::engine("ort")
        .unwrap()
        .prepare(&case.graph, &case.options)
        .unwrap();
    let trace = session.run(&case.inputs).unwrap();
    let got = &trace.values[&node.outputs[0]];
    let inputs: Vec<Option<RefTensor>> = node
        .inputs
        .iter()
        .map(|n| {
            (!n.is_empty()).then(|| {
                let t = case
                    .inputs
                    .get(n)
                    .or_else(|| case.graph.initializers.get(n));
                RefTensor::from_host(t.expect("graph input or initializer"))
            })
        })
        .collect();
    let ins: Vec<Option<&RefTensor>> = inputs.iter().map(Option::as_ref).collect();
    let opset = case.graph.opset;
    let fp = fingerprint(node, opset, &ins, 0, got).expect("ORT diverges here");
    assert!(fp.exact && verify(&fp, node, opset, &ins, got), "{fp:?}");
    // The same output, claimed to follow half_pixel: wrong, and caught.
    let mut wrong = fp.clone();
    wrong.attrs = vec![("coordinate_transformation_mode".into(), "half_pixel".into())];
    wrong.ambiguous.clear();
    assert!(!verify(&wrong, node, opset, &ins, got));
}
