#!/usr/bin/env bash
# Source this on the GPU machine from the repo root: installs the carried wheels (.whl: pyro-ppl,
# pyro-api, motmetrics, xmltodict, mlxtend; the machine has torch but no package index) and sets
# the paths. W is the work folder (runs, dataset cache, logs).
export W=${W:-/root/s7}
mkdir -p "$W"
export PYRO_SCALOR_CACHE=$W/cache PYTHONUNBUFFERED=1
if [ ! -d /tmp/site/pyro ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || return 1
fi
export PYTHONPATH=/tmp/site:$PWD
