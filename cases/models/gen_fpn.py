#!/usr/bin/env python3
"""Writes cases/models/fpn.onnx: a small FPN / segmentation-head-shaped model.

    image [N,3,32,32]
      conv1 3x3 3->8 + relu ─ conv2 3x3 8->8 + relu ─────────────── skip  [N,8,32,32]
      pool  MaxPool 2x2/2                                                 [N,8,16,16]
      conv3 3x3 8->16 + relu ────────────────────────────────────── c3    [N,16,16,16]
      conv4 3x3/2 16->16 + relu (stride-2 downsampling)              c4    [N,16,8,8]
      lat4  1x1 16->8 ─ up4 Resize x2 ─┐
      lat3  1x1 16->8 ─────────────────┴ add3 ─ up3 Resize x2 ─┐
      skip ────────────────────────────────────────────────────┴ add2      [N,8,32,32]
      smooth 3x3 8->8 + relu ─ head 1x1 8->4                       logits [N,4,32,32]

Two files, the same weights, differing only in the two Resize nodes
(scales [1,1,2,2] in both):

  fpn.onnx             the ONNX defaults: mode=nearest,
                       coordinate_transformation_mode=half_pixel,
                       nearest_mode=round_prefer_floor
  fpn_bilinear_ac.onnx mode=linear, coordinate_transformation_mode=align_corners:
                       what a PyTorch segmentation head written with
                       F.interpolate(..., mode="bilinear", align_corners=True)
                       exports to (DeepLab / PSPNet-style code)

Opset 19, symbolic batch dimension `N`, weights seeded (numpy
default_rng(2024)), He-initialised so activations stay O(1).

Run with the runtimes' venv (it has onnx and numpy):
    ~/.cache/xdiff/runtimes-ort1.31.1-torch2.11.0-onnx1.19.1-v1/venv/bin/python cases/models/gen_fpn.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
VARIANTS = {
    "fpn.onnx": {"mode": "nearest"},
    "fpn_bilinear_ac.onnx": {"mode": "linear", "coordinate_transformation_mode": "align_corners"},
}


def weight(name, shape):
    fan_in = int(np.prod(shape[1:]))
    w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape).astype(np.float32)
    inits.append(numpy_helper.from_array(w, name))
    return name


def bias(name, n):
    b = rng.uniform(-0.1, 0.1, size=(n,)).astype(np.float32)
    inits.append(numpy_helper.from_array(b, name))
    return name


def conv(name, x, cin, cout, k, stride=1, relu=True):
    w = weight(f"{name}.weight", (cout, cin, k, k))
    b = bias(f"{name}.bias", cout)
    p = k // 2
    y = f"{name}_out"
    nodes.append(
        helper.make_node(
            "Conv", [x, w, b], [y], name=name,
            kernel_shape=[k, k], pads=[p, p, p, p], strides=[stride, stride],
        )
    )
    if relu:
        r = f"{name}_relu"
        nodes.append(helper.make_node("Relu", [y], [r], name=f"{name}_relu"))
        return r
    return y


def resize(name, x):
    y = f"{name}_out"
    nodes.append(helper.make_node("Resize", [x, "", "up_scales"], [y], name=name, **RESIZE))
    return y


def build(resize_attrs):
    global rng, inits, nodes, RESIZE
    rng = np.random.default_rng(2024)
    inits, nodes, RESIZE = [], [], resize_attrs

    inits.append(numpy_helper.from_array(np.array([1.0, 1.0, 2.0, 2.0], np.float32), "up_scales"))

    x = conv("conv1", "image", 3, 8, 3)
    skip = conv("conv2", x, 8, 8, 3)
    nodes.append(helper.make_node("MaxPool", [skip], ["pool_out"], name="pool", kernel_shape=[2, 2], strides=[2, 2]))
    c3 = conv("conv3", "pool_out", 8, 16, 3)
    c4 = conv("conv4", c3, 16, 16, 3, stride=2)
    l4 = conv("lat4", c4, 16, 8, 1, relu=False)
    u4 = resize("up4", l4)
    l3 = conv("lat3", c3, 16, 8, 1, relu=False)
    nodes.append(helper.make_node("Add", [u4, l3], ["add3_out"], name="add3"))
    u3 = resize("up3", "add3_out")
    nodes.append(helper.make_node("Add", [u3, skip], ["add2_out"], name="add2"))
    s = conv("smooth", "add2_out", 8, 8, 3)
    nodes.append(
        helper.make_node(
            "Conv", [s, weight("head.weight", (4, 8, 1, 1)), bias("head.bias", 4)], ["logits"],
            name="head", kernel_shape=[1, 1],
        )
    )

    graph = helper.make_graph(
        nodes,
        "fpn",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4, 32, 32])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], producer_name="xdiff gen_fpn.py")
    model.ir_version = 9
    onnx.checker.check_model(model, full_check=True)
    return model, len(nodes)


for fname, attrs in VARIANTS.items():
    model, count = build(attrs)
    out = os.path.join(HERE, fname)
    onnx.save(model, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes, {count} nodes)")
