"""PyTorch module of network `small` in `tests/ui/export/small.res`, written by `resnetc export`.

Input `image`: [N, 3, 16, 16] (`N` free), float32 NCHW.
Output `logits`: [N, 10].
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


class Basic(nn.Module):
    """Block `basic`."""

    def __init__(self, in_channels: int, planes: int, stride: int = 1, width: int | None = None):
        super().__init__()
        if width is None:
            width = planes * 2
        self.conv1 = nn.Conv2d(in_channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, planes, 3, padding=1, bias=False)
        self.bn2 = BatchNorm2d(planes)
        if stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, planes, 1, stride=stride, bias=False), BatchNorm2d(planes)
            )
        self.stride = stride

    def forward(self, x):
        y = self.conv1(x)
        y = self.bn1(y)
        y = F.relu(y)
        y = self.conv2(y)
        y = self.bn2(y)
        if self.stride != 1:
            shortcut = self.downsample(x)
        else:
            shortcut = x
        return F.relu(y + shortcut)


class Small(nn.Module):
    """Network `small`."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), BatchNorm2d(8), nn.ReLU()
        )
        self.layer1 = nn.Sequential(*[Basic(8, 8) for _ in range(2)])
        self.layer2 = nn.Sequential(
            Basic(8, 16, stride=2), *[Basic(16, 16, width=8) for _ in range(2)]
        )
        self.fc = nn.Linear(16, 10)

    def forward(self, image):
        logits = self.stem(image)
        logits = self.layer1(logits)
        logits = self.layer2(logits)
        logits = F.adaptive_avg_pool2d(logits, 1)
        logits = torch.flatten(logits, 1)
        logits = self.fc(logits)
        return logits
