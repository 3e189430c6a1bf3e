#!/usr/bin/env bash
# NeMo environment for python/scripts/nemo_fixtures.py (issue 24). Idempotent: re-running only checks.
#
# A virtualenv that sees the system site-packages (so it reuses the machine's CPU torch 2.15.0, numpy,
# sentencepiece, soundfile and does not touch them), with nemo_toolkit[asr] 3.0.0 and the versions pip resolved on
# 2026-12-06 pinned. `import nemo.collections.asr` then works on CPU with torch 2.15.0 (NeMo 3.0.0 asks for
# torch>=2.6; no torchaudio is needed by the ASR path used here).
#
#   bash python/scripts/nemo_env.sh            # creates /root/nemo-venv (or $NEMO_VENV)
#   $NEMO_VENV/bin/python python/scripts/nemo_fixtures.py ...
#
# The tests (python/tests/test_nemo_*.py) do NOT need this environment.
set -euo pipefail
VENV="${NEMO_VENV:-/root/nemo-venv}"
PY="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv --system-site-packages "$VENV"
fi

if "$VENV/bin/python" -c "import nemo, sys; sys.exit(0 if nemo.__version__ == '3.0.0' else 1)" 2>/dev/null; then
  echo "nemo_toolkit 3.0.0 already in $VENV"
else
  CONSTRAINTS="$(mktemp)"
  trap 'rm -f "$CONSTRAINTS"' EXIT
  cat > "$CONSTRAINTS" <<'EOF'
nemo_toolkit==3.0.0
lightning==2.4.0
pytorch-lightning==2.6.6
omegaconf==2.3.0
hydra-core==1.3.2
numba==0.68.1
llvmlite==0.50.0
lhotse==1.33.0
librosa==0.11.0
torchmetrics==1.9.0
transformers==5.25.0
huggingface_hub==2.4.0
PyYAML==6.0.3
EOF
  # torch, numpy, sentencepiece, soundfile come from the system site-packages (torch 2.15.0 CPU wheel,
  # numpy 2.4.6, sentencepiece 0.2.3, soundfile 0.14.0): pip sees them as satisfied and leaves them alone.
  "$VENV/bin/pip" install -c "$CONSTRAINTS" "nemo_toolkit[asr]==3.0.0"
fi

"$VENV/bin/python" - <<'EOF'
import torch
torch.set_num_threads(1)
import nemo
import nemo.collections.asr as nemo_asr  # noqa: F401
from nemo.collections.asr.models import EncDecHybridRNNTCTCBPEModel, EncDecRNNTBPEModel  # noqa: F401
print(f"ok: nemo {nemo.__version__}, torch {torch.__version__}")
EOF
