#!/usr/bin/env bash
# Build a separate virtual environment with the MOSES reference implementation
# (molsets 0.3.1 + fcd_torch) for side-by-side metric benchmarks:
#
#     bash benchmarks/molsets_env.sh
#     benchmarks/out/molsets-venv/bin/python benchmarks/molsets_reference.py ...
#
# Idempotent: a stamp file holding the install spec marks a finished env; a
# re-run with the same spec does nothing. Change the spec (or delete the stamp)
# to rebuild. Override the interpreter with MOLSETS_PYTHON=/path/to/python3.11.
#
# Why the pins (molsets itself pins pomegranate==0.12 and old stacks; we install
# molsets and fcd_torch with --no-deps and only what `import moses` and
# `moses.get_all_metrics` need):
#   * pandas==1.5.3: moses/metrics/utils.py calls DataFrame.append at import
#     time, which pandas 2.0 removed, so 1.5.3 (the last 1.x) is the newest that
#     works.
#   * numpy==1.26.4: pandas 1.5.3 is built against the numpy 1.x ABI and does not
#     load with numpy 2; molsets/fcd_torch also use np.NaN and np.row_stack
#     (removed/deprecated in numpy 2). 1.26.4 is the last 1.x.
#   * scipy==1.17.1, rdkit==2026.9.1, matplotlib==3.11.2: the same versions as
#     molgen's own .venv, so RDKit parsing/canonicalisation is identical on both
#     sides. matplotlib is needed only because moses/utils.py imports pyplot.
#   * not installed: pomegranate (only moses.baselines.hmm imports it, and
#     `import moses` does not import moses.baselines), seaborn and tqdm (not
#     used on the metrics path).
#   * torch==2.13.0 first, so pip takes the local CPU wheel instead of pulling
#     the CUDA build.
# Compatibility shim: RDKit dropped its `rdkit.six` module, but the SA scorer
# bundled with molsets does `from rdkit.six import iteritems`. We add a tiny
# rdkit/six.py (iteritems/iterkeys/itervalues) inside THIS venv's rdkit package
# only; nothing else is changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOLSETS_VENV:-$ROOT/benchmarks/out/molsets-venv}"
STAMP="$VENV/.molsets-ready"
PY="${MOLSETS_PYTHON:-}"
if [ -z "$PY" ]; then
    if command -v python3.11 >/dev/null 2>&1; then PY=python3.11; else PY=python3; fi
fi

TORCH_SPEC="torch==2.13.0"
DEPS_SPEC="numpy==1.26.4 pandas==1.5.3 scipy==1.17.1 rdkit==2026.9.1 matplotlib==3.11.2"
REF_SPEC="molsets==0.3.1 fcd_torch==1.0.7"
SHIM_VERSION="rdkit-six-1"
SPEC="$TORCH_SPEC | $DEPS_SPEC | $REF_SPEC | $SHIM_VERSION"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SPEC" ] && [ -x "$VENV/bin/python" ]; then
    echo "molsets env ready: $VENV"
    exit 0
fi

echo "building molsets env in $VENV with $($PY --version 2>&1)"
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install -q --disable-pip-version-check)

"${PIP[@]}" $TORCH_SPEC
# One resolver call so matplotlib's and scipy's own requirements respect the
# numpy pin.
"${PIP[@]}" $DEPS_SPEC
"${PIP[@]}" --no-deps $REF_SPEC

# The rdkit.six shim (see the header).
if ! "$VPY" -c "import rdkit.six" >/dev/null 2>&1; then
    RDKIT_DIR="$("$VPY" -c 'import os, rdkit; print(os.path.dirname(rdkit.__file__))')"
    cat > "$RDKIT_DIR/six.py" <<'EOF'
"""Minimal stand-in for the removed rdkit.six, written by molgen's
benchmarks/molsets_env.sh into the molsets reference venv only (molsets'
bundled SA scorer imports iteritems from here)."""


def iteritems(d, **kw):
    return iter(d.items(**kw))


def iterkeys(d, **kw):
    return iter(d.keys(**kw))


def itervalues(d, **kw):
    return iter(d.values(**kw))
EOF
fi

# Smoke test: the import path the runner uses, and the CPU torch build.
"$VPY" - <<'EOF'
import torch, numpy, pandas, rdkit
import moses
from moses.metrics import get_all_metrics, compute_intermediate_statistics  # noqa: F401
from moses.metrics.SA_Score import sascorer  # noqa: F401  (needs the rdkit.six shim)
import fcd_torch
assert "+cpu" in torch.__version__ or not torch.cuda.is_available(), torch.__version__
print("molsets", moses.__version__, "| torch", torch.__version__, "| numpy", numpy.__version__,
      "| pandas", pandas.__version__, "| rdkit", rdkit.__version__)
EOF

echo "$SPEC" > "$STAMP"
echo "molsets env ready: $VENV"
