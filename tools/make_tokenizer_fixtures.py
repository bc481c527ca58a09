"""tokenizer.json files that carry padding/truncation state, saved by transformers the way
real checkpoints carry it: qa-data's `saved_tokenizer_state` tests check that loading one
gives the same windows as a clean tokenizer (HF ignores that state; each call sets its own).

  python make_tokenizer_fixtures.py VOCAB CMRC_TRIAL OUT_DIR

Writes OUT_DIR/{run-qa-finetune,fixed-128-longest-first,truncation-512}/ with vocab.txt,
tokenizer_config.json, special_tokens_map.json and tokenizer.json:
- run-qa-finetune: a BertTokenizerFast after run_qa-style calls (padding="max_length",
  truncation="only_second", max_length 128, stride 32), then save_pretrained, as a
  fine-tuning script leaves it;
- fixed-128-longest-first: padding Fixed 128 and truncation LongestFirst 128, the state that
  sentence-transformers' all-MiniLM-L6-v2 tokenizer.json ships with;
- truncation-512: truncation {max_length: 512}, no padding.
The vocabulary is the part of bert-base-chinese's that the CMRC2018 trial set uses (plus the
special tokens), in its original order, to keep the files small.

Needs transformers (tools/setup-venv.sh); not used by CI, which reads the output.
"""
import argparse
import json
import os
import shutil

from transformers import BertTokenizerFast

import hf_features

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def reduced_vocab(vocab_path, rows, out_path):
    full = hf_features.load_vocab(vocab_path)
    tok = BertTokenizerFast.from_pretrained(write_dir(os.path.dirname(out_path) + "/.full", vocab_path))
    used = set(SPECIAL)
    for r in rows:
        for text in (r["question"], r["context"]):
            used.update(tok.tokenize(text))
    ordered = [t for t, _ in sorted(full.items(), key=lambda kv: kv[1]) if t in used]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(ordered) + "\n")
    return len(ordered)


def write_dir(d, vocab_path):
    os.makedirs(d, exist_ok=True)
    with open(vocab_path, encoding="utf-8") as src, open(os.path.join(d, "vocab.txt"), "w", encoding="utf-8") as dst:
        dst.write(src.read())
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}, f)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab")
    ap.add_argument("cmrc_trial")
    ap.add_argument("out")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = hf_features.flatten(args.cmrc_trial)
    vocab = os.path.join(args.out, ".vocab.txt")
    n = reduced_vocab(args.vocab, rows, vocab)
    print(f"vocabulary: {n} tokens")

    def fresh(name):
        return BertTokenizerFast.from_pretrained(write_dir(os.path.join(args.out, name), vocab))

    # A fine-tuning script's calls (run_qa's prepare_train_features), then save_pretrained.
    tok = fresh("run-qa-finetune")
    tok([r["question"] for r in rows[:32]], [r["context"] for r in rows[:32]], truncation="only_second",
        max_length=128, stride=32, return_overflowing_tokens=True, return_offsets_mapping=True,
        padding="max_length")
    print("state left by the call:", tok.backend_tokenizer.truncation, tok.backend_tokenizer.padding)
    if tok.backend_tokenizer.truncation is None:
        # Newer transformers restore the backend's state after each call; set it the way
        # the call does (and older versions leave it), so the file carries it either way.
        tok.backend_tokenizer.enable_truncation(128, stride=32, strategy="only_second")
        tok.backend_tokenizer.enable_padding(length=128, pad_id=tok.pad_token_id, pad_token=tok.pad_token)
    tok.save_pretrained(os.path.join(args.out, "run-qa-finetune"))

    tok = fresh("fixed-128-longest-first")
    tok.backend_tokenizer.enable_truncation(128, strategy="longest_first")
    tok.backend_tokenizer.enable_padding(length=128, pad_id=tok.pad_token_id, pad_token=tok.pad_token)
    tok.save_pretrained(os.path.join(args.out, "fixed-128-longest-first"))

    tok = fresh("truncation-512")
    tok.backend_tokenizer.no_padding()
    tok.backend_tokenizer.enable_truncation(512)
    tok.save_pretrained(os.path.join(args.out, "truncation-512"))

    for name in ("run-qa-finetune", "fixed-128-longest-first", "truncation-512"):
        with open(os.path.join(args.out, name, "tokenizer.json"), encoding="utf-8") as f:
            t = json.load(f)
        print(name, "padding:", t["padding"] and t["padding"]["strategy"], "truncation:", t["truncation"])
        assert t["truncation"] is not None, name
    os.remove(vocab)
    shutil.rmtree(os.path.join(args.out, ".full"))


if __name__ == "__main__":
    main()
