// dsa-bench calibrate and dsa-bench scaling: the job's own machinery (backend, plan, gather)
// timed on a workload's rows. Both run with or without a GPU; scaling runs under mpirun.
#pragma once

namespace dsa::bench {

// argv[0] is the operator ("calibrate" | "scaling"); returns the exit status.
int calibrate_main(int argc, char** argv);
int scaling_main(int argc, char** argv);

}  // namespace dsa::bench
