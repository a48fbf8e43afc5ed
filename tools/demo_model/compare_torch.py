#!/usr/bin/python3
"""Checks that the PyTorch model and the C++ engine decode the shipped demo model identically.

  /usr/bin/python3 tools/demo_model/compare_torch.py --seed 1000 --count 20 [--ixc build/release/ixc] [--model models/demo]

Loads MODEL/model.safetensors and MODEL/config.json back into tools/demo_model/model.py (so the file the engine
reads is what is checked), takes the first COUNT questions of evaluate's question set for SEED, decodes each
greedily in PyTorch (float32, repetition penalty 1.005 on generated tokens, as `ixc chat --greedy`) and with the
engine, and compares the generated token ids (stop token included) and the engine's last-position logits.
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import export  # noqa: E402
import model as M  # noqa: E402

_EVALUATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "evaluate")
_evaluate = {"__file__": _EVALUATE, "__name__": "evaluate"}
with open(_EVALUATE) as _f:
    exec(compile(_f.read(), _EVALUATE, "exec"), _evaluate)  # reuse its question builder and engine call


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
    net = export.load_model_folder(a.model)
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
            eng = export.read_safetensors(dump)["last_logits"]
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
