import pytest

spm = pytest.importorskip("sentencepiece")

from usm_ref.tokenizer import Tokenizer, train_tokenizer  # noqa: E402


def test_blank_and_unk_ids(tmp_path):
    text = tmp_path / "t.txt"
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jolly vampires".split()
    text.write_text("\n".join(" ".join(words[i:] + words[:i]) for i in range(len(words))) * 20 + "\n")
    train_tokenizer(str(text), str(tmp_path / "m"), vocab_size=40)
    tok = Tokenizer(str(tmp_path / "m.model"))
    assert len(tok) == 40
    assert tok.pieces[0] == "<blank>" and tok.pieces[1] == "<unk>"
    s = "the lazy dog jumps"
    ids = tok.encode(s)
    assert 0 not in ids
    assert tok.decode(ids) == s
    assert tok.decode([0] + ids + [0]) == s
    meta = tok.metadata()
    assert meta["blank_id"] == 0 and meta["unk_id"] == 1 and meta["pieces"][0] == "<blank>"
