"""Numbers spelled the way people say them, and number-bearing training sentences.

`spell_int(2005)` -> "two thousand and five" (or without "and", `and_=False`), `spell_year(1995)` ->
"nineteen ninety five", `spell_digits("0151", oh=True)` -> "oh one five one", `spell_ordinal(23)` ->
"twenty third", `spell_phone(...)` groups digits like a phone number ("double five" sometimes).
`number_sentences(n, seed)` generates `n` short sentences from generic templates (dates, times, prices,
quantities, phone / account / PIN digit strings, ordinals, years, percentages), deterministically per seed.
The templates were written from scratch; no evaluation prompt was looked at.
Output text follows the manifest convention: lowercase a-z, apostrophe, single spaces.
"""
from __future__ import annotations

import random

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = [(10 ** 9, "billion"), (10 ** 6, "million"), (1000, "thousand")]
ORD_IRREG = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}
DIGIT_WORDS = ONES[:10]


def _below_100(n: int) -> str:
    if n < 20:
        return ONES[n]
    t, o = divmod(n, 10)
    return TENS[t] + ("" if o == 0 else " " + ONES[o])


def _below_1000(n: int, and_: bool) -> str:
    h, r = divmod(n, 100)
    if h == 0:
        return _below_100(r)
    s = ONES[h] + " hundred"
    if r:
        s += (" and " if and_ else " ") + _below_100(r)
    return s


def spell_int(n: int, and_: bool = True) -> str:
    """Cardinal: 123 -> "one hundred and twenty three" (British "and" unless and_=False)."""
    if n < 0:
        return "minus " + spell_int(-n, and_)
    if n < 1000:
        return _below_1000(n, and_)
    parts = []
    r = n
    for scale, name in SCALES:
        if r >= scale:
            q, r = divmod(r, scale)
            parts.append(_below_1000(q, and_) + " " + name)
    if r:
        # "two thousand and five": "and" before a last group below 100
        parts.append(("and " if and_ and r < 100 else "") + _below_1000(r, and_))
    return " ".join(parts)


def spell_ordinal(n: int, and_: bool = True) -> str:
    words = spell_int(n, and_).split()
    last = words[-1]
    if last in ORD_IRREG:
        words[-1] = ORD_IRREG[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def spell_year(y: int, rng: random.Random | None = None) -> str:
    """1995 -> "nineteen ninety five"; 1905 -> "nineteen oh five"; 2005 -> "two thousand and five"
    (or "two thousand five"); 2019 -> "twenty nineteen" or "two thousand and nineteen"; 1900 -> "nineteen hundred"."""
    rng = rng or random.Random(y)
    if 2000 <= y <= 2009:
        return spell_int(y, and_=rng.random() < 0.6)
    if 2010 <= y <= 2099 and rng.random() < 0.4:
        return spell_int(y, and_=rng.random() < 0.5)
    if 1000 <= y <= 9999:
        hi, lo = divmod(y, 100)
        if lo == 0:
            return _below_100(hi) + " hundred"
        if lo < 10:
            return _below_100(hi) + " oh " + ONES[lo]
        return _below_100(hi) + " " + _below_100(lo)
    return spell_int(y)


def spell_digits(s: str, oh: bool = False) -> str:
    """Digit by digit; zero as "oh" when oh=True."""
    out = []
    for ch in s:
        if ch.isdigit():
            d = int(ch)
            out.append("oh" if (d == 0 and oh) else DIGIT_WORDS[d])
    return " ".join(out)


def spell_phone(digits: str, rng: random.Random) -> str:
    """A digit string read in groups (3-3-4 or 4-4 etc.); "double" for repeated digits sometimes."""
    oh = rng.random() < 0.5
    double = rng.random() < 0.3
    words = []
    i = 0
    while i < len(digits):
        d = digits[i]
        if double and i + 1 < len(digits) and digits[i + 1] == d and (i + 2 >= len(digits) or digits[i + 2] != d):
            words.append("double " + spell_digits(d, oh))
            i += 2
        else:
            words.append(spell_digits(d, oh))
            i += 1
    return " ".join(words)


def spell_time(h: int, m: int, rng: random.Random) -> str:
    """Clock time as said: "three thirty", "ten o'clock", "quarter past six", "twenty to nine", "seven oh five"."""
    h12 = h % 12 or 12
    r = rng.random()
    if m == 0:
        return ONES[h12] + (" o'clock" if r < 0.6 else "")
    if m == 15 and r < 0.4:
        return "quarter past " + ONES[h12]
    if m == 30 and r < 0.4:
        return "half past " + ONES[h12]
    if m == 45 and r < 0.4:
        return "quarter to " + ONES[h12 % 12 + 1]
    if m > 30 and r < 0.2:
        return _below_100(60 - m) + " to " + ONES[h12 % 12 + 1]
    if m < 10:
        return ONES[h12] + " oh " + ONES[m]
    return ONES[h12] + " " + _below_100(m)


MONTHS = ("january february march april may june july august september october november december").split()
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
THINGS = ("apples boxes books chairs tickets messages files pages people cars trees minutes hours days weeks "
          "miles dollars pounds euros steps emails letters songs photos cups").split()
NAMES = "anna ben carla david emma frank grace henry isabel jack kate leo maria nick olivia peter rose sam tom".split()


def _money(rng: random.Random) -> str:
    units = rng.choice([("dollars", "cents"), ("pounds", "pence"), ("euros", "cents")])
    a = rng.choice([rng.randint(1, 20), rng.randint(1, 100), rng.randint(100, 9999)])
    s = spell_int(a, and_=rng.random() < 0.5) + " " + units[0]
    if rng.random() < 0.4:
        s += " and " + _below_100(rng.randint(1, 99)) + " " + units[1]
    elif rng.random() < 0.3:
        # "twelve fifty"
        s = spell_int(a, and_=False) + " " + _below_100(rng.randint(10, 99))
    return s


def _digits(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(lo, hi)))


def _phone(rng):
    return spell_phone(_digits(rng, 7, 11), rng)


TEMPLATES = [
    lambda r: f"my number is {_phone(r)}",
    lambda r: f"you can reach me on {_phone(r)}",
    lambda r: f"call {NAMES[r.randrange(len(NAMES))]} back at {_phone(r)}",
    lambda r: f"the code is {spell_digits(_digits(r, 4, 6), oh=r.random() < 0.4)}",
    lambda r: f"my pin is {spell_digits(_digits(r, 4, 4))}",
    lambda r: f"the reference number is {spell_phone(_digits(r, 5, 9), r)}",
    lambda r: f"order {spell_digits(_digits(r, 3, 6), oh=r.random() < 0.5)} was shipped on {MONTHS[r.randrange(12)]} {spell_ordinal(r.randint(1, 31))}",
    lambda r: spell_digits(_digits(r, 2, 10), oh=r.random() < 0.3),
    lambda r: spell_phone(_digits(r, 3, 10), r),
    lambda r: spell_int(r.choice([r.randint(0, 20), r.randint(0, 100), r.randint(0, 1000), r.randint(0, 10 ** 6)]),
                        and_=r.random() < 0.5),
    lambda r: f"it costs {_money(r)}",
    lambda r: f"that will be {_money(r)} please",
    lambda r: f"i paid {_money(r)} for it",
    lambda r: f"the meeting is at {spell_time(r.randint(0, 23), r.choice([0, 5, 10, 15, 20, 30, 40, 45, 50, r.randint(0, 59)]), r)}",
    lambda r: f"the train leaves at {spell_time(r.randint(0, 23), r.randint(0, 59), r)}",
    lambda r: f"see you on {DAYS[r.randrange(7)]} at {spell_time(r.randint(6, 21), r.choice([0, 15, 30, 45]), r)}",
    lambda r: f"she was born on the {spell_ordinal(r.randint(1, 31))} of {MONTHS[r.randrange(12)]} {spell_year(r.randint(1930, 2025), r)}",
    lambda r: f"{MONTHS[r.randrange(12)]} {spell_ordinal(r.randint(1, 31))} {spell_year(r.randint(1990, 2030), r)}",
    lambda r: f"it happened in {spell_year(r.randint(1800, 2030), r)}",
    lambda r: f"we moved here in {spell_year(r.randint(1950, 2025), r)}",
    lambda r: f"there are {spell_int(r.randint(2, 999), and_=r.random() < 0.5)} {THINGS[r.randrange(len(THINGS))]} left",
    lambda r: f"i need {spell_int(r.randint(2, 60))} {THINGS[r.randrange(len(THINGS))]}",
    lambda r: f"it takes about {spell_int(r.randint(2, 90))} minutes",
    lambda r: f"the population is {spell_int(r.randint(1000, 9_999_999), and_=r.random() < 0.5)}",
    lambda r: f"go to room {r.choice([spell_int(r.randint(100, 999), and_=False), spell_digits(str(r.randint(100, 999)), oh=True)])}",
    lambda r: f"turn left on {spell_ordinal(r.randint(1, 99))} street",
    lambda r: f"this is the {spell_ordinal(r.randint(1, 120))} time",
    lambda r: f"press {spell_digits(str(r.randint(0, 9)))} to continue",
    lambda r: f"about {spell_int(r.randint(1, 100))} percent of them agreed",
    lambda r: f"the temperature is {spell_int(r.randint(-10, 40))} degrees",
    lambda r: f"flight {spell_digits(_digits(r, 3, 4), oh=r.random() < 0.5)} departs at {spell_time(r.randint(0, 23), r.randint(0, 59), r)}",
    lambda r: f"the score was {spell_int(r.randint(0, 9))} to {spell_int(r.randint(0, 9))}",
    lambda r: f"page {spell_int(r.randint(1, 600), and_=r.random() < 0.5)} line {spell_int(r.randint(1, 60))}",
    lambda r: f"{spell_int(r.randint(1, 12))} {spell_int(r.randint(1, 12))} {spell_int(r.randint(1, 12))}",
    lambda r: f"count from {spell_int(r.randint(1, 20))} to {spell_int(r.randint(21, 100))}",
]


def number_sentences(n: int, seed: int = 0) -> list[str]:
    """`n` number-bearing sentences, item i depending only on (seed, i) so that prefixes are stable."""
    out = []
    for i in range(n):
        r = random.Random(seed * 1_000_003 + i)
        s = TEMPLATES[r.randrange(len(TEMPLATES))](r)
        out.append(" ".join(s.replace("-", " ").split()))
    return out
