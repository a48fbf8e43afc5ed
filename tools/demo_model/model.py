"""IXC-2.5 in PyTorch at small widths: the same forward as the reference (spec Part B §2-§4) with the tensor
names and layouts of the real checkpoint, so export is a plain rename-free dump.

  preprocessing  HD transform (Pillow BILINEAR resize, white padding, transpose trick) -> /255 -> CLIP mean/std ->
                 [global view (bicubic 560x560 of the padded tensor), tiles row-major]
  vision         CLIP ViT (patch 28 at 560: 20x20 patches + CLS; the real model has patch 14, 40x40), pre-LN,
                 quick_gelu, last layer, no post-LN, CLS dropped -> 2x2 concat merge -> sub_GN / glb_GN layout ->
                 Linear-GELU(erf)-Linear
  decoder        InternLM2: RMSNorm, fused group-interleaved wqkv [q0..q(G-1), k, v] per KV group, RoPE (NeoX
                 halves), GQA causal attention, SwiGLU w1/w3/w2, Partial LoRA (scale 1) on image rows of every
                 wqkv/wo/w1/w3/w2, final RMSNorm, separate lm head.
"""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# The demo model's sizes (written to config.json by export.py).
DEMO_CONFIG = {
    "architectures": ["InternLMXComposer2ForCausalLM"],
    "model_type": "internlmxcomposer2",
    "vocab_size": 512,
    "hidden_size": 192,
    "intermediate_size": 512,
    "num_hidden_layers": 4,
    "num_attention_heads": 6,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 16384,
    "rms_norm_eps": 1e-05,
    "rope_theta": 1000000,
    "rope_scaling": {"type": "dynamic", "factor": 2.0},
    "bias": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
    "max_length": 16384,
    "torch_dtype": "float32",
    "tie_word_embeddings": False,
    "plora_rank": 32,  # informational: the engine reads LoRA ranks from the tensor shapes
    "vision_config": {
        "image_size": 560,
        "patch_size": 28,
        "hidden_size": 128,
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": 1e-05,
        "num_channels": 3,
    },
}


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing (spec §3.2-§3.4)


def hd_geometry(W, H, hd_num, tile=560):
    """(transposed, new_w, new_h, padded_h) of Image_transform for a W x H picture (in the transposed frame when
    W < H). Python float arithmetic and int() truncation as the reference."""
    trans = W < H
    if trans:
        W, H = H, W
    ratio = W / H
    s = 1
    while s * math.ceil(s / ratio) <= hd_num:
        s += 1
    s -= 1
    s = min(math.ceil(W / tile), s)
    new_w = int(s * tile)
    new_h = int(new_w / ratio)
    return trans, new_w, new_h, int(math.ceil(new_h / tile) * tile)


def hd_transform(img, hd_num, tile=560, resample=Image.BILINEAR, fill=(255, 255, 255)):
    """Image_transform: returns the padded PIL image whose sides are multiples of `tile`."""
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    trans, new_w, new_h, pad_h = hd_geometry(*img.size, hd_num, tile)
    if trans:
        img = img.transpose(Image.TRANSPOSE)
    img = img.resize((new_w, new_h), resample)
    canvas = Image.new(img.mode, (new_w, pad_h), fill)
    canvas.paste(img, (0, 0))
    if trans:
        canvas = canvas.transpose(Image.TRANSPOSE)
    return canvas


def normalise(img):
    """uint8 RGB PIL -> float32 [1, 3, H, W]: ToTensor (/255) then Normalize (subtract, divide)."""
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def make_views(x, tile=560):
    """[1,3,H,W] -> ([1+rows*cols, 3, tile, tile] = [global, tiles row-major], rows, cols)."""
    _, C, H, W = x.shape
    rows, cols = H // tile, W // tile
    # (a one-tile picture is its own global view: bicubic at scale 1 is an exact copy, which torch computes slowly)
    glb = x if (H, W) == (tile, tile) else F.interpolate(x, size=(tile, tile), mode="bicubic", align_corners=False)
    tiles = x.view(1, C, rows, tile, cols, tile).permute(0, 2, 4, 1, 3, 5).reshape(rows * cols, C, tile, tile)
    return torch.cat([glb, tiles], 0), rows, cols


def preprocess(img, hd_num, tile=560):
    return make_views(normalise(hd_transform(img.convert("RGB"), hd_num, tile)), tile)


# ---------------------------------------------------------------------------------------------------------------
# Vision tower (HF CLIPVisionModel names under vit.vision_tower.vision_model.)


class ClipAttention(nn.Module):
    def __init__(self, h, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(h, h) for _ in range(4))

    def forward(self, x):
        B, N, H = x.shape
        d = H // self.heads
        q = (self.q_proj(x) * d ** -0.5).view(B, N, self.heads, d).transpose(1, 2)
        k = self.k_proj(x).view(B, N, self.heads, d).transpose(1, 2)
        v = self.v_proj(x).view(B, N, self.heads, d).transpose(1, 2)
        a = torch.softmax((q @ k.transpose(-1, -2)).float(), dim=-1)  # (fp32 also under bf16 autocast)
        return self.out_proj((a @ v).transpose(1, 2).reshape(B, N, H))


class ClipMLP(nn.Module):
    def __init__(self, h, i):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(h, i), nn.Linear(i, h)

    def forward(self, x):
        z = self.fc1(x)
        return self.fc2(z * torch.sigmoid(1.702 * z))


class ClipLayer(nn.Module):
    def __init__(self, vc):
        super().__init__()
        h, eps = vc["hidden_size"], vc["layer_norm_eps"]
        self.self_attn = ClipAttention(h, vc["num_attention_heads"])
        self.layer_norm1 = nn.LayerNorm(h, eps=eps)
        self.mlp = ClipMLP(h, vc["intermediate_size"])
        self.layer_norm2 = nn.LayerNorm(h, eps=eps)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class ClipEmbeddings(nn.Module):
    def __init__(self, vc):
        super().__init__()
        h, p = vc["hidden_size"], vc["patch_size"]
        g = vc["image_size"] // p
        self.class_embedding = nn.Parameter(torch.randn(h) * 0.02)
        self.patch_embedding = nn.Conv2d(vc["num_channels"], h, p, p, bias=False)
        self.position_embedding = nn.Embedding(g * g + 1, h)
        with torch.no_grad():  # 2-D sin-cos start (then learned) so that shapes and places are easy to tell apart
            pe = torch.zeros(g * g + 1, h)
            yy, xx = torch.meshgrid(torch.arange(g).float(), torch.arange(g).float(), indexing="ij")
            q = h // 4
            freqs = 1.0 / (100.0 ** (torch.arange(q).float() / q))
            for i, coord in enumerate([yy.flatten(), xx.flatten()]):
                ang = coord[:, None] * freqs[None, :]
                pe[1:, 2 * i * q:(2 * i + 1) * q] = torch.sin(ang)
                pe[1:, (2 * i + 1) * q:(2 * i + 2) * q] = torch.cos(ang)
            self.position_embedding.weight.copy_(pe * 0.5)

    def forward(self, pixels):
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # [B, g*g, H], patch y*g+x
        cls = self.class_embedding.view(1, 1, -1).expand(x.shape[0], 1, -1)
        return torch.cat([cls, x], 1) + self.position_embedding.weight.unsqueeze(0)


class ClipEncoder(nn.Module):
    def __init__(self, vc):
        super().__init__()
        self.layers = nn.ModuleList(ClipLayer(vc) for _ in range(vc["num_hidden_layers"]))


class ClipVisionModel(nn.Module):
    def __init__(self, vc):
        super().__init__()
        self.embeddings = ClipEmbeddings(vc)
        self.pre_layrnorm = nn.LayerNorm(vc["hidden_size"], eps=vc["layer_norm_eps"])
        self.encoder = ClipEncoder(vc)

    def forward(self, pixels):
        x = self.pre_layrnorm(self.embeddings(pixels))
        for layer in self.encoder.layers:
            x = layer(x)
        return x[:, 1:]  # last layer, no post-LN, CLS dropped


class VisionTowerWrap(nn.Module):  # vit.vision_tower.vision_model.*
    def __init__(self, vc):
        super().__init__()
        self.vision_model = ClipVisionModel(vc)


class Vit(nn.Module):
    def __init__(self, vc):
        super().__init__()
        self.vision_tower = VisionTowerWrap(vc)


# ---------------------------------------------------------------------------------------------------------------
# Decoder (InternLM2 + Partial LoRA)


class PLoRALinear(nn.Module):
    """y = x W^T, plus (x A^T) B^T on image rows (scale alpha/r = 1)."""

    def __init__(self, d_in, d_out, rank):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in) * (d_in ** -0.5))
        self.Plora_A = nn.Linear(d_in, rank, bias=False)
        self.Plora_B = nn.Linear(rank, d_out, bias=False)
        nn.init.normal_(self.Plora_A.weight, std=d_in ** -0.5)
        nn.init.zeros_(self.Plora_B.weight)

    def forward(self, x, im_mask=None):
        y = F.linear(x, self.weight)
        if im_mask is not None and bool(im_mask.any()):
            y = y + self.Plora_B(self.Plora_A(x)) * im_mask.to(x.dtype).unsqueeze(-1)
        return y


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        return self.weight * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)


def rope_tables(positions, head_dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], -1)
    return emb.cos(), emb.sin()


def apply_rope(x, cos, sin):  # x [..., T, d]
    h = x.shape[-1] // 2
    rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos + rot * sin


class Attention(nn.Module):
    def __init__(self, c, rank):
        super().__init__()
        self.hq, self.hkv = c["num_attention_heads"], c["num_key_value_heads"]
        self.d = c["hidden_size"] // self.hq
        D = c["hidden_size"]
        self.wqkv = PLoRALinear(D, (self.hq + 2 * self.hkv) * self.d, rank)
        self.wo = PLoRALinear(self.hq * self.d, D, rank)

    def qkv(self, x, im_mask):
        """x [..., T, D] -> q [..., Hq, T, d], k, v [..., Hkv, T, d] from the group-interleaved layout."""
        G = self.hq // self.hkv
        y = self.wqkv(x, im_mask)
        y = y.view(*x.shape[:-1], self.hkv, G + 2, self.d)
        q = y[..., :G, :].reshape(*x.shape[:-1], self.hq, self.d)
        k, v = y[..., G, :], y[..., G + 1, :]
        return q.transpose(-2, -3), k.transpose(-2, -3), v.transpose(-2, -3)


class FeedForward(nn.Module):
    def __init__(self, c, rank):
        super().__init__()
        D, Fi = c["hidden_size"], c["intermediate_size"]
        self.w1, self.w3 = PLoRALinear(D, Fi, rank), PLoRALinear(D, Fi, rank)
        self.w2 = PLoRALinear(Fi, D, rank)

    def forward(self, x, im_mask=None):
        return self.w2(F.silu(self.w1(x, im_mask)) * self.w3(x, im_mask), im_mask)


class DecoderLayer(nn.Module):
    def __init__(self, c, rank):
        super().__init__()
        self.attention = Attention(c, rank)
        self.feed_forward = FeedForward(c, rank)
        self.attention_norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.ffn_norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class InternLM2Model(nn.Module):
    def __init__(self, c, rank):
        super().__init__()
        self.tok_embeddings = nn.Embedding(c["vocab_size"], c["hidden_size"])
        nn.init.normal_(self.tok_embeddings.weight, std=1.0)
        self.layers = nn.ModuleList(DecoderLayer(c, rank) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


def _attend(q, k, v, mask, G):
    """q [..., Hq, Tq, d]; k, v [..., Hkv, Tk, d]; mask [Tq, Tk] additive. Query head h uses KV head h // G: the
    G query heads of a group are stacked along the rows so that no key/value copy is needed."""
    *b, Hq, Tq, d = q.shape
    Hkv, Tk = k.shape[-3], k.shape[-2]
    qg = (q * d ** -0.5).reshape(*b, Hkv, G * Tq, d)
    s = (qg @ k.transpose(-1, -2)).view(*b, Hkv, G, Tq, Tk)
    if mask is not None:
        s = s + mask
    a = torch.softmax(s, -1).view(*b, Hkv, G * Tq, Tk)
    return (a @ v).view(*b, Hq, Tq, d)


_masks = {}


def causal_mask(tq, tk, device=None):
    """Additive mask: query i (of the last tq positions of a tk-long sequence) sees keys 0 .. tk - tq + i."""
    key = (tq, tk, str(device))
    if key not in _masks:
        if len(_masks) > 16:  # prompts vary in length: a few recent sizes are all that repeat
            _masks.clear()
        _masks[key] = torch.triu(torch.full((tq, tk), float("-inf"), device=device), diagonal=tk - tq + 1)
    return _masks[key]


class IXCDemo(nn.Module):
    def __init__(self, config=DEMO_CONFIG):
        super().__init__()
        self.config = config
        c, vc = config, config["vision_config"]
        rank = config.get("plora_rank", 32)
        self.model = InternLM2Model(c, rank)
        self.output = nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        nn.init.normal_(self.output.weight, std=c["hidden_size"] ** -0.5)
        self.vit = Vit(vc)
        M, D = 4 * vc["hidden_size"], c["hidden_size"]
        self.vision_proj = nn.Sequential(nn.Linear(M, D), nn.GELU(), nn.Linear(D, D))
        self.plora_glb_GN = nn.Parameter(torch.zeros(1, 1, M))
        self.plora_sub_GN = nn.Parameter(torch.zeros(1, 1, 1, M))
        self.head_dim = D // c["num_attention_heads"]
        self.G = c["num_attention_heads"] // c["num_key_value_heads"]

    # --- vision -----------------------------------------------------------------------------------------------
    def encode_image(self, views, rows, cols):
        """views [1+rows*cols, 3, S, S] -> projected image tokens [(rows*cols+1)*n^2 + 1 + (rows+1)*n, D]."""
        vm = self.vit.vision_tower.vision_model
        views = views.to(self.plora_glb_GN.device)  # preprocessing is on the CPU; training may run on a GPU
        if rows * cols == 1 and torch.equal(views[0], views[1]):
            f = vm(views[:1])  # the global view of a 1x1 grid is the tile itself: compute once, use twice
            f = torch.cat([f, f], 0)
        else:
            f = vm(views)
        N, P, C = f.shape
        g = int(round(math.sqrt(P)))
        n = g // 2
        m = f.view(N, n, 2, n, 2, C).permute(0, 1, 3, 2, 4, 5).reshape(N, n, n, 4 * C)
        M = 4 * C
        sub = self.plora_sub_GN.view(1, 1, M)
        glb = torch.cat([m[0], sub.expand(n, 1, M)], 1).reshape(-1, M)
        loc = m[1:].view(rows, cols, n, n, M).permute(0, 2, 1, 3, 4).reshape(rows * n, cols * n, M)
        loc = torch.cat([loc, sub.expand(rows * n, 1, M)], 1).reshape(-1, M)
        return self.vision_proj(torch.cat([glb, self.plora_glb_GN.view(1, M), loc], 0))

    # --- decoder ----------------------------------------------------------------------------------------------
    def decode(self, prefix, prefix_mask, suffix, tap=0, att=None, patt=None):
        """Runs the decoder over one shared prefix [P, D] (image rows marked by prefix_mask [P]) and a batch of K
        continuations suffix [K, S, D] that all follow the prefix (rows padded at the end are never seen by real
        rows: attention is causal). Returns the suffix's final-normed hidden states [K, S, D] and a dict of
        training-only extras: with tap=L, "tap": the prefix's residual stream after the first L layers; with
        att=(L, heads), "att": the log attention weights [K, len(heads), S, P + S] of those query heads of layer L
        (0-based) at the suffix rows, and "after": the suffix's residual stream after that layer; with
        patt=[(L, heads, rows), ...], "patt": per entry, the log attention weights [len(heads), len(rows), P] of
        those query heads of layer L at those prefix rows."""
        c = self.config
        P, S, dev = prefix.shape[0], suffix.shape[1], prefix.device
        theta = float(c["rope_theta"])
        cos_p, sin_p = rope_tables(torch.arange(P, device=dev), self.head_dim, theta)
        cos_s, sin_s = rope_tables(torch.arange(P, P + S, device=dev), self.head_dim, theta)
        mask_p, mask_s = causal_mask(P, P, dev), causal_mask(S, P + S, dev)
        xp, xs = prefix, suffix
        layers = self.model.layers
        extra = {}
        for li, L in enumerate(layers):
            if tap and li == tap:
                extra["tap"] = xp
            A = L.attention
            qp, kp, vp = A.qkv(L.attention_norm(xp), prefix_mask)
            kp = apply_rope(kp, cos_p, sin_p)
            if li < len(layers) - 1:  # the last layer's prefix rows feed nothing
                qp = apply_rope(qp, cos_p, sin_p)
                for k, (pl, heads, rows) in enumerate(patt or []):  # the scores _attend computes, a few of them
                    if pl == li:
                        r = torch.as_tensor(rows, device=dev)
                        sc = torch.stack([qp[h, r] @ kp[h // self.G].transpose(-1, -2) for h in heads])
                        extra.setdefault("patt", [None] * len(patt))[k] = torch.log_softmax(
                            sc * qp.shape[-1] ** -0.5 + mask_p[r], -1)
                op = _attend(qp, kp, vp, mask_p, self.G)  # [Hq, P, d]
                op = op.transpose(0, 1).reshape(P, -1)
                xp = xp + A.wo(op, prefix_mask)
                xp = xp + L.feed_forward(L.ffn_norm(xp), prefix_mask)
            K = xs.shape[0]
            qs, ks, vs = A.qkv(L.attention_norm(xs), None)
            qs, ks = apply_rope(qs, cos_s, sin_s), apply_rope(ks, cos_s, sin_s)
            kk = torch.cat([kp.unsqueeze(0).expand(K, *kp.shape), ks], -2)
            vv = torch.cat([vp.unsqueeze(0).expand(K, *vp.shape), vs], -2)
            if att and li == att[0]:  # the same scores _attend computes, kept for a few heads
                sc = torch.stack([qs[:, h] @ kk[:, h // self.G].transpose(-1, -2) for h in att[1]], 1)
                extra["att"] = torch.log_softmax(sc * qs.shape[-1] ** -0.5 + mask_s, -1)
            os_ = _attend(qs, kk, vv, mask_s, self.G)  # [K, Hq, S, d]
            os_ = os_.transpose(1, 2).reshape(K, S, -1)
            xs = xs + A.wo(os_, None)
            xs = xs + L.feed_forward(L.ffn_norm(xs), None)
            if att and li == att[0]:
                extra["after"] = xs
        return self.model.norm(xs), extra

    def embed_tokens(self, ids):
        w = self.model.tok_embeddings.weight
        return self.model.tok_embeddings(torch.as_tensor(ids, dtype=torch.long, device=w.device))

    def build_prefix(self, parts, images):
        """parts: token-id lists of the text before each image (parts[0] starts with BOS); images: list of
        (views, rows, cols). Returns (embeds [P, D], im_mask [P])."""
        embs, masks = [], []
        dev = self.plora_glb_GN.device
        for ids, (views, rows, cols) in zip(parts, images):
            if ids:
                embs.append(self.embed_tokens(ids))
                masks.append(torch.zeros(len(ids), dtype=torch.bool, device=dev))
            e = self.encode_image(views, rows, cols)
            embs.append(e)
            masks.append(torch.ones(e.shape[0], dtype=torch.bool, device=dev))
        return torch.cat(embs, 0), torch.cat(masks, 0)


# ---------------------------------------------------------------------------------------------------------------
# Prompt assembly shared by training, compare_torch and evaluate


def split_prompt(sp, prompt, n_images):
    """The engine's SplitForImages + per-part tokenisation (spec §4.3). Returns (prefix parts before each image,
    tail ids after the last image). A single image without a marker is put before the whole prompt."""
    marker = "<ImageHere>"
    if n_images == 1 and marker not in prompt:
        prompt = marker + prompt
    parts = prompt.split(marker)
    assert len(parts) == n_images + 1, "one <ImageHere> per image"
    ids = []
    for k, p in enumerate(parts):
        t = [1] if k == 0 else []
        if k == 0 or p:
            t += sp.encode(p)
        ids.append(t)
    return ids[:-1], ids[-1]


@torch.no_grad()
def greedy(model, sp, images, prompt, max_new_tokens=16, repetition_penalty=1.005, hd_num=None):
    """Greedy decoding as the engine's `--greedy` (repetition penalty on generated tokens, stop at eos or
    [UNUSED_TOKEN_145], the stop token included in the returned ids). Full recompute each step, float32."""
    stop = {2, sp.piece_to_id("[UNUSED_TOKEN_145]")}
    hd = hd_num or (6 if len(images) > 1 else 24)
    views = [preprocess(im, hd) for im in images]
    parts, tail = split_prompt(sp, prompt, len(images))
    prefix, pmask = model.build_prefix(parts, views)
    out = []
    for _ in range(max_new_tokens):
        ids = tail + out
        suffix = model.embed_tokens(ids).unsqueeze(0)
        hs, _ = model.decode(prefix, pmask, suffix)
        logits = model.output(hs[0, -1]).float()
        for t in set(out):
            logits[t] = logits[t] * repetition_penalty if logits[t] < 0 else logits[t] / repetition_penalty
        nxt = int(torch.argmax(logits))
        out.append(nxt)
        if nxt in stop:
            break
    return out
