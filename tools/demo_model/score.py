#!/usr/bin/python3
"""Scores models side by side on the same fresh questions, in PyTorch, teacher forced: a quicker and larger sample
than `evaluate` (about ten questions a second on one core against two), for telling two recipes apart.

  /usr/bin/python3 tools/demo_model/score.py --seed 77 --count 600 --type count \
      build/demo_model/ckpt.pt build/demo_model/ckpt.pt:last models/demo

Each model is a train.py checkpoint (its mean over the last steps when it keeps one, train.py --average-last; with
":last" its last step's weights) or an exported folder. Question i is data.make_example(SEED, i, qtype=...) with
one question, the types taken round-robin as `evaluate` takes them (or only --type); an answer is right when every
answer token and the closing token is the most likely one. Prints per type how many each model gets right and,
for two models, on how many questions only the first or only the second is right (the pairs a difference rests on).
Seeds 1 and 2 are the training and validation seeds and are refused.
"""
import argparse
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import export  # noqa: E402
import train as T  # noqa: E402


def load(spec):
    path, last = (spec[:-5], True) if spec.endswith(":last") else (spec, False)
    if os.path.isdir(path):
        return export.load_model_folder(path), path
    return export.load_checkpoint(path, last)[0], os.path.dirname(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="checkpoint[:last] or exported folder")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--type", choices=data.QTYPES, default=None, help="only this question type")
    a = ap.parse_args()
    if a.seed in (T.TRAIN_SEED, T.VALID_SEED):
        ap.error(f"seed {a.seed} is a training or validation seed")
    import sentencepiece as spm
    torch.set_num_threads(1)
    loaded = [load(m) for m in a.models]
    # every train.py run and export uses the same tokenizer (make_tokenizer.py); take the first model's
    sp = spm.SentencePieceProcessor(model_file=os.path.join(loaded[0][1], "tokenizer.model"))
    types = [a.type] * a.count if a.type else data.eval_types(a.count)
    right = collections.defaultdict(list)
    with torch.no_grad():
        for i, qtype in enumerate(types):
            oks = [bool(T.run_example(net, sp, a.seed, i, 1, qtype=qtype)[1][0][1]) for net, _ in loaded]
            right[qtype].append(oks)
    for qtype, rows in right.items():
        line = f"{qtype:9s}" + "".join(f"  {m}: {sum(r[k] for r in rows)}/{len(rows)}" for k, m in enumerate(a.models))
        if len(a.models) == 2:
            line += (f"  (only the first right: {sum(r[0] and not r[1] for r in rows)}, only the second: "
                     f"{sum(r[1] and not r[0] for r in rows)})")
        print(line, flush=True)


if __name__ == "__main__":
    main()
