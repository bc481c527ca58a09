"""run_qa-exact decoding references: tiny random BERT and ALBERT QA checkpoints with sharp
logits (initializer_range 0.5), and the answers HF's run_qa evaluation chooses for a slice of
DRCD dev, with both of run_qa's padding modes. qa-model's `run_qa_decoding` tests check that
`evaluate_model` picks the same spans.

  python make_decode_fixtures.py VOCAB DRCD_DEV OUT_DIR [--questions 1000]

Writes OUT_DIR/{bert-sharp,bert-sharp-legacy,albert-sharp,albert-sharp-legacy}/ (config.json,
weights, vocab.txt, tokenizer_config.json) and OUT_DIR/{bert,albert}-sharp.expected.json.
The safetensors and pytorch_model.bin files carry the int64 `position_ids` buffer that
transformers 3.x-4.30 saved (HF skips it on load), so they are also the loading fixtures of
that case.

run_qa's evaluation (features, the prediction loop's padding, postprocess_qa_predictions) is
reproduced in run_qa_reference.py.

Needs torch and transformers (tools/setup-venv.sh); not used by CI, which reads the output.
"""
import argparse
import json
import os
import shutil

import torch
from safetensors.torch import save_file
from transformers import AlbertConfig, AlbertForQuestionAnswering, BertConfig, BertForQuestionAnswering

import hf_features
import run_qa_reference

MAX_SEQ_LENGTH = 384
DOC_STRIDE = 128
N_BEST = 20
MAX_ANSWER = 30
EVAL_BATCH = 8


def bert_model():
    torch.manual_seed(21)
    cfg = BertConfig(vocab_size=21128, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=37, hidden_act="gelu", max_position_embeddings=512, type_vocab_size=2,
                     layer_norm_eps=1e-12, hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                     initializer_range=0.5)
    return BertForQuestionAnswering(cfg)


def albert_model():
    # Three steps through one shared layer: deeper stacks of shared layers with weights this
    # large collapse the positions onto each other and leave no margin between candidates.
    torch.manual_seed(22)
    cfg = AlbertConfig(vocab_size=21128, embedding_size=8, hidden_size=16, num_hidden_layers=3,
                       num_hidden_groups=1, inner_group_num=1, num_attention_heads=2, intermediate_size=29,
                       hidden_act="gelu_new", max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, initializer_range=0.5)
    return AlbertForQuestionAnswering(cfg)


def sharpen(model):
    """HF's init leaves LayerNorm at 1/0 and biases at 0; give every tensor a value of its own
    (a wrong mapping cannot hide) and keep the logits sharp."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    model.eval()


def state_dict_with_buffers(model):
    """The state dict as transformers <= 4.30 saved it: parameters plus the int64
    `embeddings.position_ids` buffer."""
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    prefix = model.base_model_prefix
    max_pos = model.config.max_position_embeddings
    sd[f"{prefix}.embeddings.position_ids"] = torch.arange(max_pos, dtype=torch.int64).unsqueeze(0)
    return sd


def save_dirs(model, out, name, vocab):
    sd = state_dict_with_buffers(model)
    for sub, legacy in ((name, False), (f"{name}-legacy", True)):
        d = os.path.join(out, sub)
        os.makedirs(d, exist_ok=True)
        model.config.to_json_file(os.path.join(d, "config.json"))
        if legacy:
            torch.save(sd, os.path.join(d, "pytorch_model.bin"))
        else:
            save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
        shutil.copy(vocab, os.path.join(d, "vocab.txt"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"do_lower_case": False}, f)


def expected(model, tok, rows):
    result = {"dataset": "DRCD_dev.json", "questions": len(rows), "max_seq_length": MAX_SEQ_LENGTH,
              "doc_stride": DOC_STRIDE, "n_best_size": N_BEST, "max_answer_length": MAX_ANSWER,
              "eval_batch_size": EVAL_BATCH}
    for mode, padded in (("padded", True), ("dynamic", False)):
        result[mode] = run_qa_reference.evaluate(model, tok, rows, MAX_SEQ_LENGTH, DOC_STRIDE, EVAL_BATCH, N_BEST,
                                                 MAX_ANSWER, pad_to_max_length=padded)
        margins = [v["margin"] for v in result[mode].values()]
        print(f"  {mode}: {len(margins)} questions, {sum(m > 1e-3 for m in margins)} with margin > 1e-3")
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("vocab")
    ap.add_argument("drcd_dev")
    ap.add_argument("out")
    ap.add_argument("--questions", type=int, default=1000)
    args = ap.parse_args()
    tok = hf_features.make_tokenizer(args.vocab, False)
    rows = hf_features.flatten(args.drcd_dev, args.questions)
    for name, make in (("bert-sharp", bert_model), ("albert-sharp", albert_model)):
        model = make()
        sharpen(model)
        save_dirs(model, args.out, name, args.vocab)
        print(name)
        with open(os.path.join(args.out, f"{name}.expected.json"), "w", encoding="utf-8") as f:
            json.dump(expected(model, tok, rows), f, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    main()
