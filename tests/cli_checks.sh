# Shared by the command-line tests (sourced): `check NAME WANT_RC GOT_RC` and
# `one_line NAME FILE` (stderr holds exactly one line) count their failures in $fails.
fails=0
check() {
  if [ "$2" != "$3" ]; then echo "FAIL $1: exit $3, expected $2"; fails=$((fails + 1)); else echo "ok   $1"; fi
}
one_line() {
  n=$(wc -l < "$2")
  if [ "$n" != 1 ]; then echo "FAIL $1: stderr has $n lines:"; cat "$2"; fails=$((fails + 1)); fi
}
