#!/usr/bin/python3
"""Trains the demo model from scratch on procedurally generated pictures (data.py, seed 1).

  /usr/bin/python3 tools/demo_model/train.py --work build/demo_model

Resumable: every --save-every steps the model, the optimiser and the step go to WORK/ckpt.pt (written atomically);
starting again with the same arguments continues from there with the same data (example i of step s is always
data.make_example(1, s * examples_per_step + i)). Use one thread: on a shared 2-core machine OpenMP threads that
wait for each other are several times slower than one.

Each step takes one picture (or a pair, for comparisons) and up to --questions questions about it: the image part
of the prompt is the same for every question (it comes first), so the decoder runs it once and the questions
continue it as a batch (model.IXCDemo.decode), with Partial LoRA on the image rows. The loss is the cross-entropy
of the answer tokens and the closing [UNUSED_TOKEN_145].
"""
import argparse
import collections
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import model as M  # noqa: E402

TRAIN_SEED = 1
VALID_SEED = 2


# Training-only dense labels for every merged image token (never exported): which colour is under it, which shape
# and which written word. They make the vision tower and the projector carry per-place colour/shape/glyph
# information early, which the question answering then learns to read; without them the decoder sits on the
# answer priors for a long time.
COLOUR_CLASSES = list(data.COLOURS) + list(data.BACKGROUNDS) + ["padding"]
SHAPE_CLASSES = ["none"] + data.SHAPES
WORD_CLASSES = ["none"] + data.WORDS


class AuxHeads(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.colour = nn.Linear(d, len(COLOUR_CLASSES))
        self.shape = nn.Linear(d, len(SHAPE_CLASSES))
        self.word = nn.Linear(d, len(WORD_CLASSES))


def dense_labels(scene, hd_num, tile=560, merged=20):
    """[3, image tokens] class ids in the order of IXCDemo.encode_image's output (-100 on the GN separators)."""
    lab = np.asarray(M.hd_transform(scene.label_map(), hd_num, tile, Image.NEAREST, 255))
    Hp, Wp = lab.shape
    rows, cols = Hp // tile, Wp // tile
    cell = tile // merged
    gy = ((np.arange(merged) + 0.5) * Hp / merged).astype(int)
    gx = ((np.arange(merged) + 0.5) * Wp / merged).astype(int)
    ly = (np.arange(rows * merged) * cell + cell // 2)
    lx = (np.arange(cols * merged) * cell + cell // 2)

    def with_gn(grid):
        g = np.full((grid.shape[0], grid.shape[1] + 1), -1, dtype=np.int64)
        g[:, :-1] = grid
        return g.reshape(-1)

    seq = np.concatenate([with_gn(lab[gy][:, gx]), [-1], with_gn(lab[ly][:, lx])])
    colour = np.full(seq.shape, -100)
    shape = np.full(seq.shape, -100)
    word = np.full(seq.shape, -100)
    for v in np.unique(seq):
        m = seq == v
        if v == -1:
            continue
        if v == 255:
            colour[m], shape[m], word[m] = COLOUR_CLASSES.index("padding"), 0, 0
        elif v == 0:
            colour[m], shape[m], word[m] = COLOUR_CLASSES.index(scene.bg), 0, 0
        elif v == data.TEXT_LABEL:
            word[m] = WORD_CLASSES.index(scene.word)
        else:
            o = scene.objects[v - 1]
            colour[m], shape[m], word[m] = COLOUR_CLASSES.index(o["colour"]), SHAPE_CLASSES.index(o["shape"]), 0
    return torch.from_numpy(np.stack([colour, shape, word]))


def example_batch(net, sp, seed, index, n_questions, qtype=None):
    """(prefix embeds, prefix im_mask, suffix ids [K, S], targets [K, S], question types, dense labels)."""
    scenes, qs = data.make_example(seed, index, qtype=qtype, n_questions=n_questions, scenes=True)
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
    prefix, pmask = net.build_prefix(parts, views)
    labels = torch.cat([dense_labels(sc, hd) for sc in scenes], 1)
    S = max(len(t) + len(a) for t, a in tails)
    ids = torch.zeros(len(tails), S, dtype=torch.long)
    tgt = torch.full((len(tails), S), -100, dtype=torch.long)
    for k, (t, a) in enumerate(tails):
        seq = t + a
        ids[k, :len(seq)] = torch.tensor(seq)
        tgt[k, len(t) - 1:len(seq) - 1] = torch.tensor(a)
    return prefix, pmask, ids, tgt, [q[0] for q in qs], labels


def run_example(net, sp, seed, index, n_questions, qtype=None, aux=None, aux_weight=0.0):
    prefix, pmask, ids, tgt, types, labels = example_batch(net, sp, seed, index, n_questions, qtype)
    _, hs = net.decode(prefix, pmask, net.model.tok_embeddings(ids))
    sel = tgt >= 0
    logits = net.output(hs[sel])
    loss = F.cross_entropy(logits, tgt[sel])
    if aux is not None and aux_weight > 0:
        img = prefix[pmask]
        assert img.shape[0] == labels.shape[1]
        for k, head in enumerate([aux.colour, aux.shape, aux.word]):
            if (labels[k] >= 0).any():
                loss = loss + aux_weight * F.cross_entropy(head(img), labels[k], ignore_index=-100)
    # exact-answer accuracy (teacher forced): every answer token and the end token right
    ok = torch.ones_like(tgt, dtype=torch.bool)
    ok[sel] = logits.argmax(-1) == tgt[sel]
    per_q = ok.all(1).tolist()
    return loss, list(zip(types, per_q))


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


def lr_at(step, a):
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = (step - a.warmup) / max(1, a.steps - a.warmup)
    return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def save(path, net, aux, opt, step, args, elapsed):
    tmp = path + ".tmp"
    torch.save({"model": net.state_dict(), "aux": aux.state_dict(), "opt": opt.state_dict(), "step": step, "config": net.config,
                "args": vars(args), "elapsed_s": elapsed}, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="build/demo_model", help="checkpoints, tokenizer and logs go here")
    ap.add_argument("--tokenizer", default=None, help="default: WORK/tokenizer.model (made if missing)")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--examples-per-step", type=int, default=1)
    ap.add_argument("--questions", type=int, default=8, help="questions per picture")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--init-seed", type=int, default=0)
    ap.add_argument("--aux-weight", type=float, default=0.3, help="weight of each training-only dense label loss")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-every", type=int, default=50)
    ap.add_argument("--valid-every", type=int, default=300)
    ap.add_argument("--valid-count", type=int, default=70)
    ap.add_argument("--max-minutes", type=float, default=0, help="stop (after saving) once this much time is used")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.work, exist_ok=True)
    tok = a.tokenizer or os.path.join(a.work, "tokenizer.model")
    if not os.path.exists(tok):
        import subprocess
        subprocess.run([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_tokenizer.py"),
                        "--out", tok], check=True)
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=tok)

    torch.manual_seed(a.init_seed)
    cfg = dict(M.DEMO_CONFIG)
    cfg["vocab_size"] = sp.get_piece_size()
    net = M.IXCDemo(cfg)
    aux = AuxHeads(cfg["hidden_size"])
    opt = torch.optim.AdamW(list(net.parameters()) + list(aux.parameters()), lr=a.lr, betas=(0.9, 0.98),
                            weight_decay=0.01)
    ckpt = os.path.join(a.work, "ckpt.pt")
    start, elapsed0 = 0, 0.0
    if os.path.exists(ckpt):
        ck = torch.load(ckpt, map_location="cpu")
        net.load_state_dict(ck["model"])
        aux.load_state_dict(ck["aux"])
        opt.load_state_dict(ck["opt"])
        start, elapsed0 = ck["step"], ck.get("elapsed_s", 0.0)
        print(f"resuming at step {start} ({elapsed0 / 60:.1f} min used)", flush=True)
    print(f"{sum(p.numel() for p in net.parameters())} parameters", flush=True)
    log = open(os.path.join(a.work, "train.log"), "a")
    t0 = time.time()
    hist = collections.defaultdict(lambda: collections.deque(maxlen=200))
    losses = collections.deque(maxlen=50)
    net.train()
    step = start
    while step < a.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        for e in range(a.examples_per_step):
            loss, res = run_example(net, sp, TRAIN_SEED, step * a.examples_per_step + e, a.questions, None, aux,
                                    a.aux_weight)
            (loss / a.examples_per_step).backward()
            losses.append(float(loss))
            for t, ok in res:
                hist[t].append(ok)
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        elapsed = elapsed0 + time.time() - t0
        if step % 25 == 0:
            accs = " ".join(f"{t}={sum(v) / len(v):.2f}" for t, v in sorted(hist.items()))
            msg = (f"step {step} {elapsed / 60:.1f}min lr {lr_at(step, a):.2e} loss {sum(losses) / len(losses):.3f} "
                   f"train-acc {accs}")
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if step % a.save_every == 0 or step == a.steps:
            save(ckpt, net, aux, opt, step, a, elapsed)
        if a.valid_every and (step % a.valid_every == 0 or step == a.steps):
            v = validate(net, sp, a.valid_count)
            msg = f"valid step {step}: " + " ".join(f"{t}={x:.2f}" for t, x in v.items())
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if a.max_minutes and elapsed > a.max_minutes * 60:
            save(ckpt, net, aux, opt, step, a, elapsed)
            print(f"stopping at step {step}: --max-minutes reached", flush=True)
            break
    print(f"done: step {step}, {(elapsed0 + time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
