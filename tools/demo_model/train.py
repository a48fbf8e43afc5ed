#!/usr/bin/python3
"""Trains the demo model from scratch on procedurally generated pictures (data.py, seed 1).

  /usr/bin/python3 tools/demo_model/train.py --work build/demo_model

Two stages, one schedule (AdamW, warm-up then cosine decay; the decoder at --decoder-lr-mult times the rate):

  1. Vision warm-up (--vision-steps): only the vision tower, the 2x2 merge and the projector, trained on
     training-only dense labels of crowded 560 x 560 pictures (data.vision_scene), --vision-examples per worker and
     step: under every merged image token, the colour, the shape, the letter and the word, whether an object's
     centre is there, and which half of the view the token is in (see dense_labels and AuxHeads). Learning what a
     shape is from answers alone is slow: from these labels the vision tower learns it in about ten minutes.
  2. Questions: each worker step takes one picture (or a pair, for comparisons) and up to --questions questions
     about it. The image part of the prompt is the same for every question (it comes first), so the decoder runs
     it once and the questions continue it as a batch (model.IXCDemo.decode), with Partial LoRA on the image
     rows. The loss is the cross-entropy of the answer tokens and the closing [UNUSED_TOKEN_145], plus six
     training-only terms that spell out find-then-copy (run_example): the dense labels on the projector's outputs
     (--aux-weight); the answer words true of each image token (its colour, shape, place, image), read from the
     decoder's residual stream after --dec-layer layers through the real lm head (--dec-weight); and the
     attention of that layer's first heads, at the answer positions, on the tokens the question is about
     (--att-weight; for counts the HD-tile tokens of the asked shape, which have learnt how many objects of their
     shape the picture has, --count-facts); that count again among the digits alone (--count-fact-weight); every
     global-view token's own half through the lm head (--side-weight), without which left/right is at chance; and
     the answer right after the look-up layer (--copy-weight; for "same background?" both backgrounds). The decoder
     gets its own warm-up when this stage begins, and learns at half the vision rate: a faster decoder rate was
     much slower to learn look-ups (a decoder-only probe on perfect image tokens). The vision tower's embeddings
     and first layer stop learning here (--freeze-vit-layers), which makes a question step about a sixth faster;
     the last --count-phase steps draw more count pictures (--phase-count-frac), which counts learn from most once
     the other types are learnt. The model exported is the mean of the weights over the last --average-last steps
     (two pictures a step leave the weights of any one step noisy; the mean counts better). --swa-steps adds steps
     at a constant, higher rate after the schedule, to average those (tried, not the default; see README.md).

Data is a function of the step: worker r's example e of question step s is data.make_example(1, (s * world + r) *
examples_per_step + e) of the kind and tile grid example_kind draws for (s, e) (--same-kind), and of warm-up step
s data.vision_scene(1, (s * world + r) * vision_examples + e). Every --save-every steps the model, the optimiser,
the step and that mean go to WORK/ckpt.pt (atomically); running the same command again continues from there.

--world worker processes (default 2) each take their own pictures with one thread and sum their gradients over
loopback gloo (--device cuda puts every worker's model on the one GPU; see README.md, it does not pay for a model
this small): on a shared 2-core machine, OpenMP threads that wait for each other are several times slower than
single-threaded processes. What makes the schedule fit in an hour there (README.md, "Fitting the hour"): the
forward passes run under bfloat16 autocast (--bf16), the workers' pictures of a step are of one kind and grid so
that neither waits long for the other (--same-kind), each worker draws its next step's pictures while the
gradients are being summed, and PyTorch uses its AVX-512 kernels where the CPU has them.
"""
import argparse
import collections
import copy
import math
import os
import random
import sys
import time

import numpy as np

if "ATEN_CPU_CAPABILITY" not in os.environ and os.path.exists("/proc/cpuinfo"):
    # Debian's PyTorch picks its AVX2 kernels on CPUs with AVX-512 too; its AVX-512 ones are a few per cent faster
    _flags = open("/proc/cpuinfo").read()
    if all(f in _flags for f in (" avx512f", " avx512bw", " avx512vl", " avx512dq")):
        os.environ["ATEN_CPU_CAPABILITY"] = "avx512"
import torch  # noqa: E402 (after the kernel choice above, which torch reads when it loads)
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model as M  # noqa: E402

TRAIN_SEED = 1
VALID_SEED = 2


# Training-only dense labels for every merged image token (never exported; see dense_labels): which colour is under
# it, which shape, which letter and word of a written word, and more. They make the vision tower and the projector
# carry per-place colour/shape/glyph information early, which the question answering then learns to read; without
# them the decoder sits on the answer priors for a long time.
COLOUR_CLASSES = list(data.COLOURS) + list(data.BACKGROUNDS) + ["padding"]
SHAPE_CLASSES = ["none"] + data.SHAPES
WORD_CLASSES = ["none"] + data.WORDS
LETTER_CLASSES = ["none"] + sorted(set("".join(data.WORDS)))  # a letter is a local thing to see; a word is not


class AuxHeads(nn.Module):
    def __init__(self, d, density=False, mass=False):
        super().__init__()
        self.colour = nn.Linear(d, len(COLOUR_CLASSES))
        self.shape = nn.Linear(d, len(SHAPE_CLASSES))
        self.letter = nn.Linear(d, len(LETTER_CLASSES))
        self.word = nn.Linear(d, len(WORD_CLASSES))
        self.centre = nn.Linear(d, 2)  # does an object's centre fall in this token (one token per object)
        self.xhalf = nn.Linear(d, 2)
        self.yhalf = nn.Linear(d, 2)
        self.dec_centre = nn.Linear(d, 2)  # the same, read from the decoder's residual stream at --dec-layer
        if density:  # (--count-density; created last, so that the other heads start as they did without it)
            self.density = nn.Linear(d, len(data.SHAPES))
            self.density_null = nn.Parameter(torch.zeros(len(data.SHAPES)))
        if mass:  # (--centre-mass-weight; created last too)
            self.mass = nn.Linear(d, 1)


CENTRE_WEIGHT = torch.tensor([1.0, 5.0])  # an object has one centre token per view and many others


def merged_grid(net):
    """Merged image tokens per side of a view: patches per side / 2."""
    vc = net.config["vision_config"]
    return vc["image_size"] // vc["patch_size"] // 2


def global_tokens(merged):
    """Image tokens of the global view, which come first: merged rows of merged tokens and a sub_GN separator."""
    return merged * (merged + 1)


def is_text(v):
    """A label-map value that marks a letter of the written word (TEXT_LABEL + i); 255 is padding."""
    return data.TEXT_LABEL <= v < 255


_word_ids = {}


def word_id(sp, w):
    """The first token of an answer word (cached: fact_targets asks for every image token of every step)."""
    key = (id(sp), w)
    if key not in _word_ids:
        _word_ids[key] = sp.encode(w)[0]
    return _word_ids[key]


def dense_labels(scene, hd_num, merged, tile=560):
    """[8, image tokens] in the order of IXCDemo.encode_image's output (-100 on the GN separators): class ids of
    colour, shape, letter and word; the raw label-map value (0 background, 255 padding, k + 1 object k,
    TEXT_LABEL + i letter i; -1 separators); `centre` (k + 1 where object k's centre falls in the token, else 0);
    `xhalf` / `yhalf` (the token's half of its view)."""
    lab = np.asarray(M.hd_transform(scene.label_map(), hd_num, tile, Image.NEAREST, 255))
    Hp, Wp = lab.shape
    rows, cols = Hp // tile, Wp // tile

    def cells(ch, cw):
        """Per cell of ch x cw pixels: the object (or word) covering most of it if it covers at least 15%,
        else background (0) or padding (255), whichever covers more."""
        R, C = Hp // ch, Wp // cw
        c = lab.reshape(R, ch, C, cw).transpose(0, 2, 1, 3).reshape(R, C, ch * cw)
        best = np.where((c == 255).mean(-1) > (c == 0).mean(-1), 255, 0)
        best_frac = np.zeros((R, C))
        for v in np.unique(lab):
            if v in (0, 255):
                continue
            f = (c == v).mean(-1)
            take = (f >= 0.15) & (f > best_frac)
            best = np.where(take, v, best)
            best_frac = np.where(take, f, best_frac)
        return best

    # object centres in the padded frame (hd_transform scales the picture and pads at the bottom / right)
    W, H = scene.image.size
    trans, new_w, new_h, _ = M.hd_geometry(W, H, hd_num, tile)
    sx, sy = (new_h / W, new_w / H) if trans else (new_w / W, new_h / H)

    def centres(ch, cw):
        g = np.zeros((Hp // ch, Wp // cw), dtype=np.int64)
        for k, o in enumerate(scene.objects):
            g[min(int(o["cy"] * sy // ch), g.shape[0] - 1), min(int(o["cx"] * sx // cw), g.shape[1] - 1)] = k + 1
        return g

    def with_gn(grid):
        g = np.full((grid.shape[0], grid.shape[1] + 1), -1, dtype=np.int64)
        g[:, :-1] = grid
        return g.reshape(-1)

    cell = tile // merged
    seq = np.concatenate([with_gn(cells(Hp // merged, Wp // merged)), [-1], with_gn(cells(cell, cell))])
    centre = np.concatenate([with_gn(centres(Hp // merged, Wp // merged)), [-1], with_gn(centres(cell, cell))])
    centre[centre < 0] = -100
    # which half of its view each token is in (0 left/top, 1 right/bottom): the vision tower keeps where things are,
    # which position questions read off the global view (padding is at the bottom or the right, and they ask
    # left/right of pictures at least as wide as high and top/bottom of pictures at least as high as wide)
    half = merged // 2

    def halves(rows, cols, axis):
        rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        return ((cc if axis == "x" else rr) % merged >= half).astype(np.int64)

    xhalf, yhalf = (np.concatenate([with_gn(halves(merged, merged, ax)), [-1],
                                    with_gn(halves(rows * merged, cols * merged, ax))]) for ax in "xy")
    xhalf[xhalf < 0] = -100
    yhalf[yhalf < 0] = -100
    colour = np.full(seq.shape, -100)
    shape = np.full(seq.shape, -100)
    word = np.full(seq.shape, -100)
    letter = np.full(seq.shape, -100)
    for v in np.unique(seq):
        m = seq == v
        if v == -1:
            continue
        # shape and word labels only where there is a shape or a word: background tokens would swamp the
        # few foreground ones (the colour label already tells foreground from background)
        if v == 255:
            colour[m] = COLOUR_CLASSES.index("padding")
        elif v == 0:
            colour[m] = COLOUR_CLASSES.index(scene.bg)
        elif is_text(v):
            word[m] = WORD_CLASSES.index(scene.word)
            letter[m] = LETTER_CLASSES.index(scene.word[v - data.TEXT_LABEL])
        else:
            o = scene.objects[v - 1]
            colour[m], shape[m] = COLOUR_CLASSES.index(o["colour"]), SHAPE_CLASSES.index(o["shape"])
    return torch.from_numpy(np.stack([colour, shape, letter, word, seq, centre, xhalf, yhalf]))


# a token that gets less of an object's spread centre (centre_splat) than this is not part of its count look-up
SPLAT_MIN = 0.05


def centres_in_frame(scene, hd_num, tile=560):
    """((Wp, Hp) the padded HD frame's size, [(cx, cy)] every object's centre in its pixels)."""
    W, H = scene.image.size
    trans, new_w, new_h, pad_h = M.hd_geometry(W, H, hd_num, tile)
    Wp, Hp = (pad_h, new_w) if trans else (new_w, pad_h)
    sx, sy = (new_h / W, new_w / H) if trans else (new_w / W, new_h / H)
    return (Wp, Hp), [(o["cx"] * sx, o["cy"] * sy) for o in scene.objects]


def centre_edge_distance(scene, hd_num, merged, tile=560):
    """Per object, how far its centre lies from the nearest edge of its global-view token, in tokens (0 to 0.5)."""
    (Wp, Hp), cs = centres_in_frame(scene, hd_num, tile)
    out = []
    for cx, cy in cs:
        u, v = cx / (Wp / merged) % 1, cy / (Hp / merged) % 1
        out.append(min(u, 1 - u, v, 1 - v))
    return out


def centre_splat(scene, hd_num, merged, tile=560):
    """Per object, [(token index, weight)] in encode_image's order: its centre spread bilinearly over the (up to 4)
    nearest token centres of the global view, and the same over the HD tiles; each view's weights sum to 1.
    The one-token centre label (dense_labels) flips from one token to the next as a centre crosses a token edge:
    every centre the vision tower of an earlier model missed on one-tile count pictures lies within a tenth of a
    token of an edge, where it sees both sides about equally. A weight that changes smoothly with the position can
    be learnt there, and spread attention on it still sums to one per object (see question_focus)."""
    (Wp, Hp), cs = centres_in_frame(scene, hd_num, tile)
    n_glb = global_tokens(merged)

    def view(cx, cy, R, C, cw, ch, base):
        """Bilinear weights of point (cx, cy) (padded-frame pixels) on an R x C token grid (rows with a separator)."""
        u, v = cx / cw - 0.5, cy / ch - 0.5  # in token-centre units
        c0, r0 = math.floor(u), math.floor(v)
        fu, fv = u - c0, v - r0
        w = collections.Counter()
        for dr, wr in ((0, 1 - fv), (1, fv)):
            for dc, wc in ((0, 1 - fu), (1, fu)):
                r, c = min(max(r0 + dr, 0), R - 1), min(max(c0 + dc, 0), C - 1)  # off the grid: the edge token
                if wr * wc > 0:
                    w[base + r * (C + 1) + c] += wr * wc
        return list(w.items())

    out = []
    for cx, cy in cs:
        g = view(cx, cy, merged, merged, Wp / merged, Hp / merged, 0)
        t = view(cx, cy, Hp // tile * merged, Wp // tile * merged, tile / merged, tile / merged, n_glb + 1)
        out.append((g, t))
    return out


def shape_counts(scene):
    """Per object of `scene`, how many objects of its shape the picture has (the count fact of its tile tokens)."""
    n = collections.Counter(o["shape"] for o in scene.objects)
    return [n[o["shape"]] for o in scene.objects]


def fact_targets(sp, scenes, labels_per_scene, n_glb, count_facts=False):
    """Per image token, a distribution over the vocabulary spread evenly on the answer words that are true of it: its
    colour (or the background's), its shape, where its object is (left/right, top/bottom; global view), which image it
    is in (for two-image prompts) and the written word; with count_facts, on the HD tiles' tokens of an object, how many
    objects of its shape the picture has (count_fact_focus says where that is looked up). The decoder's residual stream
    part-way up (--dec-layer) is read through the real norm and lm head and trained towards these, so that later layers
    can find an object by the words of the question and copy the answer. Returns (targets [T, V], mask [T]: False on
    rows without facts, padding and separators)."""
    V = sp.get_piece_size()
    out = []
    for i, (sc, lab) in enumerate(zip(scenes, labels_per_scene)):
        W, H = sc.image.size
        T = lab.shape[1]
        counts = shape_counts(sc)

        def facts(v, glb):
            words = []
            if v == 0:
                words.append(sc.bg)
            elif 0 < v < data.TEXT_LABEL:
                o = sc.objects[v - 1]
                words += [o["colour"], o["shape"]]
                # where it is, on the global view, which shows the whole picture, and only along the axis the view
                # spans without padding (the one position questions ask about): elsewhere it cannot be told
                if glb and W >= H:
                    words.append("left" if o["cx"] < W / 2 else "right")
                if glb and H >= W:
                    words.append("top" if o["cy"] < H / 2 else "bottom")
                if count_facts and not glb:
                    words.append(str(counts[v - 1]))
            elif is_text(v):
                words.append(sc.word)
            if words and len(scenes) > 1:
                words.append(str(i + 1))  # "Image1" is "Image" "1": the digit is the telling token
            return [(word_id(sp, w), 1.0 / len(words)) for w in words]

        # one scatter for the whole view instead of a tensor op per token and word
        known, rows, cols, vals = {}, [], [], []
        for j, v in enumerate(lab[4].tolist()):
            key = (v, j < n_glb)
            if key not in known:
                known[key] = facts(*key)
            for c, x in known[key]:
                rows.append(j)
                cols.append(c)
                vals.append(x)
        t = torch.zeros(T, V)
        if rows:
            t.index_put_((torch.tensor(rows), torch.tensor(cols)), torch.tensor(vals), accumulate=True)
        out.append(t)
    t = torch.cat(out, 0)
    return t, t.sum(-1) > 0


def question_focus(qtype, question, scenes, per_scene, offsets, merged, count_tiles=False, splats=None,
                   count_facts=False):
    """Which image tokens answering `question` needs, as [(head slot, label indices)]: the asked object's tokens of the
    global view (all objects matching the question's colour and shape words), the written word, the background; for
    counts the matching objects' centre tokens plus BOS (index -1), so that the head's output grows with the count (with
    count_tiles the centres in the HD tiles, where shapes are full size: the vision tower finds 89% of them there on
    wide and tall pictures against 50% in the global view); BOS alone when nothing matches. A two-image "same
    background?" question puts each image's background on its own head. With `splats` (centre_splat per scene) a count
    looks up each matching centre's spread instead of its one token: (slot, indices, weights) with BOS at weight 1, for
    the share of attention each should get. With count_facts a count looks up the matching objects' tokens in the HD
    tiles, which carry the count (fact_targets), like any other fact (with or without splats); BOS when nothing
    matches."""
    n_glb = global_tokens(merged)
    words = question.replace("?", " ").replace(".", " ").split()
    colours = {w for w in words if w in data.COLOURS}
    shapes = {w for w in words if w in data.SHAPES} | {s for s, p in data.PLURAL.items() if p in words}

    def tokens(i, pred):
        obj = per_scene[i][4][:n_glb]
        return [offsets[i] + j for j, v in enumerate(obj.tolist()) if pred(v)]

    def match(o):
        return (not colours or o["colour"] in colours) and (not shapes or o["shape"] in shapes)

    if "background" in words:
        if len(scenes) > 1:
            return [(0, tokens(0, lambda v: v == 0)), (1, tokens(1, lambda v: v == 0))]
        return [(0, tokens(0, lambda v: v == 0))]
    if qtype == "word" or "word" in words or "text" in words:
        return [(0, tokens(0, is_text))]
    out, wts = [], collections.Counter()
    for i, sc in enumerate(scenes):
        ids = {k + 1 for k, o in enumerate(sc.objects) if match(o)}
        if qtype == "count" and count_facts:
            obj = per_scene[i][4].tolist()
            out += [offsets[i] + j for j, v in enumerate(obj) if v in ids and j >= n_glb]
        elif qtype == "count" and splats is not None:
            for k in sorted(ids):
                for j, w in splats[i][k - 1][1 if count_tiles else 0]:
                    wts[offsets[i] + j] += w
        elif qtype == "count":
            cen = per_scene[i][5].tolist()
            out += [offsets[i] + j for j, v in enumerate(cen) if v in ids and (j >= n_glb) == count_tiles]
        else:
            out += tokens(i, lambda v: v in ids)
    if wts:
        return [(0, list(wts) + [-1], list(wts.values()) + [1.0])]
    if (qtype == "count" and not count_facts) or not out:
        out.append(-1)
    return [(0, out)]


def count_fact_focus(scenes, per_scene, offsets, merged, max_rows=64, splats=None, ref_gn=False):
    """Where the HD tiles' object tokens find their count (fact_targets with count_facts): [(label indices of up to
    max_rows such tokens (0: all), evenly spaced, [the global view's centre token of each object of the same shape,
    as a one-index list, ..., [-1] for BOS])], one entry per object. The global view comes first, so every tile
    token can see all of it; a head that puts the same mass on each of those lists puts 1 / (n + 1) on BOS, as the
    question-level count look-up does, but here every tile token of every object is a training example, not one
    answer per question. With `splats` (centre_splat per scene) an object's list is the tokens its centre is spread
    over (weight at least SPLAT_MIN), so that a centre near a token edge may be split between the tokens beside it:
    the one-token label flips there, and the look-up of an earlier model missed a third of such centres. With
    ref_gn the last list is the picture's glb_GN separator instead of BOS (see --count-ref)."""
    n_glb = global_tokens(merged)
    groups = []
    for i, (sc, lab) in enumerate(zip(scenes, per_scene)):
        obj, cen = lab[4].tolist(), lab[5][:n_glb].tolist()
        for k, o in enumerate(sc.objects):
            mine = [offsets[i] + j for j in range(n_glb, len(obj)) if obj[j] == k + 1]
            same = {m + 1 for m, p in enumerate(sc.objects) if p["shape"] == o["shape"]}
            if splats is None:
                centres = [[offsets[i] + j] for j, v in enumerate(cen) if v in same]
            else:
                centres = [[offsets[i] + j for j, w in splats[i][m - 1][0] if w >= SPLAT_MIN] for m in sorted(same)]
            if mine and centres:
                groups.append((mine, centres + [[offsets[i] + n_glb] if ref_gn else [-1]]))
    flat = [(r, g) for g, (mine, _) in enumerate(groups) for r in mine]
    if 0 < max_rows < len(flat):
        flat = [flat[t * len(flat) // max_rows] for t in range(max_rows)]
    rows = collections.defaultdict(list)
    for r, g in flat:
        rows[g].append(r)
    return [(rows[g], groups[g][1]) for g in sorted(rows)]


def with_absent_count(qs, scene, rng, prob):
    """With probability `prob`, a count picture's last follow-up question becomes a count of a shape that is not
    in the picture (answer "0"). data.py asks that of one count question in ten, the evaluation's mix, and the
    models probed so far answer such questions with the count of the shapes that are there; this adds more of them
    to training only."""
    if len(qs) < 2 or qs[0][0] != "count" or rng.random() >= prob:
        return qs
    asked = {q for _, q, _ in qs}
    options = [t.format(p=data.PLURAL[s]) for s in data.absent_shapes(scene) for t in data.COUNT_TEMPLATES]
    options = [q for q in options if q not in asked]
    if not options:
        return qs
    return qs[:-1] + [("count", rng.choice(options), "0")]


def example_batch(net, sp, seed, index, n_questions, qtype=None, count_tiles=False, soft_centres=False,
                  count_facts=False, absent_counts=0.0, count_fact_rows=64, count_ref_gn=False, prepared=None):
    """(prefix embeds, prefix im_mask, suffix ids [K, S], targets [K, S], question types, dense labels) on the
    model's device, and (scenes, per-scene labels, focus, soft centre map or None; the map on the model's device)
    for the training-only terms. absent_counts: see with_absent_count; count_fact_rows: count_fact_focus's
    max_rows; count_ref_gn: its ref_gn. prepared: example_data's result for these arguments, made earlier."""
    parts, views, ids, tgt, types, labels, (scenes, per_scene, focus, soft, cfocus) = prepared or example_data(
        net, sp, seed, index, n_questions, qtype, count_tiles, soft_centres, count_facts, absent_counts,
        count_fact_rows, count_ref_gn)
    prefix, pmask = net.build_prefix(parts, views)
    dev = prefix.device
    soft = None if soft is None else soft.to(dev)
    return (prefix, pmask, ids.to(dev), tgt.to(dev), types, labels.to(dev), (scenes, per_scene, focus, soft, cfocus))


def example_data(net, sp, seed, index, n_questions, qtype=None, count_tiles=False, soft_centres=False,
                 count_facts=False, absent_counts=0.0, count_fact_rows=64, count_ref_gn=False, grid=None):
    """Everything of example_batch that is not computed by the model (net is read for its sizes only), on the
    CPU: the prompt's text parts and preprocessed views in place of the prefix; grid: make_example's. A function
    of its arguments alone, so a worker can make its next step's examples while the gradients are being summed."""
    scenes, qs = data.make_example(seed, index, qtype=qtype, n_questions=n_questions, scenes=True, grid=grid)
    if absent_counts > 0:
        qs = with_absent_count(qs, scenes[0], random.Random(f"absent:{seed}:{index}"), absent_counts)
    imgs = [sc.image for sc in scenes]
    hd = 6 if len(imgs) > 1 else 24
    views = [M.preprocess(im, hd) for im in imgs]
    im_end = sp.piece_to_id(data.IM_END)
    parts, tails = None, []
    for _, q, a in qs:
        query = data.compare_query(q) if len(imgs) > 1 else q
        p, tail = M.split_prompt(sp, data.chat_prompt(query), len(imgs))
        assert parts is None or p == parts, "questions about the same pictures share the prefix"
        parts = p
        tails.append((tail, sp.encode(a) + [im_end]))
    per_scene = [dense_labels(sc, hd, merged_grid(net)) for sc in scenes]
    labels = torch.cat(per_scene, 1)
    S = max(len(t) + len(a) for t, a in tails)
    ids = torch.zeros(len(tails), S, dtype=torch.long)
    tgt = torch.full((len(tails), S), -100, dtype=torch.long)
    for k, (t, a) in enumerate(tails):
        seq = t + a
        ids[k, :len(seq)] = torch.tensor(seq)
        tgt[k, len(t) - 1:len(seq) - 1] = torch.tensor(a)
    offsets = np.cumsum([0] + [lab.shape[1] for lab in per_scene])
    splats = [centre_splat(sc, hd, merged_grid(net)) for sc in scenes] if soft_centres else None
    focus = [question_focus(t, q, scenes, per_scene, offsets, merged_grid(net), count_tiles, splats, count_facts)
             for t, q, _ in qs]
    soft = soft_centre_map(splats, per_scene) if soft_centres else None
    cfocus = None
    if count_facts:
        cfocus = count_fact_focus(scenes, per_scene, offsets, merged_grid(net), count_fact_rows, splats,
                                  count_ref_gn)
    return parts, views, ids, tgt, [q[0] for q in qs], labels, (scenes, per_scene, focus, soft, cfocus)


def soft_centre_map(splats, per_scene):
    """[image tokens] float: every token's summed centre weight (centre_splat), at most 1; -1 on separators."""
    out = []
    for sp_, lab in zip(splats, per_scene):
        m = torch.zeros(lab.shape[1])
        for views in sp_:
            for view in views:
                for j, w in view:
                    m[j] += w
        m = m.clamp(max=1.0)
        m[lab[5] < 0] = -1.0
        out.append(m)
    return torch.cat(out)


def centre_loss(logits, hard, soft):
    """The centre flag's cross-entropy, centres weighted CENTRE_WEIGHT against the many other tokens: against the
    one-token label `hard` (dense_labels row 5, > 0 at a centre), or against `soft` centre weights when given.
    Rows with a negative label (separators) are left out by the caller."""
    cw = CENTRE_WEIGHT.to(logits.device)
    if soft is None:
        return F.cross_entropy(logits, (hard > 0).long(), weight=cw)
    lp = F.log_softmax(logits.float(), -1)
    per = -(cw[1] * soft * lp[:, 1] + cw[0] * (1 - soft) * lp[:, 0])
    return per.sum() / (cw[1] * soft + cw[0] * (1 - soft)).sum()


def aux_losses(img, labels, aux, res, soft=None):
    """Cross-entropy of the training-only heads on the projected image tokens; their per-token accuracies go to
    `res` as ("v_colour", ok) ... for the log."""
    loss = img.new_zeros(())
    labels = labels.to(img.device).clone()  # a copy: the centre row is changed below
    soft = None if soft is None else soft.to(img.device)
    labels[5] = torch.where(labels[5] > 0, 1, labels[5])  # centre or not
    for k, name, head in [(0, "colour", aux.colour), (1, "shape", aux.shape), (2, "letter", aux.letter),
                          (3, "word", aux.word), (5, "centre", aux.centre),
                          (6, "xhalf", aux.xhalf), (7, "yhalf", aux.yhalf)]:
        m = labels[k] >= 0
        if m.any():
            logits = head(img)
            if k == 5:
                loss = loss + centre_loss(logits[m], labels[k][m], None if soft is None else soft[m])
                m = labels[k] > 0  # the accuracy logged is the recall of the few centre tokens
            else:
                loss = loss + F.cross_entropy(logits, labels[k], ignore_index=-100)
            res.extend((f"v_{name}", bool(x)) for x in (logits[m].argmax(-1) == labels[k][m]).tolist())
    return loss


def rms_normed(x, eps=1e-5):
    """x scaled to unit root mean square per row: what the decoder's first RMSNorm makes of an image token (up to
    its per-channel weight, which a key projection absorbs)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def count_density_loss(img, aux, scenes, per_scene, merged, hd, res):
    """Per shape, a softmax over a learnt null slot and every global-view token of each picture (aux.density on the
    RMS-normed projected tokens), trained towards 1 / (n + 1) on the null slot and each of the n same-shape objects'
    centre_splat weights / (n + 1) on its tokens. A look-up that gives a centre split over two tokens the same total
    as a centre in one token needs scores that grow with the log of the splat weight; the centre flag's logit does
    not (a centre near a token edge got less of the count facts' look-up, and that picture's count came out low).
    Logits trained this way are such scores, in a form a decoder key can copy. Whether round(1 / null - 1) is each
    present shape's count goes to `res` as "v_density"."""
    n_glb = global_tokens(merged)
    xn = rms_normed(img)
    terms, off = [], 0
    for sc, lab in zip(scenes, per_scene):
        full = torch.cat([aux.density_null[None], aux.density(xn[off:off + n_glb])], 0)  # [1 + n_glb, shapes]
        tgt = torch.zeros_like(full)
        tgt[0] = 1.0
        n = collections.Counter()
        for o, (g, _) in zip(sc.objects, centre_splat(sc, hd, merged)):
            s = data.SHAPES.index(o["shape"])
            n[s] += 1
            for j, w in g:
                tgt[1 + j, s] += w
        lp = F.log_softmax(full.float(), 0)
        terms.append(-(tgt / tgt.sum(0, keepdim=True) * lp).sum(0).mean())
        p0 = lp[0].exp().tolist()
        res.extend(("v_density", round(1 / p0[s] - 1) == k) for s, k in n.items())
        off += lab.shape[1]
    return torch.stack(terms).mean()


MASS_FLOOR = -4.0  # centre_mass_loss: a token outside every object's spread scores at most this (e^-4 = 0.018)


def centre_mass_loss(img, aux, scenes, per_scene, merged, hd, res):
    """aux.mass on the RMS-normed projected tokens (what the decoder's keys are made from) as a log centre mass:
    for every object and view, the log of the summed exp of its score over the tokens its centre is spread over
    (centre_splat, weight at least SPLAT_MIN) learns 0, and every other token's score is pushed below MASS_FLOOR.
    The count facts' look-up gives an object the mass its centre tokens' keys give it; a linear probe of the
    shipped model's projected tokens reads that mass with a log error of about 0.25 per object, which is about
    what its look-up gets, and at that error threes and fours are not told apart reliably. This asks the vision
    tower for a direction that carries it exactly. Whether an object's log mass is within 0.1 goes to `res` as
    "v_mass"."""
    score = aux.mass(rms_normed(img)).squeeze(-1)
    terms, off, outside = [], 0, torch.ones_like(score, dtype=torch.bool)
    for sc, lab in zip(scenes, per_scene):
        n = lab.shape[1]
        outside[off:off + n] &= (lab[5] >= 0).to(score.device)  # (separators are no one's)
        for views in centre_splat(sc, hd, merged):
            for view in views:
                idx = [off + j for j, w in view if w >= SPLAT_MIN]
                if idx:
                    outside[idx] = False
                    terms.append(torch.logsumexp(score[idx], 0))
        off += n
    if not terms:
        return score.new_zeros(())
    lm = torch.stack(terms)
    res.extend(("v_mass", bool(x)) for x in (lm.abs() < 0.1).tolist())
    return (lm ** 2).mean() + F.relu(score[outside] - MASS_FLOOR).pow(2).mean()


def vision_data(net, seed, index, word_prob=0.35, small_prob=0.0, soft_centres=False):
    """run_vision_example's picture, views, dense labels and soft centre map (or None), on the CPU (net is read
    for its sizes only)."""
    scene = data.vision_scene(seed, index, word_prob, small_prob)
    labels = dense_labels(scene, 24, merged_grid(net))  # (aux_losses moves it to the model's device)
    soft = soft_centre_map([centre_splat(scene, 24, merged_grid(net))], [labels]) if soft_centres else None
    return scene, M.preprocess(scene.image, 24), labels, soft


def run_vision_example(net, seed, index, aux, word_prob=0.35, small_prob=0.0, soft_centres=False, mass_weight=0.0,
                       prepared=None):
    """Vision warm-up: only the vision tower, the merge and the projector, trained on the dense labels (and
    count_density_loss and centre_mass_loss when aux has their heads, the latter at mass_weight). prepared:
    vision_data's result for these arguments, made earlier."""
    scene, views, labels, soft = prepared or vision_data(net, seed, index, word_prob, small_prob, soft_centres)
    img = net.encode_image(*views)
    soft = None if soft is None else soft.to(img.device)
    res = []
    loss = aux_losses(img, labels, aux, res, soft)
    if hasattr(aux, "density"):
        loss = loss + count_density_loss(img, aux, [scene], [labels], merged_grid(net), 24, res)
    if hasattr(aux, "mass"):
        loss = loss + mass_weight * centre_mass_loss(img, aux, [scene], [labels], merged_grid(net), 24, res)
    return loss, res


def side_loss(sp, lens, scenes, per_scene, merged, res):
    """Every global-view token's own half, read from its lm-head logits `lens` [image tokens, V] (the residual
    stream at --dec-layer through the real norm and lm head) as a choice between "left" and "right" (pictures at
    least as wide as high) or "top" and "bottom" (at least as high as wide): the axis the view spans without
    padding. The vision tower knows where each token is, but the object facts alone (one side word on a few tokens)
    taught the decoder left/right only about 60% of the time; this dense label asks for it on every token. Every
    8th token's accuracy goes to `res` as "d_side" (enough for the log)."""
    n_glb = global_tokens(merged)
    logits, targets, off = [], [], 0
    for sc, lab in zip(scenes, per_scene):
        W, H = sc.image.size
        for row, words, ok in ((6, ("left", "right"), W >= H), (7, ("top", "bottom"), H >= W)):
            if not ok:
                continue
            half = lab[row][:n_glb].to(lens.device)
            j = torch.nonzero(half >= 0).squeeze(1)
            ids = torch.tensor([word_id(sp, w) for w in words], device=lens.device)
            logits.append(lens[off + j][:, ids])
            targets.append(half[j])
        off += lab.shape[1]
    logits, targets = torch.cat(logits), torch.cat(targets)
    res.extend(("d_side", bool(x)) for x in (logits.argmax(-1) == targets).tolist()[::8])
    return F.cross_entropy(logits, targets)


def look_up_heads(count_head=0, count_facts=False):
    """The query heads of the look-up layer whose attention run_example keeps: the first two (a two-image question
    looks up one background on each), and count_head when counts read their own look-up (not with count_facts)."""
    return [0, 1] + ([count_head] if count_head not in (0, 1) and not count_facts else [])


def probe_command_line(doc, ckpt_help, tokenizer=False):
    """The probes' shared options (--ckpt, --count, --seed, and with `tokenizer` --tokenizer); add more before
    parse_args."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True, help=ckpt_help)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--seed", type=int, default=13)
    if tokenizer:
        ap.add_argument("--tokenizer", default=None, help="default: tokenizer.model beside the checkpoint")
    return ap


def probe_tokenizer(a):
    """The SentencePiece model of --tokenizer, or of tokenizer.model beside --ckpt (where train.py keeps it) or in
    it (an exported folder)."""
    import sentencepiece as spm
    folder = a.ckpt if os.path.isdir(a.ckpt) else os.path.dirname(a.ckpt)
    path = a.tokenizer or os.path.join(folder, "tokenizer.model")
    return spm.SentencePieceProcessor(model_file=path)


def fact_heads(spec, count_head=0):
    """The query heads --count-fact-heads names ("0,3"), or [count_head] when it names none (and for checkpoints
    from before the option)."""
    return [int(h) for h in str(spec or "").split(",") if h.strip()] or [count_head]


def count_fact_layers(args):
    """For a checkpoint's training arguments: (the layer the facts are read after, the layer whose heads look the
    count facts up, those heads)."""
    layer = args.get("dec_layer", 2)
    look = layer - 1 if args.get("count_fact_layer", -1) < 0 else args["count_fact_layer"]
    return layer, look, fact_heads(args.get("count_fact_heads"), args.get("count_head", 0))


def count_ref_gn(args):
    """Whether a checkpoint's training arguments weigh the count facts against glb_GN (--count-ref gn), not BOS."""
    return args.get("count_ref", "bos") == "gn"


def count_ref_position(args, img_pos, n_glb):
    """For a checkpoint's training arguments, the prompt position of the count facts' reference (--count-ref) in a
    one-picture prompt whose image rows are at img_pos: BOS, or the picture's glb_GN."""
    return img_pos[n_glb] if count_ref_gn(args) else 0


def probe_load_count_facts(a, hint=""):
    """probe_load and probe_tokenizer for a checkpoint trained with --count-facts (else exits, adding `hint`):
    (model, tokenizer, the checkpoint's training arguments)."""
    net, ck = probe_load(a)
    args = ck.get("args", {})
    if not args.get("count_facts"):
        sys.exit("this checkpoint was not trained with --count-facts" + hint)
    return net, probe_tokenizer(a), args


def probe_load(a):
    """Refuses the training and validation seeds (a probe must see unseen pictures), then loads --ckpt on one
    thread: (model, checkpoint dict). --ckpt may also be an exported model folder such as models/demo, taken to be
    trained with this script's defaults (the shipped recipe): its dict holds those as "args" and no "aux"."""
    if a.seed in (TRAIN_SEED, VALID_SEED):
        sys.exit(f"seed {a.seed} is a training or validation seed")
    import export
    torch.set_num_threads(1)
    if os.path.isdir(a.ckpt):
        net = export.load_model_folder(a.ckpt)
        return net, {"config": net.config, "args": vars(arg_parser().parse_args([]))}
    return export.load_checkpoint(a.ckpt)


def count_fact_loss(sp, lens, scenes, per_scene, merged, res, balance=False):
    """The count fact of every HD-tile object token (fact_targets with count_facts) as a choice among the digits
    0-9 of its lm-head logits `lens` [image tokens, V]: in fact_targets it is one word in three next to the colour and
    the shape, and most pictures say "1" there, so its reading is slow to learn from that alone. With balance every
    shape of a picture weighs the same, however many tile tokens its objects cover: averaged over tokens, four
    objects weigh four times one, and the digits' reading learns that prior. Every 8th token's accuracy goes to `res`
    as "d_count"."""
    n_glb = global_tokens(merged)
    digits = torch.tensor([word_id(sp, str(d)) for d in range(10)], device=lens.device)
    rows, want, group, off = [], [], [], 0
    for i, (sc, lab) in enumerate(zip(scenes, per_scene)):
        counts = shape_counts(sc)
        for j, v in enumerate(lab[4].tolist()):
            if j >= n_glb and 0 < v < data.TEXT_LABEL:
                rows.append(off + j)
                want.append(counts[v - 1])
                group.append((i, sc.objects[v - 1]["shape"]))
        off += lab.shape[1]
    if not rows:
        return lens.new_zeros(())
    logits = lens[torch.tensor(rows, device=lens.device)][:, digits]
    want = torch.tensor(want, device=lens.device)
    res.extend(("d_count", bool(x)) for x in (logits.argmax(-1) == want).tolist()[::8])
    if not balance:
        return F.cross_entropy(logits, want)
    size = collections.Counter(group)
    w = torch.tensor([1.0 / size[g] for g in group], device=lens.device)
    return (w * F.cross_entropy(logits, want, reduction="none")).sum() / len(size)


def run_example(net, sp, seed, index, n_questions, qtype=None, aux=None, aux_weight=0.0, dec_weight=0.0,
                dec_layer=2, att_weight=0.0, count_uniform=True, side_weight=0.0, copy_weight=0.0,
                copy_count=False, count_tiles=False, soft_centres=False, count_head=0, bos_weight=0.0,
                count_facts=False, count_fact_weight=0.0, absent_counts=0.0, count_fact_heads=None,
                count_fact_rows=64, count_fact_layer=-1, count_share_weight=0.0, count_fact_balance=False,
                mass_weight=0.0, count_ref_gn=False, ref_look_weight=0.0, prepared=None):
    """Loss and per-question results of one question step. Besides the answers' cross-entropy (with aux):
      - the dense labels on the projected image tokens (aux_losses) at aux_weight;
      - the facts of every image token (fact_targets), read from the residual stream after dec_layer layers
        through the real norm and lm head, and its object-centre flag, at dec_weight;
      - the attention of the first two heads of layer dec_layer at every answer position on the tokens the
        question is about (question_focus), at att_weight;
      - every global-view token's own half through the same lm head (side_loss), at side_weight (with dec_weight);
      - the first answer token of colour, shape, position and word questions read right after layer dec_layer, and
        for "same background?" both backgrounds half each, at copy_weight (with att_weight); with copy_count the
        count's digit too; count_tiles: see question_focus; soft_centres: the centre flags and the count look-ups
        learn centre_splat's weights instead of one token per object; count_head: the query head of layer dec_layer
        whose attention the count look-up supervises (0: the first, which every other look-up uses too); bos_weight:
        the squared error of that look-up's log share on BOS against log 1 / (n + 1), the share the count is read
        from; count_facts: the HD tiles' object tokens learn their object's count (fact_targets) with head count_head
        of the layer before dec_layer spread evenly over the matching centres and BOS (count_fact_focus, at
        att_weight), and a count question looks the count up there like any other fact (question_focus);
        count_fact_weight: that count again, alone among the digits (count_fact_loss); absent_counts: more count
        questions about absent shapes (with_absent_count); count_fact_heads: the query heads of that layer whose
        spread the count facts supervise, each on its own (default [count_head]; heads of both key/value groups
        look the centres up with keys of their own, so their errors need not be the same); count_fact_rows: at most
        this many tile tokens per picture supervise it (0: all); count_share_weight: a Huber loss on the log error
        of BOS's share in that spread; count_fact_layer: the layer of that look-up
        (-1: the one before dec_layer); count_fact_balance: see count_fact_loss; mass_weight: centre_mass_loss's
        weight (with aux's head); count_ref_gn: the spread's reference is the picture's glb_GN, not BOS;
        ref_look_weight: with it, the same heads of layer 0 at a single picture's glb_GN learn to spread their
        attention evenly over the global view's objects (each summed over its centre's spread), at this weight, so
        that glb_GN's key in the look-up can follow how heavily this picture's objects weigh;
      prepared: example_data's result for these arguments, made earlier.
    Together they spell out find-then-copy, which the decoder otherwise learns only from the answers, slowly."""
    prefix, pmask, ids, tgt, types, labels, (scenes, per_scene, focus, soft, cfocus) = example_batch(
        net, sp, seed, index, n_questions, qtype, count_tiles, soft_centres, count_facts, absent_counts,
        count_fact_rows, count_ref_gn, prepared)
    dense = aux is not None
    hd = 6 if len(scenes) > 1 else 24  # (example_batch's HD tile budget)
    heads = look_up_heads(count_head, count_facts)
    att = (dec_layer, heads) if dense and att_weight > 0 else None
    img_pos = torch.nonzero(pmask.cpu()).squeeze(1).tolist()
    patt = None
    if att and cfocus:
        look = dec_layer - 1 if count_fact_layer < 0 else count_fact_layer
        patt = [(look, count_fact_heads or [count_head], [img_pos[r] for rows, _ in cfocus for r in rows])]
        if count_ref_gn and ref_look_weight > 0 and len(scenes) == 1:
            assert look > 0, "--count-ref-look spreads layer 0 at glb_GN; the facts' look-up must come later"
            seen = [[j for j, w in g if w >= SPLAT_MIN] for g, _ in centre_splat(scenes[0], hd, merged_grid(net))]
            seen = [g for g in seen if g]
            if seen:
                patt.append((0, count_fact_heads or [count_head], [img_pos[global_tokens(merged_grid(net))]]))
    hs, extra = net.decode(prefix, pmask, net.model.tok_embeddings(ids), tap=dec_layer if dense else 0, att=att,
                           patt=patt)
    sel = tgt >= 0
    logits = net.output(hs[sel])
    loss = F.cross_entropy(logits, tgt[sel])
    res = []
    if dense and aux_weight > 0:
        img = prefix[pmask]
        assert img.shape[0] == labels.shape[1]
        loss = loss + aux_weight * aux_losses(img, labels, aux, res, soft)
        if hasattr(aux, "density"):
            loss = loss + aux_weight * count_density_loss(img, aux, scenes, per_scene, merged_grid(net), hd, res)
        if hasattr(aux, "mass"):
            loss = loss + mass_weight * centre_mass_loss(img, aux, scenes, per_scene, merged_grid(net), hd, res)
    if dense and dec_weight > 0:
        h = extra["tap"][pmask]
        ft, fm = fact_targets(sp, scenes, per_scene, global_tokens(merged_grid(net)), count_facts)
        ft, fm = ft.to(h.device), fm.to(h.device)
        lens = net.output(net.model.norm(h)).float()  # every image token through the lm head: the facts and the sides
        logp = F.log_softmax(lens[fm], -1)
        loss = loss + dec_weight * -(ft[fm] * logp).sum(-1).mean()
        c = labels[5] >= 0
        cl = aux.dec_centre(h[c])
        loss = loss + dec_weight * centre_loss(cl, labels[5][c], None if soft is None else soft[c])
        res.extend(("d_centre", bool(x)) for x in (cl[labels[5][c] > 0].argmax(-1) == 1).tolist())
        if side_weight > 0:
            loss = loss + side_weight * side_loss(sp, lens, scenes, per_scene, merged_grid(net), res)
        if count_facts and count_fact_weight > 0:
            loss = loss + count_fact_weight * count_fact_loss(sp, lens, scenes, per_scene, merged_grid(net), res,
                                                                count_fact_balance)
    if att is not None:
        lp = extra["att"]

        def positions(idx):  # label indices to prompt positions; -1 is BOS
            return torch.tensor([0 if j < 0 else img_pos[j] for j in idx], device=lp.device)

        terms, cterms, bterms, pterms, sterms = [], [], [], [], []
        if patt:  # each tile token's count look-up: the same weight on each same-shape centre and on BOS
            start = 0
            for rows, groups in cfocus:
                lp_rows = extra["patt"][0][:, start:start + len(rows)]  # [heads, rows, P]
                start += len(rows)
                sub = torch.stack([torch.logsumexp(lp_rows[..., positions(g)], -1) for g in groups], -1)
                pterms.append(-sub.mean((1, 2)).sum())  # each head at the full weight
                err = sub[..., -1] + math.log(len(groups))  # log error of BOS's share, [heads, rows]
                res.append(("p_share", bool(err[0, 0].abs() < 0.1)))
                if count_share_weight > 0:
                    # BOS's share is what the fact is read from; near the even spread the cross-entropy's pull on it
                    # is weak (about u * error), so its log error gets a Huber pull of its own
                    sterms.append(F.smooth_l1_loss(err, torch.zeros_like(err), beta=1.0, reduction="none")
                                  .mean(1).sum())
                res.append(("p_count", bool(torch.logsumexp(sub[0, 0], -1).exp() > 0.5)))
            if len(patt) > 1:  # glb_GN's even spread over the objects (ref_look_weight)
                lp_gn = extra["patt"][1][:, 0]  # [heads, P]
                sub = torch.stack([torch.logsumexp(lp_gn[:, positions(g)], -1) for g in seen], -1)
                loss = loss + ref_look_weight * -sub.mean(-1).sum()  # each head at the full weight
                res.append(("p_look", bool(torch.logsumexp(sub[0], -1).exp() > 0.5)))
        for k, foc in enumerate(focus):
            rows = torch.nonzero(tgt[k] >= 0).squeeze(1)  # every position that predicts an answer token
            if copy_weight > 0:
                # what the look-up copied must already say the answer (a fact of the looked-up tokens) right after
                # that layer; for "same background?" (the one question with two focus slots) both backgrounds, half
                # each, so the reading is one colour when they match and two when not, which later layers turn into
                # yes/no
                want = None
                if types[k] in ("colour", "shape", "position", "word") or \
                        ((copy_count or count_facts) and types[k] == "count"):
                    want = {int(tgt[k, rows[0]]): 1.0}
                elif len(foc) == 2:
                    want = collections.Counter()
                    for sc in scenes:
                        want[word_id(sp, sc.bg)] += 0.5
                if want:
                    lg = net.output(net.model.norm(extra["after"][k, rows[0]]))
                    ids = torch.tensor(list(want), device=lg.device)
                    p = torch.tensor(list(want.values()), device=lg.device)
                    cterms.append(-(p * F.log_softmax(lg.float(), -1)[ids]).sum())
                    name = "c_bg" if types[k] == "compare" else "c_" + types[k]
                    res.append((name, set(lg.topk(len(want)).indices.tolist()) == set(want)))
            for slot, idx, *wts in foc:
                if not idx:
                    continue
                if types[k] == "count" and not count_facts:  # (one slot: the matching centres and BOS)
                    slot = heads.index(count_head)
                sub = lp[k, slot][rows][:, positions(idx)]
                mass = torch.logsumexp(sub, -1)
                if wts:  # the spread centres of a count (centre_splat), BOS at weight 1: cross-entropy to it
                    p = torch.tensor(wts[0], device=lp.device)
                    terms.append(-(sub * (p / p.sum())).sum(-1).mean())
                elif count_uniform and types[k] == "count" and not count_facts:
                    # the same weight on each matching centre and on BOS (cross-entropy to the uniform spread):
                    # the head's output then says how many there are, which all of it on one centre would not
                    terms.append(-sub.mean())
                    if bos_weight > 0:  # (n matching centres and BOS)
                        bterms.append(((sub[:, idx.index(-1)] + math.log(len(idx))) ** 2).mean())
                else:
                    terms.append(-mass.mean())
                res.append(("a_focus", bool(mass[0].exp() > 0.5)))
        if terms:
            loss = loss + att_weight * torch.stack(terms).mean()
        if cterms:
            loss = loss + copy_weight * torch.stack(cterms).mean()
        if bterms:
            loss = loss + bos_weight * torch.stack(bterms).mean()
        if pterms:
            loss = loss + att_weight * torch.stack(pterms).mean()
        if sterms:
            loss = loss + count_share_weight * torch.stack(sterms).mean()
    # exact-answer accuracy (teacher forced): every answer token and the end token right
    ok = torch.ones_like(tgt, dtype=torch.bool)
    ok[sel] = logits.argmax(-1) == tgt[sel]
    per_q = ok.all(1).tolist()
    return loss, list(zip(types, per_q)) + res


@torch.no_grad()
def validate(net, sp, n):
    net.eval()
    acc = collections.defaultdict(list)
    for i in range(n):
        _, res = run_example(net, sp, VALID_SEED, i, 1, qtype=data.QTYPES[i % len(data.QTYPES)])
        for t, ok in res:
            acc[t].append(ok)
    net.train()
    return {t: sum(v) / len(v) for t, v in sorted(acc.items())}


def freeze_vit(net, n_layers):
    """Stops the vision tower's embeddings, pre-norm and first n_layers layers from learning (after the warm-up has
    trained them): their backward pass is a sixth of a question step's time (a quarter with all three layers)."""
    vm = net.vit.vision_tower.vision_model
    mods = [vm.embeddings, vm.pre_layrnorm] + list(vm.encoder.layers[:n_layers])
    for p in (p for m in mods for p in m.parameters()):
        p.requires_grad_(False)
        p.grad = None


def lr_at(step, a):
    """Warm-up then cosine decay over --steps, and a second warm-up when the question steps begin after the vision
    warm-up (the decoder starts from scratch there); then, for --swa-steps more, a constant rate."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    if step >= a.steps:  # the --swa-steps after the schedule
        return a.lr * a.swa_lr_frac
    p = (step - a.warmup) / max(1, a.steps - a.warmup)
    lr = a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))
    if 0 < a.vision_steps <= step < a.vision_steps + a.warmup:
        lr *= (step - a.vision_steps + 1) / a.warmup
    return lr


def save(path, net, aux, opt, step, args, elapsed, avg=None):
    tmp = path + ".tmp"
    cpu = lambda sd: {k: v.cpu() for k, v in sd.items()}  # noqa: E731 (a checkpoint loads on any device)
    ck = {"model": cpu(net.state_dict()), "aux": cpu(aux.state_dict()), "opt": opt.state_dict(), "step": step,
          "config": net.config, "args": vars(args), "elapsed_s": elapsed}
    if avg is not None:
        ck["avg"] = {"model": cpu(avg.state), "n": avg.n}
    torch.save(ck, tmp)
    os.replace(tmp, path)


class WeightAverage:
    """The running mean of the model's weights after each of the last steps (--average-last): with two pictures a
    step, the weights at any one step carry that step's noise, and the mean over a few hundred late steps at the
    small final learning rate sits nearer the middle of where they wander."""

    def __init__(self, net, saved=None):
        self.state = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
        self.n = 0
        if saved:
            self.state = {k: v.to(self.state[k].device) for k, v in saved["model"].items()}
            self.n = saved["n"]

    @torch.no_grad()
    def add(self, net):
        self.n += 1
        for k, v in net.state_dict().items():
            self.state[k] += (v.float() - self.state[k]) / self.n


def arg_parser():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="build/demo_model", help="checkpoints, tokenizer and logs go here")
    ap.add_argument("--tokenizer", default=None, help="default: WORK/tokenizer.model (made if missing)")
    ap.add_argument("--steps", type=int, default=16500)
    ap.add_argument("--world", type=int, default=2,
                    help="data-parallel worker processes (one thread each; gradients summed over loopback gloo)")
    ap.add_argument("--examples-per-step", type=int, default=1, help="per worker")
    ap.add_argument("--questions", type=int, default=10, help="questions per picture")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--init-seed", type=int, default=0)
    ap.add_argument("--aux-weight", type=float, default=0.3, help="weight of each training-only dense label loss")
    ap.add_argument("--dec-weight", type=float, default=0.3,
                    help="weight of the facts read from the decoder's residual stream at image positions")
    ap.add_argument("--vision-steps", type=int, default=1800,
                    help="the first steps train only the vision tower and projector on the dense labels")
    ap.add_argument("--vision-examples", type=int, default=4, help="pictures per worker in a vision step")
    ap.add_argument("--word-frac", type=float, default=0.3,
                    help="share of question-step pictures that are forced to be word pictures (0: data.py's mix)")
    ap.add_argument("--count-frac", type=float, default=0.1,
                    help="share of question-step pictures forced to be count pictures (0: data.py's mix, about 1 in "
                         "7). 0.25 in an older full run: counts 63%% -> 74%%, but words and two-image questions fell")
    ap.add_argument("--compare-frac", type=float, default=0.05,
                    help="share of question-step pictures forced to be two-image pictures (0: data.py's mix, about "
                         "1 in 9)")
    ap.add_argument("--vision-word-prob", type=float, default=0.5,
                    help="share of warm-up pictures with a word")
    ap.add_argument("--vision-small-prob", type=float, default=0.4,
                    help="share of warm-up shapes drawn as small as count shapes are in the global view (radius "
                         "11-28 instead of 28-46): the model before it found only 81%% of count-picture centres")
    ap.add_argument("--dec-layer", type=int, default=2,
                    help="the facts are read after this many decoder layers; that layer's first heads are the "
                         "supervised look-up")
    ap.add_argument("--att-weight", type=float, default=1.0, help="weight of the supervised look-up")
    ap.add_argument("--decoder-lr-mult", type=float, default=0.5,
                    help="the decoder's learning rate relative to --lr (faster is noisier, and slower to learn)")
    ap.add_argument("--count-uniform", type=int, default=1,
                    help="count questions spread the look-up evenly over the matching centres and BOS (not just "
                         "anywhere on them)")
    ap.add_argument("--side-weight", type=float, default=1.0,
                    help="weight of every global-view token's own half (left/right or top/bottom) read through the "
                         "lm head at --dec-layer (1, with --copy-weight 0.5: left/right 49%% -> 98%%, see README)")
    ap.add_argument("--copy-weight", type=float, default=0.5,
                    help="weight of the answer read through the lm head right after the look-up layer (colour, "
                         "shape, position and word questions; both backgrounds for 'same background?')")
    ap.add_argument("--copy-count", type=int, default=0,
                    help="1: the copy term also asks for a count's digit right after the look-up layer (the head's "
                         "share on BOS says the count; this asks for it to be readable there)")
    ap.add_argument("--count-tiles", type=int, default=0,
                    help="1: count questions look up the matching centres in the HD tiles, not in the global view "
                         "(wide and tall pictures shrink there, and half their centres are missed)")
    ap.add_argument("--soft-centres", type=int, default=1,
                    help="1: object centres are spread bilinearly over the nearest tokens (centre_splat) for the "
                         "centre flags and the count look-ups (with --count-facts, the facts' look-up of the global "
                         "view's centres), instead of one token that flips at token edges (the logged v_centre / "
                         "d_centre then read lower: a centre near an edge is meant to be split)")
    ap.add_argument("--count-head", type=int, default=0,
                    help="the query head of the look-up layer whose attention count questions supervise (0: the "
                         "first, shared with every other look-up; 3 is in the other key/value group, with keys of "
                         "its own: its full run counted worse, 44%% against 70%%, see README.md)")
    ap.add_argument("--bos-weight", type=float, default=0.0,
                    help="weight of the squared error of the count look-up's log share on BOS against "
                         "log 1 / (n + 1): the count is read from that share, and the model before count facts "
                         "rounds to the count on only 37 of 100 unseen questions (probe_counts.py)")
    ap.add_argument("--count-facts", type=int, default=1,
                    help="1: the HD tiles' object tokens learn how many objects of their shape the picture has "
                         "(head --count-head of the layer before --dec-layer spreads evenly over the global view's "
                         "matching centres and BOS, supervised on --count-fact-rows such tokens per picture), and "
                         "count questions look that fact up like colours and shapes instead of reading a share of "
                         "their own look-up")
    ap.add_argument("--count-fact-weight", type=float, default=1.0,
                    help="with --count-facts, weight of the tile tokens' count read among the digits alone "
                         "(count_fact_loss)")
    ap.add_argument("--count-fact-heads", default="0,3",
                    help="with --count-facts, the comma-separated query heads of the layer before --dec-layer whose "
                         "spread over the centres and BOS is supervised, each on its own (empty: --count-head alone)")
    ap.add_argument("--count-fact-rows", type=int, default=0,
                    help="with --count-facts, at most this many tile object tokens a picture learn the spread (0: all)")
    ap.add_argument("--count-share-weight", type=float, default=0.0,
                    help="with --count-facts, weight of a Huber loss on the log error of BOS's share, against "
                         "1 / (n + 1), in each --count-fact-heads spread (the fact is read from that share)")
    ap.add_argument("--count-fact-balance", type=int, default=0,
                    help="1: with --count-fact-weight, every shape of a picture weighs the same in the digits' "
                         "reading, however many tile tokens its objects cover (averaged over tokens, a count of "
                         "four weighs four times a one, and the reading leans to higher counts)")
    ap.add_argument("--count-fact-layer", type=int, default=-1,
                    help="the decoder layer whose --count-fact-heads look the count facts up (-1: the one before "
                         "--dec-layer); 0 reads the projected image tokens' linear features, leaving two layers "
                         "to turn the look-up into a digit")
    ap.add_argument("--two-group-counts", type=float, default=0.3,
                    help="share of the forced count pictures drawn as data.two_group_count_scene (two shapes, 1-4 and "
                         "1-3 of each, counts asked of both): training only, the evaluation's pictures are unchanged")
    ap.add_argument("--count-density", type=int, default=0,
                    help="1: a training-only head learns, per shape, scores that grow with the log of each "
                         "token's centre_splat weight (count_density_loss), in the warm-up and after")
    ap.add_argument("--centre-mass-weight", type=float, default=0.0,
                    help="weight of a training-only head that reads each object's log centre mass (the summed exp "
                         "of its scores over its centre's spread) off the projected tokens as exactly 0, in the "
                         "warm-up and after (centre_mass_loss): the count facts' look-up is as exact as that mass")
    ap.add_argument("--count-ref", choices=["bos", "gn"], default="bos",
                    help="what the count facts' spread weighs the centres against: BOS, whose key is the same in "
                         "every picture, or the picture's glb_GN separator, which comes after the global view and "
                         "can see it, so its key can follow how heavily that picture's objects weigh (a count is "
                         "off mostly for a whole picture)")
    ap.add_argument("--count-ref-look", type=float, default=0.0,
                    help="with --count-ref gn, the weight of a supervised look of layer 0's --count-fact-heads at "
                         "glb_GN, spread evenly over the global view's objects, so that glb_GN sees what it is to "
                         "weigh against")
    ap.add_argument("--absent-counts", type=float, default=0.0,
                    help="probability that a count picture's last follow-up question asks for the count of a "
                         "shape that is not there (answer 0; training only, data.py's mix is unchanged)")
    ap.add_argument("--count-phase", type=int, default=2300,
                    help="the last this many steps draw their forced picture kinds at --phase-count-frac and "
                         "--phase-word-frac instead (a count-heavy end, once the other types are learnt)")
    ap.add_argument("--phase-count-frac", type=float, default=0.5)
    ap.add_argument("--phase-word-frac", type=float, default=0.15)
    ap.add_argument("--freeze-vit-layers", type=int, default=1,
                    help="from the first question step on, the vision tower's embeddings and its first N layers stop "
                         "learning (1: question steps about a sixth faster; the warm-up has trained them)")
    ap.add_argument("--vit-layers", type=int, default=3, help="the vision tower's layers")
    ap.add_argument("--vit-width", type=int, default=128,
                    help="the vision tower's width (heads of 32, MLP four times as wide)")
    ap.add_argument("--average-last", type=int, default=1650,
                    help="also keep the mean of the weights over the last this many steps (0: none); the checkpoint "
                         "stores it beside the last weights and export.py writes it")
    ap.add_argument("--swa-steps", type=int, default=0,
                    help="after the --steps of the schedule, this many more steps (drawn as the --count-phase "
                         "ones) at a constant --swa-lr-frac times --lr: stochastic weight averaging, the mean over "
                         "--average-last steps (at most this many: these steps alone) of weights that wander more "
                         "widely than at the schedule's small final rate")
    ap.add_argument("--swa-lr-frac", type=float, default=0.15, help="with --swa-steps, their rate over --lr")
    ap.add_argument("--same-kind", type=int, default=1,
                    help="1: the workers' pictures of a question step are of one kind and tile grid (see example_kind)")
    ap.add_argument("--bf16", type=int, default=1,
                    help="1: the forward passes under bfloat16 autocast (matrix products in bf16; weights, optimiser, "
                         "residual stream, softmaxes and losses stay fp32)")
    ap.add_argument("--threads", type=int, default=1, help="per worker")
    ap.add_argument("--device", default="cpu",
                    help="cpu, or cuda: every worker computes on the (one) GPU and prepares its pictures on its CPU")
    ap.add_argument("--port", type=int, default=29533)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--valid-every", type=int, default=0, help="validate every this many steps (0: never)")
    ap.add_argument("--valid-count", type=int, default=70)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (after saving) once this much time is used")
    return ap


def main():
    ap = arg_parser()
    a = ap.parse_args()
    if a.swa_steps < 0 or a.swa_lr_frac <= 0:
        ap.error("--swa-steps must not be negative and --swa-lr-frac must be positive")
    if a.vit_width <= 0 or a.vit_width % 32 or a.vit_layers <= 0:
        ap.error("--vit-width must be a positive multiple of 32 (heads of 32) and --vit-layers positive")
    os.makedirs(a.work, exist_ok=True)
    tok = a.tokenizer or os.path.join(a.work, "tokenizer.model")
    if not os.path.exists(tok):
        import subprocess
        subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_tokenizer.py"),
                        "--out", tok], check=True)
    a.tokenizer = tok
    if a.world > 1:
        import torch.multiprocessing as mp
        mp.spawn(worker, args=(a,), nprocs=a.world, join=True)
    else:
        worker(0, a)


def example_index(a, step, rank, e):
    """The data index of example e of this worker at `step` (a warm-up or a question step)."""
    return (step * a.world + rank) * (a.vision_examples if step < a.vision_steps else a.examples_per_step) + e


def example_kind(a, step, rank, e):
    """(data index, question type or None, tile grid or None) of example e of this worker at question step
    `step`: the kinds --word-frac, --count-frac and --compare-frac force (or their phase fractions in the
    count-heavy end), else data.py's mix. With --same-kind every worker's e-th example of a step is of one kind and
    one grid, drawn as make_example would: a step waits for its slowest worker, and a four-tile picture or a pair
    costs several times a one-tile one."""
    index = example_index(a, step, rank, e)
    key = f"{step}:{e}" if a.same_kind else index
    u = random.Random(f"mix:{key}").random()
    phase = a.count_phase > 0 and step >= a.steps - a.count_phase
    fracs = (a.phase_word_frac, a.phase_count_frac) if phase else (a.word_frac, a.count_frac)
    cuts = np.cumsum([*fracs, a.compare_frac])  # forced picture kinds, then data.py's mix
    qtype = (["word", "count", "compare"] + [None])[int(np.searchsorted(cuts, u, side="right"))]
    if qtype == "count" and random.Random(f"two:{key}").random() < a.two_group_counts:
        qtype = "count2"
    grid = None
    if a.same_kind:
        rng = random.Random(f"kind:{key}")
        qtype = qtype or rng.choices(data.QTYPES, weights=data.QTYPE_WEIGHTS)[0]
        grid = None if qtype == "compare" else data.pick_grid(rng)
    return index, qtype, grid


def step_data(net, sp, a, step, rank):
    """This worker's examples of `step`, as far as they do not depend on the model's weights: per example its
    (data index, question type, example_data's or vision_data's result)."""
    if step < a.vision_steps:
        return [(index, None, vision_data(net, TRAIN_SEED, index, a.vision_word_prob, a.vision_small_prob,
                                          bool(a.soft_centres)))
                for index in (example_index(a, step, rank, e) for e in range(a.vision_examples))]
    out = []
    for e in range(a.examples_per_step):
        index, qtype, grid = example_kind(a, step, rank, e)
        out.append((index, qtype, example_data(net, sp, TRAIN_SEED, index, a.questions, qtype, bool(a.count_tiles),
                                               bool(a.soft_centres), bool(a.count_facts), a.absent_counts,
                                               a.count_fact_rows, a.count_ref == "gn", grid)))
    return out


def train_example(net, sp, aux, a, vision, heads, example):
    """Loss and per-question results of one of step_data's examples."""
    index, qtype, prepared = example
    if vision:
        return run_vision_example(net, TRAIN_SEED, index, aux, a.vision_word_prob, a.vision_small_prob,
                                  bool(a.soft_centres), a.centre_mass_weight, prepared)
    return run_example(net, sp, TRAIN_SEED, index, a.questions, qtype, aux, a.aux_weight, a.dec_weight, a.dec_layer,
                       a.att_weight, bool(a.count_uniform), a.side_weight, a.copy_weight, bool(a.copy_count),
                       bool(a.count_tiles), bool(a.soft_centres), a.count_head, a.bos_weight, bool(a.count_facts),
                       a.count_fact_weight, a.absent_counts, heads, a.count_fact_rows, a.count_fact_layer,
                       a.count_share_weight, bool(a.count_fact_balance), a.centre_mass_weight, a.count_ref == "gn",
                       a.count_ref_look, prepared)


def worker(rank, a):
    torch.set_num_threads(a.threads)
    if a.world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{a.port}", rank=rank, world_size=a.world)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=a.tokenizer)

    torch.manual_seed(a.init_seed)
    cfg = copy.deepcopy(M.DEMO_CONFIG)
    cfg["vocab_size"] = sp.get_piece_size()
    vc = cfg["vision_config"]
    vc["num_hidden_layers"] = a.vit_layers
    vc["hidden_size"], vc["num_attention_heads"] = a.vit_width, a.vit_width // 32
    vc["intermediate_size"] = 4 * a.vit_width
    net = M.IXCDemo(cfg)
    aux = AuxHeads(cfg["hidden_size"], bool(a.count_density), a.centre_mass_weight > 0)
    dev = torch.device(a.device)
    net.to(dev)  # initialised on the CPU first: the same start on every device
    aux.to(dev)
    # the decoder (from scratch when the question steps begin) learns at --decoder-lr-mult times the vision rate
    dec_ids = {id(p) for p in list(net.model.parameters()) + list(net.output.parameters())
               + list(aux.dec_centre.parameters())}
    params = list(net.parameters()) + list(aux.parameters())
    groups = [{"params": [p for p in params if id(p) not in dec_ids], "mult": 1.0},
              {"params": [p for p in params if id(p) in dec_ids], "mult": a.decoder_lr_mult}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.98), weight_decay=0.01)
    ckpt = os.path.join(a.work, "ckpt.pt")
    start, elapsed0, avg = 0, 0.0, None
    if os.path.exists(ckpt):
        ck = torch.load(ckpt, map_location="cpu")
        if rank == 0 and "avg" in ck and a.average_last:  # (without the option, a stale mean is dropped)
            avg = WeightAverage(net, ck["avg"])
        net.load_state_dict(ck["model"])
        aux.load_state_dict(ck["aux"])
        if "opt" in ck:  # (a checkpoint without it starts the optimiser afresh)
            opt.load_state_dict(ck["opt"])
        start, elapsed0 = ck["step"], ck.get("elapsed_s", 0.0)
        if rank == 0:
            print(f"resuming at step {start} ({elapsed0 / 60:.1f} min used)", flush=True)
    if rank == 0:
        print(f"{sum(p.numel() for p in net.parameters())} parameters, {a.world} worker(s)", flush=True)
    log = open(os.path.join(a.work, "train.log"), "a") if rank == 0 else None
    t0 = time.time()
    hist = collections.defaultdict(lambda: collections.deque(maxlen=200))
    losses = collections.deque(maxlen=50)
    net.train()
    step = start
    frozen = False
    ahead = None  # step_data of the coming step, made while the last one's gradients were summed
    heads = fact_heads(a.count_fact_heads, a.count_head)
    end = a.steps + a.swa_steps
    while step < end:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a) * g["mult"]
        vision = step < a.vision_steps
        if not vision and a.freeze_vit_layers > 0 and not frozen:  # once, when the question steps begin
            freeze_vit(net, a.freeze_vit_layers)
            frozen = True
        n_ex = a.vision_examples if vision else a.examples_per_step
        prepared = ahead or step_data(net, sp, a, step, rank)
        for e in range(n_ex):
            # (autocast covers the forward pass only: the backward runs each op in its forward's precision)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bool(a.bf16)):
                loss, res = train_example(net, sp, aux, a, vision, heads, prepared[e])
            (loss / (a.world * n_ex)).backward()
            losses.append(float(loss))
            for t, ok in res:
                hist[t].append(ok)
        if a.world > 1:  # sum the gradients of all workers (each already divided by the global example count)
            import torch.distributed as dist
            live = [p for p in params if p.requires_grad]  # (frozen ones keep no gradient: AdamW skips them)
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in live]
            # (in vision steps the decoder has no gradients: zeros keep every worker's buffer the same size)
            flat = torch.cat([g.reshape(-1) for g in grads]).cpu()  # gloo sums on the CPU
            summing = dist.all_reduce(flat, async_op=True)
        # the next step's pictures while the sum is in flight: the worker that finished first would only wait
        ahead = step_data(net, sp, a, step + 1, rank) if step + 1 < end else None
        if a.world > 1:
            summing.wait()
            flat = flat.to(dev)
            off = 0
            for p, g in zip(live, grads):
                p.grad = flat[off:off + g.numel()].view_as(p).clone()
                off += g.numel()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if rank == 0 and a.average_last and step > end - a.average_last:
            avg = avg or WeightAverage(net)
            avg.add(net)
        elapsed = elapsed0 + time.time() - t0
        stop = bool(a.max_minutes and elapsed > a.max_minutes * 60)
        if a.world > 1:  # every worker stops at the same step
            import torch.distributed as dist
            flag = torch.tensor([1.0 if stop else 0.0])
            dist.all_reduce(flag)
            stop = bool(flag.item() > 0)
        if rank != 0:
            if stop:
                break
            continue
        if step % 25 == 0:
            accs = " ".join(f"{t}={sum(v) / len(v):.2f}" for t, v in sorted(hist.items()))
            msg = (f"step {step} {elapsed / 60:.1f}min ({elapsed:.1f}s) lr {lr_at(step, a):.2e} "
                   f"loss {sum(losses) / len(losses):.3f} train-acc(rank0) {accs}")
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if step % a.save_every == 0 or step == end or stop:
            save(ckpt, net, aux, opt, step, a, elapsed, avg)
        if a.valid_every and (step % a.valid_every == 0 or step == end):
            v = validate(net, sp, a.valid_count)
            msg = f"valid step {step}: " + " ".join(f"{t}={x:.2f}" for t, x in v.items())
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if stop:
            print(f"stopping at step {step}: --max-minutes reached", flush=True)
            break
    if rank == 0:
        print(f"done: step {step}, {(elapsed0 + time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
