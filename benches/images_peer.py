"""torchvision's own preprocessing of a directory of images, to set beside `resnetc run --input
DIR` on a network that does almost nothing (decoding and preprocessing alone) in the same
sitting: each image opened with Pillow, converted to RGB, then `Resize(256)`, `CenterCrop(224)`,
`ToTensor()` and `Normalize(ImageNet's mean and std)`, as the ImageNet reference scripts do.
Prints the median over `--rounds` passes of the time per image, on one process (`--workers 1`)
or on a `torch.utils.data.DataLoader` with that many worker processes.

Needs the test venv (torch, torchvision, Pillow: `tests/requirements.txt`).

Usage:
  python benches/images_peer.py DIR [--workers 1] [--rounds 3]
"""

import argparse
import os
import statistics
import time

import torch
from PIL import Image
from torchvision import transforms

EXTENSIONS = (".png", ".jpg", ".jpeg")


class Folder(torch.utils.data.Dataset):
    def __init__(self, paths):
        self.paths = paths
        self.t = transforms.Compose(
            [
                transforms.Resize(256),
                transforms.CenterCrop(224),
                transforms.ToTensor(),
                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            ]
        )

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            return self.t(img.convert("RGB"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    paths = sorted(
        os.path.join(a.dir, f) for f in os.listdir(a.dir) if f.lower().endswith(EXTENSIONS)
    )
    torch.set_num_threads(1)
    data = Folder(paths)
    times = []
    for _ in range(a.rounds):
        t = time.perf_counter()
        if a.workers <= 1:
            for i in range(len(data)):
                data[i]
        else:
            loader = torch.utils.data.DataLoader(data, batch_size=None, num_workers=a.workers)
            for _ in loader:
                pass
        times.append((time.perf_counter() - t) / len(paths) * 1e3)
    print(
        f"{len(paths)} images, {a.workers} worker(s): {statistics.median(times):.1f} ms per image "
        f"(rounds {', '.join(f'{x:.1f}' for x in times)})"
    )


if __name__ == "__main__":
    main()
