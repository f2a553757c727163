#include "src/plan/plan.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.hpp"
#include "kernels/shapes.hpp"

namespace dsa::plan {

double row_work(StageKind stage, int32_t seq_len, int32_t valid_ids) {
  // Units are "token-equivalents of indexer scoring". The constants are relative weights from
  // the operators' byte and FLOP counts (FIELD.md): scoring a token moves 132 B, attending to
  // an id moves 1152 B and costs ~2x the FLOP of scoring one; a row's fixed cost (q, output,
  // the top-k pass) is worth a few hundred tokens.
  constexpr double kRowOverhead = 256.0;
  constexpr double kAttentionPerId = 2.0;
  const double scored = seq_len > kTopK ? double(seq_len) : 0.0;
  switch (stage) {
    case StageKind::indexer:
      return kRowOverhead + scored;
    case StageKind::attention:
      return kRowOverhead + kAttentionPerId * double(valid_ids);
    case StageKind::pipeline:
      // Attention takes min(K, seq_len) ids from the indexer.
      return 2 * kRowOverhead + scored + kAttentionPerId * double(std::min(seq_len, kTopK));
  }
  return kRowOverhead;
}

std::vector<double> rows_work(StageKind stage, int64_t rows, const std::vector<int32_t>& seq_lens,
                              const std::vector<int32_t>& valid_ids) {
  std::vector<double> work(static_cast<size_t>(rows));
  for (size_t i = 0; i < work.size(); ++i)
    work[i] = row_work(stage, i < seq_lens.size() ? seq_lens[i] : 0, i < valid_ids.size() ? valid_ids[i] : 0);
  return work;
}

std::vector<int64_t> split_by_work(const std::vector<double>& work, int parts) {
  const int64_t rows = static_cast<int64_t>(work.size());
  DSA_REQUIRE(parts >= 1 && parts <= rows, "split_by_work: ", parts, " parts for ", rows, " rows");
  std::vector<double> prefix(work.size() + 1, 0.0);
  std::partial_sum(work.begin(), work.end(), prefix.begin() + 1);
  const double total = prefix.back();

  std::vector<int64_t> cuts(static_cast<size_t>(parts) + 1);
  cuts.front() = 0;
  cuts.back() = rows;
  for (int p = 1; p < parts; ++p) {
    // The cut nearest to p/parts of the total work, kept inside the rows left so that every
    // part (this one and those after it) gets at least one row.
    const double target = total * p / parts;
    int64_t c = std::lower_bound(prefix.begin(), prefix.end(), target) - prefix.begin();
    if (c > 0 && target - prefix[static_cast<size_t>(c - 1)] < prefix[static_cast<size_t>(c)] - target) --c;
    const int64_t lo = cuts[static_cast<size_t>(p) - 1] + 1;
    const int64_t hi = rows - (parts - p);
    cuts[static_cast<size_t>(p)] = std::clamp(c, lo, hi);
  }
  return cuts;
}

double max_part_work(const std::vector<double>& work, const std::vector<int64_t>& cuts) {
  double worst = 0;
  for (size_t p = 0; p + 1 < cuts.size(); ++p) {
    double sum = 0;
    for (int64_t r = cuts[p]; r < cuts[p + 1]; ++r) sum += work[static_cast<size_t>(r)];
    worst = std::max(worst, sum);
  }
  return worst;
}

double CostModel::compute_seconds(double work) const {
  if (curve_work.empty()) return work * seconds_per_unit;
  if (work <= curve_work.front()) return curve_seconds.front();
  // Beyond the largest slice measured: in proportion to it (its rate holds for larger slices;
  // the last segment's slope would be too noisy to extrapolate far).
  if (work >= curve_work.back()) return curve_seconds.back() * work / curve_work.back();
  const size_t hi = static_cast<size_t>(std::lower_bound(curve_work.begin(), curve_work.end(), work) - curve_work.begin());
  const size_t lo = hi - 1;
  const double slope = (curve_seconds[hi] - curve_seconds[lo]) / (curve_work[hi] - curve_work[lo]);
  return curve_seconds[lo] + slope * (work - curve_work[lo]);
}

void CostModel::set_curve(std::vector<double> work, std::vector<double> seconds) {
  DSA_REQUIRE(!work.empty() && work.size() == seconds.size(), "cost model: ", work.size(), " work points and ",
              seconds.size(), " times");
  std::vector<size_t> order(work.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return work[a] < work[b]; });
  curve_work.clear();
  curve_seconds.clear();
  std::vector<int> count;
  for (size_t i : order) {
    DSA_REQUIRE(work[i] > 0 && seconds[i] >= 0 && std::isfinite(work[i]) && std::isfinite(seconds[i]),
                "cost model: bad point (work ", work[i], ", seconds ", seconds[i], ")");
    if (!curve_work.empty() && work[i] == curve_work.back()) {
      curve_seconds.back() += seconds[i];
      ++count.back();
    } else {
      curve_work.push_back(work[i]);
      curve_seconds.push_back(seconds[i]);
      count.push_back(1);
    }
  }
  for (size_t i = 0; i < curve_seconds.size(); ++i) {
    curve_seconds[i] /= count[i];
    if (i > 0) curve_seconds[i] = std::max(curve_seconds[i], curve_seconds[i - 1]);
  }
}

std::vector<int64_t> piece_cuts(int64_t rows, const Pieces& pieces) {
  DSA_REQUIRE(rows >= 0, "piece_cuts: ", rows, " rows");
  int64_t n = pieces.splits() ? std::clamp<int64_t>(rows / pieces.min_rows, 1, pieces.max) : 1;
  if (n == 1 && pieces.max > 1 && pieces.short_rows > 0 && rows >= 2 * pieces.short_rows) n = 2;
  if (pieces.tapered && pieces.splits() && rows >= pieces.taper_from()) {
    // Half-pieces at both ends: cut p at rows * (p - 1/2) / n for p = 1..n.
    std::vector<int64_t> cuts(static_cast<size_t>(n) + 2);
    cuts[0] = 0;
    for (int64_t p = 1; p <= n; ++p) cuts[static_cast<size_t>(p)] = rows * (2 * p - 1) / (2 * n);
    cuts[static_cast<size_t>(n) + 1] = rows;
    return cuts;
  }
  std::vector<int64_t> cuts(static_cast<size_t>(n) + 1);
  for (int64_t p = 0; p <= n; ++p) cuts[static_cast<size_t>(p)] = rows * p / n;
  if (pieces.growth != 1 && n > 1 && rows >= n) {
    // Piece p of growth^p parts: cut p at rows * (growth^p - 1) / (growth^n - 1), every piece
    // at least one row (growth < 1: pieces shrink).
    DSA_REQUIRE(std::isfinite(pieces.growth) && pieces.growth > 0, "piece_cuts: growth ", pieces.growth);
    const double total = std::pow(pieces.growth, double(n)) - 1;
    for (int64_t p = 1; p < n; ++p) {
      const auto cut = std::llround(double(rows) * (std::pow(pieces.growth, double(p)) - 1) / total);
      cuts[static_cast<size_t>(p)] = std::clamp<int64_t>(cut, cuts[static_cast<size_t>(p) - 1] + 1, rows - (n - p));
    }
  }
  return cuts;
}

Pieces batch_pieces(const Pieces& rule, const std::vector<int64_t>& cuts) {
  if (!rule.tapered) return rule;
  int64_t smallest = cuts.size() > 1 ? cuts[1] - cuts[0] : 0;
  for (size_t p = 1; p + 1 < cuts.size(); ++p) smallest = std::min(smallest, cuts[p + 1] - cuts[p]);
  Pieces batch = rule;
  batch.tapered = smallest >= rule.taper_from();
  batch.taper_rows = 0;
  return batch;
}

namespace {

// The streamed gather's finish (see predict_seconds in plan.hpp), k >= 2.
double streamed_seconds(const CostModel& model, const std::vector<double>& work, const std::vector<int64_t>& cuts) {
  const size_t k = cuts.size() - 1;
  // Per rank: its compute seconds, its pieces, and when each piece's kernels are done.
  std::vector<std::vector<double>> ready(k);
  std::vector<std::vector<int64_t>> pieces(k);
  const Pieces rule = batch_pieces(model.streamed, cuts);
  for (size_t r = 0; r < k; ++r) {
    const int64_t first = cuts[r], rows = cuts[r + 1] - cuts[r];
    double total = 0;
    for (int64_t i = first; i < first + rows; ++i) total += work[static_cast<size_t>(i)];
    const double seconds = model.compute_seconds(total);
    pieces[r] = piece_cuts(rows, rule);
    double done = 0;
    size_t q = 0;
    for (int64_t i = 0; i < rows; ++i) {
      done += work[static_cast<size_t>(first + i)];
      if (i + 1 == pieces[r][q + 1]) {
        ready[r].push_back(total > 0 ? seconds * done / total : seconds);
        ++q;
      }
    }
  }
  size_t groups = 0;
  for (size_t r = 1; r < k; ++r) groups = std::max(groups, ready[r].size());
  double link = 0;  // when rank 0's link is free
  for (size_t q = 0; q < groups; ++q) {
    double start = std::max(link, ready[0][std::min(q, ready[0].size() - 1)]);
    double bytes = 0;
    for (size_t r = 1; r < k; ++r) {
      if (q >= ready[r].size()) continue;
      start = std::max(start, ready[r][q]);
      bytes += double(pieces[r][q + 1] - pieces[r][q]) * model.result_bytes_per_row;
    }
    link = start + bytes / model.gather_bytes_per_second;
  }
  return std::max(link, ready[0].back());
}

}  // namespace

double predict_seconds(const CostModel& model, const std::vector<double>& work,
                       const std::vector<int64_t>& cuts) {
  const int k = static_cast<int>(cuts.size()) - 1;
  const double fixed = (k - 1) * (model.per_rank_seconds + model.gather_latency_seconds);
  if (k > 1 && model.streamed.splits()) {
    // Work is indexed from the batch's first row; cuts here are batch-relative.
    return streamed_seconds(model, work, cuts) + fixed;
  }
  const double rows_elsewhere = double(cuts.back() - cuts[1]);
  return model.compute_seconds(max_part_work(work, cuts)) +
         rows_elsewhere * model.result_bytes_per_row / model.gather_bytes_per_second + fixed;
}

int64_t BatchPlan::begin(int rank) const {
  return active(rank) ? cuts[static_cast<size_t>(rank)] : first_row + rows;
}

int64_t BatchPlan::end(int rank) const {
  return active(rank) ? cuts[static_cast<size_t>(rank) + 1] : first_row + rows;
}

BatchPlan plan_batch(int64_t batch, int64_t first_row, const std::vector<double>& work,
                     int world_size, int ranks_wanted, const CostModel& model) {
  const int64_t rows = static_cast<int64_t>(work.size());
  DSA_REQUIRE(rows >= 1, "plan_batch: batch ", batch, " has no rows");
  DSA_REQUIRE(world_size >= 1 && ranks_wanted >= 0, "plan_batch: bad rank counts");
  const int most = static_cast<int>(std::min<int64_t>(world_size, rows));

  BatchPlan plan;
  plan.batch = batch;
  plan.first_row = first_row;
  plan.rows = rows;
  plan.work = std::accumulate(work.begin(), work.end(), 0.0);

  // Candidates: auto tries every k; a fixed count that cannot give every slice enough rows
  // (min_slice_rows) falls back to the largest that can, down to 1.
  std::vector<int> candidates;
  if (ranks_wanted == 0) {
    for (int k = 1; k <= most; ++k) candidates.push_back(k);
  } else {
    for (int k = std::min(ranks_wanted, most); k >= 1; --k) candidates.push_back(k);
  }
  std::vector<int64_t> best_cuts;
  double best_time = 0;
  for (int k : candidates) {
    std::vector<int64_t> cuts = split_by_work(work, k);
    bool big_enough = true;
    for (int p = 0; p < k && k > 1; ++p) big_enough = big_enough && cuts[size_t(p) + 1] - cuts[size_t(p)] >= model.min_slice_rows;
    if (!big_enough) continue;
    const double t = predict_seconds(model, work, cuts);
    if (best_cuts.empty() || t < best_time) {  // strict: ties keep fewer ranks
      best_cuts = std::move(cuts);
      best_time = t;
    }
    if (ranks_wanted != 0) break;  // the first acceptable fixed count
  }
  plan.ranks = static_cast<int>(best_cuts.size()) - 1;
  plan.predicted_seconds = best_time;
  plan.cuts = std::move(best_cuts);
  for (int64_t& c : plan.cuts) c += first_row;
  return plan;
}

std::vector<BatchPlan> plan_job(const std::vector<int64_t>& batch_offsets,
                                const std::vector<double>& row_work_all, int world_size,
                                int ranks_wanted, const CostModel& model) {
  DSA_REQUIRE(batch_offsets.size() >= 2 && batch_offsets.back() == int64_t(row_work_all.size()),
              "plan_job: batch offsets do not cover the ", row_work_all.size(), " rows");
  std::vector<BatchPlan> plans;
  plans.reserve(batch_offsets.size() - 1);
  for (size_t b = 0; b + 1 < batch_offsets.size(); ++b) {
    const auto first = row_work_all.begin() + batch_offsets[b];
    const auto last = row_work_all.begin() + batch_offsets[b + 1];
    plans.push_back(plan_batch(static_cast<int64_t>(b), batch_offsets[b], std::vector<double>(first, last),
                               world_size, ranks_wanted, model));
  }
  return plans;
}

}  // namespace dsa::plan
