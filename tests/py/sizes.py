"""PyTorch's rectangular convolutions and pools, for resnetc's per-axis size tests.

Usage: sizes.py WEIGHTS.safetensors INPUT.npy OUTPUT.npy

Runs the network of `tests/it/sizes.rs` (RECTANGULAR) with torch's own functions on the
weights resnetc seeded and writes its output: each size is given to torch as an `(h, w)` tuple.
"""

import sys

import numpy as np
import safetensors.torch
import torch
import torch.nn.functional as F


def main():
    weights, x_path, y_path = sys.argv[1:]
    w = safetensors.torch.load_file(weights)
    x = torch.from_numpy(np.load(x_path))
    with torch.no_grad():
        y = F.conv2d(x, w["c1.weight"], w["c1.bias"], stride=(2, 1), padding=(0, 2))
        bn = [w[f"bn.{k}"] for k in ("running_mean", "running_var", "weight", "bias")]
        y = F.batch_norm(y, *bn, training=False, eps=0.5)
        y = F.conv2d(
            y,
            w["c2.weight"],
            w["c2.bias"],
            stride=(1, 2),
            padding=(2, 1),
            dilation=(2, 1),
            groups=2,
        )
        y = F.max_pool2d(y, (2, 3), stride=(1, 2), padding=(1, 1), ceil_mode=True)
        y = F.avg_pool2d(y, (3, 1), stride=(2, 1), padding=(1, 0), count_include_pad=False)
    np.save(y_path, y.numpy().astype(np.float32))
    print(list(y.shape))


if __name__ == "__main__":
    main()
