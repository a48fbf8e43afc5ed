#!/usr/bin/env bash
# Installs every build and test dependency of ixc.cpp from Debian packages. Idempotent: packages that are
# already present are skipped, so a warm machine pays only a dpkg query.
set -euo pipefail

# Build and run-time libraries (why each: see DEVELOPERS.md "Dependencies").
BUILD_PKGS=(
  build-essential cmake ninja-build pkg-config
  libsentencepiece-dev          # the real InternLM2 tokenizer.model, read by the reference library
  nlohmann-json3-dev            # config.json, index files, cases.json, --json output, the server's API
  libcpp-httplib-dev            # ixc serve's HTTP server (and the tests' client)
  libgtest-dev libgmock-dev     # unit and golden tests under CTest
  libbenchmark-dev              # kernel micro-benchmarks (bench/)
  libjpeg62-turbo-dev libpng-dev libwebp-dev libgif-dev   # image decoding (Pillow uses the same libraries)
  libavformat-dev libavcodec-dev libswscale-dev libavutil-dev  # video decoding
  libfreetype-dev fonts-wqy-zenhei  # video frame labels
  ffmpeg                        # video tests generate their input files with the ffmpeg command
  zlib1g-dev                    # deflate-compressed members of PyTorch .bin archives
)
# Fixture scripts (IXC_WITH_FIXTURE_TOOLS=1). Tests read committed fixtures; the few that re-save the golden
# checkpoint with torch (.bin, AWQ) skip with a message when these are absent.
FIXTURE_PKGS=(python3-numpy python3-pil python3-torch python3-sentencepiece ffmpeg)

# Server tests that drive ixc serve from outside (IXC_WITH_SERVER_TESTS=1): the openai npm client and Chromium
# (tests/js, npm packages pinned in package-lock.json), nginx over two replicas (deploy/test_nginx.sh). Without
# them those two tests skip.
SERVER_TEST_PKGS=(chromium nginx curl)

# Fuzzing (IXC_WITH_FUZZ=1; scripts/fuzz.sh): clang and its libFuzzer runtime. .ci/run uses it for the smoke run.
FUZZ_PKGS=(clang libclang-rt-14-dev)

want=("${BUILD_PKGS[@]}")
if [[ "${IXC_WITH_FUZZ:-0}" == 1 ]]; then want+=("${FUZZ_PKGS[@]}"); fi
if [[ "${IXC_WITH_FIXTURE_TOOLS:-0}" == 1 ]]; then want+=("${FIXTURE_PKGS[@]}"); fi
if [[ "${IXC_WITH_SERVER_TESTS:-0}" == 1 ]]; then
  want+=("${SERVER_TEST_PKGS[@]}")
  command -v npm >/dev/null || want+=(nodejs npm)  # a Node.js installed another way is fine too
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ "${IXC_WITH_SERVER_TESTS:-0}" == 1 && ! -d "$(dirname "$0")/../tests/js/node_modules" ]]; then
  (cd "$(dirname "$0")/../tests/js" && npm ci --no-audit --no-fund >/dev/null)
fi
