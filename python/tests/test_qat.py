"""QAT fake quantization gives the same weights as the numpy quantizer (and so as the Swift one)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="QAT needs torch")
from usm_ref import qat, quant  # noqa: E402

CASES = [("int8", 0, "f32", "none"), ("int4", 0, "f32", "none"), ("int4", 64, "int8", "none"), ("int4", 32, "f32", "search"),
         ("int2", 0, "f32", "none"), ("int2", 64, "int8", "search"), ("int2", 64, "int8-row", "none"),
         ("bin_asym", 0, "f32", "none"), ("bin_asym", 8, "int8-row", "none"), ("bin", 0, "f32", "none"),
         ("bin", 64, "int8", "none"), ("bin_norm", 64, "f32", "none")]


@pytest.mark.parametrize("scheme,block,fmt,clip", CASES)
def test_fake_quant_matches_numpy_quantizer(scheme, block, fmt, clip):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((6, 200)).astype(np.float32) * 0.1
    w[0, :5] = 0
    w[1, 7] = 1.5
    expected = quant.quantize(w, scheme, block, fmt, clip).dequantize()
    got = qat.fake_quantize(torch.from_numpy(w), scheme, block, fmt, clip).numpy()
    # same formulas in float32; summation order may move a scale by an ulp
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_straight_through_gradient_and_recipe_wrapping():
    from usm_ref.config import named_config
    from usm_ref.model import ConformerRNNT

    m = ConformerRNNT(named_config("small"), dropout=0.0)
    n = qat.apply_recipe(m, "exp5", scale_format="int8")
    cfg = named_config("small")
    assert n == cfg.encoder.layers * 11  # ffn1 x2, ffn2 x2, query/key/value/out/pos, pointwise x2 (as Swift packs)
    lin = m.encoder.layers[0].ffn1.linear1
    x = torch.randn(3, cfg.encoder.dim, requires_grad=True)
    y = lin(x).sum()
    y.backward()
    assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
    # forward uses the binarized weight: each block of 64 holds two magnitudes at most per row
    wq = qat.fake_quantize(lin.weight, "bin", 64, "int8")
    assert torch.allclose(lin(x), torch.nn.functional.linear(x, wq, lin.bias))
