#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

#include "common/error.hpp"
#include "src/plan/plan.hpp"

namespace dsa::plan {
namespace {

std::vector<double> random_work(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> d(1.0, 1000.0);
  std::vector<double> w(n);
  for (double& x : w) x = d(rng);
  return w;
}

// The best possible largest part for a contiguous split, by brute force over all cut sets
// (small inputs only).
double best_max_part(const std::vector<double>& w, int parts, size_t from = 0) {
  if (parts == 1) return std::accumulate(w.begin() + static_cast<long>(from), w.end(), 0.0);
  double best = 1e300, sum = 0;
  for (size_t end = from + 1; end + static_cast<size_t>(parts - 1) <= w.size(); ++end) {
    sum += w[end - 1];
    best = std::min(best, std::max(sum, best_max_part(w, parts - 1, end)));
  }
  return best;
}

TEST(SplitByWork, CutsCoverAllRowsAndEveryPartHasOne) {
  for (int rows : {1, 2, 3, 7, 64, 1000}) {
    const auto w = random_work(static_cast<size_t>(rows), static_cast<unsigned>(rows));
    for (int parts = 1; parts <= std::min(rows, 9); ++parts) {
      const auto cuts = split_by_work(w, parts);
      ASSERT_EQ(cuts.size(), static_cast<size_t>(parts) + 1);
      EXPECT_EQ(cuts.front(), 0);
      EXPECT_EQ(cuts.back(), rows);
      for (size_t i = 0; i + 1 < cuts.size(); ++i) EXPECT_LT(cuts[i], cuts[i + 1]) << "rows " << rows;
    }
  }
}

TEST(SplitByWork, LargestPartWithinOneRowOfTheBestSplit) {
  for (unsigned seed = 1; seed <= 20; ++seed) {
    const auto w = random_work(12, seed);
    const double heaviest_row = *std::max_element(w.begin(), w.end());
    for (int parts = 2; parts <= 4; ++parts) {
      const double got = max_part_work(w, split_by_work(w, parts));
      EXPECT_LE(got, best_max_part(w, parts) + heaviest_row) << "seed " << seed << " parts " << parts;
    }
  }
}

TEST(SplitByWork, EqualRowsSplitEvenly) {
  const std::vector<double> w(12, 1.0);
  EXPECT_EQ(split_by_work(w, 4), (std::vector<int64_t>{0, 3, 6, 9, 12}));
  EXPECT_EQ(split_by_work(w, 5).back(), 12);
}

TEST(SplitByWork, OneHeavyRowGetsARankOfItsOwn) {
  const std::vector<double> w = {1, 1, 1000, 1, 1, 1};
  const auto cuts = split_by_work(w, 3);
  // The heavy row must not share its part with the light ones on both sides.
  EXPECT_LE(max_part_work(w, cuts), 1002.0);
}

TEST(SplitByWork, RejectsMorePartsThanRows) {
  EXPECT_THROW(split_by_work(std::vector<double>(3, 1.0), 4), Error);
  EXPECT_THROW(split_by_work(std::vector<double>(3, 1.0), 0), Error);
}

TEST(RowWork, PositiveAndGrowsWithTheRow) {
  for (auto s : {StageKind::indexer, StageKind::attention, StageKind::pipeline}) {
    EXPECT_GT(row_work(s, 0, 0), 0.0);
  }
  EXPECT_GT(row_work(StageKind::indexer, 100000, 0), row_work(StageKind::indexer, 10000, 0));
  EXPECT_GT(row_work(StageKind::attention, 0, 2048), row_work(StageKind::attention, 0, 10));
  // Rows of <= 2048 tokens skip scoring: they cost the same whatever their length.
  EXPECT_EQ(row_work(StageKind::indexer, 5, 0), row_work(StageKind::indexer, 2048, 0));
}

TEST(PlanBatch, FixedRanksAreCappedByRows) {
  const CostModel m;
  const auto plan = plan_batch(0, 100, std::vector<double>(3, 10.0), 8, 8, m);
  EXPECT_EQ(plan.ranks, 3);
  EXPECT_EQ(plan.cuts, (std::vector<int64_t>{100, 101, 102, 103}));
  EXPECT_TRUE(plan.active(2));
  EXPECT_FALSE(plan.active(3));
  EXPECT_EQ(plan.begin(5), plan.end(5));
}

TEST(PlanBatch, AutoKeepsSmallBatchesOnOneRankAndSpreadsLargeOnes) {
  CostModel m;
  m.seconds_per_unit = 1e-9;
  m.per_rank_seconds = 1e-3;
  m.result_bytes_per_row = 8192;
  const auto small = plan_batch(0, 0, std::vector<double>(4, 300.0), 8, 0, m);
  EXPECT_EQ(small.ranks, 1);
  const auto large = plan_batch(0, 0, std::vector<double>(4096, 1e6), 8, 0, m);
  EXPECT_EQ(large.ranks, 8);
  EXPECT_LT(large.predicted_seconds, 4096 * 1e6 * 1e-9);
}

TEST(PlanBatch, AutoPicksTheLeastPredictedTime) {
  CostModel m;
  m.seconds_per_unit = 1e-6;
  m.per_rank_seconds = 5e-3;
  const std::vector<double> w(64, 1000.0);  // 64 ms on one rank
  const auto plan = plan_batch(0, 0, w, 16, 0, m);
  for (int k = 1; k <= 16; ++k) {
    const auto fixed = plan_batch(0, 0, w, 16, k, m);
    EXPECT_LE(plan.predicted_seconds, fixed.predicted_seconds + 1e-12) << "k " << k;
  }
}

TEST(CostModel, MeasuredCurveIsInterpolatedHeldBelowAndProportionalAbove) {
  CostModel m;
  // Points out of order, one repeated (averaged), one dip (made non-decreasing).
  m.set_curve({4000, 1000, 2000, 2000, 3000}, {40e-6, 10e-6, 18e-6, 22e-6, 15e-6});
  EXPECT_EQ(m.curve_work, (std::vector<double>{1000, 2000, 3000, 4000}));
  EXPECT_DOUBLE_EQ(m.curve_seconds[1], 20e-6);
  EXPECT_DOUBLE_EQ(m.curve_seconds[2], 20e-6);  // the dip is lifted to its predecessor
  EXPECT_DOUBLE_EQ(m.compute_seconds(10), 10e-6);     // latency floor below the first point
  EXPECT_DOUBLE_EQ(m.compute_seconds(1500), 15e-6);   // halfway between the first two
  EXPECT_DOUBLE_EQ(m.compute_seconds(6000), 60e-6);   // in proportion to the last point
  for (double w = 1; w < 1e5; w *= 1.7) EXPECT_LE(m.compute_seconds(w), m.compute_seconds(w * 1.7));
  EXPECT_THROW(m.set_curve({}, {}), Error);
  EXPECT_THROW(m.set_curve({1, 2}, {1e-6}), Error);
  EXPECT_THROW(m.set_curve({0}, {1e-6}), Error);
}

TEST(PlanBatch, AutoWithAMeasuredLatencyFloorKeepsSmallBatchesTogether) {
  // A GPU-like curve: 20 us for anything up to 64 rows of work, then linear.
  CostModel m;
  m.set_curve({64 * 1000.0, 4096 * 1000.0}, {20e-6, 20e-6 + 4032 * 0.5e-6});
  m.per_rank_seconds = 5e-6;
  m.gather_latency_seconds = 10e-6;
  m.result_bytes_per_row = 16384;
  m.gather_bytes_per_second = 200e9;
  // 32 rows: splitting saves nothing below the floor but costs a gather.
  EXPECT_EQ(plan_batch(0, 0, std::vector<double>(32, 1000.0), 8, 0, m).ranks, 1);
  // 8192 rows: ~4 ms on one rank; spreading wins, and auto is the best of the fixed counts.
  const std::vector<double> w(8192, 1000.0);
  const auto best = plan_batch(0, 0, w, 8, 0, m);
  EXPECT_GT(best.ranks, 1);
  for (int k = 1; k <= 8; ++k) EXPECT_LE(best.predicted_seconds, plan_batch(0, 0, w, 8, k, m).predicted_seconds);
}

TEST(PlanBatch, SlicesOfASpreadBatchHaveAtLeastMinSliceRows) {
  CostModel m;
  m.seconds_per_unit = 1e-3;  // compute dominates: auto would spread as far as it can
  m.per_rank_seconds = 0;
  m.min_slice_rows = 67;
  // 100 rows: two slices of 50 would be too small, so one rank, whatever was asked.
  EXPECT_EQ(plan_batch(0, 0, std::vector<double>(100, 1.0), 8, 0, m).ranks, 1);
  EXPECT_EQ(plan_batch(0, 0, std::vector<double>(100, 1.0), 8, 2, m).ranks, 1);
  // 300 rows: at most 4 slices of >= 67; a fixed 8 falls back to 4.
  const auto autop = plan_batch(0, 0, std::vector<double>(300, 1.0), 8, 0, m);
  EXPECT_EQ(autop.ranks, 4);
  const auto fixed = plan_batch(0, 0, std::vector<double>(300, 1.0), 8, 8, m);
  EXPECT_EQ(fixed.ranks, 4);
  for (int r = 0; r < fixed.ranks; ++r) EXPECT_GE(fixed.end(r) - fixed.begin(r), 67);
  EXPECT_EQ(plan_batch(0, 0, std::vector<double>(300, 1.0), 8, 3, m).ranks, 3);
}

TEST(Pieces, CutsOfNearlyEqualRowsEachAtLeastTheMinimum) {
  EXPECT_EQ(piece_cuts(2048, {256, 4}), (std::vector<int64_t>{0, 512, 1024, 1536, 2048}));
  EXPECT_EQ(piece_cuts(1000, {256, 4}), (std::vector<int64_t>{0, 333, 666, 1000}));
  EXPECT_EQ(piece_cuts(100, {256, 4}), (std::vector<int64_t>{0, 100}));   // too small to cut
  EXPECT_EQ(piece_cuts(5000, {256, 1}), (std::vector<int64_t>{0, 5000}));  // one piece at most
  EXPECT_EQ(piece_cuts(5000, {}), (std::vector<int64_t>{0, 5000}));        // the default: no pieces
  EXPECT_EQ(piece_cuts(0, {256, 4}), (std::vector<int64_t>{0, 0}));
  for (int64_t rows = 1; rows < 3000; rows += 37) {
    for (const Pieces p : {Pieces{256, 4}, Pieces{67, 8}, Pieces{1, 3}}) {
      const std::vector<int64_t> c = piece_cuts(rows, p);
      ASSERT_GE(c.size(), 2u);
      EXPECT_EQ(c.front(), 0);
      EXPECT_EQ(c.back(), rows);
      EXPECT_LE(c.size() - 1, size_t(p.max));
      for (size_t i = 0; i + 1 < c.size() && c.size() > 2; ++i) EXPECT_GE(c[i + 1] - c[i], p.min_rows) << rows;
    }
  }
  EXPECT_THROW(piece_cuts(-1, {256, 4}), Error);
}

// Large pieces for long slices; a slice too short for two of them still goes in two pieces
// where each has short_rows or more (the overlap is kept), else in one.
TEST(Pieces, ShortSlicesStillGoInTwoPiecesOfShortRows) {
  const Pieces p{512, 4, false, 256};
  EXPECT_EQ(piece_cuts(2048, p), (std::vector<int64_t>{0, 512, 1024, 1536, 2048}));
  EXPECT_EQ(piece_cuts(1024, p), (std::vector<int64_t>{0, 512, 1024}));
  EXPECT_EQ(piece_cuts(700, p), (std::vector<int64_t>{0, 350, 700}));
  EXPECT_EQ(piece_cuts(512, p), (std::vector<int64_t>{0, 256, 512}));
  EXPECT_EQ(piece_cuts(511, p), (std::vector<int64_t>{0, 511}));
  EXPECT_EQ(piece_cuts(700, {512, 1, false, 256}), (std::vector<int64_t>{0, 700}));  // one piece at most
  for (int64_t rows = 1; rows < 5000; rows += 37) {
    const std::vector<int64_t> c = piece_cuts(rows, p);
    EXPECT_EQ(c.back(), rows);
    EXPECT_LE(c.size() - 1, size_t(p.max));
    const int64_t least = c.size() == 3 ? p.short_rows : p.min_rows;
    for (size_t i = 0; i + 1 < c.size() && c.size() > 2; ++i) EXPECT_GE(c[i + 1] - c[i], least) << rows;
  }
}

TEST(Pieces, TaperedCutsHaveHalfPiecesAtBothEnds) {
  EXPECT_EQ(piece_cuts(1024, {256, 4, true}), (std::vector<int64_t>{0, 128, 384, 640, 896, 1024}));
  EXPECT_EQ(piece_cuts(300, {256, 4, true}), (std::vector<int64_t>{0, 150, 300}));
  EXPECT_EQ(piece_cuts(100, {256, 4, true}), (std::vector<int64_t>{0, 100}));  // too small to cut
  EXPECT_EQ(piece_cuts(1024, {256, 1, true}), (std::vector<int64_t>{0, 1024}));
  for (int64_t rows = 1; rows < 3000; rows += 37) {
    for (const Pieces p : {Pieces{256, 4, true}, Pieces{134, 8, true}}) {
      const std::vector<int64_t> c = piece_cuts(rows, p);
      EXPECT_EQ(c.front(), 0);
      EXPECT_EQ(c.back(), rows);
      EXPECT_LE(c.size() - 1, size_t(p.max) + 1);
      if (c.size() == 2) continue;
      for (size_t i = 0; i + 1 < c.size(); ++i) {
        const bool end = i == 0 || i + 2 == c.size();
        EXPECT_GE(c[i + 1] - c[i], end ? p.min_rows / 2 : p.min_rows) << rows << " rows, piece " << i;
      }
      // The ends are half the middle pieces (within a row).
      if (c.size() > 3) {
        EXPECT_NEAR(double(c[1] - c[0]), double(c[2] - c[1]) / 2, 1.0) << rows;
      }
    }
  }
}

// Growing pieces: as many as equal pieces would be, each about `growth` times the one before
// (growth < 1: shrinking), every row in exactly one piece; a tapered slice stays tapered.
TEST(Pieces, GrowingPiecesKeepTheCountAndGrowByTheFactor) {
  EXPECT_EQ(piece_cuts(4096, {512, 4, false, 256, 0, 1.5}), (std::vector<int64_t>{0, 504, 1260, 2395, 4096}));
  EXPECT_EQ(piece_cuts(1024, {512, 4, false, 256, 0, 2.0}), (std::vector<int64_t>{0, 341, 1024}));
  EXPECT_EQ(piece_cuts(511, {512, 4, false, 256, 0, 1.5}), (std::vector<int64_t>{0, 511}));  // one piece
  EXPECT_EQ(piece_cuts(4096, {512, 4, false, 256, 0, 1 / 1.5}), (std::vector<int64_t>{0, 1701, 2836, 3592, 4096}));
  for (double growth : {1 / 1.5, 1.3, 1.5, 2.0}) {
    for (int64_t rows = 1; rows < 9000; rows += 61) {
      const Pieces equal{512, 4, false, 256};
      Pieces grown = equal;
      grown.growth = growth;
      const std::vector<int64_t> e = piece_cuts(rows, equal), c = piece_cuts(rows, grown);
      ASSERT_EQ(c.size(), e.size()) << rows;
      EXPECT_EQ(c.front(), 0);
      EXPECT_EQ(c.back(), rows);
      for (size_t i = 0; i + 1 < c.size(); ++i) EXPECT_GT(c[i + 1], c[i]) << rows;
      for (size_t i = 1; i + 1 < c.size(); ++i)
        EXPECT_NEAR(double(c[i + 1] - c[i]), growth * double(c[i] - c[i - 1]), growth + 1) << rows << " piece " << i;
    }
  }
  Pieces both{512, 4, true, 256, 0, 1.5};
  EXPECT_EQ(piece_cuts(4096, both), piece_cuts(4096, {512, 4, true, 256}));
  both.tapered = false;
  both.growth = INFINITY;
  EXPECT_THROW(piece_cuts(4096, both), Error);
  both.growth = -1;
  EXPECT_THROW(piece_cuts(4096, both), Error);
}

TEST(Pieces, TaperRowsLeaveShorterSlicesUntapered) {
  const Pieces rule{512, 4, true, 256, 4096};
  // Below 4096 rows: as the untapered rule (2 pieces of >= 256 for a short slice included).
  for (int64_t rows : {300, 600, 1024, 2048, 4095})
    EXPECT_EQ(piece_cuts(rows, rule), piece_cuts(rows, {512, 4, false, 256})) << rows;
  // From 4096 rows: half-pieces at both ends, as the tapered rule cuts.
  EXPECT_EQ(piece_cuts(4096, rule), (std::vector<int64_t>{0, 512, 1536, 2560, 3584, 4096}));
  EXPECT_EQ(piece_cuts(8192, rule), piece_cuts(8192, {512, 4, true}));
}

TEST(Pieces, ABatchsRanksAreTaperedAllOrNoneAsItsSmallestSliceDecides) {
  const Pieces rule{512, 4, true, 256, 3072};
  // 8192 rows split unevenly around 4096: both tapered, whichever slice is one row short.
  for (const std::vector<int64_t>& cuts : {std::vector<int64_t>{0, 4095, 8192}, std::vector<int64_t>{100, 4197, 8292}}) {
    const Pieces b = batch_pieces(rule, cuts);
    EXPECT_TRUE(b.tapered);
    for (size_t r = 0; r + 1 < cuts.size(); ++r)
      EXPECT_EQ(piece_cuts(cuts[r + 1] - cuts[r], b), piece_cuts(cuts[r + 1] - cuts[r], {512, 4, true})) << r;
  }
  // One slice below the threshold: none tapered, not even the long one.
  const Pieces none = batch_pieces(rule, {0, 3000, 8192});
  EXPECT_FALSE(none.tapered);
  EXPECT_EQ(piece_cuts(5192, none), piece_cuts(5192, {512, 4, false, 256}));
  // An untapered rule stays as it is.
  EXPECT_EQ(batch_pieces({512, 4, false, 256}, {0, 4096, 8192}), (Pieces{512, 4, false, 256}));
}

TEST(CostModel, AStreamedGatherHidesAllButItsLastPiece) {
  CostModel m;
  m.seconds_per_unit = 1e-6;
  m.per_rank_seconds = 0;
  m.gather_latency_seconds = 0;
  m.result_bytes_per_row = 1000;
  m.gather_bytes_per_second = 1e9;  // 1 us per row
  const std::vector<double> w(2048, 1.0);
  const std::vector<int64_t> halves = {0, 1024, 2048};
  // After the slices: 1024 us of compute, then 1024 rows at 1 us each.
  EXPECT_NEAR(predict_seconds(m, w, halves), 2048e-6, 1e-12);
  // In 4 pieces of 256 rows, each leaving as it is done: only the last one's 256 us show.
  m.streamed = {256, 4};
  EXPECT_NEAR(predict_seconds(m, w, halves), 1280e-6, 1e-12);
  // A link twice the compute's rate: the last piece's 256 rows show for 128 us; tapered
  // (half-pieces at both ends, as every rank of a streamed gather cuts), its 128 rows for 64 us.
  m.result_bytes_per_row = 500;
  EXPECT_NEAR(predict_seconds(m, w, halves), 1152e-6, 1e-12);
  m.streamed = {256, 4, true};
  EXPECT_NEAR(predict_seconds(m, w, halves), 1088e-6, 1e-12);
  // Growing pieces (68, 137, 273, 546 rows: each twice the one before): the model follows the
  // same cuts, so the last piece's 546 rows show for 273 us.
  m.streamed = {256, 4, false, 0, 0, 2.0};
  EXPECT_NEAR(predict_seconds(m, w, halves), 1297e-6, 1e-12);
  m.streamed = {256, 4};
  // A link slower than the compute: the pieces queue on it (4 x 1024 us from the first piece's end).
  m.result_bytes_per_row = 4000;
  EXPECT_NEAR(predict_seconds(m, w, halves), (256 + 4 * 1024) * 1e-6, 1e-12);
  // One piece: as without streaming.
  m.streamed = {256, 1};
  EXPECT_NEAR(predict_seconds(m, w, halves), (1024 + 4096) * 1e-6, 1e-12);
  // One rank: no gather at all.
  m.streamed = {256, 4};
  EXPECT_NEAR(predict_seconds(m, w, {0, 2048}), 2048e-6, 1e-12);
}

TEST(CostModel, StreamingNeverPredictsMoreThanTheGatherAfterTheSlices) {
  const std::vector<double> w = random_work(3000, 7);
  CostModel m;
  m.set_curve({1000.0, 1e5, 1e6}, {20e-6, 60e-6, 500e-6});
  m.result_bytes_per_row = 16448;
  m.gather_bytes_per_second = 2e11;
  CostModel streamed = m;
  streamed.streamed = {256, 4};
  for (int k = 1; k <= 8; ++k) {
    const std::vector<int64_t> cuts = split_by_work(w, k);
    EXPECT_LE(predict_seconds(streamed, w, cuts), predict_seconds(m, w, cuts) + 1e-15) << k;
    EXPECT_GE(predict_seconds(streamed, w, cuts), m.compute_seconds(max_part_work(w, cuts)) - 1e-15) << k;
  }
}

TEST(PlanJob, OnePlanPerBatchCoveringItsRows) {
  const std::vector<int64_t> offsets = {0, 3, 4, 10};
  const auto plans = plan_job(offsets, std::vector<double>(10, 1.0), 4, 0, CostModel{});
  ASSERT_EQ(plans.size(), 3u);
  for (size_t b = 0; b < plans.size(); ++b) {
    EXPECT_EQ(plans[b].first_row, offsets[b]);
    EXPECT_EQ(plans[b].cuts.front(), offsets[b]);
    EXPECT_EQ(plans[b].cuts.back(), offsets[b + 1]);
  }
  EXPECT_THROW(plan_job({0, 3}, std::vector<double>(4, 1.0), 2, 0, CostModel{}), Error);
}

}  // namespace
}  // namespace dsa::plan
