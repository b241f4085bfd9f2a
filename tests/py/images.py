"""Test images and torchvision's preprocessing of them, for resnetc's image-input tests.

images.py make DIR
    Writes test images into DIR with Pillow (seeded): random noise and smooth patterns,
    portrait and landscape, thin strips, sizes that need rounding in the resize and the crop, grayscale,
    RGBA, palette, and a photo-like scene (smooth shapes, edges and grain) as PNG and JPEG, and Pillow's decoding
    of the JPEG as `photo.jpg.pillow.png.ref` (a PNG). Prints the images' names as a JSON
    list.

images.py transform OUT.npy RESIZE CROP_H CROP_W MEAN_R,G,B STD_R,G,B FILE...
    Writes torchvision's `Resize(RESIZE) + CenterCrop((CROP_H, CROP_W)) + ToTensor +
    Normalize(MEAN, STD)` of each `Image.open(FILE).convert("RGB")`, stacked as float32
    [N, 3, CROP_H, CROP_W].

images.py resnet18 WEIGHTS.safetensors FILE...
    Runs torchvision's resnet18 (with these weights, eval mode, float32) on the standard
    ImageNet preprocessing of each FILE; prints [{"top6": [...], "logits": [...]}, ...]
    as JSON.
"""

import json
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def smooth(w, h, phase):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 127.5 + 127.5 * np.sin(x / 17.0 + phase) * np.cos(y / 23.0 - phase)
    g = 127.5 + 127.5 * np.sin((x + y) / 31.0 + 2 * phase)
    b = 255.0 * x / max(w - 1, 1)
    return np.stack([r, g, b], axis=-1).round().clip(0, 255).astype(np.uint8)


def photo(w, h, rng):
    """A photo-like scene: a sky gradient, soft shapes with hard edges, texture and grain."""
    img = Image.fromarray(smooth(w, h, 0.7))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        x1, y1 = x0 + int(rng.integers(20, w // 2)), y0 + int(rng.integers(20, h // 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x1, y1], fill=color)
        else:
            draw.rectangle([x0, y0, x1, y1], fill=color)
    img = img.filter(ImageFilter.GaussianBlur(1.5))
    grain = rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(
        (np.asarray(img, dtype=np.float64) + grain).round().clip(0, 255).astype(np.uint8)
    )


def make(out):
    rng = np.random.default_rng(7)
    images = {
        # Random noise: the hardest case for a resize (every weight matters).
        "noise_landscape.png": Image.fromarray(rng.integers(0, 256, (300, 451, 3), dtype=np.uint8)),
        "noise_portrait.png": Image.fromarray(rng.integers(0, 256, (517, 263, 3), dtype=np.uint8)),
        # Smooth patterns; 389 -> 256 makes the long side 341.8 (truncated to 341) and an odd
        # crop offset (58.5, rounded to even).
        "smooth.png": Image.fromarray(smooth(518, 389, 0.3)),
        # Upscaling (shorter side 150 < 256), and a size already at 256 (no resize).
        "small.png": Image.fromarray(smooth(199, 150, 1.1)),
        "exact.png": Image.fromarray(smooth(256, 300, 0.5)),
        # Thin images, resized to 256x76800 and 38400x256 (only the crop is computed): each
        # pass's filter windows placed by the whole resize, clipped by the image's edges.
        "thin_portrait.png": Image.fromarray(rng.integers(0, 256, (1200, 4, 3), dtype=np.uint8)),
        "thin_landscape.png": Image.fromarray(smooth(900, 6, 0.4)),
        # Other modes, converted as PIL's convert("RGB") does.
        "gray.png": Image.fromarray(smooth(320, 240, 0.9)[:, :, 0], mode="L"),
        "rgba.png": Image.fromarray(
            np.concatenate(
                [smooth(240, 320, 1.3), rng.integers(0, 256, (320, 240, 1), dtype=np.uint8)],
                axis=-1,
            ),
            mode="RGBA",
        ),
        "palette.png": Image.fromarray(smooth(300, 280, 0.2)).convert(
            "P", palette=Image.Palette.ADAPTIVE
        ),
    }
    for name, img in images.items():
        img.save(f"{out}/{name}")
    scene = photo(640, 480, rng)
    scene.save(f"{out}/photo.png")
    scene.save(f"{out}/photo.jpg", quality=90)
    # Pillow's own decoding of the JPEG (libjpeg), kept apart from the test images: JPEG
    # decoders may differ by a step or two, and this says by how much.
    Image.open(f"{out}/photo.jpg").convert("RGB").save(
        f"{out}/photo.jpg.pillow.png.ref", format="PNG"
    )
    print(json.dumps(sorted(list(images) + ["photo.png", "photo.jpg"])))


def transform(resize, crop_h, crop_w, mean, std):
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(resize),
            transforms.CenterCrop((crop_h, crop_w)),
            transforms.ToTensor(),
            transforms.Normalize(mean=mean, std=std),
        ]
    )


def floats(text):
    return [float(v) for v in text.split(",")]


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2])
    elif cmd == "transform":
        import torch

        out, resize, crop_h, crop_w, mean, std = sys.argv[2:8]
        t = transform(int(resize), int(crop_h), int(crop_w), floats(mean), floats(std))
        xs = [t(Image.open(f).convert("RGB")) for f in sys.argv[8:]]
        np.save(out, torch.stack(xs).numpy().astype(np.float32))
    elif cmd == "resnet18":
        import safetensors.torch
        import torch
        import torchvision

        torch.set_num_threads(1)
        model = torchvision.models.resnet18(weights=None).eval()
        model.load_state_dict(safetensors.torch.load_file(sys.argv[2]), strict=False)
        t = transform(256, 224, 224, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        x = torch.stack([t(Image.open(f).convert("RGB")) for f in sys.argv[3:]])
        with torch.inference_mode():
            y = model(x)
        print(json.dumps([{"top6": r.topk(6).indices.tolist(), "logits": r.tolist()} for r in y]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
