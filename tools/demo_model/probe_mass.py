#!/usr/bin/python3
"""How exactly could a --count-facts model's look-up weigh each object, and how exactly does it?

  /usr/bin/python3 tools/demo_model/probe_mass.py --ckpt build/demo_model/ckpt.pt [--count 300] [--seed 13]

--ckpt may also be an exported folder of the shipped recipe (models/demo).

A count fact is read from BOS's share in a look-up spread over the global view's same-shape centres (train.py,
--count-facts; with --count-ref gn the picture's glb_GN takes BOS's place, and is called BOS here): every object
should get the same mass as BOS, summed over the tokens its centre is spread over
(train.centre_splat). On the one-tile count pictures of the first COUNT count questions of SEED this prints:
  - what a linear read-out could do: a ridge regression from the RMS-normed projected tokens, and from the input of
    the look-up's layer, to each global-view token's log centre weight (floored at 0.02), fitted on the first two
    thirds of the pictures; on the rest, the s.d. of each object's log summed exp over its spread (0 when exact)
    and of its picture's mean;
  - what the look-up does, per supervised head: the log of an object's mass over BOS's, split into a part that
    follows the asking tile token (query), a part that follows the object (its centre's keys) and the rest, as
    standard deviations; and how BOS's share errs in each head against the first, per token and per picture.
"""
import collections
import math
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402

FLOOR = 0.02


def ridge_mass(xs, ws, objs, lam=1e-2):
    """xs: per picture [tokens, d] features; ws: [tokens] centre weights; objs: per picture, each object's spread.
    (s.d. of an object's predicted log mass, s.d. of the picture means) on the held-out last third."""
    n = len(xs) * 2 // 3
    a = torch.cat([torch.cat(xs[:n]), torch.ones(sum(len(x) for x in xs[:n]), 1)], 1)
    t = torch.log(torch.cat(ws[:n]).clamp(min=FLOOR))
    w = torch.linalg.solve(a.T @ a + lam * torch.eye(a.shape[1]), a.T @ t)
    per, pics = [], []
    for x, ob in zip(xs[n:], objs[n:]):
        pred = torch.cat([x, torch.ones(len(x), 1)], 1) @ w
        e = [float(torch.logsumexp(pred[idx], 0)) for idx in ob]
        per += e
        pics.append(statistics.fmean(e))
    return statistics.pstdev(per), statistics.pstdev(pics)


def main():
    a = T.probe_command_line(__doc__, "a train.py checkpoint trained with --count-facts 1, or models/demo",
                             tokenizer=True).parse_args()
    net, sp, args = T.probe_load_count_facts(a, ": use probe_counts.py")
    _, look, heads = T.count_fact_layers(args)
    merged = T.merged_grid(net)
    n_glb = T.global_tokens(merged)
    seen = {}

    def keep_input(module, inputs, output):  # (its first call in a decode is the prefix's)
        seen.setdefault("x", inputs[0])

    net.model.layers[look].attention_norm.register_forward_hook(keep_input)
    proj, inp, ws, objs = [], [], [], []
    parts = collections.defaultdict(list)  # (head, "query" | "centre" | "rest") -> effects
    err = collections.defaultdict(list)  # head -> per tile token, log error of BOS's share
    pic_err = collections.defaultdict(list)  # head -> per picture, its mean
    with torch.no_grad():
        for i in range(a.count):
            seen.clear()
            prefix, pmask, ids, _, _, _, (scenes, per_scene, _, _, cfocus) = T.example_batch(
                net, sp, a.seed, 100000 + i, 1, "count", count_facts=True,
                count_ref_gn=T.count_ref_gn(args))
            sc, lab = scenes[0], per_scene[0]
            rows = [r for rs, _ in cfocus for r in rs]
            if lab.shape[1] != 2 * n_glb + 1 or not rows:
                continue
            pos = torch.nonzero(pmask).squeeze(1)
            ref = T.count_ref_position(args, pos.tolist(), n_glb)  # (BOS, unless --count-ref gn)
            _, extra = net.decode(prefix, pmask, net.model.tok_embeddings(ids),
                                  patt=[(look, heads, pos[rows].tolist())])
            glb = [g for g, _ in T.centre_splat(sc, 24, merged)]  # each object's spread in the global view
            splat = [[j for j, w in g if w >= T.SPLAT_MIN] for g in glb]
            w = torch.zeros(n_glb)
            for g in glb:
                for j, x in g:
                    w[j] += x
            proj.append(T.rms_normed(prefix[pos[:n_glb]]))
            inp.append(T.rms_normed(seen["x"][pos[:n_glb]]))
            ws.append(w)
            objs.append(splat)
            obj = lab[4].tolist()
            for h, lp in zip(heads, extra["patt"][0]):
                k, e = 0, []
                for rs, idx in cfocus:
                    shape = sc.objects[obj[rs[0]] - 1]["shape"]
                    same = [m for m, o in enumerate(sc.objects) if o["shape"] == shape]
                    m_ = torch.stack([torch.stack([torch.logsumexp(lp[k + q, pos[splat[m]]], 0) for m in same])
                                      for q in range(len(rs))]) - lp[k:k + len(rs), ref:ref + 1]
                    e += (lp[k:k + len(rs), ref] + math.log(len(idx))).tolist()
                    k += len(rs)
                    if m_.shape[0] > 1 and m_.shape[1] > 1:
                        mu, qe, ce = m_.mean(), m_.mean(1) - m_.mean(), m_.mean(0) - m_.mean()
                        parts[(h, "query")] += qe.tolist()
                        parts[(h, "centre")] += ce.tolist()
                        parts[(h, "rest")] += (m_ - mu - qe[:, None] - ce[None, :]).flatten().tolist()
                err[h] += e
                pic_err[h].append(statistics.fmean(e))
    print(f"{len(ws)} one-tile count pictures of seed {a.seed}; look-up: head(s) {heads} of layer {look}")
    for what, xs in (("the projected tokens", proj), (f"the input of layer {look}", inp)):
        per, pic = ridge_mass(xs, ws, objs)
        print(f"a linear read-out of the log centre mass from {what}: s.d. per object {per:.3f}, "
              f"between pictures {pic:.3f}")
    for h in heads:
        print(f"head {h}: log(object's mass / BOS's) s.d. by query {statistics.pstdev(parts[(h, 'query')]):.3f}, "
              f"by centre {statistics.pstdev(parts[(h, 'centre')]):.3f}, rest "
              f"{statistics.pstdev(parts[(h, 'rest')]):.3f}; BOS's share's log error s.d. per token "
              f"{statistics.pstdev(err[h]):.3f}, per picture {statistics.pstdev(pic_err[h]):.3f}" +
              ("" if h == heads[0] else f"; correlation with head {heads[0]}: per token "
               f"{statistics.correlation(err[heads[0]], err[h]):.2f}, per picture "
               f"{statistics.correlation(pic_err[heads[0]], pic_err[h]):.2f}"))


if __name__ == "__main__":
    main()
