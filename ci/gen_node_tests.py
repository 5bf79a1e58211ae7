#!/usr/bin/env python3
"""Generate the ONNX node conformance tests for xdiff's op set.

Uses the `onnx` package's own test generators
(`onnx.backend.test.case.node.collect_testcases`) and writes each test whose
ops are all in xdiff's op set as an ONNX backend-test directory:
`<out>/<test>/model.onnx` + `test_data_set_N/{input,output}_K.pb`.

Tests that xdiff cannot express are left out with the reason printed
(`excluded.txt` in the output directory lists them), e.g. float8/int4 casts
(no such dtype) and sequence-typed inputs.
"""
import os
import sys
import warnings

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

OPS = set(
    "Add Sub Mul Div Pow Sqrt Exp Log Neg Abs Erf Relu LeakyRelu Sigmoid HardSigmoid HardSwish "
    "Tanh Gelu Clip Conv ConvTranspose MaxPool AveragePool GlobalAveragePool BatchNormalization "
    "LayerNormalization Gemm MatMul Softmax Dropout Resize Upsample Pad Concat Reshape Flatten "
    "Transpose Slice Split Squeeze Unsqueeze Identity Constant Shape Gather Cast ReduceMean".split()
)
# Issue 12's ops join here, one line per family.
OPS |= {"ScatterND", "GatherND"}
OPS |= set("ConstantOfShape Range Expand Where Equal Less LessOrEqual Greater GreaterOrEqual Not And Or Xor "
           "Min Max Sum Mean Floor Ceil Round Sign Reciprocal Mod Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh "
           "Acosh Atanh Softplus Softsign Elu Selu Celu PRelu ThresholdedRelu Mish IsNaN IsInf Size EyeLike "
           "CastLike Shrink BitShift".split())
OPS |= set("ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare ArgMax ArgMin TopK CumSum Tile GatherElements Trilu LogSoftmax Hardmax GlobalMaxPool SpaceToDepth InstanceNormalization LpNormalization".split())
SUPPORTED_TYPES = {
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
    onnx.TensorProto.INT8, onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64,
    onnx.TensorProto.UINT8, onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64,
    onnx.TensorProto.BOOL,
}


def why_excluded(case):
    g = case.model.graph
    ops = {n.op_type for n in g.node}
    if not ops <= OPS:
        return None  # not ours at all
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
            if n.op_type == "Cast" and a.name == "to" and a.i not in SUPPORTED_TYPES:
                return f"Cast to {onnx.TensorProto.DataType.Name(a.i)} (no such dtype in xdiff)"
    return ""


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
        for i, y in enumerate(outputs):
            t = to_proto(y, case.model.graph.output[i].name)
            with open(os.path.join(sd, f"output_{i}.pb"), "wb") as f:
                f.write(t.SerializeToString())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    warnings.simplefilter("ignore")
    kept, excluded = 0, []
    for case in collect_testcases(None):
        if case.kind != "node" or not case.data_sets:
            continue
        reason = why_excluded(case)
        if reason is None:
            continue
        if reason:
            excluded.append((case.name, reason))
            continue
        write(case, out)
        kept += 1
    with open(os.path.join(out, "excluded.txt"), "w") as f:
        for name, reason in sorted(excluded):
            f.write(f"{name}\t{reason}\n")
    print(f"generated {kept} ONNX node tests (onnx {onnx.__version__}) into {out}; {len(excluded)} excluded (see excluded.txt)")


if __name__ == "__main__":
    main()
