#!/usr/bin/env bash
# Fuzzing the parsers with libFuzzer (clang, ASan + UBSan; Debian's clang package).
#
#   scripts/fuzz.sh --list                  the targets, one per line
#   scripts/fuzz.sh TARGET SECONDS          builds build/fuzz (cmake --preset fuzz) and fuzzes TARGET for SECONDS;
#                                           the corpus grows in build/fuzz/corpus/TARGET (seeded below), crashes
#                                           land in build/fuzz/crashes/TARGET
#   scripts/fuzz.sh --smoke SECONDS         every target for SECONDS (CI)
#   scripts/fuzz.sh --replay BINDIR TARGET  runs the seeds and fuzz/regressions/TARGET once through
#                                           BINDIR/ixc_fuzz_TARGET (an ordinary build's replay binary; ctest)
#
# A crash found becomes a regression input: copy the crash file to fuzz/regressions/TARGET/ (every test run
# replays it) and fix the parser. Exit status: 0 clean, 1 a crash or a failed run, 2 usage.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
golden="${IXC_GOLDEN_DIR:-$root/../shared/golden}"

targets=(safetensors gguf pytorch_bin shard_index config image video tokenizer history chat_request)

# Seed inputs per target: files and folders (missing ones, e.g. without the golden set, are skipped).
seeds() {
  case "$1" in
    safetensors) echo "$root/tests/fixtures/io/awq_small.safetensors $root/tests/fixtures/io/small_sd_expected.safetensors $golden/golden/text_only.safetensors" ;;
    gguf) echo "$root/fuzz/seeds/gguf" ;;
    pytorch_bin) echo "$root/tests/fixtures/io/small_sd.bin $root/tests/fixtures/io/small_sd_deflated.bin $root/tests/fixtures/io/small_sd_p4.bin $root/tests/fixtures/io/small_sd_unaligned.bin $root/tests/fixtures/io/legacy.bin $root/tests/fixtures/io/nested.bin $root/tests/fixtures/io/evil.bin $root/tests/fixtures/io/sharded/pytorch_model-00001-of-00002.bin" ;;
    shard_index) echo "$root/tests/fixtures/io/sharded/pytorch_model.bin.index.json" ;;
    config) echo "$root/fuzz/seeds/config" ;;
    image) echo "$root/tests/fixtures/media/decode $golden/images/synth0.png" ;;
    video) echo "$root/fuzz/seeds/video" ;;
    tokenizer) echo "$root/fuzz/seeds/tokenizer" ;;
    history) echo "$root/fuzz/seeds/history" ;;
    chat_request) echo "$root/fuzz/seeds/chat_request" ;;
    *) return 1 ;;
  esac
}

existing() { for p in "$@"; do [[ -e "$p" ]] && echo "$p"; done; return 0; }

known() {
  local t
  for t in "${targets[@]}"; do [[ "$t" == "$1" ]] && return 0; done
  echo "fuzz.sh: unknown target '$1' (--list names them)" >&2
  exit 2
}

build() {
  if ! command -v clang++ >/dev/null; then
    echo "fuzz.sh: clang++ not found (Debian: apt install clang)" >&2
    exit 1
  fi
  [[ -f "$root/build/fuzz/build.ninja" ]] || cmake --preset fuzz -S "$root" >/dev/null
  local t names=()
  for t in "$@"; do names+=("ixc_fuzz_$t"); done
  cmake --build "$root/build/fuzz" --target "${names[@]}"
}

# fuzz TARGET SECONDS: libFuzzer over a corpus seeded with the seeds and the regression inputs.
fuzz() {
  local t="$1" secs="$2"
  local corpus="$root/build/fuzz/corpus/$t" crashes="$root/build/fuzz/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  # shellcheck disable=SC2046
  local dirs=($(existing $(seeds "$t") "$root/fuzz/regressions/$t"))
  for d in "${dirs[@]}"; do
    if [[ -d "$d" ]]; then cp -n "$d"/* "$corpus"/ 2>/dev/null || true; else cp -n "$d" "$corpus"/; fi
  done
  echo "== $t: ${secs}s"
  local marker="$crashes/.started" extra=()
  touch "$marker"
  # The video target runs each input in a forked child and goes on after a crash: FFmpeg's own decoders crash on
  # some inputs (LoadVideo isolates them, tests/fixtures/video/ffv1_crashes_libavcodec.mkv); the crash files are
  # still written and reported below, to be looked at.
  [[ "$t" == video ]] && extra=(-fork=1 -ignore_crashes=1)
  # 2 GB RSS and 10 s per input: an input past either is a finding (memory bomb, hang), not an environment problem.
  IXC_GOLDEN_DIR="$golden" "$root/build/fuzz/fuzz/ixc_fuzz_$t" "$corpus" -max_total_time="$secs" -rss_limit_mb=2048 \
    -timeout=10 -max_len=1048576 -artifact_prefix="$crashes/" -print_final_stats=1 "${extra[@]}" 2>&1 |
    grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|ERROR|SUMMARY|Test unit written|crash-|timeout-|oom-|INFO: fuzzed for" || true
  local found
  found=$(find "$crashes" -type f -newer "$marker" ! -name .started | wc -l)
  if ((found > 0)); then
    echo "fuzz.sh: $t wrote $found new input(s) to $crashes" >&2
    return 1
  fi
}

case "${1:-}" in
  --list)
    printf '%s\n' "${targets[@]}"
    ;;
  --smoke)
    [[ $# -eq 2 ]] || { echo "usage: fuzz.sh --smoke SECONDS" >&2; exit 2; }
    build "${targets[@]}"
    status=0
    for t in "${targets[@]}"; do fuzz "$t" "$2" || status=1; done
    exit $status
    ;;
  --replay)
    [[ $# -eq 3 ]] || { echo "usage: fuzz.sh --replay BINDIR TARGET" >&2; exit 2; }
    known "$3"
    # shellcheck disable=SC2046
    inputs=($(existing $(seeds "$3")))
    if [[ -d "$root/fuzz/regressions/$3" ]] && compgen -G "$root/fuzz/regressions/$3/*" >/dev/null; then
      inputs+=("$root/fuzz/regressions/$3")
    fi
    if [[ ${#inputs[@]} -eq 0 ]]; then
      echo "fuzz.sh: no inputs for $3 here (the golden set is missing?)"
      exit 77
    fi
    if [[ ( "$3" == tokenizer || "$3" == history ) && ! -f "$golden/model/tokenizer.model" ]]; then
      echo "fuzz.sh: the $3 target needs the golden set's model (IXC_GOLDEN_DIR)"
      exit 77
    fi
    IXC_GOLDEN_DIR="$golden" "$2/ixc_fuzz_$3" "${inputs[@]}"
    ;;
  ""|-h|--help)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    [[ $# -ge 1 ]] || exit 2
    ;;
  *)
    [[ $# -eq 2 ]] || { echo "usage: fuzz.sh TARGET SECONDS (or --list, --smoke SECONDS)" >&2; exit 2; }
    known "$1"
    [[ "$2" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number" >&2; exit 2; }
    build "$1"
    fuzz "$1" "$2"
    ;;
esac
