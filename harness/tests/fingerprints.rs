//! Every fingerprint claim made on the shipped cases is re-checked: the
//! claimed convention, re-run on the float64 reference, reproduces the
//! backend's output (issue 5).

use xdiff::outcome::CaseReport;
use xdiff::run::run_case;

fn reports(path: &str) -> Vec<CaseReport> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path);
    xdiff::case::load(&p)
        .expect("case loads")
        .iter()
        .map(|c| run_case(c, &c.backends).expect("case runs").report)
        .collect()
}

#[test]
fn every_fingerprint_in_the_resize_case_is_verified() {
    let mut claims = 0;
    let mut exact = 0;
    for r in reports("cases/resize.toml") {
        for n in &r.nodes {
            for (lane, x) in &n.lanes {
                if let Some(fp) = &x.fingerprint {
                    claims += 1;
                    exact += fp.exact as usize;
                    assert!(
                        fp.verified,
                        "{}[{:?}] {lane} `{}`: claim `{}` does not reproduce the backend output",
                        r.case, r.variant, n.name, fp.description
                    );
                }
            }
        }
    }
    // ORT alone diverges on 16 variants of cases/resize.toml; each gets a fingerprint.
    assert!(claims >= 16, "only {claims} fingerprints");
    assert!(exact >= 16, "only {exact} exact fingerprints");
}
