#!/usr/bin/env python3
"""Summarize an `xdiff run --format json` over the ONNX node tests.

Prints, per lane, how many node tests pass (every node ok against the float64
reference; for the reference itself: every graph output equals ONNX's expected
output within the ONNX backend-test tolerance) and why the others fail.
Exits 1 when the reference fails a test that ci/node-tests-known.toml does
not list with a reason, when a listed test now passes (stale entry), or when
the reference passes fewer than 97 % of the generated tests.

    node_test_summary.py REPORT.json [KNOWN.toml] [EXCLUDED.txt]

With the generator's `excluded.txt`, it also prints how many tests were left
out and why, and the reference's share of every tensor-typed test of the
ONNX default domain (not-built ones counted as failures).
"""
import collections
import json
import sys
import tomllib


def lane_outcome(case, lane):
    worst = "ok"
    order = ["ok", "skipped", "unsupported", "diverged", "error"]
    for node in case["nodes"]:
        r = node["lanes"].get(lane)
        if r is None:
            continue
        v = r["verdict"]
        if lane == "expected" and v == "skipped":
            continue
        # The reference reproduces ONNX's expected output from ONNX's own
        # expected inputs of the node (run.rs `identity_aliases`): the
        # difference is carried in from float32 intermediates upstream.
        if lane == "expected" and v == "diverged" and r.get("origin") == "inherited":
            continue
        if order.index(v) > order.index(worst):
            worst = v
    return worst


def reference_outcome(case):
    ref = lane_outcome(case, "reference")
    if ref != "ok":
        return ref
    return lane_outcome(case, "expected")


MIN_REFERENCE_SHARE = 0.97


def read_excluded(path):
    """`name<TAB>kind<TAB>reason` rows of gen_node_tests.py's excluded.txt."""
    rows = []
    for line in open(path):
        if line.strip():
            name, kind, reason = line.rstrip("\n").split("\t", 2)
            rows.append((name, kind, reason))
    return rows


def print_shares(n, passed, excluded):
    share = passed / n if n else 0.0
    print(f"reference: {passed} of {n} generated tests pass ({100 * share:.1f} %; at least {100 * MIN_REFERENCE_SHARE:.0f} % required)")
    if excluded is None:
        return share
    kinds = collections.Counter(kind for _, kind, _ in excluded)
    scope = kinds["scope"]
    print(f"  left out before running: {kinds['type']} xdiff cannot express (float8/int4/string/sequence values, opset < 7), "
          f"{scope} of ops not built" + (":" if scope else ""))
    for reason, count in collections.Counter(r for _, k, r in excluded if k == "scope").most_common():
        print(f"    {count:>3}  {reason}")
    total = n + scope
    print(f"  of all {total} tensor-typed tests of the default domain (not-built ones counted as failures): "
          f"{passed} pass ({100 * passed / total:.1f} %)")
    return share


def main():
    report = json.load(open(sys.argv[1]))
    known = tomllib.load(open(sys.argv[2], "rb")).get("reference", {}) if len(sys.argv) > 2 else {}
    excluded = read_excluded(sys.argv[3]) if len(sys.argv) > 3 else None
    lanes = [l["name"] for l in report["cases"][0]["lanes"] if l["name"] != "expected"] if report["cases"] else []
    tally = {l: collections.Counter() for l in lanes}
    failures = collections.defaultdict(list)
    for case in report["cases"]:
        name = case["case"]
        for lane in lanes:
            out = reference_outcome(case) if lane == "reference" else lane_outcome(case, lane)
            tally[lane][out] += 1
            if out != "ok":
                first = case["first_divergence"].get(lane) or case["first_divergence"].get("expected")
                detail = ""
                for node in case["nodes"]:
                    r = node["lanes"].get(lane, {})
                    if r.get("verdict") not in (None, "ok") and r.get("message"):
                        detail = r["message"]
                        break
                failures[lane].append((name, out, detail or (first and f"{first['op']} {first['verdict']}") or ""))
    n = len(report["cases"])
    print(f"ONNX node tests: {n} tests, each diffed node by node against the float64 reference")
    print(f"{'lane':<10} {'pass':>5} {'diverged':>9} {'unsupported':>12} {'error':>6} {'skipped':>8}")
    for lane in lanes:
        t = tally[lane]
        print(f"{lane:<10} {t['ok']:>5} {t['diverged']:>9} {t['unsupported']:>12} {t['error']:>6} {t['skipped']:>8}")
    print("(reference: passes when every output equals ONNX's expected output within rtol 1e-3, atol 1e-7)")
    share = print_shares(n, tally["reference"]["ok"], excluded) if "reference" in tally else 1.0
    resize = [c for c in report["cases"] if c["case"].startswith(("test_resize", "test_upsample"))]
    if resize:
        print(f"\nResize/Upsample node tests x backend ({len(resize)} tests):")
        width = max(len(c["case"]) for c in resize)
        print(f"  {'test':<{width}}  " + "  ".join(f"{l:<11}" for l in lanes))
        for c in sorted(resize, key=lambda c: c["case"]):
            cells = [reference_outcome(c) if l == "reference" else lane_outcome(c, l) for l in lanes]
            print(f"  {c['case']:<{width}}  " + "  ".join(f"{v:<11}" for v in cells))
        print()
    status = 0
    ref_fail = {name: (out, d) for name, out, d in failures.get("reference", [])}
    for name, (out, detail) in sorted(ref_fail.items()):
        if name in known:
            print(f"  reference known failure {name}: {known[name]}")
        else:
            print(f"  reference FAILS {name}: {out} {detail}")
            status = 1
    ran = {c["case"] for c in report["cases"]}
    for name in sorted((set(known) & ran) - set(ref_fail)):
        print(f"  ci/node-tests-known.toml lists {name}, which now passes: remove it")
        status = 1
    if share < MIN_REFERENCE_SHARE:
        print(f"  the reference passes {100 * share:.1f} % of the node tests, below {100 * MIN_REFERENCE_SHARE:.0f} %")
        status = 1
    for lane in lanes:
        if lane == "reference":
            continue
        for name, out, detail in failures.get(lane, []):
            print(f"  {lane:<7} {out:<11} {name}: {detail[:160]}")
    sys.exit(status)


if __name__ == "__main__":
    main()
