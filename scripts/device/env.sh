# Source from the repo root on the GPU machine: installs the carried wheels (.whl/) and makes the
# repository importable as `splatgen` without building it (the image has torch; see DESIGN of the
# device tool). Afterwards `python3 -m splatgen.core.cli ...` is the `splatgen` command.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
mkdir -p /tmp/ns/splatgen
for d in core app assets; do ln -sfn "$PWD/$d" "/tmp/ns/splatgen/$d"; done
export PYTHONPATH=/tmp/site:/tmp/ns
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
splatgen() { python3 -m splatgen.core.cli "$@"; }
