#!/usr/bin/python3
"""How even is a trained checkpoint's count look-up?

  /usr/bin/python3 tools/demo_model/probe_counts.py --ckpt build/demo_model/ckpt.pt [--count 100] [--seed 13]

A count is meant to be read off the supervised look-up head (train.py --count-head, default head 0, at --dec-layer):
spread evenly over the n matching object centres and BOS, its share on BOS is 1 / (n + 1). On the first COUNT count
questions of SEED (data.make_example; not 1 or 2, the training and validation seeds), teacher forced, at the first
answer position, this prints:
  - how often that share rounds to the true count (n = 1 / share - 1) and how often the answer is right;
  - quartiles of the mass off the centres and BOS, of BOS's share over the mean centre share (1 when even), of
    the centre shares' coefficient of variation, and of BOS's share times (n + 1) (1 when even).
(With --soft-centres a centre is meant to spread over its neighbouring tokens, which count as off the centres here.)
"""
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train as T  # noqa: E402


def main():
    a = T.probe_command_line(__doc__, "a train.py checkpoint (it records --count-head and --dec-layer)",
                             tokenizer=True).parse_args()
    net, ck = T.probe_load(a)
    sp = T.probe_tokenizer(a)
    args = ck.get("args", {})
    if args.get("count_facts"):
        sys.exit("this checkpoint counts with --count-facts: its count questions have no look-up share to probe")
    head, layer = args.get("count_head", 0), args.get("dec_layer", 2)
    heads = T.look_up_heads(head)
    even = right = 0
    leak, ratio, cv, bos = [], [], [], []
    with torch.no_grad():
        for i in range(a.count):
            prefix, pmask, ids, tgt, _, _, (_, _, focus, *_) = T.example_batch(net, sp, a.seed, 100000 + i, 1, "count")
            hs, extra = net.decode(prefix, pmask, net.model.tok_embeddings(ids), tap=layer, att=(layer, heads))
            r = torch.nonzero(tgt[0] >= 0).squeeze(1)[0]
            right += int(net.output(hs[0, r]).argmax() == tgt[0, r])
            p = extra["att"][0, heads.index(head), r].exp()
            img_pos = torch.nonzero(pmask).squeeze(1)
            cen = [float(p[img_pos[j]]) for j in focus[0][0][1] if j >= 0]
            b = float(p[0])
            even += int(round(1 / max(b, 1e-6) - 1) == len(cen))
            leak.append(1 - b - sum(cen))
            bos.append(b * (len(cen) + 1))
            if cen:
                m = statistics.mean(cen)
                ratio.append(b / m)
                if len(cen) > 1:
                    cv.append(statistics.pstdev(cen) / m)

    def q(xs):
        if len(xs) < 2:  # (a small --count may leave too few multi-centre questions for quartiles)
            return "n/a (fewer than 2 questions)"
        return " / ".join(f"{x:.2f}" for x in statistics.quantiles(xs, n=4))

    print(f"head {head} of layer {layer}, {a.count} count questions (teacher forced):")
    print(f"  BOS share rounds to the count: {even}/{a.count}; answer right: {right}/{a.count}")
    print(f"  quartiles: mass off centres and BOS {q(leak)}; BOS over mean centre {q(ratio)}; "
          f"centre-share CV {q(cv)}; BOS share x (n + 1) {q(bos)}")


if __name__ == "__main__":
    main()
