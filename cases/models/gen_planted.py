#!/usr/bin/env python3
"""Writes cases/models/planted.onnx: a small hybrid conv/attention network
in which cases/planted.toml plants one silent mistake per lane.

    image [1,3,9,9]
      conv   Conv 3x3 3->8 pad 1                                   [1,8,9,9]
      bn     BatchNormalization (random running stats, var 0.002..0.02,
             gamma 0.02..0.05: small activations, so a changed epsilon
             shows in BN and, downstream, in LayerNorm)
      pool   MaxPool 2x2/2 ceil_mode=0 on the odd size 9 (ceil_mode=1
             would give 5x5)                                       [1,8,4,4]
      avg    AveragePool 3x3/1 pad 1, count_include_pad=0          [1,8,4,4]
      up     Resize x2 bilinear, half_pixel                        [1,8,8,8]
      tokens Reshape/Transpose to 64 tokens of 8 channels          [1,64,8]
      ln     LayerNormalization over the 8 channels (eps 1e-5)
      fc     Linear 8->16 (MatMul + Add)
      gelu   Gelu (erf)                                            [1,64,16]
      scores MatMul with its own transpose, scaled                 [1,64,64]
      attn   Softmax over the last axis
      out    MatMul attn x gelu                                    [1,64,16]

Exported from torch (random initialisation, torch.manual_seed(11)) with
the legacy exporter (`dynamo=False`, the runtimes' venv has no
onnxscript) at opset 20, so Gelu stays one `Gelu` node, with
`training=PRESERVE` and `do_constant_folding=False` so BatchNormalization
is kept (not folded into the Conv), as ci/export_models.py does for
resnet18_bn. The nodes get stable names (`conv`, `bn`, `pool`, `avg`,
`up`, `ln`, `gelu`, `attn`, ...) so the case can patch them by name.

Run with the runtimes' venv (it has torch and onnx):
    ~/.cache/xdiff/runtimes-ort1.31.1-torch2.11.0-onnx1.19.1-v1/venv/bin/python cases/models/gen_planted.py
"""
import os

import onnx
import torch
import torch.nn.functional as F
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "planted.onnx")

# Exported op type -> the name the case patches (each op occurs once,
# except MatMul/Add/Transpose/Reshape and the like, which keep numbered names).
NAMES = {
    "Conv": "conv",
    "BatchNormalization": "bn",
    "MaxPool": "pool",
    "AveragePool": "avg",
    "Resize": "up",
    "LayerNormalization": "ln",
    "Gelu": "gelu",
    "Softmax": "attn",
}


class Planted(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=False)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.ln = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 16)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.2, 0.2)
            self.bn.running_var.uniform_(0.002, 0.02)
            self.bn.weight.uniform_(0.02, 0.05)
            self.bn.bias.uniform_(-0.02, 0.02)
            self.ln.weight.uniform_(0.5, 1.5)
            self.ln.bias.uniform_(-0.1, 0.1)

    def forward(self, x):
        x = self.avg(self.pool(self.bn(self.conv(x))))
        x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        # -1, not h * w: the reshape then also takes the 5x5 a flipped
        # ceil_mode gives (so that lane runs on and its nodes are compared).
        t = x.reshape(x.shape[0], x.shape[1], -1).transpose(1, 2)
        g = F.gelu(self.fc(self.ln(t)))
        attn = torch.softmax(g @ g.transpose(1, 2) * 0.25, dim=-1)
        return attn @ g


def name_nodes(model):
    """Gives each node its case name (op name for the patched ops, else
    `<op>_<k>`), so the case file does not depend on exporter numbering."""
    seen = {}
    for node in model.graph.node:
        k = seen.get(node.op_type, 0)
        seen[node.op_type] = k + 1
        base = NAMES.get(node.op_type, node.op_type.lower())
        node.name = base if k == 0 and node.op_type in NAMES else f"{base}_{k}"


def main():
    torch.manual_seed(11)
    model = Planted().eval()
    x = torch.randn(1, 3, 9, 9)
    torch.onnx.export(
        model, (x,), OUT, input_names=["image"], output_names=["out"],
        dynamo=False, opset_version=20, training=torch.onnx.TrainingMode.PRESERVE,
        do_constant_folding=False,
    )
    m = onnx.load(OUT)
    name_nodes(m)
    onnx.checker.check_model(m)
    onnx.save(m, OUT)
    print(OUT, os.path.getsize(OUT), "bytes:", [n.name for n in m.graph.node])


if __name__ == "__main__":
    main()
