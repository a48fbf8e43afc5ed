#!/usr/bin/python3
"""Where a --count-facts checkpoint's count questions look, next to "is there" questions.

  /usr/bin/python3 tools/demo_model/probe_count_lookup.py --ckpt build/demo_model/ckpt.pt [--count 200] [--seed 13]

For the first COUNT count questions and COUNT "is there" questions of SEED (not 1 or 2, the training and validation
seeds), teacher forced: the attention of the look-up head (head 0 of layer --dec-layer) at the first answer position,
summed over BOS, over the tokens of the asked objects (the tile tokens that carry the count for a count question,
the global-view tokens of the matching objects for "is there"), and over the other objects' tokens. Printed as
medians per question type, answer and whether the answer is right. An absent shape ("0", "no") should be looked up
on BOS, where nothing matches.
"""
import collections
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402


def main():
    ap = T.probe_command_line(__doc__, "a train.py checkpoint trained with --count-facts 1, or models/demo",
                              tokenizer=True)
    ap.set_defaults(count=200)
    a = ap.parse_args()
    net, sp, args = T.probe_load_count_facts(a)
    layer = args.get("dec_layer", 2)
    mass = collections.defaultdict(list)  # (type, answer, right) -> [(BOS, asked objects, other objects)]
    with torch.no_grad():
        for qtype in ("count", "exists"):
            for i in range(a.count):
                prefix, pmask, ids, tgt, _, _, (_, per_scene, focus, _, _) = T.example_batch(
                    net, sp, a.seed, 200000 + i, 1, qtype, count_facts=True)
                img_pos = torch.nonzero(pmask).squeeze(1).tolist()
                hs, extra = net.decode(prefix, pmask, net.model.tok_embeddings(ids), att=(layer, [0]))
                r = torch.nonzero(tgt[0] >= 0).squeeze(1)[0]
                want, got = sp.id_to_piece(int(tgt[0, r])), sp.id_to_piece(int(net.output(hs[0, r]).argmax()))
                p = extra["att"][0, 0, r].exp()
                asked = {img_pos[j] for _, idx, *_ in focus[0] for j in idx if j >= 0}
                objects = {img_pos[j] for j, v in enumerate(per_scene[0][4].tolist()) if 0 < v < T.data.TEXT_LABEL}
                other = sorted(objects - asked)
                mass[(qtype, want.lstrip("▁"), got == want)].append(
                    (float(p[0]), float(p[sorted(asked)].sum()), float(p[other].sum())))
    print(f"seed {a.seed}; head 0 of layer {layer} (0-based) at the first answer position; medians of the mass on")
    print("type    answer right  n    BOS   asked  other objects")
    for (qtype, want, ok), v in sorted(mass.items()):
        med = [statistics.median(x[k] for x in v) for k in range(3)]
        print(f"{qtype:7} {want:6} {'yes' if ok else 'no':5} {len(v):4} {med[0]:5.2f} {med[1]:6.2f} {med[2]:6.2f}")


if __name__ == "__main__":
    main()
