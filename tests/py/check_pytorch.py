"""Check modules written by `resnetc export --format pytorch` against PyTorch itself.

Usage: check_pytorch.py MANIFEST.json. The manifest lists generated files (all must pass
`black --check --line-length 100`) and jobs: import a generated file, build its network class,
load the weights (a safetensors file, or constant tensors of the listed keys and shapes) with
`load_state_dict(strict=True)`, run it in eval mode on an input, and
compare the output with reference arrays within `1e-4 * max|reference|` (and the same top-5
where asked). Prints one line per failure and exits 1 if there is any.
"""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import safetensors.torch
import torch


def network_class(path):
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and (c.__doc__ or "").startswith("Network `")
    ]
    assert len(classes) == 1, f"{path}: {len(classes)} network classes"
    return classes[0]


def top5(y):
    return np.argsort(-y, axis=1, kind="stable")[:, :5]


def run_job(job):
    model = network_class(job["file"])()
    if job.get("weights"):
        state = safetensors.torch.load_file(job["weights"])
    else:
        state = {k: torch.full(shape, 0.01) for k, shape in job["keys"]}
    model.load_state_dict(state, strict=True)
    extra = set(model.state_dict()) ^ set(state)
    assert not extra, f"state_dict keys differ: {sorted(extra)[:5]}"
    model.eval()
    if job.get("input"):
        x = torch.from_numpy(np.load(job["input"]))
    else:
        x = torch.randn(job["random_input"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x)
    ys = [t.numpy() for t in (y if isinstance(y, tuple) else (y,))]
    if "shape" in job:
        shape = list(ys[0].shape)
        assert shape == job["shape"], f"output shape {shape}, expected {job['shape']}"
    for ref in job.get("expect", []):
        y = ys[ref["output"]]
        r = np.load(ref["npy"])
        assert y.shape == r.shape, f"shape {y.shape} vs {r.shape} of {ref['what']}"
        bound = 1e-4 * float(np.abs(r).max())
        err = float(np.abs(y.astype(np.float64) - r.astype(np.float64)).max())
        assert err <= bound, f"max|y - {ref['what']}| = {err:.3g} > {bound:.3g}"
        if ref.get("top5"):
            assert (top5(y) == top5(r)).all(), f"top-5 differs from {ref['what']}"
        print(f"ok {job['name']}: max|y - {ref['what']}| = {err:.3g} (bound {bound:.3g})")


def main():
    torch.set_num_threads(2)
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    failures = []
    black = [sys.executable, "-m", "black", "--check", "-q", "--line-length", "100"]
    done = subprocess.run(black + manifest["black"], capture_output=True, text=True)
    if done.returncode != 0:
        failures.append(f"black --check: {done.stdout}{done.stderr}")
    for job in manifest["jobs"]:
        try:
            run_job(job)
        except Exception as e:  # every job is reported, not only the first failure
            failures.append(f"{job['name']}: {type(e).__name__}: {e}")
    for f in failures:
        print(f"FAIL {f}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
