#!/usr/bin/env python3
"""Generate the ONNX node conformance tests: every test of every op.

Uses the `onnx` package's own test generators
(`onnx.backend.test.case.node.collect_testcases`) and writes every node test
as an ONNX backend-test directory:
`<out>/<test>/model.onnx` + `test_data_set_N/{input,output}_K.pb`.

Two kinds of tests are left out, each with its reason in `excluded.txt` in the
output directory (one `name<TAB>scope<TAB>reason` line per test):
- `type`: tests xdiff cannot express at all: float8/int4/float4/string
  values, sequence/optional inputs, models below opset 7;
- `scope`: ops xdiff does not lower, listed with the reason in
  `harness/src/op/not_built.toml` (the convention-catalogue ops of issue 13,
  random ops, control flow; `xdiff ops` prints the same list), and ops
  outside the ONNX default domain.
Everything else is generated, whether or not xdiff lowers its ops: a test of
an op xdiff lacks shows up as an `unsupported` failure, never as a silent gap.

`--ops A,B` generates only the tests that use one of those ops (for working
on an op family; `ci/node-tests` always generates everything).
"""
import argparse
import os
import pathlib
import tomllib
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

# The ops xdiff does not lower, with their reasons: one list, which `xdiff ops`
# prints too (docs/ops.md).
NOT_BUILT = pathlib.Path(__file__).resolve().parent.parent / "harness/src/op/not_built.toml"
OUT_OF_SCOPE = {
    op: group["reason"] for group in tomllib.loads(NOT_BUILT.read_text())["group"] for op in group["ops"]
}
SUPPORTED_TYPES = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
    onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
    onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64,
    onnx.TensorProto.BOOL,
}


def type_reason(case):
    """Why xdiff cannot express this test at all, or "" when it can."""
    g = case.model.graph
    opset = next((o.version for o in case.model.opset_import if o.domain in ("", "ai.onnx")), 7)
    if opset < 7:
        return f"opset {opset} (xdiff reads opsets 7-24)"
    for v in list(g.input) + list(g.output):
        t = v.type
        if not t.HasField("tensor_type"):
            return f"value `{v.name}` is not a tensor (sequence/optional types are out of scope)"
        if t.tensor_type.elem_type not in SUPPORTED_TYPES:
            name = onnx.TensorProto.DataType.Name(t.tensor_type.elem_type)
            return f"value `{v.name}` has element type {name} (xdiff has no float8/int4/float4/string dtype)"
    for n in g.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type not in SUPPORTED_TYPES:
                return f"node `{n.op_type}` attribute `{a.name}` has an unsupported element type"
            if n.op_type in ("Cast", "CastLike") and a.name == "to" and a.i not in SUPPORTED_TYPES:
                return f"Cast to {onnx.TensorProto.DataType.Name(a.i)} (no such dtype in xdiff)"
    return ""


def scope_reason(case):
    """Why this test's ops are not issue 12's to build, or "" when they are."""
    for n in case.model.graph.node:
        if n.domain not in ("", "ai.onnx"):
            return f"`{n.op_type}` is in domain `{n.domain}`, not the ONNX default domain"
        if n.op_type in OUT_OF_SCOPE:
            return f"`{n.op_type}`: {OUT_OF_SCOPE[n.op_type]}"
    return ""


def qlinearmatmul_saturated(case, inputs, outputs):
    """onnx/onnx#7835, fixed upstream by onnx/onnx#7868 (after onnx 1.19.1):
    the shipped `y` of the int8 QLinearMatMul tests wraps an out-of-range
    result (-236 stored as 20) where the spec says `y = saturate(...)`.
    Corrected the way upstream corrected it: only elements whose unclipped
    result is out of range change, to the saturated bound; every other
    element must equal the shipped value (checked), so nothing else moves."""
    a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp = (np.asarray(x) for x in inputs)
    acc = np.matmul(a.astype(np.int32) - a_zp.astype(np.int32), b.astype(np.int32) - b_zp.astype(np.int32))
    unclipped = np.rint(acc * (a_s * b_s / y_s) + y_zp)
    info = np.iinfo(y_zp.dtype)
    y = np.asarray(outputs[0])
    inside = (unclipped >= info.min) & (unclipped <= info.max)
    if not np.array_equal(unclipped[inside].astype(y.dtype), y[inside]):
        raise SystemExit(f"{case.name}: shipped data differs from the formula in range; correction not applied")
    return [np.clip(unclipped, info.min, info.max).astype(y.dtype)] + list(outputs[1:])


# Test data the `onnx` package ships wrong and upstream has since corrected:
# test-name prefix -> correction of (case, inputs, outputs). Each is listed in
# docs/node-tests.md with its upstream issue.
UPSTREAM_FIXES = {"test_qlinearmatmul_": qlinearmatmul_saturated}


def corrected(case, inputs, outputs):
    for prefix, fix in UPSTREAM_FIXES.items():
        if case.name.startswith(prefix):
            return fix(case, inputs, outputs)
    return outputs


def to_proto(x, name):
    if isinstance(x, onnx.TensorProto):
        t = onnx.TensorProto()
        t.CopyFrom(x)
        t.name = name
        return t
    return numpy_helper.from_array(np.asarray(x), name)


def write(case, out):
    d = os.path.join(out, case.name)
    os.makedirs(d, exist_ok=True)
    onnx.save(case.model, os.path.join(d, "model.onnx"))
    for k, (inputs, outputs) in enumerate(case.data_sets):
        sd = os.path.join(d, f"test_data_set_{k}")
        os.makedirs(sd, exist_ok=True)
        for i, x in enumerate(inputs):
            t = to_proto(x, case.model.graph.input[i].name)
            with open(os.path.join(sd, f"input_{i}.pb"), "wb") as f:
                f.write(t.SerializeToString())
        for i, y in enumerate(corrected(case, inputs, outputs)):
            t = to_proto(y, case.model.graph.output[i].name)
            with open(os.path.join(sd, f"output_{i}.pb"), "wb") as f:
                f.write(t.SerializeToString())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--ops", help="comma-separated: only tests that use one of these ops")
    args = ap.parse_args()
    only = set(args.ops.split(",")) if args.ops else None
    os.makedirs(args.out, exist_ok=True)
    warnings.simplefilter("ignore")
    kept, excluded = 0, []
    for case in collect_testcases(None):
        if case.kind != "node" or not case.data_sets:
            continue
        if only is not None and not only & {n.op_type for n in case.model.graph.node}:
            continue
        if reason := type_reason(case):
            excluded.append((case.name, "type", reason))
        elif reason := scope_reason(case):
            excluded.append((case.name, "scope", reason))
        else:
            write(case, args.out)
            kept += 1
    with open(os.path.join(args.out, "excluded.txt"), "w") as f:
        for row in sorted(excluded):
            f.write("\t".join(row) + "\n")
    by_kind = {k: sum(1 for e in excluded if e[1] == k) for k in ("type", "scope")}
    print(f"generated {kept} ONNX node tests (onnx {onnx.__version__}) into {args.out}; excluded "
          f"{by_kind['type']} xdiff cannot express and {by_kind['scope']} of ops not built (see excluded.txt)")


if __name__ == "__main__":
    main()
