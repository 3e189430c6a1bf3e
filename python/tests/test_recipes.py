"""The recipe table comes from recipes.json (written by the Swift runtime, checked by its tests)."""
from usm_ref.recipes import ENCODER_MATRIX_MODULES, ENCODER_MATRIX_SUFFIXES, RECIPES, TABLE


def test_encoder_recipes_are_the_papers():
    assert RECIPES == {
        "int8": ("int8", 0, "none"), "int4": ("int4", 0, "none"), "int4-b64": ("int4", 64, "none"),
        "exp1": ("int2", 0, "none"), "exp2": ("int2", 64, "search"), "exp3": ("bin_asym", 0, "none"),
        "exp4": ("bin", 0, "none"), "exp5": ("bin", 64, "none"),
    }
    assert {r["name"] for r in TABLE["recipes"]} >= {"exp0", "exp5-dec8", "exp5-dec4"}


def test_encoder_matrices():
    assert set(ENCODER_MATRIX_MODULES) == {"linear1", "linear2", "query", "key", "value", "out", "pos",
                                           "pointwise1", "pointwise2"}
    assert all(s.startswith(".") and s.endswith(".weight") for s in ENCODER_MATRIX_SUFFIXES)
