//! The detection family's fingerprint (issue 13): the idiomatic port's
//! RoiAlign (torchvision's `aligned=False`) is found introduced at the
//! RoiAlign node and fingerprinted as output_half_pixel, the convention it
//! follows, on every half_pixel variant of cases/roialign.toml.

use xdiff::outcome::Origin;
use xdiff::run::run_case;

#[test]
fn the_port_s_roi_align_is_fingerprinted_as_output_half_pixel() {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases/roialign.toml");
    let mut claims = 0;
    for case in xdiff::case::load(&p).expect("case loads") {
        let half_pixel = case
            .variant
            .as_deref()
            .unwrap_or("")
            .contains("ctm=half_pixel");
        let report = run_case(&case, &case.backends).expect("case runs").report;
        let node = report.nodes.iter().find(|n| n.name == "roi_align").unwrap();
        for lane in ["tch:port", "candle:port"] {
            let r = &node.lanes[lane];
            if !half_pixel {
                assert!(r.fingerprint.is_none(), "{lane}: {:?}", case.variant);
                continue;
            }
            assert_eq!(
                r.origin,
                Some(Origin::Introduced),
                "{lane}: {:?}",
                case.variant
            );
            let fp = r.fingerprint.as_ref().expect("a fingerprint");
            assert!(fp.verified && fp.exact, "{lane}: {}", fp.description);
            let want = [(
                "coordinate_transformation_mode".to_string(),
                "output_half_pixel".to_string(),
            )];
            assert_eq!(fp.attrs, want, "{lane}: {}", fp.description);
            claims += 1;
        }
    }
    assert_eq!(claims, 8);
}
