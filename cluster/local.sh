#!/usr/bin/env bash
# A local Handoff cluster: one real PostgreSQL (Debian's packages) and three
# nodes on 127.0.0.1, with the nemesis operations the cluster tests use
# (kill, pause/resume, restart).
#
#   cluster/local.sh up [--model FILE] [--config FILE]
#   cluster/local.sh status
#   cluster/local.sh kill N | pause N | resume N | restart N
#   cluster/local.sh logs N|pg [-f]
#   cluster/local.sh down [--purge]
#
# Node N (1..3) serves gRPC on 127.0.0.1:2006N (below the kernel's ephemeral
# port range, so no outgoing connection can hold it) and metrics on
# 127.0.0.1:947N, with node id nodeN. Everything lives in the state
# directory: PostgreSQL's data and log, and each node's pid file, log and
# command line (so `restart N` uses the same flags).
#
# Environment:
#   HANDOFF_CLUSTER_DIR   state directory (default /tmp/handoff-cluster)
#   HANDOFF_BIN           the handoff binary (default target/release/handoff
#                         in this repository, built with cargo if missing)
#   HANDOFF_NODES         how many nodes, 1..9 (default 3)
#   HANDOFF_MODEL, HANDOFF_CONFIG   defaults for up's --model and --config
#   HANDOFF_PG_BIN        PostgreSQL's bin directory (default: the newest
#                         /usr/lib/postgresql/*/bin)
#   HANDOFF_PG_PORT       PostgreSQL's port (default: a free one from 55432)
#   HANDOFF_PG_CONF       more postgresql.conf lines (e.g. the bench's
#                         pg_stat_statements), applied on every start
#   HANDOFF_START_TIMEOUT seconds a node has to answer on /metrics (default 60)
#   HANDOFF_STOP_TIMEOUT  seconds a node has to stop on SIGTERM (default 30)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Absolute and without symlinks: a node is recognised by its working
# directory (see is_node).
STATE=$(realpath -m -- "${HANDOFF_CLUSTER_DIR:-/tmp/handoff-cluster}")
NODES=${HANDOFF_NODES:-3}
START_TIMEOUT=${HANDOFF_START_TIMEOUT:-60}
STOP_TIMEOUT=${HANDOFF_STOP_TIMEOUT:-30}
MARKER=.handoff-cluster
PG_DB=handoff
PG_ROLE=handoff
PG_SUPERUSER=postgres

die() {
    printf 'local.sh: %s\n' "$*" >&2
    exit 1
}

say() {
    printf '%s\n' "$*"
}

usage() {
    sed -n '2,27s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

case $NODES in
    [1-9]) ;;
    *) die "HANDOFF_NODES must be 1..9, not '$NODES'" ;;
esac

# ---------------------------------------------------------------- nodes ---

grpc_addr() { printf '127.0.0.1:%d' $((20060 + $1)); }
metrics_addr() { printf '127.0.0.1:%d' $((9470 + $1)); }
node_dir() { printf '%s/node%d' "$STATE" "$1"; }

# Nodes 1..NODES, and any other a past `up` (with more nodes) left a
# directory for, so `status` and `down` see every node that may run.
known_nodes() {
    local n
    for ((n = 1; n <= 9; n++)); do
        if ((n <= NODES)) || [[ -d $(node_dir "$n") ]]; then
            printf '%d\n' "$n"
        fi
    done
}

# The node number argument of kill/pause/resume/restart/logs.
node_arg() {
    local n=${1:-}
    if ! [[ $n =~ ^[1-9]$ ]] || { ((n > NODES)) && [[ ! -d $(node_dir "$n") ]]; }; then
        die "which node? give a number 1..$NODES (got '${n}')"
    fi
    printf '%s' "$n"
}

node_pid() {
    local file
    file="$(node_dir "$1")/pid"
    [[ -s $file ]] && cat "$file"
    return 0
}

# Whether pid $1 is alive and still a handoff node of this state dir (not
# a reused pid).
is_node() {
    local pid=$1 dir=$2
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
    [[ $(readlink "/proc/$pid/cwd" 2>/dev/null || true) == "$dir" ]]
}

# running, paused or dead.
node_state() {
    local pid dir
    dir=$(node_dir "$1")
    pid=$(node_pid "$1")
    if ! is_node "$pid" "$dir"; then
        say dead
        return
    fi
    # Field 3 of /proc/PID/stat, after the parenthesised command name.
    local stat
    stat=$(cat "/proc/$pid/stat" 2>/dev/null || true)
    stat=${stat##*) }
    case ${stat%% *} in
        T | t) say paused ;;
        Z) say dead ;;
        *) say running ;;
    esac
}

# HTTP GET http://$1$2 answers 200 within a second.
http_ok() {
    local addr=$1 path=$2
    if command -v curl >/dev/null; then
        curl -fsS -o /dev/null --max-time 1 "http://$addr$path" 2>/dev/null
        return
    fi
    local host=${addr%:*} port=${addr##*:} line
    # shellcheck disable=SC2016 # expanded by the inner bash
    line=$(timeout 1 bash -c '
        exec 3<>"/dev/tcp/$1/$2" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$3" "$1" >&3
        IFS= read -r line <&3 && printf "%s" "$line"' _ "$host" "$port" "$path" 2>/dev/null) ||
        return 1
    [[ $line =~ ^HTTP/[0-9.]+\ 200 ]]
}

# Something accepts TCP connections on 127.0.0.1:$1.
port_busy() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 1 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

START_MARK='local.sh: starting'

# The end of a log; for a node's log, only what its latest start wrote.
log_tail() {
    local file=$1 lines=40 from=1
    if [[ ! -s $file ]]; then
        say "($file is empty)"
        return
    fi
    from=$(grep -n -F -- "$START_MARK" "$file" | tail -n 1 | cut -d: -f1)
    say "---- $file (last $lines lines at most) ----"
    tail -n "+${from:-1}" "$file" | tail -n "$lines"
    say "----"
}

# Starts node $1 from its saved command line, detached in its own session
# (so a Ctrl-C in this terminal does not reach it), with its working
# directory in its state dir (anything it writes to ./ lands there).
launch_node() {
    local n=$1 dir args=()
    dir=$(node_dir "$n")
    mapfile -d '' args <"$dir/args"
    rm -f "$dir/pid"
    printf '\n==== %s %s node%d ====\n' "$(date -Is)" "$START_MARK" "$n" >>"$dir/node.log"
    (
        cd "$dir"
        # The inner shell writes its own pid, then becomes the node.
        # shellcheck disable=SC2016 # expanded by the inner bash
        exec setsid bash -c 'echo $$ >pid; exec "$@"' _ "${args[@]}" \
            </dev/null >>"$dir/node.log" 2>&1
    ) &
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $dir/pid ]] && return 0
        sleep 0.1
    done
    die "node$n did not start (no pid file in $dir)"
}

# Waits until node $1 answers on /metrics; on a death or the deadline,
# prints why with the log's tail and fails.
wait_node() {
    local n=$1 dir pid deadline
    dir=$(node_dir "$n")
    pid=$(node_pid "$n")
    deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! is_node "$pid" "$dir"; then
            local status=0
            # Reap it if it is our child, for its exit status.
            wait "$pid" 2>/dev/null || status=$?
            ((status == 127)) && status=unknown
            say "node$n (pid $pid) exited while starting (exit status $status):" >&2
            log_tail "$dir/node.log" >&2
            return 1
        fi
        if http_ok "$(metrics_addr "$n")" /metrics; then
            say "node$n ready: pid $pid, grpc $(grpc_addr "$n"), metrics http://$(metrics_addr "$n")/metrics"
            return 0
        fi
        sleep 0.2
    done
    say "node$n (pid $pid) did not answer on http://$(metrics_addr "$n")/metrics within ${START_TIMEOUT}s (HANDOFF_START_TIMEOUT):" >&2
    log_tail "$dir/node.log" >&2
    say "node$n is still running: cluster/local.sh logs $n -f to watch it, kill $n to end it" >&2
    return 1
}

# SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
stop_node() {
    local n=$1 dir pid deadline
    dir=$(node_dir "$n")
    pid=$(node_pid "$n")
    if ! is_node "$pid" "$dir"; then
        return 0
    fi
    kill -TERM "$pid"
    # A paused node handles the SIGTERM once it runs again.
    kill -CONT "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while [[ $(node_state "$n") != dead ]]; do
        if ((SECONDS >= deadline)); then
            say "node$n (pid $pid) still running ${STOP_TIMEOUT}s after SIGTERM: SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    say "node$n stopped"
}

# --------------------------------------------------------------- binary ---

handoff_bin() {
    local bin=${HANDOFF_BIN:-}
    if [[ -z $bin ]]; then
        bin=$ROOT/target/release/handoff
        if [[ ! -x $bin ]]; then
            command -v cargo >/dev/null ||
                die "$bin is missing and cargo is not installed: build handoff, or set HANDOFF_BIN"
            say "building handoff (cargo build --release) ..." >&2
            (cd "$ROOT" && cargo build --release >&2) ||
                die "cargo build --release failed"
        fi
    fi
    [[ -x $bin ]] || die "HANDOFF_BIN=$bin is not an executable file"
    # Absolute: the nodes run in their own directories.
    printf '%s/%s' "$(cd "$(dirname "$bin")" && pwd)" "$(basename "$bin")"
}

absolute() {
    [[ -e $1 ]] || die "$1: no such file"
    printf '%s/%s' "$(cd "$(dirname "$1")" && pwd)" "$(basename "$1")"
}

# ----------------------------------------------------------- postgresql ---

PG_BIN=
pg_bin() {
    [[ -n $PG_BIN ]] && return 0
    if [[ -n ${HANDOFF_PG_BIN:-} ]]; then
        PG_BIN=$HANDOFF_PG_BIN
    else
        local dirs=()
        shopt -s nullglob
        dirs=(/usr/lib/postgresql/*/bin)
        shopt -u nullglob
        if ((${#dirs[@]})); then
            PG_BIN=$(printf '%s\n' "${dirs[@]}" | sort -V | tail -n 1)
        fi
    fi
    local tool
    for tool in initdb pg_ctl postgres; do
        [[ -n $PG_BIN && -x $PG_BIN/$tool ]] ||
            die "PostgreSQL's server binaries are missing (no ${PG_BIN:-/usr/lib/postgresql/*/bin}/$tool): apt-get install -y postgresql (or set HANDOFF_PG_BIN)"
    done
    command -v psql >/dev/null || [[ -x $PG_BIN/psql ]] ||
        die "psql is missing: apt-get install -y postgresql-client"
}

PG_DIR() { printf '%s/pg' "$STATE"; }
PG_DATA() { printf '%s/pg/data' "$STATE"; }
PG_LOG() { printf '%s/pg/postgres.log' "$STATE"; }

# Runs a PostgreSQL server tool as the user that owns the cluster:
# `postgres` when we are root (initdb refuses root), else ourselves.
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

psql_run() {
    local port
    port=$(cat "$(PG_DIR)/port")
    local psql=psql
    [[ -x $PG_BIN/psql ]] && psql=$PG_BIN/psql
    "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U "$PG_SUPERUSER" "$@"
}

pg_running() {
    [[ -f $(PG_DATA)/PG_VERSION ]] || return 1
    pg_bin
    as_pg "$PG_BIN/pg_ctl" -D "$(PG_DATA)" status >/dev/null 2>&1
}

pg_url() {
    printf 'postgres://%s@127.0.0.1:%s/%s' "$PG_ROLE" "$(cat "$(PG_DIR)/port")" "$PG_DB"
}

free_pg_port() {
    if [[ -n ${HANDOFF_PG_PORT:-} ]]; then
        printf '%s' "$HANDOFF_PG_PORT"
        return
    fi
    local p
    for ((p = 55432; p < 55532; p++)); do
        if ! port_busy "$p"; then
            printf '%d' "$p"
            return
        fi
    done
    die "no free port in 55432..55531 for PostgreSQL: set HANDOFF_PG_PORT"
}

pg_init() {
    local dir data
    dir=$(PG_DIR)
    data=$(PG_DATA)
    [[ -f $data/PG_VERSION ]] && return 0
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 ||
            die "there is no 'postgres' user to run PostgreSQL as (root cannot): apt-get install -y postgresql creates it"
    fi
    mkdir -p "$dir"
    ((EUID == 0)) && chown postgres: "$dir"
    local owner
    owner=$(id -un)
    ((EUID == 0)) && owner=postgres
    as_pg test -w "$dir" ||
        die "$dir is not writable by $owner: put HANDOFF_CLUSTER_DIR where that user can reach (e.g. under /tmp)"
    say "initialising PostgreSQL in $data ($PG_BIN)"
    as_pg "$PG_BIN/initdb" -D "$data" --username="$PG_SUPERUSER" --auth=trust \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 || {
        log_tail "$dir/initdb.log" >&2
        die "initdb failed (log above, in $dir/initdb.log)"
    }
    printf "\n# Added by cluster/local.sh\ninclude 'handoff.conf'\n" |
        as_pg tee -a "$data/postgresql.conf" >/dev/null
}

# Our settings, rewritten on every start (the port may change).
pg_configure() {
    local port=$1
    # TCP on loopback only, no Unix socket (its path limit and permissions
    # would depend on the state dir); trust auth: a local test database.
    # max_connections: room for three nodes' pools and a few clients.
    as_pg tee "$(PG_DATA)/handoff.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
max_connections = 300
log_line_prefix = '%m [%p] %q%u@%d '
# Sized for a write-heavy load on a developer machine; durability stays
# the default (fsync, synchronous_commit on: a commit is on disk before
# a node acknowledges anything).
shared_buffers = '512MB'
max_wal_size = '4GB'
checkpoint_timeout = '15min'
wal_buffers = '16MB'
${HANDOFF_PG_CONF:-}
EOF
    printf '%s\n' "$port" >"$(PG_DIR)/port"
}

pg_up() {
    pg_bin
    pg_init
    if pg_running; then
        say "PostgreSQL already running: $(pg_url)"
    else
        local port
        if [[ -s $(PG_DIR)/port ]] && ! port_busy "$(cat "$(PG_DIR)/port")" && [[ -z ${HANDOFF_PG_PORT:-} ]]; then
            port=$(cat "$(PG_DIR)/port")
        else
            port=$(free_pg_port)
        fi
        pg_configure "$port"
        say "starting PostgreSQL on 127.0.0.1:$port"
        as_pg "$PG_BIN/pg_ctl" -D "$(PG_DATA)" -l "$(PG_LOG)" -w -t 60 start >/dev/null 2>&1 || {
            log_tail "$(PG_LOG)" >&2
            die "PostgreSQL did not start (log above, in $(PG_LOG))"
        }
    fi
    # The nodes create and migrate their schema; the database must exist.
    if [[ -z $(psql_run -d postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$PG_ROLE'") ]]; then
        psql_run -d postgres -c "CREATE ROLE $PG_ROLE LOGIN"
    fi
    if [[ -z $(psql_run -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'") ]]; then
        psql_run -d postgres -c "CREATE DATABASE $PG_DB OWNER $PG_ROLE"
        say "created database $PG_DB (owner $PG_ROLE)"
    fi
}

pg_down() {
    [[ -f $(PG_DATA)/PG_VERSION ]] || return 0
    pg_bin
    if pg_running; then
        as_pg "$PG_BIN/pg_ctl" -D "$(PG_DATA)" -m fast -w -t 60 stop >/dev/null ||
            die "pg_ctl stop failed; see $(PG_LOG)"
        say "PostgreSQL stopped"
    fi
}

# ------------------------------------------------------------- commands ---

cmd_up() {
    local model=${HANDOFF_MODEL:-} config=${HANDOFF_CONFIG:-}
    while (($#)); do
        case $1 in
            --model)
                model=${2:?--model needs a FILE}
                shift 2
                ;;
            --config)
                config=${2:?--config needs a FILE}
                shift 2
                ;;
            *) die "up: unknown argument '$1' (up [--model FILE] [--config FILE])" ;;
        esac
    done
    local bin
    bin=$(handoff_bin)
    [[ -n $model ]] && model=$(absolute "$model")
    [[ -n $config ]] && config=$(absolute "$config")

    mkdir -p "$STATE"
    touch "$STATE/$MARKER"
    pg_up

    local n url waiting=()
    url=$(pg_url)
    for ((n = 1; n <= NODES; n++)); do
        local dir args
        dir=$(node_dir "$n")
        mkdir -p "$dir"
        case $(node_state "$n") in
            running)
                say "node$n already running (pid $(node_pid "$n"))"
                waiting+=("$n")
                continue
                ;;
            paused)
                say "node$n is paused (pid $(node_pid "$n")): left so; cluster/local.sh resume $n" >&2
                continue
                ;;
            dead) ;;
        esac
        local port=$((20060 + n)) mport=$((9470 + n))
        port_busy "$port" && die "127.0.0.1:$port (node$n's gRPC) is taken by another process"
        port_busy "$mport" && die "127.0.0.1:$mport (node$n's metrics) is taken by another process"
        args=("$bin" serve
            --store "$url"
            --node-id "node$n"
            --advertise "$(grpc_addr "$n")"
            --listen "$(grpc_addr "$n")"
            --metrics "$(metrics_addr "$n")")
        [[ -n $model ]] && args+=(--model "$model")
        [[ -n $config ]] && args+=(--config "$config")
        printf '%s\0' "${args[@]}" >"$dir/args"
        launch_node "$n"
        waiting+=("$n")
    done

    local failed=0
    for n in "${waiting[@]}"; do
        wait_node "$n" || failed=1
    done
    if ((failed)); then
        say "" >&2
        say "some nodes did not start (above). PostgreSQL is up at $url;" >&2
        say "fix and run 'cluster/local.sh up' again, or 'cluster/local.sh down'." >&2
        exit 1
    fi

    local rel=${bin#"$PWD"/}
    say ""
    say "Handoff cluster up: nodes 1..$NODES on $url (state in $STATE)"
    say "Drive it through any node (each forwards to the shard's owner):"
    say "  $rel loadgen --target $(grpc_addr 1) --customers 10000"
    say "  $rel escalations tail --target $(grpc_addr $((NODES > 1 ? 2 : 1)))"
    say "Then: cluster/local.sh status | kill N | pause N | resume N | restart N | logs N | down [--purge]"
}

cmd_status() {
    if [[ ! -d $STATE ]]; then
        say "no cluster in $STATE (cluster/local.sh up starts one)"
        return 0
    fi
    local n
    printf '%-8s %-8s %-8s %-16s %-30s %s\n' NODE PID STATE GRPC METRICS ANSWERS
    for n in $(known_nodes); do
        local state pid answers=-
        state=$(node_state "$n")
        pid=$(node_pid "$n")
        [[ $state == dead ]] && pid=${pid:+($pid)}
        if [[ $state == running ]]; then
            answers=no
            http_ok "$(metrics_addr "$n")" /metrics && answers=yes
        fi
        printf '%-8s %-8s %-8s %-16s %-30s %s\n' "node$n" "${pid:--}" "$state" \
            "$(grpc_addr "$n")" "http://$(metrics_addr "$n")/metrics" "$answers"
    done
    if [[ -f $(PG_DATA)/PG_VERSION ]]; then
        local pgpid=- pgstate=stopped
        if pg_running; then
            pgstate=running
            pgpid=$(head -n 1 "$(PG_DATA)/postmaster.pid" 2>/dev/null || echo -)
        fi
        printf '%-8s %-8s %-8s %s\n' postgres "$pgpid" "$pgstate" "$(pg_url) (log $(PG_LOG))"
    else
        say "postgres: not initialised"
    fi
}

cmd_signal() {
    local what=$1 sig=$2 n pid state
    n=$(node_arg "${3:-}")
    pid=$(node_pid "$n")
    state=$(node_state "$n")
    [[ $state != dead ]] || die "node$n is not running (cluster/local.sh restart $n starts it)"
    case $what in
        pause) [[ $state == running ]] || die "node$n is already paused" ;;
        resume) [[ $state == paused ]] || die "node$n is not paused" ;;
    esac
    kill "-$sig" "$pid"
    case $what in
        kill)
            local i
            for ((i = 0; i < 50; i++)); do
                [[ $(node_state "$n") == dead ]] && break
                sleep 0.1
            done
            say "node$n (pid $pid) killed (SIGKILL)"
            ;;
        pause) say "node$n (pid $pid) paused (SIGSTOP)" ;;
        resume) say "node$n (pid $pid) resumed (SIGCONT)" ;;
    esac
}

cmd_restart() {
    local n dir
    n=$(node_arg "${1:-}")
    dir=$(node_dir "$n")
    [[ -s $dir/args ]] || die "node$n was never started here: cluster/local.sh up"
    pg_running || die "PostgreSQL is not running: cluster/local.sh up"
    stop_node "$n"
    launch_node "$n"
    wait_node "$n"
}

cmd_logs() {
    local which=${1:-} file
    if [[ $which == pg || $which == postgres ]]; then
        file=$(PG_LOG)
    else
        local n
        n=$(node_arg "$which")
        file="$(node_dir "$n")/node.log"
    fi
    [[ -f $file ]] || die "no log yet: $file"
    if [[ ${2:-} == -f ]]; then
        exec tail -n 50 -F "$file"
    fi
    cat "$file"
}

cmd_down() {
    local purge=0
    case ${1:-} in
        --purge) purge=1 ;;
        '') ;;
        *) die "down: unknown argument '$1' (down [--purge])" ;;
    esac
    if [[ -d $STATE ]]; then
        local n
        # Stop them together: each waits for its own lease hand-over.
        local pids=()
        for n in $(known_nodes); do
            stop_node "$n" &
            pids+=($!)
        done
        local p
        for p in "${pids[@]}"; do wait "$p" || true; done
        pg_down
    fi
    if ((purge)) && [[ -d $STATE ]]; then
        # Only a directory this script made.
        [[ -f $STATE/$MARKER ]] ||
            die "$STATE has no $MARKER file: not removing a directory local.sh did not create"
        rm -rf -- "$STATE"
        say "removed $STATE"
    fi
}

cmd=${1:-}
(($#)) && shift
case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status ;;
    kill) cmd_signal kill KILL "$@" ;;
    pause) cmd_signal pause STOP "$@" ;;
    resume) cmd_signal resume CONT "$@" ;;
    restart) cmd_restart "$@" ;;
    logs) cmd_logs "$@" ;;
    -h | --help | help) usage ;;
    *)
        usage >&2
        exit 2
        ;;
esac
