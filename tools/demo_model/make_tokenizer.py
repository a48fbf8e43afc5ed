#!/usr/bin/python3
"""Trains the demo model's SentencePiece BPE tokenizer on the question/answer template text.

Same kind of model as the real IXC-2.5 tokenizer (spec §7): BPE, byte fallback, identity normaliser, no dummy
prefix, extra whitespace kept, <unk>=0 <s>=1 </s>=2, and [UNUSED_TOKEN_146] / [UNUSED_TOKEN_145] as user-defined
pieces (the engine finds the turn markers by piece). "\n" is a user-defined piece too: SentencePiece trains on lines,
so a newline could otherwise only be spelt with the byte token <0x0A>.

  /usr/bin/python3 tools/demo_model/make_tokenizer.py --out build/demo_model/tokenizer.model
"""
import argparse
import os
import sys
import tempfile

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402

VOCAB_SIZE = 512


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="where to write tokenizer.model")
    ap.add_argument("--vocab-size", type=int, default=VOCAB_SIZE)
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        # relative names: the trainer records its input path in the model, which must not depend on the temp dir
        os.chdir(tmp)
        with open("corpus.txt", "w", encoding="utf-8") as f:
            for line in data.corpus_lines():
                f.write(line + "\n")
        prefix = "demo"
        spm.SentencePieceTrainer.train(
            input="corpus.txt", model_prefix=prefix, model_type="bpe", vocab_size=a.vocab_size,
            character_coverage=1.0, byte_fallback=True, normalization_rule_name="identity",
            add_dummy_prefix=False, remove_extra_whitespaces=False, split_digits=True,
            user_defined_symbols=[data.IM_START, data.IM_END, "\n"],
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1, unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
            hard_vocab_limit=False, num_threads=1, minloglevel=2, max_sentencepiece_length=16,
            input_sentence_size=0, shuffle_input_sentence=False)
        with open(prefix + ".model", "rb") as src, open(out, "wb") as dst:
            dst.write(src.read())
        os.chdir(here)
    sp = spm.SentencePieceProcessor(model_file=out)
    print(f"{a.out}: {sp.get_piece_size()} pieces; [UNUSED_TOKEN_146]={sp.piece_to_id(data.IM_START)} "
          f"[UNUSED_TOKEN_145]={sp.piece_to_id(data.IM_END)}")


if __name__ == "__main__":
    main()
