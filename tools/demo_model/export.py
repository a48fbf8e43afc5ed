#!/usr/bin/python3
"""Writes a trained demo checkpoint as an engine model folder: config.json (the real keys plus vision_config),
model.safetensors (float32, the real tensor names) and tokenizer.model; load_model_folder reads one back.

  /usr/bin/python3 tools/demo_model/export.py --ckpt build/demo_model/ckpt.pt \
      --tokenizer build/demo_model/tokenizer.model --out models/demo
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402


def write_safetensors(path, tensors, metadata=None):
    """Minimal safetensors writer: u64 LE header length, JSON header padded with spaces to a multiple of 8,
    then the raw little-endian data of each tensor in header order."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        dtype = {np.dtype("float32"): "F32", np.dtype("float16"): "F16"}[a.dtype]
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def state_for_export(net):
    """The engine's tensor names are the module paths; only Partial-LoRA adapters, no web/write LoRAs."""
    out = {}
    for name, t in net.state_dict().items():
        out[name] = t.detach().float().cpu().numpy()
    return out


def export(net, tokenizer, out_dir, extra_meta=None):
    os.makedirs(out_dir, exist_ok=True)
    cfg = dict(net.config)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    meta = {"format": "pt", "producer": "tools/demo_model/export.py"}
    meta.update(extra_meta or {})
    write_safetensors(os.path.join(out_dir, "model.safetensors"), state_for_export(net), meta)
    if os.path.abspath(tokenizer) != os.path.abspath(os.path.join(out_dir, "tokenizer.model")):
        shutil.copyfile(tokenizer, os.path.join(out_dir, "tokenizer.model"))


def load_checkpoint(path, last=False):
    """(model, checkpoint dict): the mean of the last steps' weights when the run kept one (train.py
    --average-last), unless `last`; otherwise the weights of its last step."""
    ck = torch.load(path, map_location="cpu")
    net = M.IXCDemo(ck["config"])
    net.load_state_dict(ck["avg"]["model"] if "avg" in ck and not last else ck["model"])
    net.eval()
    return net, ck


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "I32": np.int32}
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        s, e = v["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + s:8 + n + e], dtype=dtypes[v["dtype"]]).reshape(v["shape"]).copy()
    return out


def load_model_folder(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    net = M.IXCDemo(cfg)
    tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    state = {k: torch.from_numpy(v).float() for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit(f"model.safetensors does not fit model.py: missing {missing[:5]}, unexpected {unexpected[:5]}")
    net.eval()
    return net


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--last", action="store_true",
                    help="the last step's weights even when the checkpoint also holds their mean over the last steps")
    a = ap.parse_args()
    net, ck = load_checkpoint(a.ckpt, a.last)
    meta = {"train_step": ck.get("step", 0)}
    if "avg" in ck and not a.last:
        meta["averaged_steps"] = ck["avg"]["n"]
    export(net, a.tokenizer, a.out, meta)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in os.listdir(a.out))
    print(f"wrote {a.out}: {sum(p.numel() for p in net.parameters())} parameters, {total / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
