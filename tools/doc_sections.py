"""Generated sections of the docs: text between `<!-- NAME:start -->` and `<!-- NAME:end -->`
markers, replaced in place (or appended when the markers are not there yet). Used by every
script that writes numbers into docs/ (bench_data, bench_train, parity, amp_check).
Standard library only."""
import os


def replace_section(path, start, end, section):
    """Puts `section` (which begins with `start` and ends with `end`) into the file at `path`."""
    text = open(path, encoding="utf-8").read() if os.path.exists(path) else "# Benchmarks\n"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
