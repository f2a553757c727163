// The batch loop of dsa-run: validate, plan, compute each batch on its ranks, gather on rank
// 0, write, report.
#pragma once

#include "comm/world.hpp"
#include "src/run/options.hpp"

namespace dsa::run {

// Runs the whole job on every rank. Returns the process exit status (0 done). Errors that all
// ranks learn of together (bad input, unusable results path) are printed once by rank 0 and
// return 1 on every rank; an error on one rank inside a batch throws, and main aborts MPI.
int run_job(const JobOptions& options, const comm::World& world);

}  // namespace dsa::run
