#!/usr/bin/env bash
# The load test through nginx over two replicas, as deploy/nginx-ixc.conf sets them up, on loopback ports of this
# machine, run as the current user (nginx gets its own prefix in a temporary folder).
#
#   deploy/test_nginx.sh [BUILD_DIR] [MODEL]     (defaults: build/release, ../shared/golden/model)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build/release}
MODEL=${2:-../shared/golden/model}
NGINX=${NGINX:-/usr/sbin/nginx}
[[ -x $NGINX ]] || { echo "skipped: $NGINX not found (IXC_WITH_SERVER_TESTS=1 scripts/setup.sh installs nginx)"; exit 77; }
command -v curl >/dev/null || { echo "skipped: curl is not installed"; exit 77; }
[[ -e $MODEL ]] || { echo "skipped: no model at $MODEL"; exit 77; }
PORT_A=${PORT_A:-18181} PORT_B=${PORT_B:-18182} PORT_LB=${PORT_LB:-18180}

dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  [[ -f $dir/nginx.pid ]] && kill -QUIT "$(cat "$dir/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

for port in $PORT_A $PORT_B; do
  "$BUILD/ixc" serve -m "$MODEL" --port "$port" --parallel 2 -t 1 --queue 32 2>"$dir/ixc-$port.log" &
  pids+=($!)
done

# The shipped configuration with this test's ports, inside a minimal main configuration.
mkdir -p "$dir/logs" "$dir/tmp"
sed -e "s/127.0.0.1:8081/127.0.0.1:$PORT_A/; s/127.0.0.1:8082/127.0.0.1:$PORT_B/; s/listen 8080;/listen 127.0.0.1:$PORT_LB;/" \
  deploy/nginx-ixc.conf > "$dir/ixc.conf"
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  include $dir/ixc.conf;
}
CONF
"$NGINX" -p "$dir" -c "$dir/nginx.conf"

# Wait for the replicas and the balancer.
for port in $PORT_A $PORT_B $PORT_LB; do
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.1
  done
done

"$BUILD/ixc_load" --port "$PORT_LB" --clients 16 --requests "${REQUESTS:-1000}" --max-tokens 6 --hd-num 1 \
  --image "${MODEL%/model}/images/synth0.png" --image "${MODEL%/model}/images/synth1.png"
status=$?
# Both replicas took part.
for port in $PORT_A $PORT_B; do
  n=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^ixc_requests_total\{status="200"\}/ {print $2}')
  echo "replica :$port answered ${n:-0} requests"
  [[ ${n:-0} -gt 0 ]] || status=1
done
exit $status
