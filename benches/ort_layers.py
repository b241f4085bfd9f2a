#!/usr/bin/env python3
"""ONNX Runtime's time per node on a torchvision-architecture ResNet, to set beside
`cargo bench --bench steps -- <arch>` (resnetc's time per step) and see layer by layer where
the two differ.

The graph is the one ../shared/bench/ort_resnet.py builds (seeded weights, graph optimisations
on, so each conv node has its batchnorm, add and ReLU fused as resnetc's steps do), run with
ONNX Runtime's profiler on; the median of each node's kernel time over the timed runs is
printed in graph order with its output shape. Needs the comparison venv (onnx, onnxruntime).

`--cpu avx2` runs ONNX Runtime on its AVX2 path on a CPU that also has AVX-512 (beside
`RESNETC_CPU=avx2 cargo bench --bench steps`): the script builds benches/avx2_only.c with `cc`
and runs itself again with it preloaded, which hides AVX-512 from the process's CPUID.

Usage:
  python benches/ort_layers.py --arch resnet50 [--batch 1] [--threads 2] [--runs 30] [--cpu avx2]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench"))
from ort_resnet import ARCHS, build  # noqa: E402


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", choices=sorted(ARCHS), default="resnet50")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument(
        "--cpu",
        choices=["best", "avx2"],
        default="best",
        help="avx2: ONNX Runtime with AVX-512 hidden from its CPUID",
    )
    a = ap.parse_args()
    if a.cpu == "avx2" and os.environ.get("RESNETC_AVX2_ONLY") is None:
        lib = os.path.join(tempfile.gettempdir(), f"resnetc-avx2_only-{os.getuid()}.so")
        part = f"{lib}.{os.getpid()}"
        cc = os.environ.get("CC", "cc")
        subprocess.run(
            [cc, "-O2", "-shared", "-fPIC", "-o", part, os.path.join(HERE, "avx2_only.c")],
            check=True,
        )
        os.replace(part, lib)
        env = dict(os.environ, LD_PRELOAD=lib, RESNETC_AVX2_ONLY="1")
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    import onnxruntime as ort

    model = build(a.arch, None, a.batch, a.size, 0)
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        so.profile_file_prefix = os.path.join(tmp, a.arch)
        sess = ort.InferenceSession(
            model.SerializeToString(), so, providers=["CPUExecutionProvider"]
        )
        x = np.random.default_rng(1).standard_normal((a.batch, 3, a.size, a.size), dtype=np.float32)
        for _ in range(a.warmup + a.runs):
            sess.run(None, {"input": x})
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    nodes = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            nodes.setdefault(e["name"], []).append(e)
    total = 0.0
    print(f"{'node':32s} {'op':18s} {'ms':>7s}  output")
    for name, runs in nodes.items():
        ms = statistics.median(e["dur"] for e in runs[a.warmup :]) / 1000
        total += ms
        shape = runs[0]["args"].get("output_type_shape", [{}])[0]
        dims = "x".join(str(d) for d in next(iter(shape.values()), []))
        print(
            f"{name.removesuffix('_kernel_time'):32s} {runs[0]['args'].get('op_name', ''):18s} {ms:7.3f}  {dims}"
        )
    print(f"{'total':32s} {'':18s} {total:7.3f}")


if __name__ == "__main__":
    main()
