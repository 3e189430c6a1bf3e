import random
import re

import pytest

from usm_ref.numbers import (number_sentences, spell_digits, spell_int, spell_ordinal, spell_phone, spell_time,
                             spell_year)


@pytest.mark.parametrize("n,and_,want", [
    (0, True, "zero"), (7, True, "seven"), (13, True, "thirteen"), (20, True, "twenty"), (23, True, "twenty three"),
    (100, True, "one hundred"), (105, True, "one hundred and five"), (105, False, "one hundred five"),
    (999, True, "nine hundred and ninety nine"), (1000, True, "one thousand"),
    (2005, True, "two thousand and five"), (2005, False, "two thousand five"),
    (12345, True, "twelve thousand three hundred and forty five"),
    (1_000_001, True, "one million and one"), (3_400_000, False, "three million four hundred thousand"),
    (-4, True, "minus four"),
])
def test_spell_int(n, and_, want):
    assert spell_int(n, and_) == want


@pytest.mark.parametrize("n,want", [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"),
                                    (9, "ninth"), (12, "twelfth"), (20, "twentieth"), (23, "twenty third"),
                                    (31, "thirty first"), (100, "one hundredth")])
def test_spell_ordinal(n, want):
    assert spell_ordinal(n) == want


def test_spell_year():
    assert spell_year(1995) == "nineteen ninety five"
    assert spell_year(1905) == "nineteen oh five"
    assert spell_year(1900) == "nineteen hundred"
    assert spell_year(2005, random.Random(0)) in ("two thousand and five", "two thousand five")
    assert spell_year(2019, random.Random(0)) in ("twenty nineteen", "two thousand and nineteen",
                                                  "two thousand nineteen")


def test_digits_and_phone():
    assert spell_digits("0151") == "zero one five one"
    assert spell_digits("0151", oh=True) == "oh one five one"
    r = random.Random(3)
    for _ in range(50):
        s = spell_phone("5550123", r)
        words = s.replace("double ", "").split()
        assert len(words) + s.count("double") == 7
        assert set(words) <= {"five", "oh", "zero", "one", "two", "three"}


def test_time():
    r = random.Random(0)
    for h in range(24):
        for m in (0, 5, 15, 30, 45, 50):
            s = spell_time(h, m, r)
            assert re.fullmatch(r"[a-z' ]+", s), s


def test_number_sentences_deterministic_prefix_stable_and_clean():
    a = number_sentences(300, seed=1)
    assert a == number_sentences(300, seed=1)
    assert a[:100] == number_sentences(100, seed=1)
    assert a != number_sentences(300, seed=2)
    for s in a:
        assert re.fullmatch(r"[a-z']+( [a-z']+)*", s), s
    assert len(set(a)) > 250
