"""A program trial for the runner's tests (Python standard library only): it speaks the trial
protocol of docs/trial-protocol.md the way a user's training script would, so program trials
are tested without torch.

  python3 program_trial.py --params PARAMS_JSON [--tag VALUE]

It reads params.json, "trains" `params.steps` steps (default 5) of FAKE_TRIAL_STEP_MS ms each,
appending metrics.jsonl lines, answers the first `params.correct` (default 0.5) of the eval
set's questions with their gold answer and the rest with a wrong one, and writes
predictions.json and an atomic result.json whose EM it computes itself. A step file lets a
stopped run resume. It records its argv (argv.json) and its runs (attempts.log, as the fake
trial does).

FAKE_TRIAL_BEHAVIOR (JSON object, keys `seed:N` or `*`) picks a behaviour: ok, crash, oom
(CUDA's out-of-memory text on stderr, exit 1), oom-once (that, on the first attempt only), hang (until SIGTERM, then exit 4 with its
state saved), ignore-term, wrong-score (reports EM 10 points above its predictions' score),
garbage (result.json is not JSON), no-result (exits 0 without one), hf-trainer (copies the
HF Trainer sample outputs of tests/fixtures/hf-trainer into the folder, nothing else).
"""
import argparse
import json
import os
import shutil
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def log_event(what):
    with open("attempts.log", "a") as f:
        f.write(f"{what} {os.getpid()} {int(time.time() * 1e6)}\n")


def write_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


WRONG = "zzz"  # shares no character with any answer of the synthetic set


def answers(p, correct):
    """The first `correct` share of the eval set's questions answered right, the rest wrong."""
    with open(p["data"]["eval"]) as f:
        eval_set = json.load(f)
    questions = [(q["id"], q["answers"][0]["text"]) for a in eval_set["data"] for para in a["paragraphs"]
                 for q in para["qas"]]
    n_right = int(len(questions) * correct)
    return {qid: (gold if i < n_right else WRONG) for i, (qid, gold) in enumerate(questions)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", required=True)
    ap.add_argument("--tag")
    args = ap.parse_args()
    with open("argv.json", "w") as f:
        json.dump(sys.argv[1:], f)
    with open(args.params) as f:
        p = json.load(f)
    seed = p["train"]["seed"]
    assert os.environ["SWEEP_SEED"] == str(seed)
    assert os.environ["SWEEP_TRIAL_DIR"] == os.getcwd()
    behaviors = json.loads(os.environ.get("FAKE_TRIAL_BEHAVIOR") or "{}")
    behavior = behaviors.get(f"seed:{seed}", behaviors.get("*", "ok"))
    log_event("start")
    try:
        return run(p, behavior)
    finally:
        log_event("end")


def run(p, behavior):
    stop = {"now": False}

    def on_term(*_):
        stop["now"] = True

    if behavior == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, on_term)
    if behavior == "crash":
        print("program_trial: crashing on purpose", file=sys.stderr)
        return 1
    if behavior == "oom-once" and not os.path.exists("oom-once"):
        open("oom-once", "w").close()
        behavior = "oom"
    if behavior == "oom":
        print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
        return 1
    if behavior == "hf-trainer":
        # A HF Trainer output folder: the committed sample files, and run_qa's
        # eval_predictions.json over this eval set (half right, as the sample scores say).
        sample = os.path.join(HERE, "..", "fixtures", "hf-trainer")
        for name in os.listdir(sample):
            shutil.copy(os.path.join(sample, name), name)
        write_atomically("eval_predictions.json", json.dumps(answers(p, 0.5), ensure_ascii=False))
        return 0
    params = p.get("params", {})
    steps = int(params.get("steps", 5))
    step_ms = int(os.environ.get("FAKE_TRIAL_STEP_MS", "20"))
    done = int(open("step").read()) if os.path.exists("step") else 0
    with open("metrics.jsonl", "a") as m:
        step = done
        while step < steps or behavior in ("hang", "ignore-term"):
            if stop["now"]:
                write_atomically("step", str(step))
                print(f"program_trial: stopped at step {step}", file=sys.stderr)
                return 4
            time.sleep(step_ms / 1000)
            step += 1
            m.write(json.dumps({"step": step, "loss": 1.0 / step, "learning_rate": p["train"]["learning_rate"]}) + "\n")
            m.flush()
            if step % 2 == 0:
                write_atomically("step", str(step))
    correct = float(params.get("correct", 0.5))
    predictions = answers(p, correct)
    write_atomically("predictions.json", json.dumps(predictions, ensure_ascii=False))
    n_right = sum(1 for v in predictions.values() if v != WRONG)
    em = 100.0 * n_right / len(predictions)
    if behavior == "wrong-score":
        em += 10.0
    if behavior == "no-result":
        return 0
    # `params.memory` sets the reported peak memory, with a little seed noise (so claims on it
    # can be decided); without it, 123.
    memory = float(params["memory"]) + (p["train"]["seed"] * int(params["memory"])) % 7 if "memory" in params else 123.0
    result = {"status": "succeeded", "EM": em, "F1": em, "steps": steps, "train_seconds": 0.5,
              "metrics": {"peak_memory_mib": memory, "note": "not a number"}}
    text = "{not json" if behavior == "garbage" else json.dumps(result)
    write_atomically("result.json", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
