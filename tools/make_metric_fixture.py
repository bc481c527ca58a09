"""Writes noisy predictions for a SQuAD-format dataset together with the Python metric's
per-question EM/F1, as a fixture for qa-data's metric test (which must match it exactly).

Predictions are deterministic (seeded) and cover what real models produce: the gold answer,
spans shifted or stretched by a few characters, other spans of the context, answers with
punctuation or spaces added, English and digit-heavy text, empty strings, and missing ids.

Usage: python make_metric_fixture.py DATASET.json OUT.json [--seed 1]
"""
import argparse
import json
import random

import cmrc2018_metric as metric

EXTRA = ["", " ", "。", "《", "》", "…", "……", "，", "(", ")", "'s", " the", ".", "-", "「", "」"]
ENGLISH = ["New York", "U.S.A.", "Dr. Sun Yat-sen", "don't", "3.5 km", "1,000", "\"quoted\"",
           "e.g.", "cannot", "IBM's", "(1933)", "A-B", "x--y", "Rock 'n' roll", "Ω-force"]


def noisy_prediction(rng, context, answer_text, answer_start):
    k = rng.random()
    end = answer_start + len(answer_text)
    if k < 0.30:
        return answer_text
    if k < 0.55:
        s = max(0, answer_start + rng.randint(-4, 4))
        e = min(len(context), max(s, end + rng.randint(-4, 6)))
        return context[s:e]
    if k < 0.70:
        s = rng.randrange(0, max(1, len(context)))
        return context[s:s + rng.randint(1, 30)]
    if k < 0.82:
        return rng.choice(EXTRA) + answer_text + rng.choice(EXTRA)
    if k < 0.92:
        return rng.choice(ENGLISH) + rng.choice(["", answer_text[:2]])
    if k < 0.96:
        return ""
    return answer_text.upper() + " " + answer_text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with open(args.dataset, encoding="utf-8") as f:
        gold = json.load(f)
    predictions = {}
    per_question = {}
    for article in gold["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                if rng.random() < 0.03:
                    continue  # unanswered
                a = rng.choice(qa["answers"])
                pred = noisy_prediction(rng, para["context"], a["text"], a["answer_start"])
                predictions[qa["id"]] = pred
                answers = [x["text"] for x in qa["answers"]]
                per_question[qa["id"]] = [pred, metric.calc_em_score(answers, pred),
                                          metric.calc_f1_score(answers, pred)]
    overall = metric.evaluate(gold, predictions)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"overall": overall, "per_question": per_question}, f, ensure_ascii=False)
    print(json.dumps(overall))


if __name__ == "__main__":
    main()
