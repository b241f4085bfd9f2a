"""PyTorch module of network `labelled` in `tests/ui/export/labelled.res`, written by `resnetc export`.

Input `image`: [N, 3, 8, 8] (`N` free), float32 NCHW.
Output `logits`: [N, 5].
The state_dict keys are the .res layer paths: resnetc's weights load with
`load_state_dict(safetensors.torch.load_file(...), strict=True)`.
"""

import torch
import torch.nn.functional as F
from torch import nn


class BatchNorm2d(nn.Module):
    """nn.BatchNorm2d (momentum 0.1) whose state_dict has exactly the .res keys:
    weight, bias and the running statistics as buffers, no `num_batches_tracked`."""

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            0.1,
            self.eps,
        )


def sequential(*named):
    """nn.Sequential of (name, module) pairs, as from an OrderedDict."""
    seq = nn.Sequential()
    for name, module in named:
        seq.add_module(name, module)
    return seq


class DenseLayer(nn.Module):
    """Block `dense_layer`."""

    def __init__(self, in_channels: int, growth: int = 4):
        super().__init__()
        self.norm1 = BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, growth, 3, padding=1, bias=False)

    def forward(self, x):
        new = self.norm1(x)
        new = F.relu(new)
        new = self.conv1(new)
        return torch.cat([x, new], 1)


class Labelled(nn.Module):
    """Network `labelled`."""

    def __init__(self):
        super().__init__()
        self.features = sequential(
            ("conv0", nn.Conv2d(3, 8, 3, padding=1, bias=False)),
            ("1", nn.ReLU()),
            (
                "denseblock1",
                sequential(*[(f"denselayer{i + 1}", DenseLayer(8 + i * 4)) for i in range(3)]),
            ),
            *[(f"{i + 3}", nn.Sequential(DenseLayer(20 + i * 2, 2))) for i in range(2)],
            ("norm5", BatchNorm2d(24)),
        )
        self.classifier = nn.Linear(24, 5)

    def forward(self, image):
        logits = self.features(image)
        logits = F.adaptive_avg_pool2d(logits, 1)
        logits = torch.flatten(logits, 1)
        logits = self.classifier(logits)
        return logits
