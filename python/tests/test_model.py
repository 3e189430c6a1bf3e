import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usm_ref.config import named_config  # noqa: E402
from usm_ref.model import (ConformerRNNT, expected_export_shapes, local_attention_mask,  # noqa: E402
                           sinusoid)


@pytest.mark.parametrize("name", ["small", "trained", "real"])
def test_export_names_and_shapes(name):
    cfg = named_config(name)
    m = ConformerRNNT(cfg)
    ex = m.state_dict_for_export()
    want = expected_export_shapes(cfg)
    assert list(ex.keys()) == list(want.keys())
    for k, shape in want.items():
        assert ex[k].shape == shape, k
        assert ex[k].dtype == np.float32


def test_trained_param_count():
    m = ConformerRNNT(named_config("trained"))
    n = sum(p.numel() for p in m.parameters())
    assert 4.5e6 < n < 6e6


def test_forward_shapes():
    cfg = named_config("small")
    m = ConformerRNNT(cfg)
    B, T, U = 3, 101, 7
    feats = torch.randn(B, T, 80)
    lengths = torch.tensor([101, 80, 33])
    targets = torch.randint(1, cfg.vocab_size, (B, U))
    logits, enc_len = m(feats, lengths, targets, torch.tensor([7, 5, 2]))
    assert logits.shape == (B, 26, U + 1, cfg.vocab_size)  # ceil(ceil(101/2)/2) = 26
    assert enc_len.tolist() == [26, 20, 9]


def test_local_mask_rule():
    L, R, T = 3, 2, 8
    m = local_attention_mask(T, L, R)
    for i in range(T):
        for j in range(T):
            assert bool(m[i, j]) == (i - (L - 1) <= j <= i + R)
    # each row attends to left_context (incl. self) + right_context keys away from the edges
    assert int(m[4].sum()) == L + R


def test_sinusoid_layout():
    pe = sinusoid(torch.tensor([0, 1, -2]), 8)
    f = 10000.0 ** (-2 * np.arange(4) / 8)
    assert np.allclose(pe[1].numpy(), np.concatenate([np.sin(f), np.cos(f)]), atol=1e-6)
    assert np.allclose(pe[2].numpy(), np.concatenate([np.sin(-2 * f), np.cos(-2 * f)]), atol=1e-6)
    assert np.allclose(pe[0].numpy(), [0, 0, 0, 0, 1, 1, 1, 1])


def test_padding_invariance():
    """An utterance padded in a batch gives the same encoder output as alone (eval mode)."""
    cfg = named_config("small")
    torch.manual_seed(0)
    m = ConformerRNNT(cfg).eval()
    x = torch.randn(1, 90, 80)
    alone, l1 = m.encoder(x, torch.tensor([90]))
    batch = torch.cat([x, torch.zeros(1, 40, 80)], dim=1)
    batch = torch.cat([batch, torch.randn(1, 130, 80)], dim=0)
    out, l2 = m.encoder(batch, torch.tensor([90, 130]))
    assert l1.item() == l2[0].item() == 23
    assert torch.allclose(out[0, :23], alone[0], atol=1e-5)
