"""A PyTorch + transformers QA trainer that speaks qa-sweep's trial protocol
(docs/trial-protocol.md), so a study can hold it as a program trial next to burn trials:

  command: [python3, tools/hf_run_qa.py, --params, "{params_json}", --device, "{device}"]
  code: [tools/hf_run_qa.py, tools/hf_train_reference.py, tools/hf_features.py,
         tools/run_qa_reference.py, tools/cmrc2018_metric.py]

It trains the trial in params.json (the same model/model_config/data/train keys a burn trial
reads: a preset with its vocab.txt, or a HF model folder in model.init) with run_qa / HF
Trainer semantics (tools/hf_train_reference.py: AdamW with HF's no-decay groups, linear
warmup and decay, gradient clipping, run_qa's features and n-best decoding, the official
CMRC 2018/DRCD metric), in the trial folder (its working directory): metrics.jsonl as it
goes, predictions.json at each evaluation, checkpoint/, and result.json last, written whole.

`params:` of the trial may set `precision: bf16-autocast` (torch.autocast on CUDA, like HF's
--bf16; f32 otherwise). SIGTERM stops it with exit code 4; the next attempt starts the run
over (it keeps no resume state).
"""
import argparse
import json
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

INTERRUPTED = 4  # spec::protocol::exit::INTERRUPTED


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--params", required=True, help="the trial's params.json ({params_json})")
    ap.add_argument("--device", help="cpu or cuda:N ({device}); default: params.json's device")
    ap.add_argument("--out", default=".", help="the trial folder (default: the working directory)")
    args = ap.parse_args()
    with open(args.params, encoding="utf-8") as f:
        trial = json.load(f)
    device = args.device or trial.get("device") or "cpu"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(INTERRUPTED))

    import torch  # after the signal handler: importing torch takes seconds

    import hf_train_reference

    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"hf_run_qa: device {device} but torch sees no CUDA device", file=sys.stderr)
        return 1
    precision = (trial.get("params") or {}).get("precision", "f32")
    dtype = {"bf16-autocast": torch.bfloat16}.get(precision)
    if dtype is not None and device.startswith("cuda"):
        with torch.autocast("cuda", dtype=dtype):
            hf_train_reference.train(trial, args.out, device=device)
    else:
        hf_train_reference.train(trial, args.out, device=device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
