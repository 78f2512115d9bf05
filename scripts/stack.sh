#!/usr/bin/env bash
# The test stack: real dockerd, distribution registry, notary-server (TLS; its keys in
# notary-signer over MariaDB) and a Secret Service keyring (gnome-keyring in its own D-Bus
# session), all on 127.0.0.1 in one temporary directory.
# Beside the open registry and notary-server it runs an "ACR": a second registry and
# notary-server, both with token auth, behind the ACR emulator (tests/acr-emulator), which
# plays Entra ID and ACR's token service and serves both on one HTTPS host, as ACR does.
#
#   scripts/stack.sh install         install the Debian packages the stack needs (root, apt)
#   scripts/stack.sh run CMD...      start the stack, run CMD with TRUSTACR_STACK_ENV set, stop
#                                    the stack (also when CMD fails or is interrupted), exit
#                                    with CMD's status
#   scripts/stack.sh up [DIR]        start a stack in the background for development; prints
#                                    the `export TRUSTACR_STACK_ENV=…` line to use it
#   scripts/stack.sh down [DIR]      stop that stack
#   scripts/stack.sh serve DIR       start, print "READY <env file>", serve until stdin reaches
#                                    EOF, then stop. `run`, `up` and the Rust test harness use it:
#                                    whoever holds stdin open owns the stack, so a crashed owner
#                                    still takes the servers down with it.
#
# Nothing listens on anything but 127.0.0.1 (and unix sockets inside DIR).
# TRUSTACR_ACR_EMULATOR=PATH runs that emulator binary instead of target/debug's (built when
# stale); TRUSTACR_ACR_ACCESS_LIFETIME / TRUSTACR_ACR_REFRESH_LIFETIME set token lifetimes (s).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
repo=$(cd "$here/.." && pwd)
PACKAGES=(docker.io docker-registry notary mariadb-server gnome-keyring dbus libsecret-tools golang-docker-credential-helpers openssl curl strace time python3-cryptography zsh)
KEYRING_PASSWORD=trustacr-test-keyring
READY_TIMEOUT=${TRUSTACR_STACK_READY_TIMEOUT:-90}

log() { printf 'stack: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

cmd_install() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-registry >/dev/null || missing+=(docker-registry)
    command -v notary-server >/dev/null || missing+=(notary)
    command -v mariadbd >/dev/null || missing+=(mariadb-server)
    command -v gnome-keyring-daemon >/dev/null || missing+=(gnome-keyring)
    command -v dbus-run-session >/dev/null || missing+=(dbus)
    command -v secret-tool >/dev/null || missing+=(libsecret-tools)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    command -v strace >/dev/null || missing+=(strace)
    command -v zsh >/dev/null || missing+=(zsh)
    [ -x /usr/bin/time ] || missing+=(time)
    command -v docker-credential-secretservice >/dev/null || missing+=(golang-docker-credential-helpers)
    # The independent Notary Project verifier (tests/notation_independent/verify.py).
    python3 -c 'import cryptography' 2>/dev/null || missing+=(python3-cryptography)
    if [ ${#missing[@]} -eq 0 ]; then
        log "packages present: ${PACKAGES[*]}"
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root (apt-get)"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
}

# A free TCP port on 127.0.0.1 (nothing answers on it right now).
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# wait_for DESCRIPTION PID COMMAND...: polls COMMAND until it succeeds, failing early if PID died.
wait_for() {
    local what=$1 pid=$2
    shift 2
    local deadline=$((SECONDS + READY_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || die "$what exited during start-up; see its log in $STACK_DIR/logs"
        [ $SECONDS -lt $deadline ] || die "$what not ready after ${READY_TIMEOUT}s; see $STACK_DIR/logs"
        sleep 0.2
    done
}

make_tls() {
    local t=$STACK_DIR/tls
    mkdir -p "$t"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=trustacr test CA" -keyout "$t/ca.key" -out "$t/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$t/server.key" -out "$t/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' >"$t/ext.cnf"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
        -days 30 -extfile "$t/ext.cnf" -out "$t/server.crt" 2>/dev/null
    rm -f "$t/ca.key" "$t/server.csr"
}

start_dockerd() {
    local d=$STACK_DIR/docker
    mkdir -p "$d"
    dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs \
        --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" \
        --host "unix://$d/docker.sock" >"$STACK_DIR/logs/dockerd.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/dockerd"
    wait_for dockerd $! curl -sf --unix-socket "$d/docker.sock" http://localhost/_ping
}

start_registry() {
    local port
    port=$(free_port)
    mkdir -p "$STACK_DIR/registry/data"
    cat >"$STACK_DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STACK_DIR/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    docker-registry serve "$STACK_DIR/registry/config.yml" >"$STACK_DIR/logs/registry.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/registry"
    REGISTRY="127.0.0.1:$port"
    wait_for registry $! curl -sf "http://$REGISTRY/v2/"
}

# notary-signer holds the server-managed timestamp and snapshot keys of both notary-servers,
# in MariaDB, as a production deployment does. Why not notary-server's "local" trust service:
# it keeps keys in an unlocked Go map, and every GET of a repository's timestamp or snapshot
# key before its first publish writes a new key into it. Two such GETs at once, or one beside
# any signing, ended the server with "fatal error: concurrent map writes" (every later test
# then failed). notary-signer's own "memory" backend has the same kind of flaw (an unlocked map
# read beside a locked write); its SQL backend is safe, and this package's build has no SQLite
# driver, hence MariaDB. Neither server is restarted when it dies: that would hide the failure.
start_signer_db() {
    local d=$STACK_DIR/signer/db
    mkdir -p "$d"
    mariadb-install-db --no-defaults --datadir="$d/data" --user="$(id -un)" \
        --auth-root-authentication-method=normal --skip-test-db >"$STACK_DIR/logs/signer-db-install.log" 2>&1 ||
        die "mariadb-install-db failed; see $STACK_DIR/logs/signer-db-install.log"
    mariadbd --no-defaults --datadir="$d/data" --user="$(id -un)" --socket="$d/sock" \
        --skip-networking --pid-file="$d/pid" --innodb-buffer-pool-size=16M \
        --log-error="$STACK_DIR/logs/signer-db.log" >"$STACK_DIR/logs/signer-db.out" 2>&1 &
    echo $! >"$STACK_DIR/pids/signer-db"
    SIGNER_DB_SOCK=$d/sock
    wait_for signer-db $! mariadb --no-defaults --socket="$SIGNER_DB_SOCK" -uroot -e 'SELECT 1'
    # The schema of notary's migrations/signer/mysql (0001 and 0002), which notary-signer
    # expects to exist.
    mariadb --no-defaults --socket="$SIGNER_DB_SOCK" -uroot <<'EOF'
CREATE DATABASE notarysigner;
USE notarysigner;
CREATE TABLE `private_keys` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `created_at` timestamp NULL DEFAULT NULL,
  `updated_at` timestamp NULL DEFAULT NULL,
  `deleted_at` timestamp NULL DEFAULT NULL,
  `key_id` varchar(255) NOT NULL,
  `encryption_alg` varchar(255) NOT NULL,
  `keywrap_alg` varchar(255) NOT NULL,
  `algorithm` varchar(50) NOT NULL,
  `passphrase_alias` varchar(50) NOT NULL,
  `public` blob NOT NULL,
  `private` blob NOT NULL,
  `gun` varchar(255) NOT NULL,
  `role` varchar(255) NOT NULL,
  `last_used` datetime NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `key_id` (`key_id`),
  UNIQUE KEY `key_id_2` (`key_id`,`algorithm`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8;
EOF
}

# One signer for both notary-servers (mutual TLS with the stack's certificate).
start_notary_signer() {
    local d=$STACK_DIR/signer
    SIGNER_PORT=$(free_port)
    cat >"$d/signer.json" <<EOF
{
  "server": {
    "grpc_addr": "127.0.0.1:$SIGNER_PORT",
    "tls_cert_file": "$STACK_DIR/tls/server.crt",
    "tls_key_file": "$STACK_DIR/tls/server.key",
    "client_ca_file": "$STACK_DIR/tls/ca.pem"
  },
  "logging": {"level": "info"},
  "storage": {
    "backend": "mysql",
    "db_url": "root@unix($SIGNER_DB_SOCK)/notarysigner?parseTime=True",
    "default_alias": "stack"
  }
}
EOF
    # The passphrase that wraps the stored private keys (alias "stack").
    NOTARY_SIGNER_STACK=$(openssl rand -hex 16) \
        notary-signer -config "$d/signer.json" -logf logfmt >"$STACK_DIR/logs/notary-signer.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/notary-signer"
    wait_for notary-signer $! bash -c "exec 3<>/dev/tcp/127.0.0.1/$SIGNER_PORT"
}

# trust_service_json: notary-server's "trust_service" member, pointing at the stack's signer.
trust_service_json() {
    cat <<EOF
{"type": "remote", "hostname": "127.0.0.1", "port": "$SIGNER_PORT",
   "tls_ca_file": "$STACK_DIR/tls/ca.pem", "key_algorithm": "ecdsa",
   "tls_client_cert": "$STACK_DIR/tls/server.crt", "tls_client_key": "$STACK_DIR/tls/server.key"}
EOF
}

start_notary_server() {
    local port
    port=$(free_port)
    mkdir -p "$STACK_DIR/notary"
    cat >"$STACK_DIR/notary/server.json" <<EOF
{
  "server": {
    "http_addr": "127.0.0.1:$port",
    "tls_cert_file": "$STACK_DIR/tls/server.crt",
    "tls_key_file": "$STACK_DIR/tls/server.key"
  },
  "trust_service": $(trust_service_json),
  "logging": {"level": "info"},
  "storage": {"backend": "memory"}
}
EOF
    notary-server -config "$STACK_DIR/notary/server.json" -logf logfmt >"$STACK_DIR/logs/notary-server.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/notary-server"
    NOTARY_URL="https://127.0.0.1:$port"
    wait_for notary-server $! curl -sf --cacert "$STACK_DIR/tls/ca.pem" "$NOTARY_URL/_notary_server/health"
}

# --- The ACR: token-auth registry and notary-server behind the emulator -------------------------

# The emulator binary; built (debug) when missing or older than its sources. Cargo does not hold
# its lock while tests run, so a stack started from inside `cargo test` can build it too.
emulator_bin() {
    if [ -n "${TRUSTACR_ACR_EMULATOR:-}" ]; then
        echo "$TRUSTACR_ACR_EMULATOR"
        return 0
    fi
    local bin=${CARGO_TARGET_DIR:-$repo/target}/debug/acr-emulator
    if [ ! -x "$bin" ] || [ -n "$(find "$repo/tests/acr-emulator" -newer "$bin" -type f -print -quit)" ]; then
        log "building the ACR emulator (cargo build -p acr-emulator)"
        (cd "$repo" && cargo build --locked -p acr-emulator) >&2 || die "building the ACR emulator failed"
    fi
    echo "$bin"
}

guid() {
    local h
    h=$(openssl rand -hex 16)
    echo "${h:0:8}-${h:8:4}-${h:12:4}-${h:16:4}-${h:20:12}"
}

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# http_status_is CODE URL: the URL answers with that HTTP status.
http_status_is() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$STACK_DIR/tls/ca.pem" "$2")" = "$1" ]
}

start_acr() {
    local a=$STACK_DIR/acr bin port
    bin=$(emulator_bin)
    ACR_EMULATOR_BIN=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
    mkdir -p "$a/registry/data" "$a/notary"
    ACR_HOST="127.0.0.1:$(free_port)"
    # The ACR token signing key, self-signed: its certificate is both backends' rootcertbundle.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=Azure Container Registry token signer" -keyout "$a/token.key" -out "$a/token.crt" \
        -addext "keyUsage=critical,digitalSignature" 2>/dev/null
    # The emulated Entra ID signs its access tokens with a key of its own.
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$a/entra.key" 2>/dev/null

    port=$(free_port)
    cat >"$a/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $a/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  token:
    realm: https://$ACR_HOST/oauth2/token
    service: $ACR_HOST
    issuer: Azure Container Registry
    rootcertbundle: $a/token.crt
EOF
    docker-registry serve "$a/registry/config.yml" >"$STACK_DIR/logs/acr-registry.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/acr-registry"
    ACR_REGISTRY="127.0.0.1:$port"
    wait_for acr-registry $! http_status_is 401 "http://$ACR_REGISTRY/v2/"

    port=$(free_port)
    cat >"$a/notary/server.json" <<EOF
{
  "server": {
    "http_addr": "127.0.0.1:$port",
    "tls_cert_file": "$STACK_DIR/tls/server.crt",
    "tls_key_file": "$STACK_DIR/tls/server.key"
  },
  "trust_service": $(trust_service_json),
  "logging": {"level": "info"},
  "storage": {"backend": "memory"},
  "auth": {
    "type": "token",
    "options": {
      "realm": "https://$ACR_HOST/oauth2/token",
      "service": "$ACR_HOST",
      "issuer": "Azure Container Registry",
      "rootcertbundle": "$a/token.crt"
    }
  }
}
EOF
    notary-server -config "$a/notary/server.json" -logf logfmt >"$STACK_DIR/logs/acr-notary-server.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/acr-notary-server"
    ACR_NOTARY_URL="https://127.0.0.1:$port"
    wait_for acr-notary-server $! curl -sf --cacert "$STACK_DIR/tls/ca.pem" "$ACR_NOTARY_URL/_notary_server/health"

    # One tenant; a signer, a pusher that cannot sign, a reader, and a workload identity
    # (federated credential) that can push and sign. identities.json lists them for tests:
    # {"tenant_id", "authority_host", "login_server", "ca", "identities": [{"label": "signer",
    # "name", "tenant_id", "client_id", "client_secret" | "federated_subject" +
    # "federated_token_file", "object_id", "roles"}, …]}.
    ACR_TENANT=$(guid)
    local who id secret oid roles subject=system:serviceaccount:trustacr:ci now
    local emulator_ids=() test_ids=()
    for who in signer pusher reader wi; do
        id=$(guid) oid=$(guid) secret=$(openssl rand -hex 20)
        case $who in
            signer | wi) roles='["AcrPush", "AcrImageSigner"]' ;;
            pusher) roles='["AcrPush"]' ;;
            reader) roles='["AcrPull"]' ;;
        esac
        if [ "$who" = wi ]; then
            emulator_ids+=("{\"name\": \"trustacr-$who\", \"tenant_id\": \"$ACR_TENANT\", \"client_id\": \"$id\", \"federated_subject\": \"$subject\", \"object_id\": \"$oid\", \"roles\": $roles}")
            test_ids+=("{\"label\": \"$who\", \"name\": \"trustacr-$who\", \"tenant_id\": \"$ACR_TENANT\", \"client_id\": \"$id\", \"federated_subject\": \"$subject\", \"federated_token_file\": \"$a/wi.token\", \"object_id\": \"$oid\", \"roles\": $roles}")
        else
            emulator_ids+=("{\"name\": \"trustacr-$who\", \"tenant_id\": \"$ACR_TENANT\", \"client_id\": \"$id\", \"client_secret\": \"$secret\", \"object_id\": \"$oid\", \"roles\": $roles}")
            test_ids+=("{\"label\": \"$who\", \"name\": \"trustacr-$who\", \"tenant_id\": \"$ACR_TENANT\", \"client_id\": \"$id\", \"client_secret\": \"$secret\", \"object_id\": \"$oid\", \"roles\": $roles}")
        fi
    done
    # The federated token a workload finds in AZURE_FEDERATED_TOKEN_FILE. The emulator checks
    # its subject, audience and expiry, not its signature.
    now=$(date +%s)
    {
        printf '%s' '{"alg":"RS256","typ":"JWT","kid":"trustacr-test-oidc"}' | b64url
        printf '.'
        printf '{"iss":"https://oidc.trustacr.test","sub":"%s","aud":["api://AzureADTokenExchange"],"iat":%d,"nbf":%d,"exp":%d}' \
            "$subject" "$now" "$now" $((now + 30 * 86400)) | b64url
        printf '.'
        openssl rand 256 | b64url
    } >"$a/wi.token"

    (
        IFS=, # joins the identity arrays below
        umask 077
        cat >"$a/emulator.json" <<EOF
{
  "listen": "$ACR_HOST",
  "tls_cert": "$STACK_DIR/tls/server.crt",
  "tls_key": "$STACK_DIR/tls/server.key",
  "login_server": "$ACR_HOST",
  "registry_url": "http://$ACR_REGISTRY",
  "notary_url": "$ACR_NOTARY_URL",
  "backend_ca": "$STACK_DIR/tls/ca.pem",
  "token_key": "$a/token.key",
  "token_cert": "$a/token.crt",
  "token_header": "${TRUSTACR_ACR_TOKEN_HEADER:-kid}",
  "issuer": "Azure Container Registry",
  "entra_key": "$a/entra.key",
  "refresh_token_lifetime_secs": ${TRUSTACR_ACR_REFRESH_LIFETIME:-11700},
  "access_token_lifetime_secs": ${TRUSTACR_ACR_ACCESS_LIFETIME:-4500},
  "identities": [${emulator_ids[*]}]
}
EOF
        cat >"$a/identities.json" <<EOF
{
  "tenant_id": "$ACR_TENANT",
  "authority_host": "https://$ACR_HOST",
  "login_server": "$ACR_HOST",
  "ca": "$STACK_DIR/tls/ca.pem",
  "identities": [${test_ids[*]}]
}
EOF
    )
    "$bin" "$a/emulator.json" >"$STACK_DIR/logs/acr-emulator.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/acr-emulator"
    wait_for acr-emulator $! curl -sf --cacert "$STACK_DIR/tls/ca.pem" "https://$ACR_HOST/_emulator/stats"
}

secrets_on_bus() {
    dbus-send --session --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets | grep -q 'boolean true'
}

start_keyring() {
    mkdir -p "$STACK_DIR/home/.cache" "$STACK_DIR/home/.local/share" "$STACK_DIR/run"
    chmod 700 "$STACK_DIR/run"
    printf '%s' "$KEYRING_PASSWORD" | HOME=$STACK_DIR/home XDG_RUNTIME_DIR=$STACK_DIR/run \
        gnome-keyring-daemon --foreground --unlock --components=secrets \
        >"$STACK_DIR/logs/gnome-keyring.log" 2>&1 &
    echo $! >"$STACK_DIR/pids/gnome-keyring"
    wait_for gnome-keyring $! secrets_on_bus
}

# Everything start-up leaves a pid file for, in the order to stop it.
STACK_PROCS="acr-emulator acr-notary-server acr-registry gnome-keyring notary-server notary-signer signer-db registry dockerd"

stop_all() {
    local name pid
    for name in $STACK_PROCS; do
        [ -f "$STACK_DIR/pids/$name" ] || continue
        pid=$(cat "$STACK_DIR/pids/$name")
        kill -TERM "$pid" 2>/dev/null || true
    done
    for name in $STACK_PROCS; do
        [ -f "$STACK_DIR/pids/$name" ] || continue
        pid=$(cat "$STACK_DIR/pids/$name")
        # dockerd stops its containerd first; give it time, then insist.
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$STACK_DIR/pids/$name"
    done
    # A containerd orphaned by a killed dockerd would keep running; it is ours if it lives under DIR.
    pkill -KILL -f "containerd --config $STACK_DIR/" 2>/dev/null || true
}

# serve-inner runs inside dbus-run-session, so the keyring's bus dies with it.
cmd_serve_inner() {
    STACK_DIR=$1
    mkdir -p "$STACK_DIR/logs" "$STACK_DIR/pids"
    # Stop everything on any exit; keep the directory (logs, data) only when asked to.
    trap 'stop_all; [ -n "${TRUSTACR_KEEP_STACK:-}" ] || rm -rf "$STACK_DIR"' EXIT
    trap 'exit 130' INT TERM HUP
    make_tls
    start_keyring
    start_dockerd
    start_registry
    start_signer_db
    start_notary_signer
    start_notary_server
    start_acr
    cat >"$STACK_DIR/stack.env" <<EOF
TRUSTACR_STACK_DIR=$STACK_DIR
TRUSTACR_DOCKER_HOST=unix://$STACK_DIR/docker/docker.sock
TRUSTACR_REGISTRY=$REGISTRY
TRUSTACR_NOTARY_URL=$NOTARY_URL
TRUSTACR_NOTARY_CA=$STACK_DIR/tls/ca.pem
TRUSTACR_ACR_HOST=$ACR_HOST
TRUSTACR_ACR_CONFIG=$STACK_DIR/acr/emulator.json
TRUSTACR_ACR_IDENTITIES=$STACK_DIR/acr/identities.json
TRUSTACR_ACR_TENANT=$ACR_TENANT
TRUSTACR_ACR_AUTHORITY=https://$ACR_HOST
TRUSTACR_ACR_REGISTRY=$ACR_REGISTRY
TRUSTACR_ACR_NOTARY_URL=$ACR_NOTARY_URL
TRUSTACR_ACR_EMULATOR_BIN=$ACR_EMULATOR_BIN
DBUS_SESSION_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS
EOF
    echo "READY $STACK_DIR/stack.env"
    # Serve until the owner closes our stdin (or dies, which closes it too).
    cat >/dev/null || true
}

cmd_serve() {
    local dir=${1:?usage: stack.sh serve DIR}
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    exec dbus-run-session -- "$self" serve-inner "$dir"
}

# wait_ready DIR PID: waits for the READY line of a `serve` writing to DIR/serve.out.
wait_ready() {
    local dir=$1 pid=$2 deadline=$((SECONDS + READY_TIMEOUT * 2))
    until grep -q '^READY ' "$dir/serve.out" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$dir/serve.out" >&2 || true
            die "the stack failed to start"
        fi
        [ $SECONDS -lt $deadline ] || die "the stack did not start in time"
        sleep 0.2
    done
}

cmd_run() {
    [ $# -gt 0 ] || die "usage: stack.sh run CMD..."
    local dir rc=0 serve_pid
    emulator_bin >/dev/null # build before the start-up timeout runs
    dir=$(mktemp -d "${TMPDIR:-/tmp}/trustacr-stack.XXXXXX")
    mkfifo "$dir/ctl"
    "$self" serve "$dir/s" <"$dir/ctl" >"$dir/serve.out" 2>&1 &
    serve_pid=$!
    exec 3>"$dir/ctl"
    # On any exit: close the pipe (the stack stops itself), wait for it, remove the directory.
    trap 'exec 3>&-; wait '"$serve_pid"' 2>/dev/null || true; rm -rf "'"$dir"'"' EXIT
    trap 'exit 130' INT TERM HUP
    wait_ready "$dir" "$serve_pid"
    export TRUSTACR_STACK_ENV=$dir/s/stack.env
    log "ready: $(tr '\n' ' ' <"$TRUSTACR_STACK_ENV")"
    "$@" || rc=$?
    return $rc
}

cmd_up() {
    local dir=${1:-${TMPDIR:-/tmp}/trustacr-stack}
    [ ! -e "$dir/holder.pid" ] || die "a stack seems to be running in $dir; run: $0 down $dir"
    emulator_bin >/dev/null # build before the start-up timeout runs
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    rm -f "$dir/ctl" "$dir/serve.out"
    mkfifo "$dir/ctl"
    setsid "$self" serve "$dir/s" <"$dir/ctl" >"$dir/serve.out" 2>&1 &
    echo $! >"$dir/serve.pid"
    # The holder keeps the pipe open; killing it is how `down` stops the stack.
    setsid sleep infinity >"$dir/ctl" &
    echo $! >"$dir/holder.pid"
    wait_ready "$dir" "$(cat "$dir/serve.pid")"
    echo "export TRUSTACR_STACK_ENV=$dir/s/stack.env"
}

cmd_down() {
    local dir=${1:-${TMPDIR:-/tmp}/trustacr-stack}
    [ -f "$dir/holder.pid" ] || die "no stack in $dir"
    kill "$(cat "$dir/holder.pid")" 2>/dev/null || true
    local pid
    pid=$(cat "$dir/serve.pid")
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$dir"
    log "stopped"
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    run) shift; cmd_run "$@" ;;
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    serve) shift; cmd_serve "$@" ;;
    serve-inner) shift; cmd_serve_inner "$@" ;;
    *) sed -n '2,23p' "$self" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
