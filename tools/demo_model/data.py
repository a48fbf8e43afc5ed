"""Procedural pictures and question/answer pairs for the ixc.cpp demo model.

Everything here is a pure function of (seed, index): `make_example(seed, index, ...)` draws its own random stream
from the string "seed:index", so the training set, the evaluation set and the bundled example pictures can be
regenerated bit-for-bit from the scripts and a seed. Training uses seed 1 (see train.py); evaluation uses any other
seed (evaluate refuses seed 1).

Pictures: coloured shapes (circle, square, triangle, star) of varied sizes and positions on varied background
colours, or a short rendered word, at sizes and aspect ratios that give the HD partition different tile grids
(mostly 1x1, some 1x2 / 2x1 / 2x2 at hd_num 24; several images always 1x1 at hd_num 6).

Question types (answers are short and exact):
  colour   "What colour is the circle?"                 -> "red"        (also the background's colour)
  count    "How many stars are there?"                  -> "3"
  position "Is the square on the left or on the right?" -> "left" / "right" / "top" / "bottom"
  exists   "Is there a blue triangle?"                  -> "yes" / "no"
  word     "What word is written?"                      -> "fish"
  compare  "Image1 <ImageHere>; Image2 <ImageHere>; Which image has a star?" -> "Image1" / "Image2"
                                                           (or "Do both images have the same background colour?")
  shape    "What shape is the red object?"              -> "circle"     (a helper type; also evaluated)
"""
import collections
import math
import os
import random

from PIL import Image, ImageDraw, ImageFont

SHAPES = ["circle", "square", "triangle", "star"]
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars"}
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 50),
    "blue": (40, 70, 225),
    "yellow": (245, 210, 20),
    "purple": (140, 50, 185),
    "orange": (250, 130, 20),
}
BACKGROUNDS = {
    "white": (255, 255, 255),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "pink": (255, 185, 210),
    "cyan": (140, 235, 240),
    "brown": (120, 75, 35),
}
DARK_BACKGROUNDS = {"black", "gray", "brown"}
WORDS = ["cat", "dog", "sun", "tree", "fish", "book", "moon", "key", "hat", "zebra"]  # distinct first letters
QTYPES = ["colour", "count", "position", "exists", "word", "compare", "shape"]
QTYPE_WEIGHTS = [3, 3, 3, 3, 2, 2, 2]  # how often make_example draws each type when none is asked for

IM_START, IM_END = "[UNUSED_TOKEN_146]", "[UNUSED_TOKEN_145]"
FONT_PATHS = ["/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"]

COLOUR_TEMPLATES = ["What colour is the {s}?", "What color is the {s}?", "Which colour is the {s}?"]
BG_TEMPLATES = ["What colour is the background?", "What color is the background?"]
COUNT_TEMPLATES = ["How many {p} are there?", "How many {p} are in the picture?", "Count the {p}."]
COUNT_ALL_TEMPLATES = ["How many shapes are there?", "How many shapes are in the picture?"]
LR_TEMPLATES = ["Is the {s} on the left or on the right?", "Is the {s} on the left or the right?"]
TB_TEMPLATES = ["Is the {s} at the top or at the bottom?", "Is the {s} at the top or the bottom?"]
EXISTS_TEMPLATES = ["Is there a {c} {s}?", "Is there a {c} {s} in the picture?"]
EXISTS_SHAPE_TEMPLATES = ["Is there a {s}?", "Is there a {s} in the picture?"]
WORD_TEMPLATES = ["What word is written?", "What word is written in the picture?", "What does the text say?"]
SHAPE_TEMPLATES = ["What shape is the {c} object?", "What shape is {c}?"]
COMPARE_HAS_TEMPLATES = ["Which image has a {s}?", "Which image contains a {s}?"]
COMPARE_BG_TEMPLATES = ["Do both images have the same background colour?",
                        "Do the two images have the same background color?"]


def chat_prompt(query):
    """The engine's chat template with no system text and no history (spec §4.2)."""
    return f"{IM_START}user\n{query}{IM_END}\n{IM_START}assistant\n"


def compare_query(question):
    return f"Image1 <ImageHere>; Image2 <ImageHere>; {question}"


_font_cache = {}


def font(size):
    if size not in _font_cache:
        for p in FONT_PATHS:
            if os.path.exists(p):
                _font_cache[size] = ImageFont.truetype(p, size)
                break
        else:  # the pictures change without DejaVu; the font is part of the data recipe
            _font_cache[size] = ImageFont.load_default()
    return _font_cache[size]


# ---------------------------------------------------------------------------------------------------------------
# Geometry


def pick_size(rng, grid):
    """An image size (W, H) whose HD partition at hd_num 24 is `grid` = (rows, cols)."""
    if grid == (1, 1):
        long = rng.randint(280, 560)
        ratio = rng.uniform(1.0, 1.9)
        short = max(160, int(long / ratio))
        return (long, short) if rng.random() < 0.6 else (short, long)
    if grid == (1, 2):  # wide: 561..1120 wide and at least twice as wide as high
        w = rng.randint(700, 1100)
        h = rng.randint(260, int(w / 2.05))
        return w, h
    if grid == (2, 1):
        w, h = pick_size(rng, (1, 2))
        return h, w
    if grid == (2, 2):
        w = rng.randint(600, 900)
        h = rng.randint(int(w / 1.6), w)
        return (w, h) if rng.random() < 0.5 else (h, w)
    raise ValueError(grid)


def pick_grid(rng):
    r = rng.random()
    if r < 0.72:
        return (1, 1)
    if r < 0.83:
        return (1, 2)
    if r < 0.94:
        return (2, 1)
    return (2, 2)


def hd_scale(W, H):
    """How much the HD transform (hd_num 24, or 6 for the 1x1 pictures of a pair) scales a picture of the sizes
    made here: the long side becomes ceil(long / 560) * 560."""
    long = max(W, H)
    return 560 * max(1, math.ceil(long / 560)) / long


# Sizes in pixels of the 560-per-tile frame the model sees (a 28-pixel patch; a merged image token covers 56 x 56):
# a shape spans about 2-3 patches across, so each patch sees a telling part of its outline and a merged token
# holds most of one shape.
OBJECT_RADIUS = (28, 46)
COUNT_RADIUS = (24, 34)
# what the global view makes of count shapes: 24-34 on one tile, half that on the wider grids (vision warm-up)
SMALL_RADIUS = (11, 28)
WORD_EM = (64, 96)


def jitter(rgb, rng, amount=12):
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)


def shape_polygon(kind, cx, cy, r, rot=0.0):
    if kind == "triangle":
        return [(cx + r * math.cos(rot + math.pi / 2 + k * 2 * math.pi / 3),
                 cy - r * math.sin(rot + math.pi / 2 + k * 2 * math.pi / 3)) for k in range(3)]
    if kind == "star":
        pts = []
        for k in range(10):
            rr = r if k % 2 == 0 else r * 0.45
            a = rot + math.pi / 2 + k * math.pi / 5
            pts.append((cx + rr * math.cos(a), cy - rr * math.sin(a)))
        return pts
    raise ValueError(kind)


def draw_shape(draw, kind, cx, cy, r, fill):
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=fill)
    else:
        draw.polygon(shape_polygon(kind, cx, cy, r * (1.1 if kind == "triangle" else 1.15)), fill=fill)


def place(rng, W, H, radii, margin=6, tries=400):
    """Non-overlapping centres for circles of the given radii inside a W x H picture, or None."""
    out = []
    for r in radii:
        for _ in range(tries):
            cx = rng.uniform(r + margin, W - r - margin)
            cy = rng.uniform(r + margin, H - r - margin)
            if all(math.hypot(cx - x, cy - y) > r + rr + margin for x, y, rr in out):
                out.append((cx, cy, r))
                break
        else:
            return None
    return out


# ---------------------------------------------------------------------------------------------------------------
# Scenes: a picture plus the facts questions are asked about


class Scene:
    def __init__(self, image, bg, objects, word=None, word_box=None):
        self.image = image      # PIL RGB
        self.bg = bg            # background colour name
        self.objects = objects  # list of dicts: shape, colour, cx, cy, r
        self.word = word
        self.word_box = word_box  # (x, y, font size, ink) as drawn

    def label_map(self):
        """Training-only dense labels: an 8-bit picture of the same size with 0 = background, k + 1 = object k,
        TEXT_LABEL + i = letter i of the written word (its advance box; drawn with the same geometry as the
        picture)."""
        lab = Image.new("L", self.image.size, 0)
        d = ImageDraw.Draw(lab)
        for k, o in enumerate(self.objects):
            draw_shape(d, o["shape"], o["cx"], o["cy"], o["r"], k + 1)
        if self.word is not None:  # each letter's advance box, as high as the word's ink
            x, y, size, _ = self.word_box
            f = font(size)
            _, by0, _, by1 = f.getbbox(self.word)
            for i in range(len(self.word)):
                x0, x1 = x + f.getlength(self.word[:i]), x + f.getlength(self.word[:i + 1])
                d.rectangle([x0, y + by0, x1, y + by1], fill=TEXT_LABEL + i)
        return lab


TEXT_LABEL = 200


def render(W, H, bg, objects, word=None, rng=None, word_box=None):
    img = Image.new("RGB", (W, H), jitter(BACKGROUNDS[bg], rng, 8))
    d = ImageDraw.Draw(img)
    for o in objects:
        draw_shape(d, o["shape"], o["cx"], o["cy"], o["r"], jitter(COLOURS[o["colour"]], rng))
    if word is not None:
        x, y, size, colour = word_box
        d.text((x, y), word, font=font(size), fill=colour)
    return img


def objects_scene(rng, grid=None, n=None, distinct_shapes=True, min_n=1):
    """1-3 shapes of distinct kinds and distinct colours."""
    grid = grid or pick_grid(rng)
    W, H = pick_size(rng, grid)
    bg = rng.choice(list(BACKGROUNDS))
    for _ in range(50):
        k = n or rng.randint(min_n, 3)
        radii = [rng.uniform(*OBJECT_RADIUS) / hd_scale(W, H) for _ in range(k)]
        centres = place(rng, W, H, radii)
        if centres:
            break
    else:
        k, centres = 1, [(W / 2, H / 2, OBJECT_RADIUS[0] / hd_scale(W, H))]
    shapes = rng.sample(SHAPES, k) if distinct_shapes else [rng.choice(SHAPES) for _ in range(k)]
    colours = rng.sample(list(COLOURS), k)
    objs = [dict(shape=s, colour=c, cx=x, cy=y, r=r) for s, c, (x, y, r) in zip(shapes, colours, centres)]
    return Scene(render(W, H, bg, objs, rng=rng), bg, objs)


def count_scene(rng, grid=None):
    """1-4 copies of one shape in one colour, of similar size, sometimes with one other shape as a distractor."""
    grid = grid or pick_grid(rng)
    W, H = pick_size(rng, grid)
    bg = rng.choice(list(BACKGROUNDS))
    shape = rng.choice(SHAPES)
    colour = rng.choice(list(COLOURS))
    for _ in range(100):
        n = rng.randint(1, 4)
        distract = rng.random() < 0.3
        base = rng.uniform(*COUNT_RADIUS) / hd_scale(W, H)
        radii = [base * rng.uniform(0.9, 1.1) for _ in range(n + distract)]
        centres = place(rng, W, H, radii)
        if centres:
            break
    else:
        n, distract, centres = 1, False, [(W / 2, H / 2, COUNT_RADIUS[0] / hd_scale(W, H))]
    objs = [dict(shape=shape, colour=colour, cx=x, cy=y, r=r) for x, y, r in centres[:n]]
    if distract:
        x, y, r = centres[n]
        objs.append(dict(shape=rng.choice([s for s in SHAPES if s != shape]),
                         colour=rng.choice(list(COLOURS)), cx=x, cy=y, r=r))
    return Scene(render(W, H, bg, objs, rng=rng), bg, objs)


def two_group_count_scene(rng, grid=None):
    """Training only (train.py --two-group-counts; the evaluation never draws it): 1-4 copies of one shape and 1-3
    of another, each group in a colour of its own (one colour for both would make "What shape is red?" ambiguous;
    the question names a shape, so the look-up still has to tell shapes apart). In count_scene's pictures nearly
    every object is of the asked shape, so a count can be looked up without telling shapes apart; here it cannot."""
    grid = grid or pick_grid(rng)
    W, H = pick_size(rng, grid)
    bg = rng.choice(list(BACKGROUNDS))
    a, b = rng.sample(SHAPES, 2)
    ca = rng.choice(list(COLOURS))
    cb = rng.choice([c for c in COLOURS if c != ca])
    for _ in range(100):
        na, nb = rng.randint(1, 4), rng.randint(1, 3)
        base = rng.uniform(*COUNT_RADIUS) / hd_scale(W, H)
        centres = place(rng, W, H, [base * rng.uniform(0.9, 1.1) for _ in range(na + nb)])
        if centres:
            break
    else:
        return count_scene(rng, grid)
    objs = [dict(shape=a if k < na else b, colour=ca if k < na else cb, cx=x, cy=y, r=r)
            for k, (x, y, r) in enumerate(centres)]
    return Scene(render(W, H, bg, objs, rng=rng), bg, objs)


def word_ink(rng, bg):
    """White or near-black for contrast with the background, or a colour 40% of the time."""
    ink = (255, 255, 255) if bg in DARK_BACKGROUNDS else (15, 15, 15)
    if rng.random() < 0.4:
        ink = COLOURS[rng.choice(["red", "blue", "green", "purple"])]
    return ink


def word_scene(rng, grid=None):
    grid = grid or pick_grid(rng)
    W, H = pick_size(rng, grid)
    bg = rng.choice(list(BACKGROUNDS))
    word = rng.choice(WORDS)
    size = max(8, int(rng.uniform(*WORD_EM) / hd_scale(W, H)))
    f = font(size)
    for _ in range(20):
        box = f.getbbox(word)
        tw, th = box[2] - box[0], box[3] - box[1]
        if tw < W - 8 and th < H - 8:
            break
        size = int(size * 0.85)
        f = font(size)
    x = rng.uniform(4, max(4, W - tw - 4)) - box[0]
    y = rng.uniform(4, max(4, H - th - 4)) - box[1]
    ink = word_ink(rng, bg)
    img = render(W, H, bg, [], word, rng, (x, y, size, ink))
    return Scene(img, bg, [], word, (x, y, size, ink))


def vision_scene(seed, index, word_prob=0.35, small_prob=0.0):
    """A picture for the vision tower's warm-up (train.py --vision-steps): one 560 x 560 tile crowded with 6-14
    shapes, with a word with probability `word_prob`, so that every forward pass carries many labelled image
    tokens. Each shape is small (SMALL_RADIUS, as count shapes are in the global view) with probability
    `small_prob`."""
    rng = random.Random(f"vision:{seed}:{index}")
    W = H = 560
    bg = rng.choice(list(BACKGROUNDS))
    word_box = word = None
    reserved = []
    if rng.random() < word_prob:
        word = rng.choice(WORDS)
        size = int(rng.uniform(*WORD_EM))
        box = font(size).getbbox(word)
        tw, th = box[2] - box[0], box[3] - box[1]
        x = rng.uniform(4, W - tw - 4) - box[0]
        y = rng.uniform(4, H - th - 4) - box[1]
        ink = word_ink(rng, bg)
        word_box = (x, y, size, ink)
        # keep shapes off the word: a row of circles covering its box
        x0, y0, x1, y1 = x + box[0], y + box[1], x + box[2], y + box[3]
        r = (y1 - y0) / 2 + 4
        cx = x0 + r
        while cx - r < x1:
            reserved.append((cx, (y0 + y1) / 2, r))
            cx += r
    objs = []
    for _ in range(rng.randint(6, 14)):
        small = small_prob > 0 and rng.random() < small_prob  # (0 draws nothing: old pictures stay the same)
        r = rng.uniform(*(SMALL_RADIUS if small else OBJECT_RADIUS))
        for _ in range(60):
            cx, cy = rng.uniform(r + 6, W - r - 6), rng.uniform(r + 6, H - r - 6)
            if all(math.hypot(cx - o[0], cy - o[1]) > r + o[2] + 6 for o in reserved):
                reserved.append((cx, cy, r))
                objs.append(dict(shape=rng.choice(SHAPES), colour=rng.choice(list(COLOURS)), cx=cx, cy=cy, r=r))
                break
    return Scene(render(W, H, bg, objs, word, rng, word_box), bg, objs, word, word_box)


# ---------------------------------------------------------------------------------------------------------------
# Questions


def q_colour(rng, sc):
    if sc.objects and rng.random() < 0.8:
        o = rng.choice(sc.objects)
        return "colour", rng.choice(COLOUR_TEMPLATES).format(s=o["shape"]), o["colour"]
    return "colour", rng.choice(BG_TEMPLATES), sc.bg


def q_shape(rng, sc):
    o = rng.choice(sc.objects)
    return "shape", rng.choice(SHAPE_TEMPLATES).format(c=o["colour"]), o["shape"]


def q_exists(rng, sc):
    present = {(o["shape"], o["colour"]) for o in sc.objects}
    shapes = {o["shape"] for o in sc.objects}
    if rng.random() < 0.3:  # shape only
        s = rng.choice(SHAPES)
        return "exists", rng.choice(EXISTS_SHAPE_TEMPLATES).format(s=s), "yes" if s in shapes else "no"
    if rng.random() < 0.5:
        s, c = rng.choice(sorted(present))
        return "exists", rng.choice(EXISTS_TEMPLATES).format(c=c, s=s), "yes"
    # a near miss half of the time: a shape that is there in another colour, or a colour that is there on another shape
    absent = [(s, c) for s in SHAPES for c in COLOURS if (s, c) not in present]
    near = [(s, c) for s, c in absent if s in shapes or c in {o["colour"] for o in sc.objects}]
    s, c = rng.choice(near if near and rng.random() < 0.5 else absent)
    return "exists", rng.choice(EXISTS_TEMPLATES).format(c=c, s=s), "no"


def q_position(rng, sc):
    """Left/right on pictures at least as wide as high, top/bottom on pictures at least as high as wide: then the
    asked axis is fully covered by the picture after HD padding. Only for clearly placed shapes."""
    W, H = sc.image.size
    cands = []
    for o in sc.objects:
        if W >= H:
            fx = o["cx"] / W
            if fx < 0.4 or fx > 0.6:
                cands.append((o, "lr", "left" if fx < 0.5 else "right"))
        if H >= W:
            fy = o["cy"] / H
            if fy < 0.4 or fy > 0.6:
                cands.append((o, "tb", "top" if fy < 0.5 else "bottom"))
    if not cands:
        return None
    o, axis, ans = rng.choice(cands)
    t = rng.choice(LR_TEMPLATES if axis == "lr" else TB_TEMPLATES)
    return "position", t.format(s=o["shape"]), ans


def absent_shapes(sc):
    """The shapes a scene has none of, in SHAPES order."""
    return [s for s in SHAPES if s not in {o["shape"] for o in sc.objects}]


def counted_shape(sc):
    """(the shape q_count asks about when it asks about one that is there: the most frequent, on a tie the first
    drawn; how many of each shape the scene has)."""
    counts = collections.Counter(o["shape"] for o in sc.objects)
    return max(counts, key=counts.get), counts


def q_count(rng, sc):
    if rng.random() < 0.1:  # a shape that is not there
        missing = absent_shapes(sc)
        if missing:
            return "count", rng.choice(COUNT_TEMPLATES).format(p=PLURAL[rng.choice(missing)]), "0"
    main, counts = counted_shape(sc)
    if len(counts) == 1 and rng.random() < 0.3:
        return "count", rng.choice(COUNT_ALL_TEMPLATES), str(len(sc.objects))
    return "count", rng.choice(COUNT_TEMPLATES).format(p=PLURAL[main]), str(counts[main])


def q_count_any(rng, sc):
    """A count of any shape of the picture, or (one in ten) of a shape that is not there: two_group_count_scene's
    questions."""
    missing = absent_shapes(sc)
    if missing and rng.random() < 0.1:
        return "count", rng.choice(COUNT_TEMPLATES).format(p=PLURAL[rng.choice(missing)]), "0"
    counts = collections.Counter(o["shape"] for o in sc.objects)
    s = rng.choice(sorted(counts))
    return "count", rng.choice(COUNT_TEMPLATES).format(p=PLURAL[s]), str(counts[s])


def q_word(rng, sc):
    return "word", rng.choice(WORD_TEMPLATES), sc.word


def unique_position(sc):
    """Position questions need the asked shape to be unique in the picture."""
    kinds = [o["shape"] for o in sc.objects]
    return all(kinds.count(k) == 1 for k in kinds)


def compare_example(rng, want=None):
    """Two small pictures (always 1x1 at hd_num 6). The first question is of kind `want` ("has": which image has a
    shape, "bg": same background colour?), drawn at random when None; all other valid questions follow."""
    kind = want or ("has" if rng.random() < 0.6 else "bg")
    for _ in range(100):
        a = objects_scene(rng, grid=(1, 1), n=rng.randint(1, 2))
        b = objects_scene(rng, grid=(1, 1), n=rng.randint(1, 2))
        if rng.random() < 0.5:  # the same background about half of the time
            b = Scene(render(*b.image.size, a.bg, b.objects, rng=rng), a.bg, b.objects)
        sa = {o["shape"] for o in a.objects}
        sb = {o["shape"] for o in b.objects}
        only = sorted((sa - sb) | (sb - sa))
        if kind == "has" and not only:
            continue
        has = [("compare", rng.choice(COMPARE_HAS_TEMPLATES).format(s=s), "Image1" if s in sa else "Image2")
               for s in only]
        rng.shuffle(has)
        bg = [("compare", rng.choice(COMPARE_BG_TEMPLATES), "yes" if a.bg == b.bg else "no")]
        return [a, b], (has + bg if kind == "has" else bg + has)
    raise RuntimeError("compare_example")


def make_example(seed, index, qtype=None, n_questions=1, scenes=False, grid=None):
    """One example: (images, [(qtype, question, answer), ...]). The first question has type `qtype` (drawn at
    random when None; "count2", for training only, is a count question about a two_group_count_scene); more
    questions about the same picture(s) follow when n_questions > 1 (training). With scenes=True the images are
    Scene objects (picture plus facts, for training-only dense labels). grid: the HD tile grid (rows, cols) of a
    single picture (drawn at random when None; training asks for one so that its workers' pictures cost alike)."""
    imgs, qs = _make_example(seed, index, qtype, n_questions, grid)
    return (imgs if scenes else [sc.image for sc in imgs]), qs


def _make_example(seed, index, qtype, n_questions, grid):
    rng = random.Random(f"{seed}:{index}")
    if qtype is None:
        qtype = rng.choices(QTYPES, weights=QTYPE_WEIGHTS)[0]
    if qtype == "compare":
        imgs, qs = compare_example(rng)
        return imgs, qs[:n_questions]
    if qtype == "word":
        sc = word_scene(rng, grid)
        qs = [q_word(rng, sc)]
        if n_questions > 1:
            qs.append(q_colour(rng, sc))  # background
        return [sc], qs[:n_questions]
    counter = q_count
    if qtype == "count":
        sc = count_scene(rng, grid)
        first = q_count(rng, sc)
    elif qtype == "count2":  # (training only)
        sc = two_group_count_scene(rng, grid)
        counter = q_count_any
        first = q_count_any(rng, sc)
    else:
        for _ in range(100):
            sc = objects_scene(rng, grid, min_n=2 if qtype == "position" and rng.random() < 0.5 else 1)
            first = {"colour": q_colour, "exists": q_exists, "position": q_position, "shape": q_shape}[qtype](rng, sc)
            if first is not None:
                break
    qs = [first]
    # follow-up counts only about count pictures: on the others every count is 1 or 0, and they taught "1"
    gens = [q_colour, q_exists, q_shape] + ([counter] if qtype in ("count", "count2") else []) + \
        ([q_position] if unique_position(sc) else [])
    tries = 0
    while len(qs) < n_questions and tries < 6 * n_questions:
        tries += 1
        q = rng.choice(gens)(rng, sc)
        if q is not None and all(q[1] != x[1] for x in qs):
            qs.append(q)
    return [sc], qs


def eval_types(count):
    """Question types of an evaluation run: round-robin so every type gets its share."""
    return [QTYPES[i % len(QTYPES)] for i in range(count)]


def corpus_lines(seed=12345, n=4000):
    """Text the tokenizer is trained on: every template filled with every name, plus prompt fragments."""
    lines = set()
    names = SHAPES + list(PLURAL.values()) + list(COLOURS) + list(BACKGROUNDS) + WORDS
    for t in COLOUR_TEMPLATES + LR_TEMPLATES + TB_TEMPLATES + EXISTS_SHAPE_TEMPLATES + COMPARE_HAS_TEMPLATES:
        for s in SHAPES:
            lines.add(t.format(s=s) + IM_END)
    for t in COUNT_TEMPLATES:
        for p in PLURAL.values():
            lines.add(t.format(p=p) + IM_END)
    for t in EXISTS_TEMPLATES:
        for s in SHAPES:
            for c in COLOURS:
                lines.add(t.format(s=s, c=c) + IM_END)
    for t in SHAPE_TEMPLATES:
        for c in COLOURS:
            lines.add(t.format(c=c) + IM_END)
    for t in BG_TEMPLATES + COUNT_ALL_TEMPLATES + WORD_TEMPLATES + COMPARE_BG_TEMPLATES:
        lines.add(t + IM_END)
    for a in names + ["yes", "no", "left", "right", "top", "bottom", "Image1", "Image2", "0", "1", "2", "3", "4",
                      "5", "6", "7", "8", "9"]:
        lines.add(a + IM_END)
    lines.add(IM_START + "user")
    lines.add(IM_START + "assistant")
    lines.add(IM_START + "system")
    lines.add("Image1 ")
    lines.add("; Image2 ")
    lines.add("; Image3 ")
    return sorted(lines)
