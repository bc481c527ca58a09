"""HF run_qa's evaluation, reproduced for our reference scripts (transformers
examples/pytorch/question-answering, run_qa.py + utils_qa.py at e3b8f49f):

- `predict_logits`: the Trainer's prediction loop. Batches of `eval_batch_size` features in
  order; with `pad_to_max_length` (run_qa's default) every window has `max_seq_length`
  tokens, else each batch is padded to its longest window and the batches' logits are
  concatenated with -100 filling the missing columns (`nested_concat`).
- `postprocess`: `postprocess_qa_predictions`, SQuAD v1 mode: per window the top
  `n_best_size` start and end indices over *all* positions (`np.argsort(...)[-1:-n-1:-1]`,
  padding included); spans outside the context, with end < start or longer than
  `max_answer_length` dropped; score = start + end logit; candidates sorted by score
  (stable); the best one's text, or "empty" when none is left. It also returns each
  question's margin between the best candidate and the best one with a different text.

Features come from `hf_features.prepare_validation` (BertTokenizerFast pair encoding,
truncation="only_second", stride, overflowing windows, padding="max_length", offsets of
non-context tokens set to None).
"""
import numpy as np
import torch

import hf_features


def predict_logits(model, enc, max_seq_length, eval_batch_size, pad_to_max_length=True):
    n = len(enc["input_ids"])
    starts, ends = [], []
    model.eval()
    for b in range(0, n, eval_batch_size):
        rows = range(b, min(n, b + eval_batch_size))
        width = max_seq_length if pad_to_max_length else max(sum(enc["attention_mask"][i]) for i in rows)
        device = next(model.parameters()).device
        tensor = lambda key: torch.tensor([enc[key][i][:width] for i in rows], device=device)
        with torch.no_grad():
            out = model(input_ids=tensor("input_ids"), token_type_ids=tensor("token_type_ids"),
                        attention_mask=tensor("attention_mask"))
        s = np.full((len(rows), max_seq_length), -100.0, dtype=np.float32)
        e = np.full((len(rows), max_seq_length), -100.0, dtype=np.float32)
        s[:, :width] = out.start_logits.float().cpu().numpy()
        e[:, :width] = out.end_logits.float().cpu().numpy()
        starts.append(s)
        ends.append(e)
    return np.concatenate(starts), np.concatenate(ends)


def postprocess(rows, enc, all_start, all_end, n_best_size=20, max_answer_length=30, pad_to_max_length=True):
    """{question id: {"text": answer, "margin": best score - best score of another text}}."""
    per_example = {}
    for i, ex_id in enumerate(enc["example_id"]):
        per_example.setdefault(ex_id, []).append(i)
    out = {}
    for row in rows:
        prelim = []
        for fi in per_example.get(row["id"], []):
            offsets = enc["offset_mapping"][fi]
            if not pad_to_max_length:
                offsets = offsets[:sum(enc["attention_mask"][fi])]
            s_log, e_log = all_start[fi], all_end[fi]
            s_idx = np.argsort(s_log)[-1:-n_best_size - 1:-1].tolist()
            e_idx = np.argsort(e_log)[-1:-n_best_size - 1:-1].tolist()
            for si in s_idx:
                for ei in e_idx:
                    if si >= len(offsets) or ei >= len(offsets) or offsets[si] is None or offsets[ei] is None:
                        continue
                    if ei < si or ei - si + 1 > max_answer_length:
                        continue
                    prelim.append({"offsets": (offsets[si][0], offsets[ei][1]),
                                   "score": float(s_log[si] + e_log[ei])})
        preds = sorted(prelim, key=lambda x: x["score"], reverse=True)[:n_best_size]
        for p in preds:
            p["text"] = row["context"][p["offsets"][0]:p["offsets"][1]]
        if not preds:
            out[row["id"]] = {"text": "empty", "margin": 0.0}
            continue
        best = preds[0]
        runner_up = next((p["score"] for p in preds[1:] if p["text"] != best["text"]), None)
        out[row["id"]] = {"text": best["text"], "margin": best["score"] - runner_up if runner_up is not None else 1e9}
    return out


def evaluate(model, tokenizer, rows, max_seq_length, doc_stride, eval_batch_size, n_best_size=20,
             max_answer_length=30, pad_to_max_length=True):
    """run_qa's evaluation of `rows` (hf_features.flatten): {question id: {text, margin}}."""
    enc = hf_features.prepare_validation(tokenizer, hf_features.columns(rows), max_seq_length, doc_stride)
    s, e = predict_logits(model, enc, max_seq_length, eval_batch_size, pad_to_max_length)
    return postprocess(rows, enc, s, e, n_best_size, max_answer_length, pad_to_max_length)
