#!/usr/bin/env bash
# Work that outlives one device call: a command started in its own process session keeps running
# after the call returns (the device ends a call's other processes), until the machine goes back.
# So one training run can span several consecutive calls of one warm machine with no restart: no
# second view decoding, latent-pool fill or compilation, and no time lost between calls. The
# machine goes back ~30 s after a call ends with no next one: chain the watching calls.
#
#   scripts/device/background.sh start NAME CMD [ARG ...]   start CMD (in the repo root); returns at once
#   scripts/device/background.sh watch NAME SECONDS [LOG ...]
#       wait until NAME ends or SECONDS pass; every 60 s print the last line of each LOG (files or
#       globs, e.g. runs/den.log); exit 0 while it runs or when it ended with 0, else 1
#   scripts/device/background.sh status NAME                 running / ended (status N) / unknown
#
# State lives in runs/background/NAME.{pid,log,rc} (runs/ is git-ignored, so a warm machine keeps it).
set -uo pipefail
cmd=${1:?usage: background.sh start|watch|status NAME ...}; name=${2:?NAME}; shift 2
# a NAME is a plain file name: it names files under runs/background and nothing outside it
case $name in ""|.*|*[!A-Za-z0-9_.-]*) echo "background.sh: NAME '$name' must be letters, digits, '_', '-', '.' (not first)" >&2; exit 2 ;; esac
dir=runs/background; mkdir -p "$dir"
pidf=$dir/$name.pid; logf=$dir/$name.log; rcf=$dir/$name.rc

# running: a pid that answers and no status written yet (a finished job left as a zombie still answers kill -0)
running() { [ -f "$pidf" ] && [ ! -f "$rcf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }

case $cmd in
  start)
    if running; then echo "background: $name is running already (pid $(cat "$pidf"))" >&2; exit 1; fi
    rm -f "$rcf"
    # setsid: a new process session, which the end of this call does not kill; the status goes to rc
    setsid bash -c 'rc_file=$1; shift; "$@"; echo $? > "$rc_file"' background "$rcf" "$@" > "$logf" 2>&1 < /dev/null &
    echo $! > "$pidf"
    echo "background: started $name (pid $(cat "$pidf")), log $logf"
    ;;
  watch)
    seconds=${1:?SECONDS}; shift
    t0=$(date +%s); last=$t0
    while running && [ $(( $(date +%s) - t0 )) -lt "$seconds" ]; do
      sleep 1
      if [ $(( $(date +%s) - last )) -ge 60 ]; then
        last=$(date +%s)
        echo "-- $name at $(( last - t0 )) s"
        # shellcheck disable=SC2068
        for f in $@; do [ -f "$f" ] && echo "   $f: $(grep -v -e 'config attributes' -e 'kept in float32' "$f" | tail -n 1 | cut -c1-240)"; done
      fi
    done
    if running; then echo "background: $name still running after $seconds s"; exit 0; fi
    rc=$(cat "$rcf" 2>/dev/null || echo "?")
    echo "background: $name ended (status $rc)"; tail -n 20 "$logf"
    [ "$rc" = 0 ]
    ;;
  status)
    if running; then echo "running"; elif [ -f "$rcf" ]; then echo "ended (status $(cat "$rcf"))"; else echo "unknown"; fi
    ;;
  *) echo "background.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
