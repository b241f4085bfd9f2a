#!/usr/bin/env python3
"""Time ONNX Runtime (CPU) on torchvision's MobileNetV2, DenseNet-121 or EfficientNet-B0, as a
peer for resnetc's interpreter (run by benches/vs_onnxruntime.rs).

The model is torchvision's own (`weights=None`), given the fixture's weights when `--weights` is
passed, exported once with torch.onnx (TorchScript exporter, opset 17) to a cache directory
outside the repository, and run by ONNX Runtime with its graph optimisations on, as a user would
get it. Needs the comparison venv (torch, torchvision, onnx, onnxruntime, safetensors).

Usage:
  python benches/ort_families.py --arch mobilenet_v2 --threads 2 --runs 20 \
      --weights ../shared/fixtures/mobilenet_v2.safetensors \
      --input ../shared/fixtures/mobilenet_v2.input.npy [--output /tmp/y.npy]
Prints one JSON line: engine, arch, batch, size, threads, runs, median_ms, min_ms, max_ms.
"""

import argparse
import json
import os
import statistics
import tempfile
import time
import warnings

import numpy as np

ARCHS = ("mobilenet_v2", "densenet121", "efficientnet_b0")


def export(arch, weights, path):
    """Export torchvision's model with the given weights to ONNX at `path`."""
    import torch
    import torchvision

    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(weights=None).eval()
    if weights:
        from safetensors.torch import load_file

        missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
        # The fixtures drop the batchnorms' `num_batches_tracked` counters (unused in eval).
        assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (
            missing,
            unexpected,
        )
    x = torch.zeros(1, 3, 224, 224)
    tmp = path + ".part"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (x,),
            tmp,
            dynamo=False,
            opset_version=17,
            input_names=["input"],
            output_names=["logits"],
        )
    os.replace(tmp, path)


def session_options(ort, threads):
    """The peers' session options (as ../shared/bench/ort_resnet.py sets them): `threads`
    intra-op threads, sequential execution, every graph optimisation."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return so


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", choices=ARCHS, required=True)
    ap.add_argument("--weights", help="safetensors file with torchvision state_dict keys")
    ap.add_argument("--input", help=".npy input [1, 3, 224, 224] float32; default: seeded normal")
    ap.add_argument("--output", help="write the result of the last run here (.npy)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "resnetc-bench-onnx"))
    a = ap.parse_args()

    import onnxruntime as ort

    os.makedirs(a.cache, exist_ok=True)
    tag = "fixture" if a.weights else "init"
    path = os.path.join(a.cache, f"{a.arch}.{tag}.onnx")
    if not os.path.exists(path):
        export(a.arch, a.weights, path)
    x = (
        np.load(a.input)
        if a.input
        else np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
    )
    sess = ort.InferenceSession(
        path, session_options(ort, a.threads), providers=["CPUExecutionProvider"]
    )
    for _ in range(a.warmup):
        y = sess.run(None, {"input": x})[0]
    samples = []
    for _ in range(a.runs):
        t = time.perf_counter()
        y = sess.run(None, {"input": x})[0]
        samples.append((time.perf_counter() - t) * 1e3)
    if a.output:
        np.save(a.output, y)
    print(
        json.dumps(
            {
                "engine": "onnxruntime " + ort.__version__,
                "arch": a.arch,
                "batch": int(x.shape[0]),
                "size": int(x.shape[2]),
                "threads": a.threads,
                "runs": a.runs,
                "median_ms": round(statistics.median(samples), 3),
                "min_ms": round(min(samples), 3),
                "max_ms": round(max(samples), 3),
            }
        )
    )


if __name__ == "__main__":
    main()
