"""Check ONNX models exported by resnetc against ONNX's own tools, all in one process.

Usage: check_onnx.py MODEL.onnx...

For each model: `onnx.checker.check_model(full_check=True)`; every node output is a graph output
or has a shape in `value_info` (resnetc's inference); and ONNX's shape inference, run on a copy
without that `value_info`, agrees with it on every value, twice: with the symbolic batch as it
is (a symbol must come out as the same symbol, or unknown), and with the batch bound to 3 (every
dimension must come out equal). Prints one line per model; exits 1 if any model fails.
"""

import sys

import onnx
from onnx import shape_inference

BATCH = 3


def dims(value_info):
    """A value's shape as a list of int, str (symbol) or None (unknown)."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    out = []
    for d in t.shape.dim:
        if d.HasField("dim_value"):
            out.append(d.dim_value)
        elif d.HasField("dim_param"):
            out.append(d.dim_param)
        else:
            out.append(None)
    # ONNX names the sizes it cannot infer `unk__K`: those are unknown, not symbols.
    return [None if isinstance(d, str) and d.startswith("unk__") else d for d in out]


def inferred(model, bind):
    """Shapes ONNX infers for every value, with resnetc's value_info removed first; `bind`
    maps a symbol to a size in the graph inputs."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.value_info[:]
    for vi in list(m.graph.input) + list(m.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in bind:
                d.dim_value = bind[d.dim_param]
    if bind:
        # Outputs keep their declared shapes in the result: infer them afresh.
        for vi in m.graph.output:
            vi.type.tensor_type.ClearField("shape")
    m = shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
    return {vi.name: dims(vi) for vi in list(m.graph.value_info) + list(m.graph.output)}


def problems(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    claimed = {vi.name: dims(vi) for vi in list(g.value_info) + list(g.output)}
    out = []
    for node in g.node:
        for name in node.output:
            if claimed.get(name) is None:
                out.append(f"value `{name}` ({node.op_type}) has no shape in value_info")
    symbols = {d for s in claimed.values() if s for d in s if isinstance(d, str)}
    for bind in ({}, {s: BATCH for s in symbols}):
        theirs = inferred(model, bind)
        for name, mine in claimed.items():
            if mine is None:
                continue
            want = [bind.get(d, d) if isinstance(d, str) else d for d in mine]
            got = theirs.get(name)
            if got is None or len(got) != len(want):
                out.append(f"`{name}`: resnetc {want}, ONNX {got} (bind {bind})")
                continue
            for w, o in zip(want, got):
                # Where ONNX cannot name a symbolic size, it leaves it unknown: not a conflict.
                if w != o and not (isinstance(w, str) and o is None) and w is not None:
                    out.append(f"`{name}`: resnetc {want}, ONNX {got} (bind {bind})")
                    break
    n_values = sum(1 for s in claimed.values() if s is not None)
    return out, n_values


def main():
    failed = False
    for path in sys.argv[1:]:
        try:
            found, n = problems(path)
        except Exception as e:  # the checker's own errors name the node
            found, n = [f"{type(e).__name__}: {e}"], 0
        if found:
            failed = True
            print(f"FAIL {path}")
            for p in found[:20]:
                print(f"  {p}")
        else:
            print(f"ok {path}: {n} values agree")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
