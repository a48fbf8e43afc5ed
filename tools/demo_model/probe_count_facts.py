#!/usr/bin/python3
"""Where a --count-facts checkpoint's counts go wrong: in the facts or in the answers?

  /usr/bin/python3 tools/demo_model/probe_count_facts.py --ckpt build/demo_model/ckpt.pt [--count 60] [--seed 13]

--ckpt may also be an exported folder of the shipped recipe (models/demo).

With --count-facts (train.py, "How it is trained"), every object token of the HD tiles learns its object's count from
a look-up (head --count-head, or each of --count-fact-heads, of the layer before --dec-layer) spread over the global
view's same-shape centres and BOS (with --count-ref gn the picture's glb_GN, here called BOS too), and a count
question copies that fact. On the count pictures of the first COUNT
count questions of SEED (not 1 or 2, the training and validation seeds), split into one-tile pictures and the rest,
this prints:
  - that look-up's mass per tile object token, for each head: BOS's share times (n + 1) (1 when even), and the mass
    on the tiles' own same-shape centre tokens (on a one-tile picture the tile is the global view again, so those
    are exact copies of the centres it should count) and on the token itself;
  - how often the look-up misses a centre (gives its object under 0.3 of BOS's mass), by how far the centre lies
    from the nearest edge of its global-view token: on its one centre token, and summed over the tokens its centre
    is spread over (centre_splat, as --soft-centres trains it);
  - on one-tile pictures, how that share's error splits between pictures, objects and tokens, whether a
    picture's error follows how near its nearest centre lies to a token edge or how large its objects are, and its
    mean by the objects' colour and shape;
  - the count each of those tokens reads after --dec-layer layers (the lm head among the digits) minus the true
    count, in all and by true count;
  - the first answer token of the question, teacher forced, against the true answer, and against the count most
    of the asked shape's tile tokens read (is a wrong answer a wrong fact, or a right fact copied wrong?).
"""
import collections
import math
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402


def quartiles(xs):
    if len(xs) < 2:
        return "n/a (fewer than 2 tokens)"
    return " / ".join(f"{x:.3f}" for x in statistics.quantiles(xs, n=4))


def error_spread(samples, pictures):
    """samples: (picture, object, log of BOS's share times (n + 1)) per tile object token; pictures: per picture,
    its nearest centre's distance from a token edge, its objects' mean radius in frame pixels, and the colour and
    shape of its first object. The standard deviations of that error between pictures, between the objects of a
    picture and between one object's tokens; how the picture's mean error correlates with the distance and the
    radius; its mean by colour and by shape."""
    pic, obj = collections.defaultdict(list), collections.defaultdict(list)
    for p, o, e in samples:
        pic[p].append(e)
        obj[(p, o)].append(e)
    pm = {k: statistics.fmean(v) for k, v in pic.items()}
    om = {k: statistics.fmean(v) for k, v in obj.items()}
    sd = lambda xs: statistics.pstdev(xs)  # noqa: E731
    parts = (sd([pm[p] for p, _, _ in samples]), sd([om[(p, o)] - pm[p] for p, o, _ in samples]),
             sd([e - om[(p, o)] for p, o, e in samples]))
    out = (f"s.d. of log(BOS share x (n + 1)) between pictures {parts[0]:.3f}, between a picture's objects "
           f"{parts[1]:.3f}, between an object's tokens {parts[2]:.3f}; a picture's mean error")
    if len(pm) > 2:
        for k, what in ((0, "its nearest centre's distance from a token edge"), (1, "its objects' radius")):
            corr = statistics.correlation([pm[p] for p in pm], [pictures[p][k] for p in pm])
            out += f", correlation with {what} {corr:.2f}"
    for k, what in ((2, "colour"), (3, "shape")):
        by = collections.defaultdict(list)
        for p in pm:
            by[pictures[p][k]].append(pm[p])
        out += f"; mean by {what}: " + ", ".join(f"{c} {statistics.fmean(v):+.2f} ({len(v)})"
                                                 for c, v in sorted(by.items()))
    return out


def main():
    a = T.probe_command_line(__doc__, "a train.py checkpoint trained with --count-facts 1, or models/demo",
                             tokenizer=True).parse_args()
    net, sp, args = T.probe_load_count_facts(a, ": use probe_counts.py")
    layer, look, heads = T.count_fact_layers(args)
    digits = torch.tensor([T.word_id(sp, str(d)) for d in range(10)])
    merged = T.merged_grid(net)
    n_glb = T.global_tokens(merged)
    share, copies, self_mass, missed, errs = (collections.defaultdict(list) for _ in range(5))
    fact_err, answers, wrong = collections.Counter(), collections.Counter(), collections.Counter()
    pictures, by_fact = {}, collections.Counter()
    with torch.no_grad():
        for i in range(a.count):
            prefix, pmask, ids, tgt, _, _, (scenes, per_scene, _, _, cfocus) = T.example_batch(
                net, sp, a.seed, 100000 + i, 1, "count", count_facts=True,
                count_ref_gn=T.count_ref_gn(args))
            sc, lab = scenes[0], per_scene[0]
            grid = "one tile" if lab.shape[1] == 2 * n_glb + 1 else "more tiles"
            img_pos = torch.nonzero(pmask).squeeze(1).tolist()
            ref = T.count_ref_position(args, img_pos, n_glb)  # (BOS, unless --count-ref gn)
            rows = [r for rs, _ in cfocus for r in rs]
            hs, extra = net.decode(prefix, pmask, net.model.tok_embeddings(ids), tap=layer,
                                   patt=[(look, heads, [img_pos[r] for r in rows])] if rows else None)
            obj, cen = lab[4].tolist(), lab[5].tolist()
            counts = T.shape_counts(sc)
            edge = T.centre_edge_distance(sc, 24, merged)
            splat = T.centre_splat(sc, 24, merged)
            centre_of = {v: img_pos[j] for j, v in enumerate(cen[:n_glb]) if v > 0}  # object + 1 -> its token
            if rows:
                for h, p in zip(heads, extra["patt"][0].exp()):
                    k = 0
                    for rs, idx in cfocus:  # one entry per object: its tile tokens, its shape's centres and BOS
                        n = len(idx) - 1
                        shape = sc.objects[obj[rs[0]] - 1]["shape"]
                        same = {m + 1 for m, o in enumerate(sc.objects) if o["shape"] == shape}
                        tile_centres = [img_pos[j] for j in range(n_glb, len(cen)) if cen[j] in same]
                        for r in rs:
                            for m in sorted(same):
                                b = "< 0.1" if edge[m - 1] < 0.1 else "0.1-0.2" if edge[m - 1] < 0.2 else ">= 0.2"
                                one = float(p[k, centre_of[m]]) if m in centre_of else 0.0
                                spread = float(p[k, [img_pos[j] for j, w in splat[m - 1][0] if w >= T.SPLAT_MIN]].sum())
                                missed[(h, b)].append((one < 0.3 * float(p[k, ref]), spread < 0.3 * float(p[k, ref])))
                            share[(grid, h)].append(float(p[k, ref]) * (n + 1))
                            if grid == "one tile":
                                errs[h].append((i, obj[r], math.log(float(p[k, ref]) * (n + 1))))
                            copies[(grid, h)].append(float(p[k, tile_centres].sum()) if tile_centres else 0.0)
                            self_mass[(grid, h)].append(float(p[k, img_pos[r]]))
                            k += 1
            if grid == "one tile":
                o0 = sc.objects[0]
                radius = statistics.fmean(o["r"] for o in sc.objects) * T.data.hd_scale(*sc.image.size)
                pictures[i] = (min(edge), radius, o0["colour"], o0["shape"])
            lens = net.output(net.model.norm(extra["tap"][pmask]))[:, digits]
            r = torch.nonzero(tgt[0] >= 0).squeeze(1)[0]
            got, want = sp.id_to_piece(int(net.output(hs[0, r]).argmax())), sp.id_to_piece(int(tgt[0, r]))
            asked = T.data.counted_shape(sc)[0] if want != "0" else None
            reads = collections.Counter()  # the facts of the asked shape's tile tokens
            for j in range(n_glb, len(obj)):
                if 0 < obj[j] < T.data.TEXT_LABEL:
                    fact = int(lens[j].argmax())
                    fact_err[(grid, counts[obj[j] - 1], fact - counts[obj[j] - 1])] += 1
                    if sc.objects[obj[j] - 1]["shape"] == asked:
                        reads[str(fact)] += 1
            answers[(grid, got == want)] += 1
            if got != want:
                wrong[(grid, f"{want}->{got}")] += 1
            if reads:  # (not for absent shapes, which have no facts to copy)
                most = reads.most_common(1)[0][0]
                by_fact[(grid, most == want, got == want, got == most)] += 1
    print(f"{a.count} count questions of seed {a.seed}; look-up: head(s) {heads} of layer {look}; facts after "
          f"{layer} layers")
    for h in heads:
        print(f"head {h}: centres missed (under 0.3 of BOS's mass) by distance from a token edge, on the centre token "
              "/ summed over its spread:")
        for b in ("< 0.1", "0.1-0.2", ">= 0.2"):
            v = missed[(h, b)]
            if v:
                print(f"  {b:8} {sum(x for x, _ in v)}/{len(v)} / {sum(y for _, y in v)}/{len(v)}")
    for h in heads:
        if len(errs[h]) > 2:
            print(f"head {h}, one-tile pictures: " + error_spread(errs[h], pictures))
    for grid in ("one tile", "more tiles"):
        if not answers[(grid, True)] + answers[(grid, False)]:
            continue
        print(f"{grid}:")
        for h in heads:
            g = (grid, h)
            print(f"  head {h}: look-up quartiles over {len(share[g])} tile object tokens: BOS share x (n + 1) "
                  f"{quartiles(share[g])}; on the tiles' same-shape centres {quartiles(copies[g])}; "
                  f"on itself {quartiles(self_mass[g])}")
        diffs = collections.Counter()
        for (g, _, e), c in fact_err.items():
            if g == grid:
                diffs[e] += c
        print("  fact read minus true count: " + ", ".join(f"{e:+d}: {c}" for e, c in sorted(diffs.items())))
        for n in sorted({n for g, n, _ in fact_err if g == grid}):
            print(f"    true count {n}: " + ", ".join(f"{e:+d}: {c}" for (g, m, e), c in sorted(fact_err.items())
                                                   if g == grid and m == n))
        print(f"  answers right {answers[(grid, True)]}/{answers[(grid, True)] + answers[(grid, False)]}; wrong: "
              + ", ".join(f"{w} x{c}" for (g, w), c in sorted(wrong.items()) if g == grid))
        f = {k[1:]: c for k, c in by_fact.items() if k[0] == grid}
        print(f"  present shapes, against the count most of their tile tokens read: fact right, answer right "
              f"{f.get((True, True, True), 0)}; fact right, answer wrong {f.get((True, False, False), 0)}; fact "
              f"wrong, answer right {f.get((False, True, False), 0)}; fact wrong, answer copies it "
              f"{f.get((False, False, True), 0)}; both wrong, differently {f.get((False, False, False), 0)}")


if __name__ == "__main__":
    main()
