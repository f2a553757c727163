# Reads a libFuzzer log ending in a crash report; prints "hdf5" when the fault is HDF5's own
# (the system library, not instrumented, with known bugs on malformed files), else "ours".
#   awk -v src=SOURCE_DIR -f classify_crash.awk fuzz.log
#
# The rule: a bad access to memory is judged by who allocated that memory (ASan's "allocated
# by" stack, or the stack frame or global it lies in): HDF5 overrunning a buffer of ours is our
# bug (we passed it too small). Any other fault (SEGV, abort, out-of-memory in malloc(N),
# timeout) is judged by the innermost frame that is either HDF5's or our source's. Runtime
# frames (sanitizers, libFuzzer, libc, libstdc++) are skipped; a report with neither is ours.
# A frame of our code names a source file under src with a line number; runtime and library
# frames name a module in parentheses instead: "(/lib/x86_64-linux-gnu/libhdf5_serial.so+0x..)".
function frame_owner(line) {
  if (line ~ /\(\/[^ ]*libhdf5[^ ]*\+0x/ || line ~ / in H5[A-Za-z0-9_]* /) return "hdf5"
  if (line ~ source_pattern) return "ours"
  return ""
}
BEGIN {
  escaped = src
  gsub(/[][^$.*+?(){}|\\]/, "\\\\&", escaped)
  source_pattern = " " escaped "/[^ ()]+:[0-9]+"
}
/==ERROR: |ERROR: libFuzzer|deadly signal|runtime error:/ && !started { started = 1; section = "crash" }
!started { next }
/allocated by thread|is located in stack of thread/ { section = "owner"; next }
/freed by thread/ { section = "free"; next }
/is located .* of global variable/ {
  if (owner == "") owner = (line_owner = frame_owner($0)) != "" ? line_owner : "ours"
  next
}
/^ *#[0-9]+ / {
  o = frame_owner($0)
  if (o == "") next
  if (section == "crash" && crash == "") crash = o
  if (section == "owner" && owner == "") owner = o
}
END {
  if (owner != "") print owner
  else if (crash != "") print crash
  else print "ours"
}
