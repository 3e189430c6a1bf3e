"""Reference-text normalisation for scoring (lowercase, hyphens to spaces, no punctuation, digits spelled)."""
import re

DIGITS = "zero one two three four five six seven eight nine".split()


def normalise_text(s: str) -> str:
    if re.fullmatch(r"\(.*silence\)", s.strip(), flags=re.I):
        return ""  # asterisk "(N seconds of silence)" prompts: nothing is said
    s = s.lower().replace("-", " ").replace("*", " star ").replace("#", " pound ")
    s = re.sub(r"(\d)", lambda m: " " + DIGITS[int(m.group(1))] + " ", s)  # digit by digit
    s = s.replace("\u2019", "'")
    s = re.sub(r"[^a-z' ]", " ", s)
    return " ".join(w.strip("'") for w in s.split() if w.strip("'"))
