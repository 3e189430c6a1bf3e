import numpy as np
import pytest

torch = pytest.importorskip("torch")

from usm_ref.config import named_config  # noqa: E402
from usm_ref.decode import greedy_search  # noqa: E402
from usm_ref.model import ConformerRNNT  # noqa: E402
from usm_ref.reference_np import encoder_np, greedy_np  # noqa: E402


def _trained_ish_model(cfg):
    """Random model with non-trivial BatchNorm statistics and non-zero u/v/per_dim_scale."""
    torch.manual_seed(1)
    m = ConformerRNNT(cfg)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith((".u", ".v", "per_dim_scale")) or "norm" in n or ".bns." in n or ".bn." in n:
                p.add_(0.2 * torch.randn_like(p))
        for mod in m.modules():
            if hasattr(mod, "running_mean"):
                mod.running_mean.normal_(0, 0.3)
                mod.running_var.uniform_(0.5, 2.0)
        m.set_normalisation(torch.randn(cfg.frontend.mel_bins), torch.rand(cfg.frontend.mel_bins) + 0.5)
    return m.eval()


def test_numpy_reference_matches_torch_encoder():
    cfg = named_config("small")
    m = _trained_ish_model(cfg)
    W = {k: v.astype(np.float64) for k, v in m.state_dict_for_export().items()}
    feats = torch.randn(1, 77, 80)
    with torch.no_grad():
        enc, _ = m.encoder(feats, torch.tensor([77]))
    norm = (feats[0].numpy() - W["frontend.mean"]) / W["frontend.std"]
    ref = encoder_np(norm, W, cfg)
    assert ref.shape == tuple(enc.shape[1:])
    assert np.abs(ref - enc[0].numpy()).max() < 2e-5


def test_numpy_greedy_matches_torch():
    cfg = named_config("small")
    m = _trained_ish_model(cfg)
    W = {k: v.astype(np.float64) for k, v in m.state_dict_for_export().items()}
    torch.manual_seed(3)
    enc = torch.randn(30, cfg.encoder.dim)
    hyp = greedy_search(m, enc)
    assert len(hyp) > 30  # non-trivial: emits, and sometimes several symbols per frame
    assert hyp == greedy_np(enc.numpy().astype(np.float64), W, cfg)
