"""Rewrites a SQuAD-format file so that an English WordPiece vocabulary can read it: every
distinct character becomes one distinct whole word of that vocabulary ("甲乙" -> "lamp
river"), with answer offsets moved to match. `make parity` uses it to fine-tune a real
pretrained English BERT (sentence-transformers' all-MiniLM-L6-v2, from PyPI) on the synthetic
Traditional-Chinese set: the task keeps its structure and every token is known.

  python transliterate_squad.py VOCAB.txt IN.json OUT.json [IN2.json OUT2.json ...]

Files given together share one table (train and eval sets must).
"""
import json
import sys


def word_list(vocab_path):
    with open(vocab_path, encoding="utf-8") as f:
        tokens = [line.rstrip("\n") for line in f]
    return [t for t in tokens if t.isascii() and t.isalpha() and t.islower() and 3 <= len(t) <= 8]


class Mapper:
    def __init__(self, words):
        self.words = words
        self.table = {}

    def word(self, ch):
        if ch not in self.table:
            if len(self.table) >= len(self.words):
                raise SystemExit("more distinct characters than words in the vocabulary")
            self.table[ch] = self.words[len(self.table)]
        return self.table[ch]

    def text(self, s):
        """The new text and, for each old char offset (and the end), the new offset."""
        out, offsets, pos = [], [], 0
        for ch in s:
            offsets.append(pos)
            if ch.isspace():
                continue
            w = self.word(ch)
            out.append(w)
            pos += len(w) + 1
        offsets.append(max(pos - 1, 0))
        return " ".join(out), offsets


def main():
    vocab, pairs = sys.argv[1], sys.argv[2:]
    if not pairs or len(pairs) % 2:
        raise SystemExit(__doc__)
    m = Mapper(word_list(vocab))
    for src, dst in zip(pairs[::2], pairs[1::2]):
        convert(m, src, dst)


def convert(m, src, dst):
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    for article in data["data"]:
        for para in article["paragraphs"]:
            context, offsets = m.text(para["context"])
            for qa in para["qas"]:
                qa["question"] = m.text(qa["question"])[0]
                for a in qa.get("answers", []):
                    start = a["answer_start"]
                    a["text"] = m.text(a["text"])[0]
                    a["answer_start"] = offsets[start] if 0 <= start < len(offsets) else -1
                    new_start = a["answer_start"]
                    if new_start >= 0 and context[new_start:new_start + len(a["text"])] != a["text"]:
                        raise SystemExit(f"{qa['id']}: answer offset did not carry over")
            para["context"] = context
    with open(dst, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    print(f"{len(m.table)} distinct characters -> words; written {dst}")


if __name__ == "__main__":
    main()
