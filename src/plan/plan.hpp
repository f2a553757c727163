// Planning: how many ranks take part in each batch and which rows each one computes.
// Pure logic on per-row work estimates; no MPI, HDF5 or CUDA, so it is tested on its own and
// every rank computes the same plan from the same inputs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace dsa::plan {

// Estimated cost of each row in "work units" (positive). The stage decides what a unit is:
// see row_work().
enum class StageKind { indexer, attention, pipeline };

// Work of one row: indexer rows cost their tokens scored (rows of <= 2048 tokens are emitted
// without scoring, so they cost little), attention rows their valid ids; each row also carries
// a fixed overhead so empty rows are not free.
double row_work(StageKind stage, int32_t seq_len, int32_t valid_ids);

// row_work of every row of a workload (seq_lens / valid_ids may be empty when the stage has none).
std::vector<double> rows_work(StageKind stage, int64_t rows, const std::vector<int32_t>& seq_lens,
                              const std::vector<int32_t>& valid_ids);

// Splits rows [0, work.size()) into `parts` contiguous ranges of nearly equal work. Returns
// parts + 1 cut points, cuts[0] = 0, cuts[parts] = rows, strictly increasing (every part gets
// at least one row). Requires 1 <= parts <= rows.
std::vector<int64_t> split_by_work(const std::vector<double>& work, int parts);

// The largest part's work for a split (what the batch waits for).
double max_part_work(const std::vector<double>& work, const std::vector<int64_t>& cuts);

// How a backend computes a slice of `rows` rows in pieces (a GPU: piece p+1's rows upload while
// piece p computes, and piece p's results can leave for rank 0 while piece p+1 computes):
// rows / min_rows pieces, at most `max`, of nearly equal rows (each at least min_rows, unless
// the slice is one piece). min_rows 0 or max 1: one piece. One rule for the backend that cuts
// and for rank 0, which posts a receive for every piece of every other rank.
// `tapered`: the first and the last piece of half the others' rows (n + 1 pieces in all, each
// end at least min_rows / 2): the upload the first kernels wait for and the results the last
// kernels leave behind are then half as large, for one piece more. Slices of fewer than
// max(min_rows, taper_rows) rows are not tapered.
// `short_rows`: a slice too short for two pieces of min_rows still goes in two pieces where each
// has at least short_rows rows (0: never): large pieces (fewer NCCL groups and kernel tails) for
// long slices without giving up the overlap on short ones.
// `growth` (not 1, where a slice is not tapered): the same number of pieces, each `growth` times
// the rows of the one before. Above 1 the first is then smaller than min_rows: a short first
// upload, and later uploads that stay ahead of the kernels of the piece before them, for a
// longer last piece; below 1 the pieces shrink (for measurements).
struct Pieces {
  int64_t min_rows = 0;
  int max = 1;
  bool tapered = false;
  int64_t short_rows = 0;
  int64_t taper_rows = 0;
  double growth = 1;
  // Whether the rule may cut a slice into more than one piece (else every slice is one piece).
  bool splits() const { return min_rows > 0 && max > 1; }
  // The fewest rows a slice needs to be tapered (where `tapered`).
  int64_t taper_from() const { return std::max(min_rows, taper_rows); }
  bool operator==(const Pieces&) const = default;
};
// The cut points: pieces + 1 row offsets within the slice, 0 first, `rows` last (just {0, 0}
// for an empty slice).
std::vector<int64_t> piece_cuts(int64_t rows, const Pieces& pieces);

// The rule every rank of a batch split at `cuts` (k + 1 row offsets) cuts its slice by: tapered
// for all of them or for none, as the smallest slice decides (a rank in one piece more than
// another would leave rank 0, which receives piece q of every rank after its own piece q, a
// group to wait for after its last piece). So that taper_rows never splits one batch's ranks.
Pieces batch_pieces(const Pieces& rule, const std::vector<int64_t>& cuts);

// Predicted seconds of a batch on k ranks:
//   compute_seconds(largest part's work)        (the slowest rank's upload + kernels)
// + (k - 1) * per_rank_seconds                  (fixed cost of each extra rank taking part)
// + gather: (bytes of rows not on the root) / gather_bytes_per_second + (k - 1) * gather_latency
// where the gather follows each rank's whole slice. Where it streams (`streamed`: each piece's
// results leave when its kernels finish, rank 0 receiving piece q of every rank once its own
// piece q is done), the gather is a queue on rank 0's link instead: piece q of rank r is ready
// at its share of the rank's work times the rank's compute seconds, group q (piece q of every
// rank) moves after group q - 1 at gather_bytes_per_second, and the batch is done when the last
// group and rank 0's own compute are, plus (k - 1) * gather_latency.
//
// compute_seconds comes from a measured curve where there is one (calibration: the backend timed
// on slices of real rows, see src/run/calibrate.hpp): seconds are interpolated linearly in work
// between measured points, held at the first point's seconds below it (a GPU takes about as long
// for one row as for a few: launch and latency), and in proportion to the last point above it. Without a curve: work * seconds_per_unit.
struct CostModel {
  double seconds_per_unit = 1e-9;
  std::vector<double> curve_work, curve_seconds;  // measured points, work strictly increasing
  double per_rank_seconds = 2e-4;
  double gather_bytes_per_second = 5e9;
  double gather_latency_seconds = 2e-5;
  double result_bytes_per_row = 0;  // bytes gathered per row (stage-dependent)
  Pieces streamed;  // the pieces whose results leave as they finish; one piece: no streaming
  std::string source = "estimate";  // "estimate" | "measured at start-up" | a calibration file
  // A batch spread over k > 1 ranks gives each at least this many rows: a backend that
  // computes small calls differently (a GPU splitting few rows over more blocks, which sums in
  // another order) would otherwise give results that differ in the last bits from one rank's.
  int64_t min_slice_rows = 1;

  double compute_seconds(double work) const;
  // Sets the curve from (work, seconds) points in any order: sorted, points of equal work
  // averaged, seconds made non-decreasing in work. Requires at least one point.
  void set_curve(std::vector<double> work, std::vector<double> seconds);
};

double predict_seconds(const CostModel& model, const std::vector<double>& work,
                       const std::vector<int64_t>& cuts);

// One batch: rows [first_row, first_row + rows) of the workload over `ranks` ranks,
// rank r computing absolute rows [cuts[r], cuts[r+1]).
struct BatchPlan {
  int64_t batch = 0;
  int64_t first_row = 0;
  int64_t rows = 0;
  int ranks = 1;
  std::vector<int64_t> cuts;  // ranks + 1 absolute row ids
  double predicted_seconds = 0;
  double work = 0;            // total work units of the batch

  // Absolute rows of `rank` ([begin, end); empty for an idle rank).
  int64_t begin(int rank) const;
  int64_t end(int rank) const;
  bool active(int rank) const { return rank < ranks; }
};

// ranks_wanted: 0 = auto (the k in [1, min(world, rows)] of least predicted time; ties go to
// fewer ranks), else that many (capped by rows in the batch). Either way only k whose every
// part has at least model.min_slice_rows rows, or k = 1.
BatchPlan plan_batch(int64_t batch, int64_t first_row, const std::vector<double>& work,
                     int world_size, int ranks_wanted, const CostModel& model);

// Plans every batch from the batch offsets and the per-row work of the whole workload.
std::vector<BatchPlan> plan_job(const std::vector<int64_t>& batch_offsets,
                                const std::vector<double>& row_work_all, int world_size,
                                int ranks_wanted, const CostModel& model);

}  // namespace dsa::plan
