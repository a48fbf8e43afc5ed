#!/usr/bin/python3
"""Draws the bundled example pictures (examples/*.png) with data.py's renderer and writes examples/questions.json,
the questions the README and tests/demo_model_test ask about them with the answers they must get.

  /usr/bin/python3 tools/demo_model/make_examples.py --out examples
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402


def obj(shape, colour, cx, cy, r):
    return dict(shape=shape, colour=colour, cx=cx, cy=cy, r=r)


# name: (size, background, objects, word); word = (text, x, y, font size, ink)
PICTURES = {
    # 1x1 grid (221 image tokens)
    "shapes.png": ((480, 320), "cyan", [obj("circle", "red", 100, 95, 31), obj("triangle", "blue", 370, 220, 32),
                                        obj("star", "yellow", 220, 240, 32)], None),
    # 1x2 grid (321 image tokens): wide
    "wide.png": ((900, 380), "white", [obj("square", "green", 160, 190, 31), obj("star", "purple", 720, 150, 32)], None),
    # four stars to count, 1x1
    "stars.png": ((420, 420), "black", [obj("star", "orange", 100, 100, 23), obj("star", "orange", 310, 90, 23),
                                        obj("star", "orange", 120, 310, 23), obj("star", "orange", 300, 320, 23)], None),
    "word.png": ((440, 260), "pink", [], ("fish", 130, 90, 60, (15, 15, 15))),
    # a pair for the two-image prompt
    "pair_a.png": ((360, 240), "gray", [obj("circle", "yellow", 100, 120, 22), obj("square", "red", 260, 120, 22)], None),
    "pair_b.png": ((360, 240), "gray", [obj("triangle", "green", 180, 125, 23)], None),
}

# (pictures, prompt, true answer, pinned). Pinned: the shipped models/demo answers it right, and
# tests/demo_model_test checks that it still does; unpinned ones (none now: the model before this one read the word
# as "hat") are asked too, and the engine must answer and stop (tools/demo_model/README.md: accuracy per type).
QUESTIONS = [
    (["shapes.png"], "What shape is yellow?", "star", True),
    (["shapes.png"], "What colour is the background?", "cyan", True),
    (["shapes.png"], "Is there a square?", "no", True),
    (["pair_a.png", "pair_b.png"], data.compare_query("Do both images have the same background colour?"), "yes", True),
    (["shapes.png"], "What colour is the circle?", "red", True),
    (["shapes.png"], "Is there a blue triangle?", "yes", True),
    (["wide.png"], "What colour is the star?", "purple", True),
    (["shapes.png"], "Is the circle on the left or on the right?", "left", True),
    (["wide.png"], "Is the square on the left or on the right?", "left", True),
    (["stars.png"], "How many stars are there?", "4", True),
    (["word.png"], "What word is written?", "fish", True),
    (["pair_a.png", "pair_b.png"], data.compare_query("Which image has a triangle?"), "Image2", True),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="examples")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name, ((W, H), bg, objs, word) in PICTURES.items():
        rng = random.Random(name)  # colour jitter as in training
        if word:
            text, x, y, size, ink = word
            img = data.render(W, H, bg, objs, text, rng, (x, y, size, ink))
        else:
            img = data.render(W, H, bg, objs, rng=rng)
        img.save(os.path.join(a.out, name), optimize=True)
    with open(os.path.join(a.out, "questions.json"), "w") as f:
        json.dump([{"images": imgs, "prompt": q, "answer": ans, "pinned": pin} for imgs, q, ans, pin in QUESTIONS], f,
                  indent=1)
        f.write("\n")
    print(f"wrote {len(PICTURES)} pictures and {len(QUESTIONS)} questions to {a.out}")


if __name__ == "__main__":
    main()
