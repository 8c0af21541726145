#!/usr/bin/env bash
# A 3-node overlay-node mesh in network namespaces on this machine.
#
#   a, b, c  hosts on one switch (192.168.50.0/24), overlay 10.100.0.0/24
#   lan      a host on c's site LAN (192.168.60.0/24), advertised by c
#   ca1 ca2  containers on a (172.20.1.0/24), attached by overlay-node-cni
#   cb1 cb2  containers on b (172.20.2.0/24)
#   d        a host that joins the mesh by itself (--join), when etcd is installed
#
# With etcd installed (make deps), the mesh file is pushed to an etcd on a
# and the nodes run from it; otherwise they read the file. Shows pings
# across the mesh, to the site host and between containers on different
# hosts, service discovery (DNS names of nodes and services), a TCP transfer,
# what each node reports, metrics, ping and doctor, the verdicts of a
# segmentation rule set, and a host joining and leaving. Everything it
# creates is removed on exit, Ctrl-C or failure. Needs root, iproute2, ping,
# iperf3 and dig, and uses etcd if present (make deps).
set -euo pipefail

BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/bin/overlay-node}
CNI=${CNI:-$(dirname "$BIN")/overlay-node-cni}
P=ovd$$                      # prefix: unique per run so leftovers never clash
WORK=$(mktemp -d)
PIDS=()
CONTAINERS="ca1 ca2 cb1 cb2"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

cleanup() {
	set +e
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	# Anything else still running in our namespaces (iperf3 servers, say).
	for ns in a b c d lan sw $CONTAINERS; do
		pids=$(ip netns pids "$P-$ns" 2>/dev/null)
		[ -n "$pids" ] && kill $pids 2>/dev/null
	done
	for ns in a b c d lan sw $CONTAINERS; do ip netns del "$P-$ns" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || { echo "demo: needs root (network namespaces and TUN devices)" >&2; exit 1; }
for b in "$BIN" "$CNI"; do
	[ -x "$b" ] || { echo "demo: $b not found: run 'make build' first" >&2; exit 1; }
done
for tool in ip ping iperf3 dig; do
	command -v $tool >/dev/null || { echo "demo: $tool missing: run 'make deps'" >&2; exit 1; }
done

ETCD=$(command -v etcd || true)
ETCD_URL=http://192.168.50.1:2379

step "namespaces: a, b, c on a switch; lan behind c"
ip netns add "$P-sw"
ip -n "$P-sw" link add br0 type bridge
ip -n "$P-sw" link set br0 up
i=1
for n in a b c d; do
	ip netns add "$P-$n"
	ip -n "$P-$n" link set lo up
	ip link add "$P-$n" type veth peer name "$P-$n-sw"
	ip link set "$P-$n" netns "$P-$n"
	ip link set "$P-$n-sw" netns "$P-sw"
	ip -n "$P-sw" link set "$P-$n-sw" master br0 up
	ip -n "$P-$n" addr add 192.168.50.$i/24 dev "$P-$n"
	ip -n "$P-$n" link set "$P-$n" up
	i=$((i + 1))
done
ip netns add "$P-lan"
ip -n "$P-lan" link set lo up
ip link add "$P-lan" type veth peer name "$P-c-lan"
ip link set "$P-lan" netns "$P-lan"
ip link set "$P-c-lan" netns "$P-c"
ip -n "$P-lan" addr add 192.168.60.10/24 dev "$P-lan"
ip -n "$P-lan" link set "$P-lan" up
ip -n "$P-lan" route add default via 192.168.60.1
ip -n "$P-c" addr add 192.168.60.1/24 dev "$P-c-lan"
ip -n "$P-c" link set "$P-c-lan" up
in_ns c sysctl -qw net.ipv4.ip_forward=1

step "keys and one mesh.toml for all three"
umask 077
for n in a b c d; do
	"$BIN" genkey >"$WORK/$n.key"
	eval "PUB_$n=\$(\"$BIN\" pubkey <\"$WORK/$n.key\")"
done
cat >"$WORK/mesh.toml" <<TOML
[mesh]
name = "demo"
port = 51820
domain = "demo.internal"   # every node answers DNS for it on its overlay address
dns_upstream = []          # names outside the domain: refused (there is no Internet here)
pool = "10.100.0.128/25"   # addresses for hosts that join by themselves (up --join)

[[node]]
name = "a"
public_key = "$PUB_a"
address = "10.100.0.1/24"
endpoint = "192.168.50.1:51820"
containers = ["172.20.1.0/24"]  # handed to a's containers by overlay-node-cni

[[node]]
name = "b"
public_key = "$PUB_b"
address = "10.100.0.2/24"
endpoint = "192.168.50.2:51820"
containers = ["172.20.2.0/24"]

[[node]]
name = "c"
public_key = "$PUB_c"
address = "10.100.0.3/24"
endpoint = "192.168.50.3:51820"
subnets = ["192.168.60.0/24"]   # the site LAN behind c

[[service]]                # iperf.demo.internal and _iperf._tcp.demo.internal
name = "iperf"
nodes = ["b"]
port = 5201
protocol = "tcp"
TOML
cat "$WORK/mesh.toml"
"$BIN" check -c "$WORK/mesh.toml"

SOURCE=(-c "$WORK/mesh.toml")
if [ -n "$ETCD" ]; then
	step "the mesh in etcd: start etcd on a, push the file"
	in_ns a "$ETCD" --name demo --data-dir "$WORK/etcd" --log-level error \
		--listen-client-urls "$ETCD_URL" --advertise-client-urls "$ETCD_URL" \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster demo=http://127.0.0.1:2380 >"$WORK/etcd.log" 2>&1 &
	PIDS+=($!)
	for _ in $(seq 50); do
		in_ns a "$BIN" push -c "$WORK/mesh.toml" --etcd "$ETCD_URL" 2>/dev/null && break
		sleep 0.2
	done
fi

step "start overlay-node on a, b and c"
for n in a b c; do
	[ -n "$ETCD" ] && SOURCE=(--etcd "$ETCD_URL" --cache "$WORK/$n.cache")
	# Interface names differ only because all namespaces share one
	# /var/run/wireguard; on real hosts every node can use the default.
	# ip netns exec execs the daemon, so $! is the daemon's own PID.
	ip netns exec "$P-$n" "$BIN" up "${SOURCE[@]}" -k "$WORK/$n.key" --interface "ovl-$P-$n" \
		--metrics 127.0.0.1:9586 >"$WORK/$n.log" 2>&1 &
	PIDS+=($!)
done
for n in a b c; do
	for _ in $(seq 50); do in_ns $n ip link show "ovl-$P-$n" >/dev/null 2>&1 && break; sleep 0.1; done
done

step "ping every pair"
for src in a b c; do
	for dst in 1 2 3; do
		[ "$src" = "$(echo abc | cut -c$dst)" ] && continue
		printf '%s -> 10.100.0.%s: ' "$src" "$dst"
		in_ns $src ping -c 3 -i 0.2 -W 2 -q 10.100.0.$dst | tail -1
	done
done

step "site-to-site: a and b reach the LAN host behind c"
for src in a b; do
	printf '%s -> 192.168.60.10: ' "$src"
	in_ns $src ping -c 3 -i 0.2 -W 2 -q 192.168.60.10 | tail -1
done

step "service discovery: a asks c's DNS server across the mesh"
for q in "b.demo.internal A" "iperf.demo.internal A" "_iperf._tcp.demo.internal SRV" "-x 10.100.0.2" "nosuch.demo.internal A"; do
	printf '%-32s ' "$q:"
	# shellcheck disable=SC2086 # $q is a query's words
	out=$(in_ns a dig @10.100.0.3 +time=2 +tries=2 $q)
	status=$(sed -n 's/.*status: \([A-Z]*\),.*/\1/p' <<<"$out")
	answer=$(in_ns a dig @10.100.0.3 +time=2 +tries=2 +short $q | tr '\n' ' ')
	echo "$status ${answer:-(no records)}"
done

step "containers: two on a, two on b, attached through the CNI plugin"
# What a runtime does: run the plugin in the host's namespace with the
# network config on stdin. The leases go under the demo's directory, and
# the bridge gets a short name: the default, cni-<interface>, would be too
# long for these interface names.
cni() { # cni VERB HOST CONTAINER
	local conf
	conf=$(printf '{"cniVersion": "1.1.0", "name": "overlay", "type": "overlay-node-cni", "interface": "%s", "bridge": "cni0", "dataDir": "%s"}' \
		"ovl-$P-$2" "$WORK/cni-$2")
	echo "$conf" | in_ns "$2" env CNI_COMMAND="$1" CNI_CONTAINERID="$3" CNI_NETNS="/var/run/netns/$P-$3" \
		CNI_IFNAME=eth0 CNI_PATH="$(dirname "$CNI")" "$CNI"
}
for c in $CONTAINERS; do
	ip netns add "$P-$c"
	ip -n "$P-$c" link set lo up
	host=$(echo $c | cut -c2)
	cni ADD "$host" "$c" >"$WORK/$c.json"
	printf '%s on %s: %s\n' "$c" "$host" "$(in_ns $c ip -brief -4 addr show eth0)"
done
echo "the ADD result of ca1:"
cat "$WORK/ca1.json"; echo
cb2=$(in_ns cb2 ip -brief -4 addr show eth0 | awk '{print $3}' | cut -d/ -f1)
for src in ca1 ca2; do
	printf '%s -> cb2 (%s): ' "$src" "$cb2"
	in_ns $src ping -c 3 -i 0.2 -W 2 -q "$cb2" | tail -1
done

step "TCP transfer a -> b across the mesh (iperf3, 3 s), to the address of iperf.demo.internal"
in_ns b iperf3 -s -1 -D -B 10.100.0.2
sleep 0.3
server=$(in_ns a dig @10.100.0.1 +short iperf.demo.internal)
in_ns a iperf3 -c "$server" -t 3 -f m | grep -E 'sender|receiver'

step "TCP transfer b -> site host (iperf3, 2 s)"
in_ns lan iperf3 -s -1 -D -B 192.168.60.10
sleep 0.3
in_ns b iperf3 -c 192.168.60.10 -t 2 -f m | grep -E 'sender|receiver'

step "what node a reports: overlay-node status"
in_ns a "$BIN" status --interface "ovl-$P-a"

step "what node a exports to Prometheus (excerpt)"
in_ns a bash -c 'exec 3<>/dev/tcp/127.0.0.1/9586; printf "GET /metrics HTTP/1.0\r\n\r\n" >&3; cat <&3' |
	grep -E '^overlay_(dns_responses_total\{rcode="(NOERROR|NXDOMAIN)"|peer_(receive|transmit)_bytes_total|peer_last_handshake|drops_total\{reason="(no_route|malformed|replay|source_not_allowed)")' | head -20

step "stock tools see it too: wg show"
if command -v wg >/dev/null; then in_ns a wg show "ovl-$P-a"; else echo "(wg not installed: make deps)"; fi

step "troubleshooting: overlay-node ping and doctor on node a"
in_ns a "$BIN" ping --interface "ovl-$P-a" -n 3 c
# doctor exits 1 when a check fails; the demo shows the report either way.
in_ns a "$BIN" doctor --interface "ovl-$P-a" || echo "(doctor found a failing check above)"

step "segmentation: what a rule set would decide (examples/segmentation)"
SEG=$(cd "$(dirname "$0")/../segmentation" && pwd)/mesh.toml
"$BIN" policy why -c "$SEG" web1 db1 5432/tcp
"$BIN" policy why -c "$SEG" db1 web1 5432/tcp

if [ -n "$ETCD" ]; then
	step "membership: host d joins by itself, takes the lowest free pool address, and leaves"
	ip netns exec "$P-d" "$BIN" up --etcd "$ETCD_URL" --cache "$WORK/d.cache" -k "$WORK/d.key" \
		--interface "ovl-$P-d" --join d --endpoint 192.168.50.4:51820 >"$WORK/d.log" 2>&1 &
	DPID=$!
	PIDS+=($DPID)
	for _ in $(seq 50); do grep -q '"node up"' "$WORK/d.log" && break; sleep 0.1; done
	grep '"joined the mesh"' "$WORK/d.log" | sed 's/^.*msg=//'
	for _ in $(seq 50); do
		in_ns a "$BIN" status --interface "ovl-$P-a" | grep -q '^d ' && break
		sleep 0.1
	done
	d_addr=$(in_ns d ip -4 -o addr show dev "ovl-$P-d" | awk '{print $4}' | cut -d/ -f1)
	printf 'd -> a: '; in_ns d ping -c 3 -i 0.2 -W 2 -q 10.100.0.1 | tail -1
	printf 'a -> d (%s): ' "$d_addr"; in_ns a ping -c 3 -i 0.2 -W 2 -q "$d_addr" | tail -1
	in_ns a "$BIN" status --interface "ovl-$P-a"
	kill "$DPID"; wait "$DPID" 2>/dev/null || true
	sleep 1
	echo "after d stopped (it gave its lease back):"
	in_ns a "$BIN" status --interface "ovl-$P-a"
fi

step "logs of node c"
cat "$WORK/c.log"

step "done: removing everything the demo created"
