"""PyTorch's parameter-free ops on a fixed input, for resnetc's op tests.

Prints a JSON object: the op as resnetc writes it -> the flattened output of torch's function on
x = linspace(-8, 8, 96) reshaped to [2, 3, 4, 4], in float32; and "x" -> x itself.
"""
import json

import torch
import torch.nn.functional as F

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
}
out = {name: f(x).flatten().tolist() for name, f in ops.items()}
out["x"] = x.flatten().tolist()
print(json.dumps(out))
