"""Run ONNX models with ONNX Runtime (CPU), all in one process.

Usage: run_onnx.py MODEL.onnx INPUT.npy OUTPUT.npy [MODEL INPUT OUTPUT ...]

Feeds INPUT to the model's only input and saves its first output to OUTPUT (float32 .npy).
Graph optimisations are off, so that the model runs as exported (ONNX Runtime would otherwise
fold batchnorms itself, hiding whether the exported folding is right).
"""

import sys

import numpy as np
import onnxruntime as ort


def main():
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit("usage: run_onnx.py MODEL INPUT OUTPUT [MODEL INPUT OUTPUT ...]")
    for model, x_path, y_path in zip(args[0::3], args[1::3], args[2::3]):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        (inp,) = session.get_inputs()
        y, *_ = session.run(None, {inp.name: np.load(x_path)})
        np.save(y_path, y.astype(np.float32))
        print(f"{model}: {inp.name} -> {session.get_outputs()[0].name} {list(y.shape)}")


if __name__ == "__main__":
    main()
