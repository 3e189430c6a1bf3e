"""The RNN-T loss the trainer uses (torchaudio.functional.rnnt_loss; torchaudio 2.11.x on torch >= 2.11) against a
brute-force sum over all alignments on tiny sizes."""
import itertools
import math

import pytest

torch = pytest.importorskip("torch")
AF = pytest.importorskip("torchaudio.functional")
if not hasattr(AF, "rnnt_loss"):
    pytest.skip("this torchaudio has no rnnt_loss", allow_module_level=True)


def brute_force(logits, y, T, U, blank=0):
    lp = torch.log_softmax(logits.double(), -1)
    total = []
    for pos in itertools.combinations(range(T + U - 1), U):  # label positions; the last step is a blank
        t = u = 0
        s = 0.0
        for k in range(T + U):
            if k in pos:
                s += float(lp[t, u, y[u]])
                u += 1
            else:
                s += float(lp[t, u, blank])
                t += 1
        total.append(s)
    m = max(total)
    return -(m + math.log(sum(math.exp(v - m) for v in total)))


@pytest.mark.parametrize("T,U,V", [(1, 0, 3), (2, 1, 3), (3, 2, 4), (4, 3, 5), (5, 2, 3)])
def test_rnnt_loss_matches_brute_force(T, U, V):
    g = torch.Generator().manual_seed(T * 100 + U * 10 + V)
    B = 2
    logits = torch.randn(B, T, U + 1, V, generator=g)
    targets = torch.randint(1, V, (B, max(U, 1)), generator=g, dtype=torch.int32)
    tl = torch.tensor([T, max(T - 1, 1)], dtype=torch.int32)
    ul = torch.tensor([U, max(U - 1, 0)], dtype=torch.int32)
    loss = AF.rnnt_loss(logits, targets[:, :U] if U else targets[:, :0], tl, ul, blank=0, reduction="none")
    for b in range(B):
        want = brute_force(logits[b], targets[b].tolist(), int(tl[b]), int(ul[b]))
        assert abs(float(loss[b]) - want) < 1e-4 * max(1.0, abs(want))
