# Source from the repo root on the GPU machine: makes the repository importable as `splatgen` and the
# machine ready to train, once per machine. Every step checks what the machine already has (a warm
# machine keeps /tmp between calls) and says what it found, so a later call of the same machine
# starts training within seconds:
#   1. wheels: the carried .whl/ (../shared/tools/device-wheels.sh) into /tmp/site, unless the same
#      set is installed already;
#   2. gsplat's CUDA extension: in place already, or copied from the carried .devcache/gsplat_csrc.so
#      when it was built for this torch / gsplat / GPU, else built (over a minute; scripts/device/build_gsplat.py)
#      and also written to $OUT/gsplat_csrc.so, to be kept under .devcache/ and carried next time;
#   3. data shards: every carried .devdata/NAME/ folder is moved into /tmp/splatgen-data/NAME/ (a
#      dataset too large for one call travels as shards over consecutive calls; train on the cache).
# Afterwards `splatgen ...` is the command line (python3 -m splatgen.core.cli).
_setup_t0=$(date +%s.%N)
_say() { echo "setup: $*"; }
export PYTHONPATH=/tmp/site:/tmp/ns
# decoded training views are kept here between the calls of one machine (load_view_bank)
export SPLATGEN_VIEW_CACHE=/tmp/splatgen-data/views
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
mkdir -p /tmp/ns/splatgen /tmp/site
for d in core app assets; do ln -sfn "$PWD/$d" "/tmp/ns/splatgen/$d"; done
splatgen() { python3 -m splatgen.core.cli "$@"; }
# `splatgen bench` finds the benchmarks defined outside core (the app's viewport) through entry points;
# the repository is not pip-installed here, so a minimal dist-info records pyproject.toml's.
python3 - <<'PY' || _say "entry points: not recorded (bench viewport will be missing)" >&2
import pathlib, tomllib
project = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]
info = pathlib.Path(f"/tmp/ns/splatgen-{project['version']}.dist-info")
info.mkdir(parents=True, exist_ok=True)
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: splatgen\nVersion: {project['version']}\n")
(info / "entry_points.txt").write_text("".join(
    f"[{group}]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
    for group, entries in project.get("entry-points", {}).items()))
PY

# 1. wheels
_wheels=$(ls -l .whl/*.whl 2>/dev/null | awk '{print $5, $NF}' | sha256sum | cut -c1-16)
if [ -f /tmp/site/.wheels ] && [ "$(cat /tmp/site/.wheels)" = "$_wheels" ]; then
  _say "wheels: installed already ($(ls .whl/*.whl | wc -l) files)"
elif ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    2>&1 | grep -v -e "^WARNING: Target directory" -e "already exists" || true
  echo "$_wheels" > /tmp/site/.wheels
  _say "wheels: installed $(ls .whl/*.whl | wc -l) files"
elif [ -f /tmp/site/.wheels ]; then
  _say "wheels: installed by an earlier call of this machine (none carried this time)"
else
  _say "wheels: none carried (.whl/ is empty); gsplat and diffusers will be missing" >&2
fi

# 2. gsplat's CUDA extension
if [ -d /tmp/site/gsplat ]; then
  if [ -f /tmp/site/gsplat/csrc.so ]; then
    _say "gsplat extension: in place"
  else
    _stamp=$(python3 scripts/device/build_gsplat.py --stamp 2>/dev/null)
    if [ -f .devcache/gsplat_csrc.so ] && [ "$(cat .devcache/gsplat_csrc.json 2>/dev/null)" = "$_stamp" ]; then
      cp .devcache/gsplat_csrc.so /tmp/site/gsplat/csrc.so
      _say "gsplat extension: copied the carried build ($_stamp)"
    else
      _say "gsplat extension: building ($_stamp; no matching .devcache/gsplat_csrc.so)"
      python3 scripts/device/build_gsplat.py /tmp/site "${OUT:-/tmp/out}/gsplat_csrc.so" || _say "gsplat build FAILED" >&2
    fi
  fi
fi

# 3. data shards
if [ -d .devdata ]; then
  for _d in .devdata/*/; do
    [ -d "$_d" ] || continue
    _name=$(basename "$_d"); mkdir -p "/tmp/splatgen-data/$_name"
    _n=$(find "$_d" -type f | wc -l)
    cp -r "$_d". "/tmp/splatgen-data/$_name/" && _say "data: $_n files of $_name moved into /tmp/splatgen-data/$_name"
  done
fi
for _d in /tmp/splatgen-data/*/; do
  [ -f "$_d/index.json" ] && _say "data cache: $(basename "$_d") ($(du -sh "$_d" | cut -f1))"
done

# OpenGL on the GPU machine (bench viewport's upload-and-draw path, the gl backend): the image lacks
# the GLVND loader libraries; carry `.gl/` with Debian's libglvnd0 libegl1 libgl1 libglx0 libopengl0
# libgles2 .debs (apt-get download …) and they are unpacked here; the NVIDIA driver's EGL vendor
# library then gives moderngl a GPU context.
if ls .gl/*.deb >/dev/null 2>&1 && [ ! -e /tmp/gl/usr/lib/x86_64-linux-gnu/libGL.so ]; then
  for deb in .gl/*.deb; do dpkg -x "$deb" /tmp/gl; done
  # glcontext opens the unversioned names (libGL.so, libEGL.so), which only the -dev packages ship
  for lib in libGL libEGL; do ln -sfn "$lib.so.1" "/tmp/gl/usr/lib/x86_64-linux-gnu/$lib.so"; done
fi
[ -d /tmp/gl ] && export LD_LIBRARY_PATH=/tmp/gl/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
_say "ready in $(awk "BEGIN {printf \"%.1f\", $(date +%s.%N) - $_setup_t0}") s"
