"""The official CMRC2018 evaluation logic ("cmrc2018_evaluate.py", v5 - special), ported by us
to Python 3 for comparison with `sweep score`. Same normalisation, same punctuation list,
same mixed segmentation and longest-common-substring F1.

The original calls nltk.word_tokenize, which first splits sentences with NLTK's Punkt model;
that model is a separate download not available here, so we call it with preserve_line=True
(the word rules are identical; only multi-sentence non-Chinese runs could differ).

Usage: python cmrc2018_metric.py DATASET.json PREDICTIONS.json  -> prints the JSON scores
"""
import json
import sys

from nltk.tokenize import word_tokenize

SP_CHAR = ['-', ':', '_', '*', '^', '/', '\\', '~', '`', '+', '=',
           '，', '。', '：', '？', '！', '“', '”', '；', '’', '《', '》', '……', '·', '、',
           '「', '」', '（', '）', '－', '～', '『', '』']


def _is_cjk(ch):
    return '\u4e00' <= ch <= '\u9fa5'


def mixed_segmentation(in_str, rm_punc=False):
    in_str = str(in_str).lower().strip()
    segs_out = []
    temp_str = ""
    for char in in_str:
        if rm_punc and char in SP_CHAR:
            continue
        if _is_cjk(char) or char in SP_CHAR:
            if temp_str != "":
                segs_out.extend(word_tokenize(temp_str, preserve_line=True))
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char
    if temp_str != "":
        segs_out.extend(word_tokenize(temp_str, preserve_line=True))
    return segs_out


def remove_punctuation(in_str):
    in_str = str(in_str).lower().strip()
    return ''.join(ch for ch in in_str if ch not in SP_CHAR)


def find_lcs(s1, s2):
    m = [[0 for _ in range(len(s2) + 1)] for _ in range(len(s1) + 1)]
    mmax = 0
    p = 0
    for i in range(len(s1)):
        for j in range(len(s2)):
            if s1[i] == s2[j]:
                m[i + 1][j + 1] = m[i][j] + 1
                if m[i + 1][j + 1] > mmax:
                    mmax = m[i + 1][j + 1]
                    p = i + 1
    return s1[p - mmax:p], mmax


def calc_f1_score(answers, prediction):
    f1_scores = []
    for ans in answers:
        ans_segs = mixed_segmentation(ans, rm_punc=True)
        prediction_segs = mixed_segmentation(prediction, rm_punc=True)
        _, lcs_len = find_lcs(ans_segs, prediction_segs)
        if lcs_len == 0:
            f1_scores.append(0)
            continue
        precision = 1.0 * lcs_len / len(prediction_segs)
        recall = 1.0 * lcs_len / len(ans_segs)
        f1_scores.append((2 * precision * recall) / (precision + recall))
    return max(f1_scores)


def calc_em_score(answers, prediction):
    for ans in answers:
        if remove_punctuation(ans) == remove_punctuation(prediction):
            return 1
    return 0


def evaluate(ground_truth, predictions):
    f1 = em = total = skip = 0
    for article in ground_truth["data"]:
        for para in article["paragraphs"]:
            for qas in para["qas"]:
                total += 1
                qid = str(qas["id"]).strip()
                answers = [x["text"] for x in qas["answers"]]
                if qid not in predictions:
                    skip += 1
                    continue
                prediction = str(predictions[qid])
                f1 += calc_f1_score(answers, prediction)
                em += calc_em_score(answers, prediction)
    # The script prints '%.3f' % score.
    return {"EM": float('%.3f' % (100.0 * em / total)), "F1": float('%.3f' % (100.0 * f1 / total)),
            "TOTAL": total, "SKIP": skip}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        gold = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        preds = json.load(f)
    print(json.dumps(evaluate(gold, preds)))
