# Source from the repo root on the GPU machine: installs the carried wheels (.whl/) and makes the
# repository importable as `splatgen` without building it (the image has torch; see DESIGN of the
# device tool). Afterwards `python3 -m splatgen.core.cli ...` is the `splatgen` command.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
mkdir -p /tmp/ns/splatgen
for d in core app assets; do ln -sfn "$PWD/$d" "/tmp/ns/splatgen/$d"; done
export PYTHONPATH=/tmp/site:/tmp/ns
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
splatgen() { python3 -m splatgen.core.cli "$@"; }
# OpenGL on the GPU machine (bench viewport's upload-and-draw path, the gl backend): the image lacks
# the GLVND loader libraries; carry `.gl/` with Debian's libglvnd0 libegl1 libgl1 libglx0 libopengl0
# libgles2 .debs (apt-get download …) and they are unpacked here; the NVIDIA driver's EGL vendor
# library then gives moderngl a GPU context. Without `.gl/`, bench viewport times gsplat and the
# readback only (its rows say so).
if ls .gl/*.deb >/dev/null 2>&1; then
  for deb in .gl/*.deb; do dpkg -x "$deb" /tmp/gl; done
  # glcontext opens the unversioned names (libGL.so, libEGL.so), which only the -dev packages ship
  for lib in libGL libEGL; do ln -sfn "$lib.so.1" "/tmp/gl/usr/lib/x86_64-linux-gnu/$lib.so"; done
  export LD_LIBRARY_PATH=/tmp/gl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
