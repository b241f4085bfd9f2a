"""PyTorch module of network `every_op` in `tests/ui/export/every_op.res`, written by `resnetc export`.

Input `x`: [N, 4, 12, 12] (`N` free), float32 NCHW.
Output `logits`: [N, 6].
Output `v`: [N, 64, 4, 4].
Output `decoded`: [N, 40, 8, 8].
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


class ShortcutA(nn.Module):
    """The option-A shortcut: every `stride`-th row and column, `pad` zero channels on each side."""

    def __init__(self, pad: int, stride: int):
        super().__init__()
        self.pad = pad
        self.stride = stride

    def forward(self, x):
        s = self.stride
        return F.pad(x[:, :, ::s, ::s], (0, 0, 0, 0, self.pad, self.pad))


class Scale(nn.Module):
    """Every element times `factor` (a scaled residual branch)."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


def center_crop(x, like):
    """The middle of `x` at the H and W of `like`, as the original U-Net crops its skips."""
    h, w = like.shape[-2:]
    top, left = (x.shape[-2] - h) // 2, (x.shape[-1] - w) // 2
    return x[:, :, top : top + h, left : left + w]


class Mix(nn.Module):
    """Block `mix`."""

    def __init__(
        self, a_channels: int, b_channels: int, c: int, slope: float = 0.2, deep: bool = False
    ):
        super().__init__()
        if deep:
            setattr(self, "conv#0", nn.Conv2d(a_channels, c, 1, bias=False))
        self.deep = deep
        self.slope = slope

    def forward(self, a, b):
        if self.deep:
            s = getattr(self, "conv#0")(a)
            s = F.leaky_relu(s, self.slope)
        else:
            s = torch.tanh(a)
        return torch.cat([s, b, F.dropout(b, 0.3, self.training)], 1)


class Gate(nn.Module):
    """Block `gate`."""

    def __init__(self, in_channels: int, c: int, r: int = 2):
        super().__init__()
        self.fc1 = nn.Conv2d(in_channels, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        g = F.adaptive_avg_pool2d(x, 1)
        g = self.fc1(g)
        g = F.relu(g)
        g = self.fc2(g)
        g = torch.sigmoid(g)
        return x * g


class EveryOp(nn.Module):
    """Network `every_op`."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=2, dilation=2, groups=2, bias=False)
        self.bn1 = BatchNorm2d(8)
        setattr(self, "conv#0", nn.Conv2d(8, 8, 3, padding=1, bias=False))
        setattr(self, "batchnorm#0", BatchNorm2d(8))
        setattr(self, "mix#0", Mix(8, 8, 8, deep=True))
        setattr(self, "gate#0", Gate(24, 24, r=4))
        self.mix2 = Mix(24, 8, 8)
        self.shortcut_a = ShortcutA(12, 1)
        setattr(
            self,
            "seq#0",
            nn.Sequential(
                nn.AvgPool2d(kernel_size=2),
                ShortcutA(16, 2),
                *[nn.Sequential(nn.ReLU(), nn.LeakyReLU(0.01)) for _ in range(2)],
                nn.GELU(),
                nn.Hardswish(),
                nn.Hardsigmoid(),
                nn.SiLU(),
                nn.ReLU6(),
                Scale(0.5),
                nn.AdaptiveAvgPool2d((1, 1)),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            ),
        )
        self.feat = nn.Sequential(nn.Linear(96, 24), nn.Unflatten(1, (6, 2, 2)))
        self.head = nn.Linear(12, 6, bias=False)
        self.up = nn.ConvTranspose2d(64, 16, 3, stride=2, padding=1, output_padding=1)
        self.dec = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.ZeroPad2d((1, 0, 2, 1)),
            nn.ConvTranspose2d(16, 8, (2, 3), stride=2, groups=2, bias=False, dilation=(2, 1)),
            nn.Upsample(scale_factor=(1, 2)),
        )

    def forward(self, x):
        y = self.conv1(x)
        y = self.bn1(y)
        z = getattr(self, "conv#0")(y)
        z = getattr(self, "batchnorm#0")(z)
        z = F.relu(z)
        w = getattr(self, "mix#0")(z, z)
        w = getattr(self, "gate#0")(w)
        w = self.mix2(w, y)
        v = F.max_pool2d(w, kernel_size=3, stride=2, padding=1, ceil_mode=True)
        v = F.avg_pool2d(v, kernel_size=2, padding=1, count_include_pad=False)
        v = self.shortcut_a(v)
        t = 0.5 * F.relu6(v) + (F.silu(v) * 2)
        u = getattr(self, "seq#0")(t)
        f = self.feat(u)
        f = F.gelu(f)
        f = F.hardswish(f)
        f = F.hardsigmoid(f)
        f = F.adaptive_avg_pool2d(f, (2, 1))
        f = torch.flatten(f, 1)
        f = f.unflatten(1, (12, 1, 1))
        f = F.adaptive_avg_pool2d(f, 1)
        f = torch.flatten(f, 1)
        logits = self.head(f)
        logits = F.softmax(logits, dim=1)
        d = self.up(v)
        d = F.relu(d)
        e = self.dec(d)
        aligned = F.interpolate(d, size=e.shape[-2:], mode="bilinear", align_corners=True)
        aligned = center_crop(aligned, d)
        resized = F.interpolate(d, size=(5, 7))
        resized = F.pad(resized, (1, 1, 1, 1))
        resized = F.interpolate(resized, size=d.shape[-2:])
        decoded = torch.cat([center_crop(e, d), aligned, resized], 1)
        return logits, v, decoded
