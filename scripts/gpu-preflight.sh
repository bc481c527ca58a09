#!/usr/bin/env bash
# Preflight for burn-cuda 0.21 on a borrowed GPU machine (see docs/gpu.md): finds or
# assembles the CUDA headers cubecl compiles kernels against (CUDA_PATH), puts the
# matching NVRTC on LD_LIBRARY_PATH, and refuses what cannot work: no headers, no NVRTC,
# an NVRTC newer than the driver (every kernel load would fail with
# CUDA_ERROR_UNSUPPORTED_PTX_VERSION), no libnvidia-ptxjitcompiler.
#
#   source scripts/gpu-preflight.sh && gpu_preflight        # exports CUDA_PATH, LD_LIBRARY_PATH
#   bash scripts/gpu-preflight.sh --discover-only            # prints what it would use
#
# Where it looks, in order (cubecl reads only $CUDA_PATH/include and $CUDA_PATH/include/cccl):
#   1. $CUDA_PATH, then toolkit folders (/usr/local/cuda, /opt/cuda, /usr/local/cuda-*,
#      /usr when /usr/bin/nvcc exists);
#   2. PyTorch's pip wheels: nvidia/cu13 (CUDA 13: one tree; crt/ may live in its own wheel
#      and is merged in when found), or the split CUDA 12 wheels (nvidia/cuda_runtime,
#      nvidia/cuda_nvcc for crt/, nvidia/cuda_cccl), merged into one include/ by symlinks;
#   3. NVRTC >= 13.3's bundled headers (nvrtcInstallBundledHeaders), as a last resort.
# Test hooks (crates/cli/tests/cli/gpu_kit.rs): GPU_PREFLIGHT_TOOLKIT_DIRS and
# GPU_PREFLIGHT_SITE_PACKAGES (colon-separated) replace the search roots,
# GPU_PREFLIGHT_WORK is where merged trees go, GPU_PREFLIGHT_NVRTC_VERSION and
# GPU_PREFLIGHT_DRIVER_VERSION replace the measured versions (major.minor).

_pf_log() { echo "preflight: $*" >&2; }

_pf_has_headers() { [ -f "$1/include/cuda_runtime.h" ] && [ -f "$1/include/crt/host_config.h" ]; }

_pf_toolkit_dirs() {
  if [ -n "${GPU_PREFLIGHT_TOOLKIT_DIRS+x}" ]; then
    tr ':' '\n' <<<"$GPU_PREFLIGHT_TOOLKIT_DIRS"
    return
  fi
  echo /usr/local/cuda
  echo /opt/cuda
  ls -d /usr/local/cuda-* 2>/dev/null | sort -V -r
  [ -x /usr/bin/nvcc ] && echo /usr
}

_pf_site_packages() {
  if [ -n "${GPU_PREFLIGHT_SITE_PACKAGES+x}" ]; then
    tr ':' '\n' <<<"$GPU_PREFLIGHT_SITE_PACKAGES"
    return
  fi
  python3 - 2>/dev/null <<'PY'
import site, sys
dirs = list(site.getsitepackages()) + [site.getusersitepackages()]
try:
    import torch, os
    dirs.insert(0, os.path.dirname(os.path.dirname(torch.__file__)))
except Exception:
    pass
seen = set()
for d in dirs:
    if d not in seen:
        seen.add(d)
        print(d)
PY
}

# Symlinks every entry of each source include folder into $1/include (first one wins).
_pf_merge() {
  local dst="$1"; shift
  mkdir -p "$dst/include" "$dst/lib"
  local src e
  for src in "$@"; do
    [ -d "$src" ] || continue
    for e in "$src"/*; do
      [ -e "$e" ] || continue
      [ -e "$dst/include/$(basename "$e")" ] || ln -s "$e" "$dst/include/$(basename "$e")"
    done
  done
}

# Prints "CUDA_PATH<TAB>SOURCE" for the first usable header tree, or fails.
gpu_find_cuda_path() {
  local work="${GPU_PREFLIGHT_WORK:-${OUT:-/tmp}/cuda-merged}"
  if [ -n "${CUDA_PATH:-}" ] && _pf_has_headers "$CUDA_PATH"; then
    printf '%s\t%s\n' "$CUDA_PATH" "CUDA_PATH"; return 0
  fi
  local d
  while read -r d; do
    [ -n "$d" ] && _pf_has_headers "$d" && { printf '%s\t%s\n' "$d" "toolkit"; return 0; }
  done < <(_pf_toolkit_dirs)
  local sp
  while read -r sp; do
    [ -n "$sp" ] && [ -d "$sp/nvidia" ] || continue
    if [ -f "$sp/nvidia/cu13/include/cuda_runtime.h" ]; then
      if _pf_has_headers "$sp/nvidia/cu13"; then
        printf '%s\t%s\n' "$sp/nvidia/cu13" "pip-cu13"; return 0
      fi
      # CUDA 13 split crt/ into its own wheel: merge the trees when it is there.
      local crt
      crt=$(ls -d "$sp"/nvidia/*/include/crt 2>/dev/null | head -1)
      if [ -n "$crt" ]; then
        rm -rf "$work"; _pf_merge "$work" "$sp/nvidia/cu13/include" "$(dirname "$crt")"
        ln -s "$sp/nvidia/cu13/lib" "$work/lib64" 2>/dev/null
        printf '%s\t%s\n' "$work" "pip-cu13-merged"; return 0
      fi
    fi
    if [ -f "$sp/nvidia/cuda_runtime/include/cuda_runtime.h" ] \
       && [ -f "$sp/nvidia/cuda_nvcc/include/crt/host_config.h" ]; then
      rm -rf "$work"
      _pf_merge "$work" "$sp/nvidia/cuda_runtime/include" "$sp/nvidia/cuda_nvcc/include" \
        "$sp/nvidia/cuda_nvrtc/include"
      # cubecl adds $CUDA_PATH/include/cccl to the include path: CCCL goes there whole.
      [ -d "$sp/nvidia/cuda_cccl/include" ] && ln -s "$sp/nvidia/cuda_cccl/include" "$work/include/cccl"
      printf '%s\t%s\n' "$work" "pip-cu12-merged"; return 0
    fi
  done < <(_pf_site_packages)
  return 1
}

# Prints the NVRTC library to use (next to the headers first, then the wheels), or fails.
gpu_find_nvrtc() {
  local cuda="$1" f d
  for d in "$cuda/lib64" "$cuda/lib" "$cuda/../lib"; do
    f=$(ls "$d"/libnvrtc.so.[0-9]* 2>/dev/null | grep -v builtins | sort -V -r | head -1)
    [ -n "$f" ] && { echo "$f"; return 0; }
  done
  local sp
  while read -r sp; do
    [ -n "$sp" ] || continue
    for d in "$sp/nvidia/cu13/lib" "$sp/nvidia/cuda_nvrtc/lib"; do
      f=$(ls "$d"/libnvrtc.so.[0-9]* 2>/dev/null | grep -v builtins | sort -V -r | head -1)
      [ -n "$f" ] && { echo "$f"; return 0; }
    done
  done < <(_pf_site_packages)
  f=$(ldconfig -p 2>/dev/null | awk '/libnvrtc\.so\.[0-9]+ /{print $NF}' | sort -V -r | head -1)
  [ -n "$f" ] && { echo "$f"; return 0; }
  return 1
}

# NVRTC's version (major.minor) from the library itself.
gpu_nvrtc_version() {
  [ -n "${GPU_PREFLIGHT_NVRTC_VERSION:-}" ] && { echo "$GPU_PREFLIGHT_NVRTC_VERSION"; return; }
  python3 - "$1" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
a, b = ctypes.c_int(), ctypes.c_int()
lib.nvrtcVersion(ctypes.byref(a), ctypes.byref(b))
print(f"{a.value}.{b.value}")
PY
}

# The CUDA version the driver supports (major.minor), from libcuda itself.
gpu_driver_version() {
  [ -n "${GPU_PREFLIGHT_DRIVER_VERSION:-}" ] && { echo "$GPU_PREFLIGHT_DRIVER_VERSION"; return; }
  python3 - <<'PY'
import ctypes
lib = ctypes.CDLL("libcuda.so.1")
v = ctypes.c_int()
lib.cuDriverGetVersion(ctypes.byref(v))
print(f"{v.value // 1000}.{(v.value % 1000) // 10}")
PY
}

# True when version $1 (major.minor) is newer than $2.
gpu_version_newer() {
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" = "$1" ]
}

# Last resort: NVRTC >= 13.3 unpacks its own headers.
_pf_bundled_headers() {
  local nvrtc="$1" dst="$2"
  python3 - "$nvrtc" "$dst" <<'PY' 2>/dev/null
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
err = ctypes.c_char_p()
rc = lib.nvrtcInstallBundledHeaders(sys.argv[2].encode(), 0, ctypes.byref(err))
sys.exit(0 if rc == 0 else 1)
PY
}

gpu_preflight() {
  local found cuda source nvrtc nv drv
  nvrtc=""
  if found=$(gpu_find_cuda_path); then
    cuda=${found%%$'\t'*}; source=${found#*$'\t'}
  else
    cuda=""; source=""
  fi
  nvrtc=$(gpu_find_nvrtc "${cuda:-/nonexistent}") || { _pf_log "no libnvrtc found (toolkit, pip nvidia wheels, ld.so cache)"; return 2; }
  if [ -z "$cuda" ]; then
    local dst="${GPU_PREFLIGHT_WORK:-${OUT:-/tmp}/cuda-bundled}"
    if _pf_bundled_headers "$nvrtc" "$dst/include" && _pf_has_headers "$dst"; then
      cuda="$dst"; source="nvrtc-bundled"
    else
      _pf_log "no CUDA headers: no toolkit, no usable pip wheels, and NVRTC cannot install its bundled headers"
      return 2
    fi
  fi
  export CUDA_PATH="$cuda"
  export LD_LIBRARY_PATH="$(dirname "$nvrtc")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  nv=$(gpu_nvrtc_version "$nvrtc") || { _pf_log "cannot read NVRTC's version from $nvrtc"; return 2; }
  drv=$(gpu_driver_version) || { _pf_log "cannot read the driver's CUDA version (libcuda.so.1)"; return 2; }
  _pf_log "CUDA_PATH=$CUDA_PATH ($source); NVRTC $nv ($nvrtc); driver supports CUDA $drv"
  if gpu_version_newer "$nv" "$drv"; then
    _pf_log "NVRTC $nv is newer than the driver's CUDA $drv: every kernel would fail to load; use an NVRTC <= $drv"
    return 3
  fi
  # The driver JITs cubecl's PTX with libnvidia-ptxjitcompiler, which sits beside libcuda.
  # Where neither ldconfig nor the usual folders show it, say so and go on: libcuda may
  # still find it (seen on a borrowed H200 with the driver in a read-only /usr/local/nvidia
  # mount), and the smoke test that follows shows whether kernels load.
  if [ -z "${GPU_PREFLIGHT_SKIP_PTXJIT:-}" ] && ! ldconfig -p 2>/dev/null | grep -q libnvidia-ptxjitcompiler; then
    local libcuda found_jit
    libcuda=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')
    found_jit=$(ls "${libcuda%/*}"/libnvidia-ptxjitcompiler.so* /usr/local/nvidia/lib64/libnvidia-ptxjitcompiler.so* \
      /usr/local/nvidia/lib/libnvidia-ptxjitcompiler.so* /usr/lib/x86_64-linux-gnu/libnvidia-ptxjitcompiler.so* \
      /usr/lib64/libnvidia-ptxjitcompiler.so* 2>/dev/null | head -1)
    if [ -n "$found_jit" ]; then
      export LD_LIBRARY_PATH="${found_jit%/*}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      _pf_log "libnvidia-ptxjitcompiler: $found_jit (not in ldconfig; its folder is on LD_LIBRARY_PATH)"
    else
      _pf_log "warning: libnvidia-ptxjitcompiler not found (ldconfig, beside libcuda ${libcuda:-?}, /usr/local/nvidia/lib*, /usr/lib*); going on, the smoke test will show whether kernels load"
    fi
  fi
  echo "{\"cuda_path\": \"$CUDA_PATH\", \"source\": \"$source\", \"nvrtc\": \"$nvrtc\", \"nvrtc_version\": \"$nv\", \"driver_cuda_version\": \"$drv\"}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    --discover-only)
      found=$(gpu_find_cuda_path) || { echo "none"; exit 2; }
      cuda=${found%%$'\t'*}
      nvrtc=$(gpu_find_nvrtc "$cuda") || nvrtc="none"
      printf 'CUDA_PATH=%s\nSOURCE=%s\nNVRTC=%s\n' "$cuda" "${found#*$'\t'}" "$nvrtc"
      ;;
    *) gpu_preflight ;;
  esac
fi
