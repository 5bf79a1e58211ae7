//! Case files as TOML: parse errors that name the line and suggest the key
//! meant ("did you mean"), `[[sweep]]` grids expanded into named variants,
//! and `${p}` templating of parameter values into every variant.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use super::raw::RawCase;
use super::CaseError;

/// A variant's parameters by name.
pub(super) type Params = BTreeMap<String, toml::Value>;

/// Adds "did you mean" to serde's unknown-field messages.
fn toml_error(file: &Path, e: &toml::de::Error, prefix: &str) -> CaseError {
    let msg = e.message().to_string();
    let mut line = msg.clone();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once('`') {
            let best = expected
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|c| (strsim::jaro_winkler(field, c), c))
                .filter(|(s, _)| *s > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((_, c)) = best {
                line = format!("unknown key `{field}`; did you mean `{c}`?");
            } else {
                line = format!("unknown key `{field}`{expected}");
            }
        }
    }
    let at = e.span().map(|_| String::new()).unwrap_or_default();
    CaseError::new(file, format!("{prefix}{line}{at}"))
}

fn line_of(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(s) => format!(
            "line {}: ",
            text[..s.start.min(text.len())].matches('\n').count() + 1
        ),
        None => String::new(),
    }
}

/// One variant of a case file: its name (`None` without sweeps), the raw
/// case with `${p}` substituted, and its parameters.
pub(super) type Variant = (Option<String>, RawCase, Params);

/// Parses a case file and expands its sweeps into raw variants (resolving
/// them into runnable cases is `resolve`'s job).
pub(super) fn variants(file: &Path, text: &str) -> Result<Vec<Variant>, CaseError> {
    let doc: toml::Table = toml::from_str(text)
        .map_err(|e| CaseError::new(file, format!("{}{}", line_of(text, &e), e.message())))?;
    let has_sweep = doc.contains_key("sweep");
    if !has_sweep {
        let raw: RawCase =
            toml::from_str(text).map_err(|e| toml_error(file, &e, &line_of(text, &e)))?;
        return Ok(vec![(None, raw, Params::new())]);
    }
    let defaults = match doc.get("params") {
        Some(toml::Value::Table(t)) => t.clone().into_iter().collect::<Params>(),
        Some(_) => {
            return Err(CaseError::new(
                file,
                "key `params`: expected a table of default parameter values",
            ))
        }
        None => Params::new(),
    };
    let sweeps = doc.get("sweep").and_then(|s| s.as_array()).ok_or_else(|| {
        CaseError::new(file, "key `sweep`: expected an array of tables ([[sweep]])")
    })?;
    // Each variant is the case without its `[params]` and `[[sweep]]`
    // (read above, and checked by `expand_sweep`), substituted: they are
    // most of a sweep's text, and copying and reading them again for each
    // of `cases/resize.toml`'s 292 variants was a third of its loading.
    let mut template = doc.clone();
    template.remove("params");
    template.remove("sweep");
    let mut cases = Vec::new();
    let mut seen = HashSet::new();
    for (i, s) in sweeps.iter().enumerate() {
        for (name, params) in expand_sweep(file, i, s, &defaults)? {
            if !seen.insert(name.clone()) {
                continue;
            }
            let mut v = toml::Value::Table(template.clone());
            substitute(file, &mut v, &params, "")?;
            let raw: RawCase = v
                .try_into()
                .map_err(|e: toml::de::Error| toml_error(file, &e, &format!("variant {name}: ")))?;
            cases.push((Some(name), raw, params));
        }
    }
    Ok(cases)
}

/// The most variants one `[[sweep]]` grid may expand to.
const MAX_VARIANTS: usize = 100_000;

/// Checks that a grid's product stays under [`MAX_VARIANTS`] before it is
/// expanded (a few short arrays can multiply past any memory).
fn grid_size(file: &Path, key: &str, grid: &toml::Table) -> Result<(), CaseError> {
    let product = grid
        .values()
        .map(|v| v.as_array().map_or(1, Vec::len).max(1))
        .try_fold(1usize, |n, len| n.checked_mul(len))
        .filter(|&n| n <= MAX_VARIANTS);
    match product {
        Some(_) => Ok(()),
        None => Err(CaseError::new(
            file,
            format!("key `{key}.grid`: expands to more than {MAX_VARIANTS} variants"),
        )),
    }
}

/// One sweep's grid -> (variant name, full parameter set).
fn expand_sweep(
    file: &Path,
    i: usize,
    s: &toml::Value,
    defaults: &Params,
) -> Result<Vec<(String, Params)>, CaseError> {
    let key = format!("sweep[{i}]");
    let t = s
        .as_table()
        .ok_or_else(|| CaseError::new(file, format!("key `{key}`: expected a table")))?;
    for k in t.keys() {
        if k != "name" && k != "grid" {
            return Err(CaseError::new(
                file,
                format!("key `{key}.{k}`: unknown key (expected `name` or `grid`)"),
            ));
        }
    }
    let prefix = match t.get("name") {
        None => None,
        Some(toml::Value::String(n)) => Some(n.clone()),
        Some(_) => {
            return Err(CaseError::new(
                file,
                format!("key `{key}.name`: expected a string"),
            ))
        }
    };
    let grid = t.get("grid").and_then(|g| g.as_table()).ok_or_else(|| {
        CaseError::new(
            file,
            format!("key `{key}.grid`: expected a table of parameter -> [values]"),
        )
    })?;
    grid_size(file, &key, grid)?;
    let mut combos: Vec<Vec<(String, toml::Value)>> = vec![vec![]];
    for (p, values) in grid {
        let values = values.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
            CaseError::new(
                file,
                format!("key `{key}.grid.{p}`: expected a non-empty array of values"),
            )
        })?;
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((p.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    Ok(combos
        .into_iter()
        .map(|c| {
            let label: Vec<String> = c.iter().map(|(k, v)| format!("{k}={}", show(v))).collect();
            let name = match &prefix {
                Some(p) => format!("{p}:{}", label.join(",")),
                None => label.join(","),
            };
            let mut params = defaults.clone();
            params.extend(c);
            (name, params)
        })
        .collect())
}

/// A parameter value as shown in variant names (strings without quotes).
pub fn show(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Table(t) if t.contains_key("name") => show(&t["name"]),
        toml::Value::Array(a) => format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// A parameter, or a field of a table-valued one (`${geometry.scales}`).
fn lookup(params: &Params, path: &str) -> Option<toml::Value> {
    let mut parts = path.split('.');
    let mut v = params.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v.clone())
}

/// Replaces `"${p}"` by the parameter's value, and `${p}` inside strings by its text.
fn substitute(
    file: &Path,
    v: &mut toml::Value,
    params: &Params,
    key: &str,
) -> Result<(), CaseError> {
    match v {
        toml::Value::String(s) if s.contains("${") => {
            if let Some(p) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if !p.contains("${") {
                    *v = lookup(params, p).ok_or_else(|| {
                        CaseError::new(file, format!("key `{key}`: unknown sweep parameter `{p}`"))
                    })?;
                    return Ok(());
                }
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(i) = rest.find("${") {
                out.push_str(&rest[..i]);
                let end = rest[i..]
                    .find('}')
                    .ok_or_else(|| CaseError::new(file, format!("key `{key}`: unclosed `${{`")))?;
                let p = &rest[i + 2..i + end];
                let val = lookup(params, p).ok_or_else(|| {
                    CaseError::new(file, format!("key `{key}`: unknown sweep parameter `{p}`"))
                })?;
                out.push_str(&show(&val));
                rest = &rest[i + end + 1..];
            }
            out.push_str(rest);
            *s = out;
        }
        toml::Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                substitute(file, x, params, &format!("{key}[{i}]"))?;
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t.iter_mut() {
                if key.is_empty() && (k == "sweep" || k == "params") {
                    continue;
                }
                let sub = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                substitute(file, x, params, &sub)?;
            }
        }
        _ => {}
    }
    Ok(())
}
