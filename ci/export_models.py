#!/usr/bin/env python3
"""Exports real networks (torchvision, and Hugging Face transformers built
from small configs), randomly initialised, as ONNX
backend-test directories xdiff can run, and summarises xdiff's JSON report on
them: the "real models" half of issue 11 (driven by ci/models).

Each model is built with ``weights=None`` (nothing is downloaded), seeded with
``torch.manual_seed``, put in eval mode and exported with ``torch.onnx.export``
(torch's default exporter; ``resnet18_bn`` with the legacy TorchScript one, to
keep its BatchNormalization nodes). Each model is saved as the default
exporter writes it, the weights in a side file ``model.onnx.data`` (without
the exporter's stack traces), and checked with ``onnx.checker``. Beside
it goes ``test_data_set_0/input_0.pb``, one seeded input tensor, and no
expected outputs (xdiff's float64 reference is the judge).

    export_models.py names
        the model names, one per line
    export_models.py export OUT_DIR NAME...
        writes OUT_DIR/<name>/{model.onnx, test_data_set_0/input_0.pb,
        summary.txt, magnitudes.txt}; summary.txt (also printed) is one line:
        name, nodes, opset, op histogram, largest |output| of torch's own
        run, how many nodes have every |value| below the default float32
        atol (vacuous comparisons), path; magnitudes.txt is max |value| per
        node (ONNX Runtime, optimisations off)
    export_models.py summarize REPORT.json TITLE XDIFF_EXIT
        prints the per-lane verdict counts, wall time, worst error and first
        introduced divergence of one `xdiff run --format json` report
    export_models.py table NAME=REPORT.json...
        the docs/models.md corpus table: one Markdown row per model from a
        default-tolerance `xdiff run --format json` report (nodes, result,
        per lane: compared, worst undeclared local error in units of its
        bound, wall ms)
    export_models.py local MODEL_DIR
        ONNX Runtime's *local* error on Add and BatchNormalization: each node
        re-evaluated in float64 on ORT's own float32 inputs, in units of
        u·magnitude (u = 2^-24; magnitude Σ|terms|): float32 rounding stays
        within a few units, a real departure does not

Bad arguments are one line on stderr and exit 2.
"""

import collections
import dataclasses
import json
import pathlib
import shutil
import sys
import tempfile

SEED = 11


@dataclasses.dataclass(frozen=True)
class Spec:
    """How one model is built and exported."""

    # A torchvision attribute path ("models.resnet18"), or "local:<fn>" for
    # a builder function of this script (small configurations of an
    # architecture, Hugging Face models built from a config: nothing is
    # downloaded either way).
    builder: str
    kwargs: dict
    shape: tuple = (1, 3, 224, 224)
    # "default": torch's default (dynamo) exporter, opset as it chooses; its
    # optimiser folds BatchNorm into Conv. "torchscript": the legacy
    # exporter at opset 17 with TrainingMode.PRESERVE, which keeps
    # BatchNormalization nodes (and GlobalAveragePool, Flatten).
    exporter: str = "default"
    # Seeded random BatchNorm statistics and affine parameters instead of
    # the init's identity (mean 0, var 1, weight 1, bias 0).
    random_bn: bool = False


# 224x224 keeps the float64 reference at about a second per model; the
# segmentation head's bilinear Resize (x8 to the input size) has a 28x28 source.
# The transformers (ViT, Swin, ConvNeXt, BERT, GPT-2, T5, Whisper) are small
# configurations of the real architectures (2 layers, width 32-64), so the
# export stays a few hundred KB and the reference a second or two: every op
# and every structural pattern of the full model, none of its size.
MODELS = {
    "resnet18": Spec("models.resnet18", {"weights": None}),
    "mobilenet_v3_small": Spec("models.mobilenet_v3_small", {"weights": None}),
    "lraspp_mobilenet_v3_large": Spec(
        "models.segmentation.lraspp_mobilenet_v3_large",
        {"weights": None, "weights_backbone": None},
    ),
    "resnet18_bn": Spec(
        "models.resnet18", {"weights": None}, exporter="torchscript", random_bn=True
    ),
    "efficientnet_b0": Spec("models.efficientnet_b0", {"weights": None}, shape=(1, 3, 128, 128)),
    "deeplabv3_mobilenet_v3_large": Spec(
        "models.segmentation.deeplabv3_mobilenet_v3_large",
        {"weights": None, "weights_backbone": None},
        shape=(1, 3, 128, 128),
    ),
    "fasterrcnn_backbone_fpn": Spec("local:fasterrcnn_backbone", {}, shape=(1, 3, 320, 320)),
    # The full architectures (every stage, full width) at a small image.
    "convnext_tiny": Spec("models.convnext_tiny", {"weights": None}, shape=(1, 3, 64, 64)),
    "vit_b_16": Spec("local:vit_b_16", {}, shape=(1, 3, 64, 64)),
    "swin_t": Spec("models.swin_t", {"weights": None}, shape=(1, 3, 64, 64)),
    "bert_tiny": Spec("local:bert", {}, shape=(1, 16)),
    "gpt2_tiny": Spec("local:gpt2", {}, shape=(1, 16)),
    "t5_encoder_tiny": Spec("local:t5_encoder", {}, shape=(1, 16)),
    "whisper_encoder_tiny": Spec("local:whisper_encoder", {}, shape=(1, 16, 64)),
}

# Token ids for the text models: within this vocabulary.
VOCAB = 100


class Outputs:
    """Wraps a model whose forward returns a dict, a ModelOutput or a tuple
    so that the export sees a tuple of tensors (stable names, no None)."""

    def __new__(cls, inner, pick):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = inner

            def forward(self, *xs):
                return pick(self.inner(*xs))

        return Wrapped()


def fasterrcnn_backbone():
    """fasterrcnn_mobilenet_v3_large_320_fpn's backbone + FPN (the detector's
    feature pyramid; its RPN and box heads are convention ops, issue 13)."""
    from torchvision import models

    det = models.detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None
    )
    return Outputs(det.backbone, lambda d: tuple(d.values()))


def vit_b_16():
    """torchvision's ViT-B/16 at a 64x64 image. Its classifier head is
    zero-initialised (all outputs 0: a vacuous comparison), so the head gets
    the same small random init as the other linear layers."""
    import torch
    from torchvision import models

    m = models.vit_b_16(weights=None, image_size=64)
    torch.nn.init.normal_(m.heads.head.weight, std=0.02)
    return m


def bert():
    """A BERT-tiny (transformers, built from a config): token ids -> hidden states."""
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    return Outputs(BertModel(cfg), lambda o: (o.last_hidden_state, o.pooler_output))


def gpt2():
    """A GPT-2-tiny (transformers): causal self-attention over token ids."""
    from transformers import GPT2Config, GPT2Model

    cfg = GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                     use_cache=False)
    return Outputs(GPT2Model(cfg), lambda o: (o.last_hidden_state,))


def t5_encoder():
    """A T5 encoder (transformers): relative position buckets, RMS-style T5LayerNorm."""
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(vocab_size=VOCAB, d_model=32, d_kv=16, d_ff=64, num_layers=2,
                   num_heads=2, use_cache=False)
    return Outputs(T5EncoderModel(cfg), lambda o: (o.last_hidden_state,))


def whisper_encoder():
    """Whisper's audio encoder (transformers): two Conv1d over log-mel frames, then attention."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    cfg = WhisperConfig(d_model=32, encoder_layers=2, encoder_attention_heads=2,
                        encoder_ffn_dim=64, num_mel_bins=16, max_source_positions=32)
    return Outputs(WhisperEncoder(cfg), lambda o: (o.last_hidden_state,))


LANES = ("ort", "tch", "candle")

# The default float32 atol of a case file: a node whose every value is below
# it passes whatever the lane computes (a vacuous comparison).
VACUOUS = 1e-5


class Usage(Exception):
    """Bad command-line input: reported as one line, exit 2."""


# ---------------------------------------------------------------- export


def build(name):
    """The randomly initialised, seeded, eval-mode model and its seeded
    input: token ids in [0, VOCAB) for the text models, N(0, 1) otherwise."""
    import torch
    import torchvision

    spec = MODELS[name]
    if spec.builder.startswith("local:"):
        builder = globals()[spec.builder[len("local:"):]]
    else:
        builder = torchvision
        for part in spec.builder.split("."):
            builder = getattr(builder, part)
    torch.manual_seed(SEED)
    model = builder(**spec.kwargs).eval()
    if spec.random_bn:
        randomise_batchnorm(model)
    if len(spec.shape) == 2:
        return model, torch.randint(0, VOCAB, spec.shape, dtype=torch.int64)
    return model, torch.randn(*spec.shape)


def randomise_batchnorm(model):
    """Gives every BatchNorm2d seeded statistics and affine parameters in the
    ranges a trained network has, so BatchNormalization is not an identity."""
    import torch

    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.5)
                m.running_var.uniform_(0.2, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.2)


def to_onnx(name, model, x, path):
    """torch.onnx.export with the model's exporter (see Spec.exporter)."""
    import torch

    with torch.no_grad():
        if MODELS[name].exporter == "torchscript":
            torch.onnx.export(
                model, (x,), str(path), input_names=["input"], dynamo=False,
                opset_version=17, training=torch.onnx.TrainingMode.PRESERVE,
                do_constant_folding=False,
            )
        else:
            torch.onnx.export(model, (x,), str(path), input_names=["input"])


def largest_output(model, x):
    """max |y| over the model's outputs (a dict for segmentation models, a tuple for wrapped ones)."""
    import torch

    with torch.no_grad():
        y = model(x)
    ys = y.values() if isinstance(y, dict) else y if isinstance(y, tuple) else [y]
    return max(float(t.abs().max()) for t in ys)


def export_one(name, out_root):
    """Exports MODELS[name] into out_root/name; returns its one-line summary."""
    import onnx
    import torch
    from onnx import numpy_helper

    model, x = build(name)
    case_dir = out_root / name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    (case_dir / "test_data_set_0").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = pathlib.Path(tmp) / "model.onnx"
        to_onnx(name, model, x, raw)
        proto = onnx.load(str(raw))  # pulls model.onnx.data back in
    strip_stack_traces(proto)
    # onnx.save below moves the weights out of `proto`; ONNX Runtime's
    # magnitude pass (from bytes) needs them in.
    full = onnx.ModelProto()
    full.CopyFrom(proto)
    path = case_dir / "model.onnx"
    # As torch's default exporter writes it: the weights in model.onnx.data
    # beside model.onnx (xdiff reads external data; issue 12).
    onnx.save(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="model.onnx.data", size_threshold=1024)
    onnx.checker.check_model(str(path), full_check=True)
    tensor = numpy_helper.from_array(x.numpy(), full.graph.input[0].name)
    (case_dir / "test_data_set_0" / "input_0.pb").write_bytes(tensor.SerializeToString())
    mags = node_magnitudes(full, x)
    (case_dir / "magnitudes.txt").write_text(
        "".join(f"{n.name} {n.op_type} {m:.3g}\n" for n, m in mags)
    )
    line = describe(name, full, largest_output(model, x), mags, path)
    (case_dir / "summary.txt").write_text(line + "\n")
    return line


def strip_stack_traces(proto):
    """Drops the exporter's per-node Python stack traces: they hold this
    machine's install paths, and without them the same seed gives the same
    bytes wherever it runs."""
    for node in proto.graph.node:
        keep = [p for p in node.metadata_props if p.key != "pkg.torch.onnx.stack_trace"]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)


def ort_values(proto, x):
    """Every value of the graph (inputs, initializers, node outputs) as numpy
    arrays, node outputs from ONNX Runtime with every intermediate value
    exposed and graph optimisations off; `x` is the input (numpy)."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(proto)
    typed = {v.name: v for v in model.graph.value_info}
    shown = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for out in node.output:
            if out in typed and out not in shown:
                model.graph.output.append(typed[out])
                shown.add(out)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    first = sess.get_inputs()[0].name
    values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {first: x})))
    values[first] = x
    values.update({i.name: numpy_helper.to_array(i) for i in proto.graph.initializer})
    return values


def node_magnitudes(proto, x):
    """(node, max |value| over its outputs) for every node (ONNX Runtime)."""
    values = ort_values(proto, x.numpy())
    return [
        (node, max(float(abs(values[o]).max()) for o in node.output if o in values))
        for node in proto.graph.node
    ]


def describe(name, proto, y_max, mags, path):
    """One line: name, nodes, opset, op histogram, max |output|, nodes whose
    every value is below the default float32 atol, path."""
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    hist = " ".join(f"{op}:{k}" for op, k in sorted(ops.items()))
    tiny = sum(1 for _, m in mags if m < VACUOUS)
    return (
        f"{name}: {len(proto.graph.node)} nodes, opset {opset}, ops {hist}, "
        f"max|output| {y_max:.3g}, {tiny} nodes with every |value| < {VACUOUS:g}, {path}"
    )


def cmd_export(args):
    if len(args) < 2:
        raise Usage("export needs OUT_DIR and at least one model name")
    out_root, names = pathlib.Path(args[0]), args[1:]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise Usage(f"unknown model {unknown[0]} (known: {', '.join(MODELS)})")
    import torch

    torch.use_deterministic_algorithms(True)
    for name in names:
        print(export_one(name, out_root), flush=True)


# ---------------------------------------------------------------- summarize


def lane_results(case, lane):
    """(node, LaneResult) for every node of the case, in graph order."""
    return [(n, n["lanes"][lane]) for n in case["nodes"] if lane in n["lanes"]]


def metrics(result):
    """The `metrics` comparisons of one LaneResult's outputs."""
    outs = result.get("outputs", {}).values()
    return [o["comparison"] for o in outs if o.get("comparison", {}).get("kind") == "metrics"]


def worst(rows, key):
    """(value, node) of the largest metric `key` over a lane's nodes, or None."""
    best = None
    for node, result in rows:
        for m in metrics(result):
            v = m.get(key)
            if v is not None and (best is None or v > best[0]):
                best = (v, node)
    return best


def introduced(rows):
    """The lane's first introduced divergence and the ops that introduce
    divergences, as text."""
    nodes = [(n, r) for n, r in rows if r["verdict"] == "diverged" and r.get("origin") == "introduced"]
    if not nodes:
        return "none"
    node, result = nodes[0]
    ms = metrics(result)
    abs_ = max((m["max_abs"] or 0.0 for m in ms), default=float("nan"))
    frac = max((m["mismatch_fraction"] for m in ms), default=float("nan"))
    ops = collections.Counter(n["op"] for n, _ in nodes)
    by_op = ", ".join(f"{op} {k}" for op, k in sorted(ops.items()))
    return (
        f"#{node['index']} {node['name']} ({node['op']}) max_abs {abs_:.2g}, "
        f"{frac:.1%} of elements; introduced by op: {by_op}"
    )


def lane_line(case, lane, info):
    rows = lane_results(case, lane)
    counts = collections.Counter(r["verdict"] for _, r in rows)
    origins = collections.Counter(r.get("origin") for _, r in rows if r["verdict"] == "diverged")
    w_ulp, w_abs = worst(rows, "max_ulp"), worst(rows, "max_abs")
    fmt = lambda w, f: "-" if w is None else f"{f(w[0])} at {w[1]['name']} ({w[1]['op']})"  # noqa: E731
    return (
        f"  {lane:<7} {info['wall_ms']:7.0f} ms  compared {counts['ok'] + counts['diverged']}/{len(rows)}"
        f"  ok {counts['ok']}  diverged {counts['diverged']} "
        f"(introduced {origins['introduced']}, inherited {origins['inherited']})"
        f"  unsupported {counts['unsupported']}  skipped {counts['skipped']}  error {counts['error']}\n"
        f"          worst max_abs {fmt(w_abs, lambda v: f'{v:.2g}')};"
        f" worst max_ulp {fmt(w_ulp, str)}\n"
        f"          first introduced: {introduced(rows)}"
    )


# ---------------------------------------------------------------- local


def local_add(node, ins):
    """float64 Add of the lane's inputs, and Σ|terms|."""
    a, b = ins
    return a + b, abs(a) + abs(b)


def local_batchnorm(node, ins):
    """float64 BatchNormalization (inference) of the lane's inputs, and the
    magnitude |s·x/σ| + |s·μ/σ| + |b| its rounding scales with."""
    import numpy as np

    x, scale, bias, mean, var = ins
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    k = (scale / np.sqrt(var + eps)).reshape(shape)
    b, mu = bias.reshape(shape), mean.reshape(shape)
    return (x - mu) * k + b, abs(x * k) + abs(mu * k) + abs(b)


LOCAL_OPS = {"Add": local_add, "BatchNormalization": local_batchnorm}


def cmd_local(args):
    """ONNX Runtime's local error on Add and BatchNormalization: each node
    re-evaluated in float64 on ORT's own float32 inputs, the error in units
    of u·magnitude (u = 2^-24)."""
    if len(args) != 1:
        raise Usage("local needs a model directory")
    import numpy as np
    import onnx
    from onnx import numpy_helper

    d = pathlib.Path(args[0])
    try:
        proto = onnx.load(str(d / "model.onnx"))
        x = numpy_helper.to_array(onnx.load_tensor(str(d / "test_data_set_0" / "input_0.pb")))
    except OSError as e:
        raise Usage(f"{d}: not an exported model directory ({e})") from e
    values = ort_values(proto, x)
    worst = {}
    for node in proto.graph.node:
        if node.op_type not in LOCAL_OPS:
            continue
        ins = [values[i].astype(np.float64) for i in node.input]
        want, mag = LOCAL_OPS[node.op_type](node, ins)
        err = abs(values[node.output[0]].astype(np.float64) - want)
        ratio = float((err / np.maximum(mag * 2.0**-24, 1e-45)).max())
        prev = worst.get(node.op_type, (0.0, 0.0, ""))
        worst[node.op_type] = (max(prev[0], ratio), max(prev[1], float(err.max())),
                               node.name if ratio >= prev[0] else prev[2])
    for op, (ratio, abs_, name) in sorted(worst.items()):
        print(f"ort {op}: local error up to {ratio:.2f} u·magnitude (at {name}), max_abs {abs_:.2g}")


def cmd_summarize(args):
    if len(args) != 3:
        raise Usage("summarize needs REPORT.json TITLE XDIFF_EXIT")
    path, title, rc = args
    try:
        report = json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError) as e:
        raise Usage(f"{path}: not an xdiff JSON report ({e})") from e
    for case in report["cases"]:
        infos = {lane["name"]: lane for lane in case["lanes"]}
        verdict = "passed" if case["passed"] else f"FAILED ({len(case['failures'])} failures)"
        print(f"{title}: xdiff exit {rc}, {verdict}, {len(case['nodes'])} nodes,"
              f" reference {infos['reference']['wall_ms']:.0f} ms")
        for lane in LANES:
            if lane in infos:
                print(lane_line(case, lane, infos[lane]))
                for note in infos[lane].get("notes", []):
                    print(f"          note: {note}")


def worst_local(case, lane):
    """The largest undeclared local error of `lane`, in units of its bound,
    and the op it is on: `0.50× (Add)`."""
    worst, op = 0.0, None
    for node in case["nodes"]:
        r = node["lanes"].get(lane)
        if not r or r.get("declared"):
            continue
        ratio = (r.get("local") or {}).get("bound_ratio")
        if ratio is not None and ratio > worst:
            worst, op = ratio, node["op"]
    return f"{worst:.2f}× ({op})" if op else "–"


def cmd_table(args):
    """One Markdown row per `NAME=REPORT.json` (a default-tolerance run):
    nodes, result, and per lane: compared, worst local error, wall ms."""
    if not args:
        raise Usage("table NAME=REPORT.json...")
    print("| model | nodes | result | reference ms | ort: compared, worst local (undeclared), ms | tch | candle |")
    print("|---|---:|---|---:|---|---|---|")
    for arg in args:
        name, _, path = arg.partition("=")
        try:
            case = json.load(open(path))["cases"][0]
        except (OSError, ValueError, KeyError, IndexError) as e:
            raise Usage(f"{path}: not an xdiff JSON report ({e})")
        lanes = {l["name"]: l for l in case["lanes"]}
        cells = []
        for lane in ("ort", "tch", "candle"):
            l = lanes.get(lane)
            if l is None:
                cells.append("not run")
                continue
            cov = l.get("coverage") or {}
            cells.append(f"{cov.get('compared')}/{cov.get('total')}, {worst_local(case, lane)}, {l['wall_ms']:.0f}")
        ref = lanes.get("reference", {}).get("wall_ms", float("nan"))
        result = "pass" if case["passed"] else "FAIL"
        print(f"| {name} | {len(case['nodes'])} | {result} | {ref:.0f} | " + " | ".join(cells) + " |")


def main(argv):
    commands = {
        "table": cmd_table,
        "names": lambda args: print("\n".join(MODELS)),
        "export": cmd_export,
        "summarize": cmd_summarize,
        "local": cmd_local,
    }
    try:
        if len(argv) < 2 or argv[1] not in commands:
            raise Usage(f"usage: {argv[0]} names | export OUT_DIR NAME... | summarize REPORT TITLE EXIT | local DIR | table NAME=REPORT...")
        commands[argv[1]](argv[2:])
    except Usage as e:
        print(f"export_models.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
