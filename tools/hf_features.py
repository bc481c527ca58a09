"""HF reference for qa-data's features: a BERT fast tokenizer from transformers, and our own
implementation of `run_qa`'s prepare_train_features / prepare_validation_features logic
(pair encoding with truncation="only_second", stride, overflowing tokens, offsets,
padding="max_length"; labels from the first answer with HF's scanning loops).

  fixture: python hf_features.py fixture DATASET VOCAB OUT --limit N --max-seq-length L --doc-stride S [--lower]
  bench:   python hf_features.py bench DATASET VOCAB [--lower]   -> JSON timings on stdout
"""
import argparse
import json
import time

from transformers import BertTokenizer


def load_vocab(path):
    """HF's classic load_vocab: readlines (universal newlines, not U+2028), rstrip('\\n')."""
    vocab = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f.readlines()):
            vocab[line.rstrip("\n")] = i
    return vocab


def make_tokenizer(vocab_path, lower):
    return BertTokenizer(vocab=load_vocab(vocab_path), do_lower_case=lower)


def flatten(dataset_path, limit=None):
    with open(dataset_path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    out = []
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append({
                    "id": qa["id"], "question": qa["question"], "context": para["context"],
                    "answers": {"text": [a["text"] for a in qa["answers"]],
                                "answer_start": [a["answer_start"] for a in qa["answers"]]},
                })
                if limit and len(out) >= limit:
                    return out
    return out


def tokenize(tokenizer, examples, max_len, stride):
    return tokenizer(
        [q.lstrip() for q in examples["question"]], examples["context"],
        truncation="only_second", max_length=max_len, stride=stride,
        return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")


def prepare_train(tokenizer, examples, max_len, stride):
    enc = tokenize(tokenizer, examples, max_len, stride)
    sample_map = enc.pop("overflow_to_sample_mapping")
    offset_mapping = enc.pop("offset_mapping")
    starts, ends = [], []
    for i, offsets in enumerate(offset_mapping):
        input_ids = enc["input_ids"][i]
        cls_index = input_ids.index(tokenizer.cls_token_id)
        seq = enc.sequence_ids(i)
        answers = examples["answers"][sample_map[i]]
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        ts = 0
        while seq[ts] != 1:
            ts += 1
        te = len(input_ids) - 1
        while seq[te] != 1:
            te -= 1
        if not (offsets[ts][0] <= start_char and offsets[te][1] >= end_char):
            starts.append(cls_index)
            ends.append(cls_index)
        else:
            while ts < len(offsets) and offsets[ts][0] <= start_char:
                ts += 1
            starts.append(ts - 1)
            while offsets[te][1] >= end_char:
                te -= 1
            ends.append(te + 1)
    enc["start_positions"] = starts
    enc["end_positions"] = ends
    enc["offset_mapping"] = offset_mapping
    enc["overflow_to_sample_mapping"] = sample_map
    return enc


def prepare_validation(tokenizer, examples, max_len, stride):
    enc = tokenize(tokenizer, examples, max_len, stride)
    sample_map = enc.pop("overflow_to_sample_mapping")
    enc["example_id"] = []
    for i in range(len(enc["input_ids"])):
        seq = enc.sequence_ids(i)
        enc["example_id"].append(examples["id"][sample_map[i]])
        enc["offset_mapping"][i] = [o if seq[k] == 1 else None for k, o in enumerate(enc["offset_mapping"][i])]
    return enc


def columns(rows):
    return {k: [r[k] for r in rows] for k in rows[0]}


def fixture(args):
    tok = make_tokenizer(args.vocab, args.lower)
    rows = flatten(args.dataset, args.limit)
    ex = columns(rows)
    train = prepare_train(tok, ex, args.max_seq_length, args.doc_stride)
    features = []
    for i, ids in enumerate(train["input_ids"]):
        n = sum(train["attention_mask"][i])
        seq = train.sequence_ids(i)
        ctx = [k for k in range(n) if seq[k] == 1]
        features.append({
            "example_id": rows[train["overflow_to_sample_mapping"][i]]["id"],
            "input_ids": ids[:n],
            "token_type_ids": train["token_type_ids"][i][:n],
            "context_start": ctx[0] if ctx else n - 1,
            "context_offsets": [list(train["offset_mapping"][i][k]) for k in ctx],
            "start_position": train["start_positions"][i],
            "end_position": train["end_positions"][i],
        })
    # The validation features must carry the same windows; check here so the fixture is sound.
    val = prepare_validation(tok, ex, args.max_seq_length, args.doc_stride)
    assert val["input_ids"] == train["input_ids"]
    out = {"dataset": args.dataset.split("/")[-1], "do_lower_case": args.lower,
           "max_seq_length": args.max_seq_length, "doc_stride": args.doc_stride,
           "questions": len(rows), "features": features}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
    print(f"{len(rows)} questions, {len(features)} features -> {args.out}")


def bench(args):
    tok = make_tokenizer(args.vocab, args.lower)
    rows = flatten(args.dataset)
    result = {"questions": len(rows)}
    for name, fn in [("train", prepare_train), ("eval", prepare_validation)]:
        best = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            n = 0
            # datasets.map(batched=True) hands run_qa batches of 1000 examples.
            for b in range(0, len(rows), 1000):
                n += len(fn(tok, columns(rows[b:b + 1000]), args.max_seq_length, args.doc_stride)["input_ids"])
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        result[name] = {"features": n, "seconds": best, "features_per_second": n / best}
    print(json.dumps(result))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("fixture", "bench"):
        p = sub.add_parser(name)
        p.add_argument("dataset")
        p.add_argument("vocab")
        if name == "fixture":
            p.add_argument("out")
            p.add_argument("--limit", type=int, default=100)
        else:
            p.add_argument("--repeat", type=int, default=3)
        p.add_argument("--lower", action="store_true")
        p.add_argument("--max-seq-length", type=int, default=384)
        p.add_argument("--doc-stride", type=int, default=128)
    args = ap.parse_args()
    fixture(args) if args.cmd == "fixture" else bench(args)


if __name__ == "__main__":
    main()
