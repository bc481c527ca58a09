"""Tiny random BERT and ALBERT QA checkpoints with the bert-base-chinese vocab, and HF's
start/end logits for a few DRCD questions: the references of qa-model's parity tests.

  python make_model_fixtures.py VOCAB DRCD_DEV OUT_DIR      # writes OUT_DIR/{bert-tiny,albert-tiny,bert-tiny-legacy,bert-aligned}
  python make_model_fixtures.py --aligned-only VOCAB DRCD_DEV OUT_DIR   # only bert-aligned
  python make_model_fixtures.py --check-roundtrip MODEL_DIR INPUTS.json
      loads a checkpoint saved by `sweep` with AutoModelForQuestionAnswering, fails on any
      missing/unexpected key, and compares its logits with those recorded in INPUTS.json.

Needs torch and transformers (tools/setup-venv.sh + pip install torch); not used by CI.
"""
import argparse
import json
import os
import shutil

import torch
from transformers import (AlbertConfig, AlbertForQuestionAnswering, AutoModelForQuestionAnswering,
                          BertConfig, BertForQuestionAnswering)

import hf_features


def perturb(model, seed):
    """Random init leaves LayerNorm at 1/0 and biases at 0; make every tensor distinct so a
    wrong mapping (transposes, gamma/beta swaps, shared ALBERT layers) cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def inputs(vocab, drcd_dev, n=4, max_len=48):
    tok = hf_features.make_tokenizer(vocab, False)
    rows = hf_features.flatten(drcd_dev, n)
    enc = tok([r["question"].lstrip() for r in rows], [r["context"] for r in rows], truncation="only_second",
              max_length=max_len, padding="longest")
    # Make one sequence shorter so the attention mask has zeros.
    ids, types, mask = enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]
    cut = len(ids[0]) - 9
    for k in range(cut, len(ids[0])):
        ids[-1][k] = 0
        types[-1][k] = 0
        mask[-1][k] = 0
    ids[-1][cut - 1] = tok.sep_token_id
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def logits(model, inp):
    model.eval()
    with torch.no_grad():
        out = model(input_ids=torch.tensor(inp["input_ids"]), token_type_ids=torch.tensor(inp["token_type_ids"]),
                    attention_mask=torch.tensor(inp["attention_mask"]))
    return out.start_logits.tolist(), out.end_logits.tolist()


def save(model, out, vocab, inp, extra_config=None, safe=True):
    os.makedirs(out, exist_ok=True)
    model.save_pretrained(out, safe_serialization=safe)
    if extra_config:
        cfg_path = os.path.join(out, "config.json")
        cfg = json.load(open(cfg_path))
        cfg.update(extra_config)
        json.dump(cfg, open(cfg_path, "w"), indent=2, sort_keys=True)
    shutil.copy(vocab, os.path.join(out, "vocab.txt"))
    json.dump({"do_lower_case": False}, open(os.path.join(out, "tokenizer_config.json"), "w"))
    s, e = logits(model, inp)
    json.dump(dict(inp, start_logits=s, end_logits=e), open(os.path.join(out, "expected_logits.json"), "w"))


def make(args):
    inp = inputs(args.vocab, args.drcd_dev)
    torch.manual_seed(1)
    bert_cfg = BertConfig(vocab_size=21128, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                          intermediate_size=37, hidden_act="gelu", max_position_embeddings=64,
                          type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.1,
                          attention_probs_dropout_prob=0.1, initializer_range=0.02)
    bert = BertForQuestionAnswering(bert_cfg)
    perturb(bert, 11)
    # bert-base-chinese's config carries keys BertModel never reads.
    save(bert, os.path.join(args.out, "bert-tiny"), args.vocab, inp,
         {"pooler_num_fc_layers": 3, "pooler_fc_size": 768, "pooler_type": "first_token_transform",
          "pooler_num_attention_heads": 12, "pooler_size_per_head": 128, "pooler_num_fc_layers_note": None,
          "directionality": "bidi"})

    # Legacy: pytorch_model.bin, LayerNorm gamma/beta names, pooler and pre-training head keys.
    legacy = os.path.join(args.out, "bert-tiny-legacy")
    os.makedirs(legacy, exist_ok=True)
    sd = {}
    for k, v in bert.state_dict().items():
        k = k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        sd[k] = v.clone()
    sd["bert.pooler.dense.weight"] = torch.randn(16, 16)
    sd["bert.pooler.dense.bias"] = torch.randn(16)
    sd["cls.predictions.bias"] = torch.randn(21128)
    torch.save(sd, os.path.join(legacy, "pytorch_model.bin"))
    shutil.copy(os.path.join(args.out, "bert-tiny", "config.json"), legacy)
    shutil.copy(os.path.join(args.out, "bert-tiny", "expected_logits.json"), legacy)
    shutil.copy(args.vocab, os.path.join(legacy, "vocab.txt"))
    json.dump({"do_lower_case": False}, open(os.path.join(legacy, "tokenizer_config.json"), "w"))

    torch.manual_seed(2)
    albert_cfg = AlbertConfig(vocab_size=21128, embedding_size=8, hidden_size=16, num_hidden_layers=4,
                              num_hidden_groups=2, inner_group_num=2, num_attention_heads=2,
                              intermediate_size=29, hidden_act="relu", max_position_embeddings=64,
                              type_vocab_size=2, layer_norm_eps=1e-12, hidden_dropout_prob=0.0,
                              attention_probs_dropout_prob=0.0, initializer_range=0.02)
    albert = AlbertForQuestionAnswering(albert_cfg)
    perturb(albert, 12)
    save(albert, os.path.join(args.out, "albert-tiny"), args.vocab, inp)
    make_aligned(args)
    print("fixtures written to", args.out)


def make_aligned(args):
    """A BERT whose shapes suit GPU kernels (hidden 64, FFN 256, 4 heads of 16, sequence 64):
    the odd sizes of bert-tiny (16, 37) hit padded-layout paths on CUDA. A 512-token vocabulary
    keeps the file small; the inputs are random ids with a padded tail in the last row."""
    out = os.path.join(args.out, "bert-aligned")
    torch.manual_seed(3)
    cfg = BertConfig(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=256, hidden_act="gelu", max_position_embeddings=64, type_vocab_size=2,
                     layer_norm_eps=1e-12, initializer_range=0.02)
    model = BertForQuestionAnswering(cfg)
    perturb(model, 13)
    g = torch.Generator().manual_seed(4)
    ids = torch.randint(1, 512, (4, 64), generator=g)
    types = (torch.arange(64) >= 20).long().expand(4, 64).clone()
    mask = torch.ones(4, 64, dtype=torch.long)
    ids[3, 50:] = 0
    types[3, 50:] = 0
    mask[3, 50:] = 0
    inp = {"input_ids": ids.tolist(), "token_type_ids": types.tolist(), "attention_mask": mask.tolist()}
    os.makedirs(out, exist_ok=True)
    with open(args.vocab, encoding="utf-8") as f:
        head = f.read().split("\n")[:512]
    vocab = os.path.join(out, "vocab.txt")
    with open(vocab, "w", encoding="utf-8") as f:
        f.write("\n".join(head) + "\n")
    model.save_pretrained(out, safe_serialization=True)
    json.dump({"do_lower_case": False}, open(os.path.join(out, "tokenizer_config.json"), "w"))
    s, e = logits(model, inp)
    json.dump(dict(inp, start_logits=s, end_logits=e), open(os.path.join(out, "expected_logits.json"), "w"))


def check_roundtrip(args):
    model, info = AutoModelForQuestionAnswering.from_pretrained(args.check_roundtrip, output_loading_info=True)
    bad = {k: v for k, v in info.items() if v}
    assert not bad, f"loading info not clean: {bad}"
    if not args.inputs:
        print(json.dumps({"model": args.check_roundtrip, "class": type(model).__name__, "loading_info": "clean"}))
        return
    ref = json.load(open(args.inputs))
    s, e = logits(model, ref)
    diff = max(max(abs(a - b) for a, b in zip(ra, rb)) for ra, rb in zip(s + e, ref["start_logits"] + ref["end_logits"]))
    print(json.dumps({"model": args.check_roundtrip, "class": type(model).__name__, "max_abs_diff": diff}))
    assert diff < 1e-4, diff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab", nargs="?")
    ap.add_argument("drcd_dev", nargs="?")
    ap.add_argument("out", nargs="?")
    ap.add_argument("--check-roundtrip")
    ap.add_argument("--inputs")
    ap.add_argument("--aligned-only", action="store_true")
    args = ap.parse_args()
    if args.check_roundtrip:
        check_roundtrip(args)
    elif args.aligned_only:
        make_aligned(args)
    else:
        make(args)


if __name__ == "__main__":
    main()
