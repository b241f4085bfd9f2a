"""PyTorch's activations on a fixed input, for resnetc's op tests.

Prints a JSON object: op name -> the flattened output of torch's function on
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
}
out = {name: f(x).flatten().tolist() for name, f in ops.items()}
out["x"] = x.flatten().tolist()
print(json.dumps(out))
