"""The `onnx-ref` lane of xdiff: ONNX's own Python reference
(`onnx.reference.ReferenceEvaluator`) run node by node on a tapped model.

Usage: python onnx_ref_lane.py DIR

DIR holds `model.onnx` (every node output is a graph output; external data
beside it) and `inputs/*.pb` (one TensorProto per graph input, named). The
script writes `outputs/<n>.pb` (one TensorProto per graph output it computed,
named) and `failures.json` ({value name: why}) for the values of nodes that
raised: the evaluation goes on, and nodes fed by a failed node are left out
(xdiff reports them skipped). It exits non-zero only when the model cannot be
loaded at all. xdiff embeds this file and writes it next to the model.
"""

import glob
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator
from onnx.reference import op_run


class NotLoaded(Exception):
    """A node's implementation could not be loaded (the message says why)."""


def one_line(e):
    text = str(e) if isinstance(e, NotLoaded) else f"{type(e).__name__}: {e}"
    text = " ".join(text.split()).split(" Available implementations:")[0]
    return text if len(text) <= 400 else text[:397] + "..."


class Raising:
    """Stands for a node whose implementation could not be loaded."""

    def __init__(self, why):
        self.why = why

    def run(self, *args, **kwargs):
        raise NotLoaded(self.why)

    def need_context(self):
        return False

    has_linked_attribute = False


class NodeByNode(ReferenceEvaluator):
    """A ReferenceEvaluator whose missing implementations fail their node
    only, when run, instead of the whole model when loaded."""

    def _load_impl(self, node, input_types=None):
        try:
            cl = super()._load_impl(node, input_types)
        except op_run.RuntimeContextError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure is the node's
            why = one_line(e)
            return lambda onnx_node, run_params: Raising(why)

        def build(onnx_node, run_params):
            try:
                return cl(onnx_node, run_params)
            except Exception as e:  # noqa: BLE001
                return Raising(one_line(e))

        return build


def label(node):
    return f"{node.op_type} `{node.name}`" if node.name else node.op_type


def evaluate(ev, feeds):
    """Runs every node in order; returns (values, failures)."""
    results = {"": None}
    results.update(ev.rt_inits_)
    results.update(feeds)
    failures = {}
    for proto, node in zip(ev.nodes_, ev.rt_nodes_):
        if any(i not in results for i in proto.input):
            continue  # fed by a failed node: xdiff reports it skipped
        inputs = [results[i] for i in proto.input]
        try:
            if node.need_context():
                outputs = node.run(*inputs, context=results)
            else:
                outputs = node.run(*inputs)
        except Exception as e:  # noqa: BLE001
            why = f"ONNX reference: {label(proto)}: {one_line(e)}"
            for o in proto.output:
                if o:
                    failures[o] = why
            continue
        for name, value in zip(proto.output, outputs):
            if name:
                results[name] = value
    return results, failures


def main(work):
    model = onnx.load(os.path.join(work, "model.onnx"))
    ev = NodeByNode(model)
    feeds = {}
    for path in sorted(glob.glob(os.path.join(work, "inputs", "*.pb"))):
        t = onnx.TensorProto()
        with open(path, "rb") as f:
            t.ParseFromString(f.read())
        feeds[t.name] = numpy_helper.to_array(t)
    results, failures = evaluate(ev, feeds)
    out = os.path.join(work, "outputs")
    os.makedirs(out, exist_ok=True)
    for n, o in enumerate(model.graph.output):
        if o.name not in results or o.name in failures:
            continue
        value = results[o.name]
        try:
            proto = numpy_helper.from_array(np.asarray(value), o.name)
        except Exception as e:  # noqa: BLE001
            failures[o.name] = f"ONNX reference: value `{o.name}`: {one_line(e)}"
            continue
        with open(os.path.join(out, f"{n}.pb"), "wb") as f:
            f.write(proto.SerializeToString())
    with open(os.path.join(work, "failures.json"), "w") as f:
        json.dump(failures, f)


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--version":
        print(onnx.__version__)
    else:
        main(sys.argv[1])
