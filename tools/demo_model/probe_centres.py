#!/usr/bin/python3
"""Where does a trained checkpoint's vision tower miss object centres on count pictures?

  /usr/bin/python3 tools/demo_model/probe_centres.py --ckpt build/demo_model/ckpt.pt [--count 100] [--seed 13]

Reads the training-only centre flag (train.AuxHeads.centre, on the projected image tokens) at each object's centre
token (train.dense_labels) of the first COUNT count pictures of SEED (data.make_example; not 1 or 2, the training
and validation seeds), and counts a centre as found when the flag's probability is above 0.5. Prints the found
share for one-tile pictures by how close the centre is to its token's edge, and for wider and taller pictures in
the global view and in the HD tiles. Counts are read off these centres (train.question_focus), so every miss is an
off-by-one. For a checkpoint trained with --count-density, also how often that head's count (1 / its null slot's
share - 1, per present shape) is right, and its median by the true count. For one trained with
--centre-mass-weight, the spread of that head's log centre mass per object (train.centre_mass_loss; 0 when exact)
in the global view, on one-tile pictures and the rest, and between pictures.
"""
import collections
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model as M  # noqa: E402
import train as T  # noqa: E402


def main():
    a = T.probe_command_line(__doc__, "a train.py checkpoint (it holds the training-only heads)").parse_args()
    net, ck = T.probe_load(a)
    if "aux" not in ck:
        sys.exit(f"{a.ckpt} is an exported model: it has no training-only heads to probe")
    args = ck.get("args", {})
    aux = T.AuxHeads(ck["config"]["hidden_size"], bool(args.get("count_density")),
                     args.get("centre_mass_weight", 0) > 0)
    aux.load_state_dict(ck["aux"])
    merged = T.merged_grid(net)
    n_glb = T.global_tokens(merged)
    cell = 560 // merged
    found = collections.defaultdict(lambda: [0, 0])
    density = collections.defaultdict(list)  # (one tile?, count) -> the density head's estimates
    mass = collections.defaultdict(list)  # one tile? -> (picture, the mass head's log mass of a global-view centre)
    with torch.no_grad():
        for i in range(a.count):
            scenes, _ = data.make_example(a.seed, 100000 + i, qtype="count", scenes=True)
            sc = scenes[0]
            W, H = sc.image.size
            img = net.encode_image(*M.preprocess(sc.image, 24))
            lab = T.dense_labels(sc, 24, merged)
            p = aux.centre(img).softmax(-1)[:, 1]
            if hasattr(aux, "density"):  # (--count-density) its count: 1 / (the null slot's share) - 1
                null = torch.cat([aux.density_null[None], aux.density(T.rms_normed(img[:n_glb]))]).softmax(0)[0]
                for s_, n in collections.Counter(o["shape"] for o in sc.objects).items():
                    density[(max(W, H) <= 560, n)].append(1 / float(null[data.SHAPES.index(s_)]) - 1)
            centre = lab[5].tolist()
            one_tile = max(W, H) <= 560
            if hasattr(aux, "mass"):  # (--centre-mass-weight)
                score = aux.mass(T.rms_normed(img)).squeeze(-1)
                for g, _ in T.centre_splat(sc, 24, merged):
                    idx = [j for j, w in g if w >= T.SPLAT_MIN]
                    mass[one_tile].append((i, float(torch.logsumexp(score[idx], 0))))
            s = 560 / max(W, H)  # one tile: the picture's scale in the view
            for k, o in enumerate(sc.objects):
                for view, lo, hi in (("global view", 0, n_glb), ("HD tiles", n_glb + 1, lab.shape[1])):
                    j = [x for x in range(lo, hi) if centre[x] == k + 1]
                    if len(j) != 1:  # two centres in one token: the label keeps one
                        continue
                    if one_tile:
                        if view != "global view":
                            continue
                        fx, fy = (o["cx"] * s) % cell / cell, (o["cy"] * s) % cell / cell
                        edge = min(fx, 1 - fx, fy, 1 - fy)
                        key = "one tile, centre " + ("within 0.1 of a token edge" if edge < 0.1 else
                                                     "0.1-0.2 from an edge" if edge < 0.2 else "farther in")
                    else:
                        key = "wider or taller, " + view
                    f = found[key]
                    f[0] += int(p[j[0]] > 0.5)
                    f[1] += 1
    for key in sorted(found):
        k, n = found[key]
        print(f"{key:45s} found {k}/{n} ({100 * k / max(n, 1):.0f}%)")
    if density:
        right = sum(round(e) == n for (_, n), v in density.items() for e in v)
        print(f"--count-density head: count right for {right}/{sum(map(len, density.values()))} present shapes; "
              "median estimate by count:")
        for (one, n), v in sorted(density.items()):
            print(f"  {'one tile' if one else 'wider or taller'}, {n}: {statistics.median(v):.2f} ({len(v)})")
    for one, v in sorted(mass.items(), reverse=True):
        by_pic = collections.defaultdict(list)
        for i, e in v:
            by_pic[i].append(e)
        es = [e for _, e in v]
        print(f"--centre-mass-weight head, {'one tile' if one else 'wider or taller'}: log mass per object mean "
              f"{statistics.fmean(es):+.3f}, s.d. {statistics.pstdev(es):.3f} ({len(es)} objects); s.d. of the "
              f"picture means {statistics.pstdev([statistics.fmean(x) for x in by_pic.values()]):.3f}")


if __name__ == "__main__":
    main()
