#!/usr/bin/env python3
"""Writes cases/models/torch_external/model.onnx + model.onnx.data: a tiny
model exported with torch 2.11's *default* exporter (`torch.onnx.export`,
dynamo), which keeps the weights in the side file `model.onnx.data` (ONNX
external data: `location`/`offset`/`length` per initializer).

    ids [1,6] int64 ─ Embedding(16, 8) (Gather) ─ Linear 8->32 ─ ReLU ─ Linear 32->4 ─ logits [1,6,4]

The embedding makes `ids` a Gather index input: xdiff samples it within
[0, 16) by default (docs/cases.md). Weights seeded (torch.manual_seed(2026)).

Run with the models' venv (the dynamo exporter needs onnxscript):
    ~/.cache/xdiff/models-*/venv/bin/python cases/models/gen_torch_external.py
"""
import os

import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_external")


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(16, 8)
        self.fc1 = torch.nn.Linear(8, 32)
        self.fc2 = torch.nn.Linear(32, 4)

    def forward(self, ids):
        return self.fc2(torch.relu(self.fc1(self.emb(ids))))


def main():
    torch.manual_seed(2026)
    model = Tiny().eval()
    ids = torch.zeros(1, 6, dtype=torch.int64)
    os.makedirs(HERE, exist_ok=True)
    path = os.path.join(HERE, "model.onnx")
    # The default exporter, as a user calls it: no external_data / dynamo flags.
    torch.onnx.export(model, (ids,), path, input_names=["ids"], output_names=["logits"])
    for name in sorted(os.listdir(HERE)):
        print(name, os.path.getsize(os.path.join(HERE, name)))


if __name__ == "__main__":
    main()
