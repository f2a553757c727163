#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for trying and testing the sbatch scripts in jobs/slurm/
# without a real cluster. Everything lives in one folder: munge key and socket, slurm.conf,
# state, spool, logs and pid files; nothing under /etc is read or changed, so a system Slurm or
# munge on the same machine is left alone (the ports are picked free).
#
# usage: slurm-local-cluster.sh start DIR [--cpus N] [--gpus N] [--install]
#        slurm-local-cluster.sh stop DIR
#   start  writes DIR/slurm.conf, starts munged, slurmctld and slurmd (as root), waits until the
#          node is idle and prints the line to source: export SLURM_CONF=DIR/slurm.conf
#          --cpus N   CPUs the node declares (default: max(nproc, 4); more than the machine has
#                     is allowed, so 4 ranks can run on 2 cores as they do under mpirun)
#          --gpus N   gres/gpu the node declares (default 4; 0 for none), stand-ins without
#                     hardware, so scripts that ask for --gpus-per-node run unchanged (with
#                     the CPU backend, of course)
#          --nice N   run slurmd, and so every job, at nice value N (e.g. -5 for timings on a
#                     machine that others are compiling on; Slurm passes it on to the tasks)
#          --install  apt-get install the Debian packages (slurmctld slurmd slurm-client munge)
#                     when a program is missing (not when DSA_SLURM_INSTALL=0)
#   stop   cancels the cluster's jobs and stops exactly the daemons `start` recorded in DIR.
# Exit status: 0 done, 1 failed, 4 Slurm cannot run here (not root, programs missing); the
# message says why.
#
# The configuration is the least that works in a container: no cgroups (proctrack/linuxproc,
# task/none), no accounting database, SlurmUser=root.
set -uo pipefail

cmd=${1:-} dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '6,7p' "$0" >&2; exit 2; }
shift 2
cpus=$(( $(nproc) > 4 ? $(nproc) : 4 )) gpus=4 install=0 nice=0
while (($#)); do
  case $1 in
    --cpus) cpus=$2; shift 2 ;;
    --gpus) gpus=$2; shift 2 ;;
    --nice) nice=$2; shift 2 ;;
    --install) install=1; shift ;;
    *) echo "slurm-local-cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cannot() { echo "slurm-local-cluster.sh: cannot run Slurm here: $*" >&2; exit 4; }
die() { echo "slurm-local-cluster.sh: $*" >&2; exit 1; }

# Stops the process whose id is in FILE, if it is still the program NAME (a recycled pid is
# left alone); TERM, then KILL after 10 s.
stop_pidfile() {
  local file=$1 name=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null) || return 0
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && grep -q "^$name" "/proc/$pid/comm" || { rm -f "$file"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$file"
}

if [ "$cmd" = stop ]; then
  [ -d "$dir" ] || exit 0
  if [ -f "$dir/slurm.conf" ] && [ -f "$dir/slurmctld.pid" ]; then
    export SLURM_CONF=$dir/slurm.conf
    # Jobs first, so that no slurmstepd outlives its slurmd.
    timeout 10 scancel --quiet --full --user="$(id -un)" 2>/dev/null
    for _ in $(seq 60); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.5
    done
  fi
  stop_pidfile "$dir/slurmd.pid" slurmd
  stop_pidfile "$dir/slurmctld.pid" slurmctld
  stop_pidfile "$dir/munge/munged.pid" munged
  exit 0
fi
[ "$cmd" = start ] || { echo "slurm-local-cluster.sh: start or stop, not '$cmd'" >&2; exit 2; }

# --- Programs. ------------------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || cannot "slurmd must run as root to start jobs (this is uid $(id -u))"
needed=(munged mungekey munge slurmctld slurmd sbatch squeue scontrol scancel sinfo srun)
missing() { local p; for p in "${needed[@]}"; do command -v "$p" >/dev/null || echo "$p"; done; }
if [ -n "$(missing)" ] && ((install)) && [ "${DSA_SLURM_INSTALL:-1}" != 0 ]; then
  if command -v apt-get >/dev/null; then
    echo "slurm-local-cluster.sh: installing slurmctld slurmd slurm-client munge (missing: $(missing | xargs))"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge; } >"${TMPDIR:-/tmp}/slurm-install.log" 2>&1 ||
      cannot "apt-get install failed: $(tail -n 3 "${TMPDIR:-/tmp}/slurm-install.log" | xargs)"
  fi
fi
[ -z "$(missing)" ] || cannot "programs not found: $(missing | xargs) (Debian: apt-get install slurmctld slurmd slurm-client munge)"

mkdir -p "$dir" || die "cannot create $dir"
dir=$(cd "$dir" && pwd)
# munged insists that every folder on its socket's path is searchable by all and writable only
# by its owner (or sticky).
chmod 755 "$dir"
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
chmod 755 "$dir/munge"

# --- munge: own key, own socket. ----------------------------------------------------------------
[ -f "$dir/munge/munge.key" ] || mungekey --create --keyfile="$dir/munge/munge.key" ||
  die "mungekey failed"
chmod 600 "$dir/munge/munge.key"
socket=$dir/munge/munge.socket
# --force: run where the folders above DIR are group-writable (a CI checkout); the key is ours.
munged --force --socket="$socket" --key-file="$dir/munge/munge.key" --pid-file="$dir/munge/munged.pid" \
  --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" ||
  cannot "munged did not start: $(tail -n 2 "$dir/munge/munged.log" 2>/dev/null | xargs)"
munge -n -S "$socket" | unmunge -S "$socket" >/dev/null 2>&1 || cannot "munge does not answer on $socket"

# --- Ports: two free ones below the kernel's ephemeral range. -------------------------------------
# Ports in that range are handed to outgoing connections (MPI jobs running beside this one take
# them), so a port free when probed could be taken by the time slurmctld binds it. A port counts
# as free when nothing listens on it and (where ss exists) no socket uses it.
port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null &&
    { ! command -v ss >/dev/null || [ -z "$(ss -Htan "( sport = :$1 )" 2>/dev/null)" ]; }
}
eph_lo=32768 eph_hi=60999
read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
if ((eph_lo > 21000)); then port_lo=20000 port_hi=$((eph_lo - 2)); else port_lo=$((eph_hi + 1)) port_hi=65000; fi
pick_ports() {  # sets base: base and base + 1 free, both in [port_lo, port_hi]
  local span=$(((port_hi - port_lo) / 10))
  base=$((port_lo + (($$ + RANDOM) % span) * 10))
  for _ in $(seq 50); do
    port_free "$base" && port_free $((base + 1)) && return 0
    base=$((base + 10))
    ((base + 1 <= port_hi)) || base=$port_lo
  done
  return 1
}

# --- slurm.conf. -----------------------------------------------------------------------------------
gres_line="" gres_types=""
if ((gpus > 0)); then
  gres_types="GresTypes=gpu"
  gres_line="Gres=gpu:$gpus"
  # Slurm drops GPUs without device files and wants character devices: links to /dev/null
  # stand in for /dev/nvidia0... (a job's CUDA_VISIBLE_DEVICES comes out as on a real node).
  mkdir -p "$dir/dev"
  for ((i = 0; i < gpus; ++i)); do ln -sfn /dev/null "$dir/dev/nvidia$i"; done
  echo "NodeName=localhost Name=gpu File=$dir/dev/nvidia[0-$((gpus - 1))]" >"$dir/gres.conf"
fi
write_conf() {
  cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm-local-cluster.sh: a one-node test cluster, not for production.
ClusterName=dsalocal
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$base
SlurmdPort=$((base + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job waits this long + 1 s before it may start again (default 120).
AuthInfo=socket=$socket,cred_expire=10
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups: containers rarely have a writable cgroup tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
# The node may declare more CPUs than the machine has (ranks oversubscribe cores, as in CI).
SlurmdParameters=config_overrides
JobRequeue=1
KillWait=10
InactiveLimit=0
MinJobAge=600
$gres_types
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=1000 $gres_line State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}
export SLURM_CONF=$dir/slurm.conf

# --- Daemons. -----------------------------------------------------------------------------------
# slurmctld detaches before it binds its port, and exits if the bind fails ("Address already in
# use" in its log): then new ports, up to three times, rather than waiting for a node that
# cannot register.
ctld_alive() { [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; }
started=""
for attempt in 1 2 3; do
  pick_ports || cannot "no two free ports in $port_lo-$port_hi"
  write_conf
  rm -f "$dir/slurmctld.pid"
  : >"$dir/log/slurmctld.log"
  slurmctld -f "$SLURM_CONF" || cannot "slurmctld did not start: $(tail -n 3 "$dir/log/slurmctld.log" 2>/dev/null | xargs)"
  # Until it binds its port (a moment after "Running as primary controller") or fails to: up
  # to 3 s; a slower start is left to the wait for the node below.
  for _ in $(seq 30); do
    grep -q "fatal" "$dir/log/slurmctld.log" 2>/dev/null && break
    grep -q "Running as primary controller" "$dir/log/slurmctld.log" 2>/dev/null && { sleep 0.5; break; }
    sleep 0.1
  done
  if ! grep -q "fatal" "$dir/log/slurmctld.log" && ctld_alive; then
    started=1
    break
  fi
  echo "slurm-local-cluster.sh: slurmctld exited (attempt $attempt, ports $base-$((base + 1))): $(grep -m1 fatal "$dir/log/slurmctld.log" | xargs)" >&2
  stop_pidfile "$dir/slurmctld.pid" slurmctld  # one still on its way out
done
[ -n "$started" ] || cannot "slurmctld did not stay up: $(tail -n 2 "$dir/log/slurmctld.log" 2>/dev/null | xargs)"
slurmd -f "$SLURM_CONF" -N localhost -n "$nice" || cannot "slurmd did not start: $(tail -n 3 "$dir/log/slurmd.log" 2>/dev/null | xargs)"
state=""
for _ in $(seq 60); do
  ctld_alive || cannot "slurmctld exited: $(tail -n 2 "$dir/log/slurmctld.log" 2>/dev/null | xargs)"
  state=$(timeout 5 sinfo -h -n localhost -o %t 2>/dev/null)
  [ "$state" = idle ] && break
  sleep 0.5
done
[ "$state" = idle ] || cannot "the node did not come up (state '${state:-none}'): $(tail -n 3 "$dir/log/slurmd.log" | xargs)"
echo "slurm-local-cluster.sh: one-node cluster up ($cpus CPUs, $gpus gres/gpu, Slurm $(sinfo -V | cut -d' ' -f2), ports $base-$((base + 1)))"
echo "export SLURM_CONF=$SLURM_CONF"
