#!/usr/bin/env python3
"""Same-run timing of resnetc against ONNX Runtime on resnetc's own ONNX export of a network
(seeded weights, batch 1, 2 threads): medians of RUNS each, interleaved run by run. resnetc's
time is the per-sample time `run` prints (inference only, after the weights are ready); ONNX
Runtime's is one `session.run`. Needs the comparison venv (onnxruntime, numpy).

Usage (networks without a torchvision twin: the U-Nets, the Inception-ResNet block):
  target/release/resnetc export examples/unet.res --format onnx --seed 0 -o /tmp/unet.onnx
  python benches/ort_exported.py target/release/resnetc examples/unet.res /tmp/unet.onnx \
      '[1, 1, 572, 572]' 5
Prints one JSON line: net, resnetc_ms, ort_ms, ratio.
"""

import json, re, statistics, subprocess, sys, time
import numpy as np
import onnxruntime as ort

bin_, res, onnx_path, shape, runs = (
    sys.argv[1],
    sys.argv[2],
    sys.argv[3],
    json.loads(sys.argv[4]),
    int(sys.argv[5]),
)
so = ort.SessionOptions()
so.intra_op_num_threads = 2
so.inter_op_num_threads = 1
sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
for _ in range(2):
    sess.run(None, {name: x})
ours, theirs = [], []
for _ in range(runs):
    t = time.perf_counter()
    sess.run(None, {name: x})
    theirs.append((time.perf_counter() - t) * 1e3)
    err = subprocess.run(
        [bin_, "run", res, "--random-input", "--threads", "2"], capture_output=True, text=True
    ).stderr
    m = re.search(r"([0-9.]+) ms per (?:sample|image)", err)
    ours.append(float(m.group(1)))
r, o = statistics.median(ours), statistics.median(theirs)
print(json.dumps({"net": res, "resnetc_ms": r, "ort_ms": o, "ratio": round(r / o, 2)}))
