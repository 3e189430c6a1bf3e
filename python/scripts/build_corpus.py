"""Build a normalised English sentence corpus from Debian-shipped prose.

Sources: fortune cookies (/usr/share/games/fortunes), the Debian Reference (plain text),
the Python documentation sources (reST). Sentences are split, filtered (3..20 words, no URLs, code,
odd symbols, multi-digit numbers, acronyms, at most one word outside /usr/share/dict/american-english),
normalised to lowercase letters, apostrophes and single spaces (single digits spelled out) and deduplicated.
Output: one sentence per line, `source<TAB>text`.
"""
import glob
import gzip
import os
import random
import re
import sys

DIGITS = "zero one two three four five six seven eight nine".split()
OK_CHARS = re.compile(r"^[A-Za-z0-9'\u2019 ,.;:!?\"()\-]+$")
BAD = re.compile(r"(https?:|www\.|@|\.com|\.org|\.py\b|::|->|=|_|/|\\|\{|\}|<|>|\[|\]|\*|#|\$|%|&|\+|~|`|\|)")
SENT_SPLIT = re.compile(r"(?<=[.!?])[\"')]*\s+(?=[\"'(]?[A-Z])")


def load_dict():
    words = set()
    with open("/usr/share/dict/american-english", encoding="utf-8", errors="ignore") as f:
        for w in f:
            w = w.strip()
            if w:
                words.add(w.lower())
    return words


def fortunes():
    for path in sorted(glob.glob("/usr/share/games/fortunes/*")):
        if "." in os.path.basename(path) or os.path.isdir(path):
            continue
        if os.path.basename(path) in ("art", "ascii-art", "translate-me", "perl"):
            continue
        text = open(path, encoding="utf-8", errors="ignore").read()
        for entry in text.split("\n%\n"):
            lines = []
            for ln in entry.split("\n"):
                s = ln.strip()
                if s.startswith("--") or s.startswith("-- "):
                    break  # attribution
                lines.append(s)
            yield "fortunes", " ".join(lines)


def debian_reference():
    with gzip.open("/usr/share/debian-reference/debian-reference.en.txt.gz", "rt", errors="ignore") as f:
        para = []
        for ln in f:
            s = ln.rstrip("\n")
            if not s.strip():
                if para:
                    yield "debref", " ".join(para)
                para = []
                continue
            # skip indented-as-code or table-ish lines
            if s.startswith("    ") and not s.startswith("   "):
                continue
            para.append(s.strip())
        if para:
            yield "debref", " ".join(para)


ROLE = re.compile(r":[a-z:]+:`([^`<]*)(<[^>]*>)?`")


def python_doc():
    for path in sorted(glob.glob("/usr/share/doc/python3-doc/html/_sources/**/*.txt", recursive=True)):
        if "/whatsnew/" in path or "changelog" in path:
            continue
        text = open(path, encoding="utf-8", errors="ignore").read()
        in_code = False
        para = []
        for ln in text.split("\n"):
            if not ln.strip():
                if para:
                    yield "pydoc", " ".join(para)
                para = []
                continue
            if ln.startswith((" ", "\t")):
                # indented blocks: code, directive bodies; keep only if not code
                if in_code:
                    continue
            else:
                in_code = False
            if ln.rstrip().endswith("::"):
                in_code = True
                ln = ln.rstrip()[:-1]
            if ln.lstrip().startswith(".."):
                in_code = True
                continue
            if re.match(r"^[=\-~^\"'*#+]{3,}$", ln.strip()):
                para = []  # heading underline: drop heading
                continue
            para.append(ln.strip())
        if para:
            yield "pydoc", " ".join(para)


def normalise(sent, dictionary):
    s = sent.strip()
    s = s.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    s = s.replace("--", ", ")
    s = ROLE.sub(r"\1", s)
    if BAD.search(s) or not OK_CHARS.match(s):
        return None
    toks = s.split()
    for t in toks:
        core = t.strip("\"'(),.;:!?")
        if len(core) >= 2 and core.isupper():
            return None  # acronym
        if re.search(r"[A-Za-z]\.[A-Za-z]", core):
            return None  # abbreviations like e.g / i.e
        if re.search(r"\d", core) and not re.fullmatch(r"\d", core):
            return None
        if core.lower() in ("mr", "mrs", "dr", "st", "vs", "etc", "jr", "sr", "prof"):
            return None
    s = re.sub(r"\b(\d)\b", lambda m: " " + DIGITS[int(m.group(1))] + " ", s)
    s = s.lower().replace("-", " ")
    s = re.sub(r"[^a-z' ]", " ", s)
    words = []
    for w in s.split():
        w = w.strip("'")
        if w:
            words.append(w)
    if not (3 <= len(words) <= 20):
        return None
    oov = sum(1 for w in words if w not in dictionary and w.replace("'s", "") not in dictionary)
    if oov > 1:
        return None
    if any(len(w) == 1 and w not in ("a", "i") for w in words):
        return None
    return " ".join(words)


def main(out_path):
    dictionary = load_dict()
    seen = set()
    counts = {}
    out = []
    for gen in (fortunes(), debian_reference(), python_doc()):
        for src, para in gen:
            para = re.sub(r"\s+", " ", para).strip()
            for sent in SENT_SPLIT.split(para):
                t = normalise(sent, dictionary)
                if t is None or t in seen:
                    continue
                seen.add(t)
                counts[src] = counts.get(src, 0) + 1
                out.append((src, t))
    random.Random(0).shuffle(out)
    with open(out_path, "w") as f:
        for src, t in out:
            f.write(f"{src}\t{t}\n")
    print(counts, "total", len(out), "words", sum(len(t.split()) for _, t in out))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/root/usm-data/text/sentences.tsv")
