"""Writes resnet18_bn at opset 13 for the `onnx-ref` BatchNormalization finding
(docs/findings.md, "The two references"): the corpus's resnet18_bn
(ci/models, legacy exporter, opset 17, momentum=0.9 as torch exports it)
declared opset 13, so its BatchNormalization nodes are BatchNormalization-9
(opsets 9-13) with the attributes an opset-13 export writes (epsilon,
momentum; `training_mode` is opset 14's and is dropped, it was 0). Its
other ops (Conv, Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm) mean
the same at 13. onnx.version_converter has no 15->14 BatchNormalization
adapter, hence the edit by hand. Usage: python gen_bn_opset13.py MODELS_DIR (the ci/models
cache folder); writes MODELS_DIR/resnet18_bn_opset13/ (a backend-test
directory with the same input)."""

import os
import shutil
import sys

import onnx

models = sys.argv[1]
src = os.path.join(models, "resnet18_bn")
dst = os.path.join(models, "resnet18_bn_opset13")
model = onnx.load(os.path.join(src, "model.onnx"))
for opset in model.opset_import:
    if opset.domain in ("", "ai.onnx"):
        opset.version = 13
for node in model.graph.node:
    if node.op_type == "BatchNormalization":
        kept = [a for a in node.attribute if a.name != "training_mode"]
        del node.attribute[:]
        node.attribute.extend(kept)
onnx.checker.check_model(model)
os.makedirs(dst, exist_ok=True)
onnx.save(model, os.path.join(dst, "model.onnx"))
shutil.copytree(
    os.path.join(src, "test_data_set_0"),
    os.path.join(dst, "test_data_set_0"),
    dirs_exist_ok=True,
)
print(dst)
