#!/usr/bin/env python3
"""ONNX Runtime as a peer that stays up: one session, timed runs on request, so that
benches/vs_onnxruntime.rs can take its runs in short turns with resnetc's within the same
seconds, rather than in a process of its own started once per round.

The model is the one the one-shot peers build: a torchvision-architecture ResNet node for node
(../shared/bench/ort_resnet.py, seeded weights) or, with `--family`, torchvision's own
MobileNetV2, DenseNet-121 or EfficientNet-B0 exported by benches/ort_families.py (which needs
PyTorch the first time). The session's options are theirs: graph optimisations on, sequential
execution, `--threads` intra-op threads.

Protocol: once the session is built and warmed up, one JSON line `{"engine": ..., "ready":
true}` on stdout. Then each line on stdin is a number of runs `n`; the peer times `n` runs of
the session and answers one JSON line `{"ms": [...]}` (milliseconds per run, `time.perf_counter`
around `InferenceSession.run`, as the one-shot peers time it). An empty line or end of input
ends it.

Usage:
  python benches/ort_peer.py --arch resnet50 [--batch 1] [--threads 2]
  python benches/ort_peer.py --family mobilenet_v2 --weights W.safetensors --input X.npy
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "bench"))


def session(a):
    import onnxruntime as ort

    if a.family:
        from ort_families import export

        os.makedirs(a.cache, exist_ok=True)
        tag = "fixture" if a.weights else "init"
        path = os.path.join(a.cache, f"{a.family}.{tag}.onnx")
        if not os.path.exists(path):
            export(a.family, a.weights, path)
        model = path
        x = (
            np.load(a.input)
            if a.input
            else np.random.default_rng(1).standard_normal((1, 3, 224, 224), dtype=np.float32)
        )
    else:
        from ort_resnet import build

        x = np.random.default_rng(a.seed + 1).standard_normal(
            (a.batch, 3, a.size, a.size), dtype=np.float32
        )
        model = build(a.arch, None, a.batch, a.size, a.seed).SerializeToString()
    from ort_families import session_options

    sess = ort.InferenceSession(
        model, session_options(ort, a.threads), providers=["CPUExecutionProvider"]
    )
    return sess, x, "onnxruntime " + ort.__version__


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--arch", help="a ResNet of ../shared/bench/ort_resnet.py (seeded weights)")
    ap.add_argument(
        "--family", help="mobilenet_v2, densenet121 or efficientnet_b0 (benches/ort_families.py)"
    )
    ap.add_argument(
        "--weights", help="with --family: safetensors file with torchvision state_dict keys"
    )
    ap.add_argument("--input", help="with --family: .npy input [1, 3, 224, 224] float32")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "resnetc-bench-onnx"))
    a = ap.parse_args()
    if bool(a.arch) == bool(a.family):
        ap.error("give one of --arch and --family")

    sess, x, engine = session(a)
    feed = {"input": x}
    for _ in range(a.warmup):
        sess.run(None, feed)
    print(json.dumps({"engine": engine, "ready": True}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            break
        samples = []
        for _ in range(int(line)):
            t = time.perf_counter()
            sess.run(None, feed)
            samples.append((time.perf_counter() - t) * 1e3)
        print(json.dumps({"ms": [round(s, 4) for s in samples]}), flush=True)


if __name__ == "__main__":
    main()
