#!/usr/bin/env python3
"""Independent reference for the GPT-2 tokenizer test (tests/test_prompt_bpe.cpp).

Written from the published algorithm, sharing no code with the C++ tokenizer: the
pre-tokenizer is GPT-2's pattern run by the third-party `regex` module (the C++ side
implements it by hand), and BPE is the textbook loop (find the lowest-ranked adjacent
pair, merge every occurrence left to right, repeat). Prints a C++ initializer per
string. Run from the repository root:  python3 scripts/gpt2_reference_ids.py
"""
import json
import sys
from pathlib import Path

import regex

PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

# The strings of the test, in its order.
CASES = [
    "Hello world",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you've heard they'll say it's what we'd do, don't you?",
    "'s 't 're 've 'm 'll 'd 'S 'RE",
    "a  b   c    d",
    "trailing spaces   ",
    "   leading spaces",
    "line one\nline two\n\n\nline four\r\n",
    "tabs\tand\t\tmore",
    "\n\n\n",
    "numbers 1234567 and 3.14159, -42, 1e10",
    "punctuation!!! ... ??? --- (parens) [brackets] {braces}",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u00fcber",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "emoji \U0001F600\U0001F680 and flags \U0001F1FA\U0001F1F8",
    "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439, \u043c\u0438\u0440",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "non\u00a0breaking\u3000ideographic space",
    "def f(x):\n    return x ** 2  # square\n",
    "<|endoftext|>",
    "superlongwordthatneedsmanymerges antidisestablishmentarianism",
    "x" * 40,
    "\u2014em dash\u2014 and \u201cquotes\u201d",
]
# Besides these, the script hashes the ids of all of data/text/moby_dick.txt.


def bytes_to_unicode():
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def bpe(word, ranks):
    symbols = list(word)
    while len(symbols) > 1:
        pairs = [(ranks.get((a, b), float("inf")), i) for i, (a, b) in enumerate(zip(symbols, symbols[1:]))]
        best = min(pairs)[0]
        if best == float("inf"):
            break
        first, second = next((symbols[i], symbols[i + 1]) for r, i in pairs if r == best)
        merged, i = [], 0
        while i < len(symbols):
            if i + 1 < len(symbols) and symbols[i] == first and symbols[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(symbols[i])
                i += 1
        symbols = merged
    return symbols


def cpp_literal(text):
    """A C++ string literal: printable characters as UTF-8, the rest as escapes."""
    out = []
    for ch in text:
        if ch in "\\\"":
            out.append("\\" + ch)
        elif ch in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[ch])
        elif ch.isprintable() and (ch == " " or not ch.isspace()):
            out.append(ch)
        elif ord(ch) > 0xFFFF:
            out.append(f"\\U{ord(ch):08X}")
        else:
            out.append(f"\\u{ord(ch):04X}")
    return '"' + "".join(out) + '"'


def main():
    root = Path(__file__).resolve().parent.parent / "data" / "tokenizers" / "gpt2"
    encoder = json.loads((root / "encoder.json").read_text(encoding="utf-8"))
    lines = (root / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
    ranks = {tuple(l.split(" ")): i for i, l in enumerate(l for l in lines if l)}
    b2u = bytes_to_unicode()
    for text in CASES:
        ids = []
        for piece in PATTERN.findall(text):
            word = "".join(b2u[b] for b in piece.encode("utf-8"))
            ids.extend(encoder[t] for t in bpe(word, ranks))
        print("    {" + cpp_literal(text) + ", {" + ", ".join(map(str, ids)) + "}},")
    # The whole shipped corpus: token count and FNV-1a (64-bit) over the ids as little-endian int32.
    text = (root.parent.parent / "text" / "moby_dick.txt").read_text(encoding="utf-8")
    ids = [encoder[t] for piece in PATTERN.findall(text)
           for t in bpe("".join(b2u[b] for b in piece.encode("utf-8")), ranks)]
    h = 0xCBF29CE484222325
    for i in ids:
        for byte in i.to_bytes(4, "little"):
            h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    print(f"moby_dick.txt: {len(ids)} tokens, fnv1a64 0x{h:016X}")


if __name__ == "__main__":
    sys.exit(main())
