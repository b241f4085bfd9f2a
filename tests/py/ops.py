"""PyTorch's parameter-free ops on a fixed input, for resnetc's op tests.

Prints a JSON object: the op as resnetc writes it -> the flattened output of torch's function on
x = linspace(-8, 8, 96) reshaped to [2, 3, 4, 4], in float32; and "x" -> x itself.
"""

import json

import torch
import torch.nn.functional as F
from torch import nn

x = torch.linspace(-8.0, 8.0, 96, dtype=torch.float32).reshape(2, 3, 4, 4)
ops = {
    "relu6": F.relu6,
    "silu": F.silu,
    "swish": F.silu,
    "hardswish": F.hardswish,
    "hardsigmoid": F.hardsigmoid,
    "gelu": lambda t: F.gelu(t, approximate="none"),
    "softmax": lambda t: F.softmax(t, dim=1),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": F.relu,
    "leaky_relu": F.leaky_relu,
    # Bins overlap (4 -> 3) and repeat inputs (4 -> 6).
    "adaptive_avgpool(out: [3, 6])": lambda t: F.adaptive_avg_pool2d(t, (3, 6)),
    "adaptive_avgpool(2)": lambda t: F.adaptive_avg_pool2d(t, 2),
    "adaptive_avgpool([1, 1])": lambda t: F.adaptive_avg_pool2d(t, 1),
    # F.interpolate: legacy nearest, bilinear with and without aligned corners, by a factor,
    # to a size (up, down, not a multiple) and to another value's size.
    "upsample(scale: 2)": lambda t: F.interpolate(t, scale_factor=2),
    "upsample(scale: [2, 3], mode: bilinear)": lambda t: F.interpolate(
        t, scale_factor=(2, 3), mode="bilinear", align_corners=False
    ),
    "upsample(scale: 3, mode: bilinear, align_corners: true)": lambda t: F.interpolate(
        t, scale_factor=3, mode="bilinear", align_corners=True
    ),
    "upsample(size: [7, 5])": lambda t: F.interpolate(t, size=(7, 5)),
    "upsample(size: [7, 5], mode: bilinear)": lambda t: F.interpolate(
        t, size=(7, 5), mode="bilinear", align_corners=False
    ),
    "upsample(size: [3, 2], mode: bilinear, align_corners: true)": lambda t: F.interpolate(
        t, size=(3, 2), mode="bilinear", align_corners=True
    ),
    "upsample(like: x -> pad([3, 2, 1, 0]))": lambda t: F.interpolate(t, size=(5, 9)),
    # A center crop starts at floor((H - h) / 2): 4 -> 2 at 1, 4 -> 1 at 1.
    "crop(like: x -> maxpool(k: 2))": lambda t: t[:, :, 1:3, 1:3],
    "crop(like: x -> maxpool(k: 3))": lambda t: t[:, :, 1:2, 1:2],
    "pad(1)": lambda t: nn.ZeroPad2d(1)(t),
    "pad([1, 0, 2, 3])": lambda t: F.pad(t, (1, 0, 2, 3)),
}
out = {name: f(x).flatten().tolist() for name, f in ops.items()}
out["x"] = x.flatten().tolist()
print(json.dumps(out))
