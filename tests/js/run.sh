#!/usr/bin/env bash
# ixc serve under the official openai npm client and headless Chromium. Skips (exit 77) unless `npm ci` has been
# run here (scripts/setup.sh does it with IXC_WITH_SERVER_TESTS=1) and Chromium is installed.
#
#   tests/js/run.sh BUILD_DIR MODEL IMAGE [SCREENSHOT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BUILD=$1 MODEL=$2 IMAGE=$3 SHOT=${4:-}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
command -v node >/dev/null || { echo "skipped: node is not installed (IXC_WITH_SERVER_TESTS=1 scripts/setup.sh)"; exit 77; }
[[ -d $here/node_modules/openai && -d $here/node_modules/playwright-core ]] ||
  { echo "skipped: run 'npm ci' in tests/js (IXC_WITH_SERVER_TESTS=1 scripts/setup.sh)"; exit 77; }
[[ -e $MODEL ]] || { echo "skipped: no model at $MODEL"; exit 77; }

dir=$(mktemp -d)
"$BUILD/ixc" serve -m "$MODEL" --port 0 -t 2 2>"$dir/serve.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
url=""
for _ in $(seq 200); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*' "$dir/serve.log" || true)
  [[ -n $url ]] && break
  sleep 0.05
done
[[ -n $url ]] || { echo "the server did not start:"; cat "$dir/serve.log"; exit 1; }

node "$here/openai_client.mjs" "$url" "$IMAGE"
if [[ -x $CHROMIUM ]]; then
  node "$here/web_ui.mjs" "$url" "$IMAGE" "${SHOT:-$dir/screenshot.png}" "$CHROMIUM"
else
  echo "skipped the browser test: no Chromium at $CHROMIUM (apt-get install chromium)"
  exit 77
fi
