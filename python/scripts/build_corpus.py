"""Build a normalised English sentence corpus from Debian-shipped prose.

Sources: fortune cookies (/usr/share/games/fortunes), the Debian Reference (plain text),
the Python documentation sources (reST). Sentences are split, filtered (3..20 words, no URLs, code,
odd symbols, multi-digit numbers, acronyms, at most one word outside /usr/share/dict/american-english),
normalised to lowercase letters, apostrophes and single spaces (single digits spelled out) and deduplicated.
Output: one sentence per line, `source<TAB>text`.

With --v2 (the issue-23 data set) also: the Debian Administrator's Handbook (debian-handbook, en-US HTML), the
Debian Developer's Reference (developers-reference, reST sources) and the Debian New Maintainers' Guide
(maint-guide, English HTML).
"""
import argparse
import html.parser
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
        yield from _rst_paras(path, "pydoc")


class _Paras(html.parser.HTMLParser):
    """Text of <p>/<li>/<dd>/<td> elements, skipping <pre>, <code>, <script>, <style>."""

    BLOCK = {"p", "li", "dd", "td"}
    SKIP = {"pre", "code", "script", "style", "kbd", "tt", "samp"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.paras, self.cur, self.depth, self.skip = [], [], 0, 0

    def handle_starttag(self, tag, attrs):
        if tag == "div" and ("class", "para") in attrs:  # Publican (debian-handbook) paragraphs
            tag = "p"
        if tag in self.SKIP:
            self.skip += 1
            self.cur.append(" \x00 ")  # poison: a sentence with code in it is dropped
        elif tag in self.BLOCK:
            self.flush()
            self.depth += 1

    def handle_endtag(self, tag):
        if tag == "div":
            self.flush()  # cannot tell which div closes; a paragraph boundary is harmless
            return
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.flush()
            self.depth = max(0, self.depth - 1)

    def handle_data(self, data):
        if self.depth and not self.skip:
            self.cur.append(data)

    def flush(self):
        t = " ".join("".join(self.cur).split())
        if t:
            self.paras.append(t)
        self.cur = []


def html_paras(paths, tag):
    for path in paths:
        p = _Paras()
        p.feed(open(path, encoding="utf-8", errors="ignore").read())
        p.flush()
        for para in p.paras:
            yield tag, para


def debian_handbook():
    yield from html_paras(sorted(glob.glob("/usr/share/doc/debian-handbook/html/en-US/*.html")), "handbook")


def maint_guide():
    yield from html_paras(sorted(glob.glob("/usr/share/doc/maint-guide/html/*.en.html")), "maintguide")


def developers_reference():
    for path in sorted(glob.glob("/usr/share/developers-reference/_sources/*.rst.txt")):
        for src, para in _rst_paras(path):
            yield "devref", para


def _rst_paras(path, source="rst"):
    """Paragraphs of a reStructuredText file, without code blocks, directives and headings, as (source, text)."""
    text = open(path, encoding="utf-8", errors="ignore").read()
    in_code = False
    para = []
    for ln in text.split("\n"):
        if not ln.strip():
            if para:
                yield source, " ".join(para)
            para = []
            continue
        if ln.startswith((" ", "\t")):
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
            para = []
            continue
        para.append(ln.strip())
    if para:
        yield source, " ".join(para)


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


def main(out_path, v2=False):
    dictionary = load_dict()
    seen = set()
    counts = {}
    out = []
    gens = [fortunes(), debian_reference(), python_doc()]
    if v2:
        gens += [debian_handbook(), developers_reference(), maint_guide()]
    for gen in gens:
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
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path + ".tmp", "w") as f:
        for src, t in out:
            f.write(f"{src}\t{t}\n")
    os.replace(out_path + ".tmp", out_path)
    print(counts, "total", len(out), "words", sum(len(t.split()) for _, t in out))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default="/root/usm-data/text/sentences.tsv")
    ap.add_argument("--v2", action="store_true", help="also the handbook, developers-reference, maint-guide")
    a = ap.parse_args()
    main(a.out, v2=a.v2)
