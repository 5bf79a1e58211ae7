//! Reading back the floats of a JSON report: serde_json writes a NaN or
//! infinite `f64` as `null`, which plain `f64` deserialization refuses. These
//! read `null` as NaN (an unknown non-finite value), so a report loads back
//! and re-serializes to the same bytes (`xdiff merge`, `crate::merge`).

use serde::{Deserialize, Deserializer};

/// An `f64` field: `null` reads as NaN.
pub fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// An `Option<f64>` field omitted when `None` (`skip_serializing_if`):
/// present means `Some`, and `null` is `Some(NaN)`. Use with `#[serde(default)]`.
pub fn some_f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    f64_or_nan(d).map(Some)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::f64_or_nan")]
        a: f64,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "super::some_f64_or_nan"
        )]
        b: Option<f64>,
    }

    #[test]
    fn non_finite_values_survive_a_round_trip_byte_for_byte() {
        for t in [
            T {
                a: f64::NAN,
                b: Some(f64::INFINITY),
            },
            T { a: 0.1, b: None },
            T {
                a: -3e-310,
                b: Some(1.0 / 3.0),
            },
        ] {
            let s = serde_json::to_string(&t).unwrap();
            let back: T = serde_json::from_str(&s).unwrap();
            assert_eq!(serde_json::to_string(&back).unwrap(), s);
        }
    }
}
