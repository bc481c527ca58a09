"""The reference training loop for `make parity`: one qa-sweep trial (the same trial YAML that
`sweep train --config` reads) trained with PyTorch + transformers using run_qa / HF Trainer
semantics, evaluated like run_qa, saved as an HF model directory.

  python hf_train_reference.py --config TRIAL.yaml --out DIR

What it does, step by step (HF's choices, which qa-sweep's trainer claims to follow):
- tokenizer: BertTokenizer over the preset's vocab.txt (do_lower_case as the trial says,
  default true), or the model directory's own tokenizer (`from_pretrained`);
- model: `set_seed(seed)`, then a preset's BertConfig/AlbertConfig (the table of
  qa-model/src/presets.rs) with `model_config` overrides and HF's `_init_weights`, or
  `AutoModelForQuestionAnswering.from_pretrained(init)` (fresh `qa_outputs` head);
- features: run_qa's `prepare_train_features` (tools/hf_features.py), windows padded to
  max_seq_length (`pad_to_max_length`, run_qa's default) or per batch;
- optimisation: AdamW (torch) with HF Trainer's two groups (no weight decay for biases and
  LayerNorm weights), `get_linear_schedule_with_warmup`, `clip_grad_norm_(max_grad_norm)`,
  loss / gradient_accumulation_steps, model.train() (dropout on);
- data order: a torch.Generator seeded with the trial seed, one randperm per epoch (HF's
  seeded RandomSampler; not the same permutation as qa-sweep's, the same distribution);
- steps: updates per epoch = batches // accumulation (≥ 1), total = max_steps or
  ceil(epochs × updates per epoch), warmup = warmup_steps or ceil(warmup_ratio × total);
- evaluation: every eval_steps or at each epoch's end and at the end, run_qa's (see
  run_qa_reference.py) with the official CMRC2018/DRCD metric (cmrc2018_metric.py).
Writes DIR/metrics.jsonl (qa-sweep's keys: step, loss, learning_rate, grad_norm, eval_em,
eval_f1), DIR/predictions.json, DIR/result.json and DIR/checkpoint/.
"""
import argparse
import json
import math
import os
import random
import time

import numpy as np
import torch
import yaml
from transformers import (AlbertConfig, AlbertForQuestionAnswering, AutoConfig, AutoModelForQuestionAnswering,
                          BertConfig, BertForQuestionAnswering, BertTokenizerFast,
                          get_linear_schedule_with_warmup)

import cmrc2018_metric
import hf_features
import run_qa_reference

# qa-sweep's TrainSpec defaults (crates/spec/src/trial.rs), which follow HF's.
DEFAULTS = dict(seed=42, epochs=2.0, max_steps=None, learning_rate=5e-5, batch_size=8, eval_batch_size=8,
                gradient_accumulation_steps=1, warmup_steps=0, warmup_ratio=0.0, weight_decay=0.0, adam_beta1=0.9,
                adam_beta2=0.999, adam_epsilon=1e-8, max_grad_norm=1.0, max_seq_length=384, doc_stride=128,
                n_best_size=20, max_answer_length=30, eval_steps=None, logging_steps=10, pad_to_max_length=True)
# qa-model/src/presets.rs: (layers, hidden, heads).
PRESETS = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "base": (12, 768, 12),
           "albert-tiny": (2, 128, 2)}


MASK64 = (1 << 64) - 1


def splitmix64(state):
    """qa-data/src/rng.rs SplitMix64: returns (new state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def qa_sweep_epoch_order(n, seed, epoch):
    """qa-model/src/resume.rs epoch_order: the feature order qa-sweep trains epoch `epoch` in
    (a Fisher-Yates shuffle driven by SplitMix64), for the lockstep comparison."""
    order = list(range(n))
    state = (seed ^ (((epoch + 1) * 0x9E3779B97F4A7C15) & MASK64)) & MASK64
    for i in range(n - 1, 0, -1):
        state, x = splitmix64(state)
        j = ((x >> 11) * (i + 1)) >> 53
        order[i], order[j] = order[j], order[i]
    return order


def mix64(z):
    """qa-model/src/fused/kernels.rs mix64 (SplitMix64's output function) on numpy uint64."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class QaSweepDropout:
    """qa-sweep's dropout masks (qa-model/src/fused: `forward_key`, `DropoutMask`, the sites of
    `LayerDropout::at`) in place of torch's RNG, for a BERT model with eager attention. With
    them the reference draws the very same masks as `sweep train`, so a dropout-on run is one
    computation on both sides and any difference in where or how dropout acts shows."""
    GAMMA = np.uint64(0x9E3779B97F4A7C15)

    def __init__(self, model, seed):
        import transformers.models.bert.modeling_bert as bert
        self.seed, self.key = seed, None
        this = self

        class Site(torch.nn.Module):
            def __init__(self, site, p):
                super().__init__()
                self.site, self.p = site, p

            def forward(self, x):
                return this.apply(x, self.site, self.p) if self.training else x

        def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
            if scaling is None:
                scaling = query.size(-1) ** -0.5
            w = torch.matmul(query, key.transpose(2, 3)) * scaling
            if attention_mask is not None:
                w = w + attention_mask
            w = torch.nn.functional.softmax(w, dim=-1)
            if module.training and dropout > 0:
                w = this.apply(w, 1 + 3 * module.layer_idx, dropout)
            out = torch.matmul(w, value).transpose(1, 2).contiguous()
            return out, w

        bert.eager_attention_forward = attention
        core = model.bert
        core.embeddings.dropout = Site(0, core.embeddings.dropout.p)
        for p, layer in enumerate(core.encoder.layer):
            layer.attention.output.dropout = Site(2 + 3 * p, layer.attention.output.dropout.p)
            layer.output.dropout = Site(3 + 3 * p, layer.output.dropout.p)

    def set_forward(self, step, micro_batch):
        """fused::forward_key(seed, step, micro_batch)."""
        k = mix64(np.uint64(self.seed))
        k = mix64(k ^ np.uint64(step))
        self.key = mix64(k ^ np.uint64(micro_batch))

    def apply(self, x, site, p):
        if p <= 0:
            return x
        keep = 1.0 - p
        threshold = np.uint64(int(keep * 2.0 ** 64)) if keep < 1.0 else np.uint64(2 ** 64 - 1)
        with np.errstate(over="ignore"):
            site_mix = mix64(np.uint64(site) + self.GAMMA)
        i = np.arange(x.numel(), dtype=np.uint64)
        with np.errstate(over="ignore"):
            kept = mix64(self.key ^ site_mix ^ (i * self.GAMMA)) < threshold
        factor = torch.from_numpy(kept.reshape(tuple(x.shape))).to(x.dtype) * float(np.float32(1.0 / keep))
        return x * factor


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def preset_model(model_spec, overrides, vocab_size):
    preset = model_spec["preset"]
    layers, hidden, heads = PRESETS[preset]
    albert = preset == "albert-tiny" or model_spec.get("arch") == "albert"
    common = dict(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=4 * hidden, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                  max_position_embeddings=512, type_vocab_size=2, initializer_range=0.02, layer_norm_eps=1e-12,
                  pad_token_id=0)
    if albert:
        cfg = AlbertConfig(**common, hidden_act="gelu_new", embedding_size=hidden // 2, num_hidden_groups=1,
                           inner_group_num=1)
    else:
        cfg = BertConfig(**common, hidden_act="gelu")
    for k, v in overrides.items():
        setattr(cfg, k, v)
    cfg._attn_implementation = "eager"
    return (AlbertForQuestionAnswering if albert else BertForQuestionAnswering)(cfg)


def load(trial):
    model_spec = trial["model"]
    overrides = trial.get("model_config") or {}
    if model_spec.get("init"):
        tok = BertTokenizerFast.from_pretrained(model_spec["init"])
        cfg = AutoConfig.from_pretrained(model_spec["init"], **overrides)
        cfg._attn_implementation = "eager"
        model = AutoModelForQuestionAnswering.from_pretrained(model_spec["init"], config=cfg)
    else:
        tok = hf_features.make_tokenizer(model_spec["vocab"], model_spec.get("do_lower_case", True))
        model = preset_model(model_spec, overrides, len(tok))
    return tok, model


def no_decay(name):
    # HF Trainer.get_decay_parameter_names: LayerNorm parameters and biases get no decay.
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def batch_tensors(enc, idx, pad_to_max_length):
    width = len(enc["input_ids"][0]) if pad_to_max_length else max(sum(enc["attention_mask"][i]) for i in idx)
    t = lambda key: torch.tensor([enc[key][i][:width] for i in idx])
    return dict(input_ids=t("input_ids"), token_type_ids=t("token_type_ids"), attention_mask=t("attention_mask"),
                start_positions=torch.tensor([enc["start_positions"][i] for i in idx]),
                end_positions=torch.tensor([enc["end_positions"][i] for i in idx]))


def train(trial, out, order_kind="torch", dropout="torch", save_init=None, device="cpu"):
    """Trains `trial` (a qa-sweep trial config as a dict) into `out`; returns result.json's dict."""
    t = dict(DEFAULTS, **(trial.get("train") or {}))
    os.makedirs(out, exist_ok=True)
    set_seed(t["seed"])
    tok, model = load(trial)
    if save_init:
        model.save_pretrained(save_init)
        tok.save_pretrained(save_init)
    model.to(device)
    hashed_dropout = QaSweepDropout(model, t["seed"]) if dropout == "qa-sweep" else None

    train_rows = [r for r in hf_features.flatten(trial["data"]["train"]) if r["answers"]["text"]]
    eval_rows = hf_features.flatten(trial["data"]["eval"])
    with open(trial["data"]["eval"], encoding="utf-8") as f:
        eval_gold = json.load(f)
    enc = hf_features.prepare_train(tok, hf_features.columns(train_rows), t["max_seq_length"], t["doc_stride"])
    n = len(enc["input_ids"])
    bs, accum = t["batch_size"], t["gradient_accumulation_steps"]
    updates_per_epoch = max(1, math.ceil(n / bs) // accum)
    total = t["max_steps"] or math.ceil(t["epochs"] * updates_per_epoch)
    warmup = t["warmup_steps"] or math.ceil(t["warmup_ratio"] * total)
    eval_every = t["eval_steps"] or updates_per_epoch
    params = list(model.named_parameters())
    opt = torch.optim.AdamW(
        [{"params": [p for k, p in params if not no_decay(k)], "weight_decay": t["weight_decay"]},
         {"params": [p for k, p in params if no_decay(k)], "weight_decay": 0.0}],
        lr=t["learning_rate"], betas=(t["adam_beta1"], t["adam_beta2"]), eps=t["adam_epsilon"])
    sched = get_linear_schedule_with_warmup(opt, warmup, total)
    gen = torch.Generator().manual_seed(t["seed"])
    print(f"reference: {n} windows, {total} steps, warmup {warmup}", flush=True)

    metrics = open(os.path.join(out, "metrics.jsonl"), "w")
    step, epoch, started = 0, 0, time.perf_counter()
    window_loss, window_n, loss_sum, last = 0.0, 0, 0.0, None
    while step < total:
        order = (torch.randperm(n, generator=gen).tolist() if order_kind == "torch"
                 else qa_sweep_epoch_order(n, t["seed"], epoch))
        batches = [order[i:i + bs] for i in range(0, n, bs)]
        for g in range(0, len(batches), accum):
            group = batches[g:g + accum]  # the epoch's last group may be short; HF steps on it
            model.train()
            step_loss = 0.0
            for micro_batch, idx in enumerate(group):
                if hashed_dropout:
                    hashed_dropout.set_forward(step, micro_batch)
                batch = {k: v.to(device) for k, v in batch_tensors(enc, idx, t["pad_to_max_length"]).items()}
                loss = model(**batch).loss / len(group)
                loss.backward()
                step_loss += loss.item()
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), t["max_grad_norm"]).item()
            lr = sched.get_last_lr()[0]
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            loss_sum += step_loss
            window_loss += step_loss
            window_n += 1
            if step % t["logging_steps"] == 0 or step == total:
                metrics.write(json.dumps({"step": step, "epoch": epoch, "loss": window_loss / window_n,
                                          "learning_rate": lr, "grad_norm": norm,
                                          "elapsed_seconds": time.perf_counter() - started}) + "\n")
                metrics.flush()
                window_loss, window_n = 0.0, 0
            if step % eval_every == 0 or step == total:
                spans = run_qa_reference.evaluate(model, tok, eval_rows, t["max_seq_length"], t["doc_stride"],
                                                  t["eval_batch_size"], t["n_best_size"], t["max_answer_length"],
                                                  t["pad_to_max_length"])
                preds = {k: v["text"] for k, v in spans.items()}
                last = cmrc2018_metric.evaluate(eval_gold, preds)
                metrics.write(json.dumps({"step": step, "epoch": epoch, "eval_em": last["EM"],
                                          "eval_f1": last["F1"]}) + "\n")
                metrics.flush()
                print(f"step {step}/{total}: EM {last['EM']} F1 {last['F1']}", flush=True)
                with open(os.path.join(out, "predictions.json"), "w", encoding="utf-8") as f:
                    json.dump(preds, f, ensure_ascii=False)
            if step == total:
                break
        epoch += 1
    secs = time.perf_counter() - started
    result = {"status": "succeeded", "EM": last["EM"], "F1": last["F1"], "train_loss": loss_sum / max(step, 1),
              "train_seconds": secs, "steps": step, "train_features": n, "seed": t["seed"]}
    model.save_pretrained(os.path.join(out, "checkpoint"))
    tok.save_pretrained(os.path.join(out, "checkpoint"))
    # result.json last and whole: a reader that sees it sees a finished run (the protocol).
    tmp = os.path.join(out, "result.json.tmp")
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, os.path.join(out, "result.json"))
    print(json.dumps(result))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--order", choices=["torch", "qa-sweep"], default="torch",
                    help="data order: HF's seeded RandomSampler (torch.randperm), or qa-sweep's own "
                         "(SplitMix64), which with dropout off makes both runs the same computation")
    ap.add_argument("--dropout", choices=["torch", "qa-sweep"], default="torch",
                    help="dropout masks: torch's RNG, or qa-sweep's hashed masks (BERT only), which "
                         "with --order qa-sweep and --save-init make a dropout-on run one computation")
    ap.add_argument("--save-init", metavar="DIR",
                    help="save the model as initialised (pretrained weights + fresh QA head) before "
                         "training, so qa-sweep can start from the very same weights")
    args = ap.parse_args()
    with open(args.config) as f:
        trial = yaml.safe_load(f)
    train(trial, args.out, order_kind=args.order, dropout=args.dropout, save_init=args.save_init)


if __name__ == "__main__":
    main()
