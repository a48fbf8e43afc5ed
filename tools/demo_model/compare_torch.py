#!/usr/bin/python3
"""Checks that the PyTorch model and the C++ engine decode the shipped demo model identically.

  /usr/bin/python3 tools/demo_model/compare_torch.py --seed 1000 --count 20 [--ixc build/release/ixc] [--model models/demo]

Loads MODEL/model.safetensors and MODEL/config.json back into tools/demo_model/model.py (so the file the engine
reads is what is checked), takes the first COUNT questions of evaluate's question set for SEED, decodes each
greedily in PyTorch (float32, repetition penalty 1.005 on generated tokens, as `ixc chat --greedy`) and with the
engine, and compares the generated token ids (stop token included) and the engine's last-position logits.
"""
import argparse
import json
import os
import struct
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model as M  # noqa: E402

_EVALUATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate")
_evaluate = {"__file__": _EVALUATE, "__name__": "evaluate"}
with open(_EVALUATE) as _f:
    exec(compile(_f.read(), _EVALUATE, "exec"), _evaluate)  # reuse its question builder and engine call


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
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--ixc", default="build/release/ixc")
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    a = ap.parse_args()
    torch.set_num_threads(1)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(a.model, "tokenizer.model"))
    net = load_model_folder(a.model)
    same = 0
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="ixc-demo-cmp-") as tmp:
        qs = _evaluate["build_questions"](a.seed, a.count, tmp)
        for i, t, paths, prompt, answer in qs:
            dump = os.path.join(tmp, f"dump{i}.safetensors")
            r = _evaluate["ask"](a.ixc, a.model, paths, prompt, a.max_new_tokens, ["--dump-tensors", dump])
            from PIL import Image
            imgs = [Image.open(p) for p in paths]
            with torch.no_grad():
                ids = M.greedy(net, sp, imgs, data.chat_prompt(prompt), a.max_new_tokens)
                hd = 6 if len(imgs) > 1 else 24
                parts, tail = M.split_prompt(sp, data.chat_prompt(prompt), len(imgs))
                prefix, pmask = net.build_prefix(parts, [M.preprocess(im, hd) for im in imgs])
                hs, _ = net.decode(prefix, pmask, net.embed_tokens(tail).unsqueeze(0))
                logits = net.output(hs[0, -1]).numpy()
            eng = read_safetensors(dump)["last_logits"]
            rel = float(np.linalg.norm(eng - logits) / np.linalg.norm(logits))
            worst = max(worst, rel)
            ok = ids == r["tokens"]
            same += ok
            print(f"{'same' if ok else 'DIFF'} #{i} [{t}] {prompt!r}: torch {ids} {sp.decode([x for x in ids if x > 2 and x != sp.piece_to_id(data.IM_END)])!r}"
                  f" engine {r['tokens']} {r['text']!r} (expected {answer!r}; last-logits rel. diff {rel:.1e})")
    print(f"identical greedy tokens: {same}/{len(qs)}; worst last-logits relative difference {worst:.1e}")
    sys.exit(0 if same == len(qs) else 1)


if __name__ == "__main__":
    main()
