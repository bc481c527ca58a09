"""PyTorch baseline for the GPU benchmark (issue: GPU): HF BertForQuestionAnswering built from
a config (random init, no download), the same batch/sequence/optimizer step as
`sweep bench-train --device cuda:0`, in f32 (TF32 allowed, as burn's autotune may pick it) and bf16
autocast, timed with CUDA events after warm-up. Prints JSON lines.

Usage: python bench_gpu_torch.py PRESET BATCH SEQ WARMUP TIMED
"""
import json
import sys

import torch
from transformers import BertConfig, BertForQuestionAnswering

SHAPES = {"tiny": (2, 128, 2), "mini": (4, 256, 4), "small": (4, 512, 8), "base": (12, 768, 12)}


def main():
    preset, batch, seq, warm, timed = sys.argv[1], *map(int, sys.argv[2:6])
    layers, hidden, heads = SHAPES[preset]
    torch.backends.cuda.matmul.allow_tf32 = True
    for mode in ("f32", "bf16-autocast"):
        torch.manual_seed(1)
        cfg = BertConfig(vocab_size=21128, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=4 * hidden, max_position_embeddings=512, attn_implementation="eager")
        model = BertForQuestionAnswering(cfg).cuda().train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-8, weight_decay=0.0)
        ids = torch.randint(1, 21128, (batch, seq), device="cuda")
        types = (torch.arange(seq, device="cuda") >= seq // 4).long().expand(batch, seq)
        starts = torch.randint(0, seq, (batch,), device="cuda")
        ends = (starts + 3).clamp(max=seq - 1)
        torch.cuda.reset_peak_memory_stats()

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode != "f32"):
                out = model(input_ids=ids, token_type_ids=types, attention_mask=torch.ones_like(ids),
                            start_positions=starts, end_positions=ends)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        for _ in range(warm):
            step()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(timed):
            step()
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / timed
        print(json.dumps({"peer": "pytorch", "mode": mode, "preset": preset, "batch": batch, "seq": seq,
                          "ms_per_step": ms, "examples_per_second": batch * 1000 / ms,
                          "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20,
                          "torch": torch.__version__}))
        del model, opt
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
