#include "src/report/report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <set>

#include "common/error.hpp"

namespace dsa::report {

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

namespace {
std::string format(const char* fmt, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d);
  return buf;
}

std::string duration_text(double s) {
  if (s < 60) return format("%.1f s", s);
  if (s < 3600) return format("%.0f min %.0f s", double(int(s) / 60), double(int(s) % 60));
  return format("%.0f h %.0f min", double(int(s) / 3600), double(int(s) % 3600 / 60));
}
}  // namespace

TimeSplit& TimeSplit::operator+=(const TimeSplit& o) {
  read += o.read;
  upload += o.upload;
  index += o.index;
  attend += o.attend;
  download += o.download;
  other += o.other;
  gather += o.gather;
  write += o.write;
  idle += o.idle;
  return *this;
}

namespace {
nlohmann::json setup_phases_json(const std::vector<std::pair<std::string, double>>& phases) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [name, seconds] : phases) out.push_back({{"phase", name}, {"seconds", seconds}});
  return out;
}

nlohmann::json split_json(const TimeSplit& t) {
  return {{"read", t.read},     {"upload", t.upload}, {"index", t.index},
          {"attend", t.attend}, {"download", t.download}, {"other", t.other},
          {"gather", t.gather}, {"write", t.write},   {"idle", t.idle}, {"total", t.total()}};
}
}  // namespace

JobReport::JobReport(JobHeader header) : header_(std::move(header)), start_(now_seconds()) {}

double JobReport::elapsed() const { return now_seconds() - start_; }

void JobReport::mark_setup_done() { setup_seconds_ = elapsed(); }

void JobReport::print_header(std::ostream& out) const {
  std::set<std::string> hosts(header_.hosts.begin(), header_.hosts.end());
  out << "# dsa-run " << header_.program_version << " | " << header_.mpi_version << " | HDF5 "
      << header_.hdf5_version << "\n";
  out << "# " << header_.ranks << " rank(s) on " << hosts.size() << " host(s), backend " << header_.backend
      << ", " << header_.threads_per_rank << " thread(s) per rank, ranks per batch: " << header_.rank_policy
      << "\n";
  out << "# file I/O: " << header_.io_threads << " thread(s) per rank";
  if (header_.io_through_hdf5.empty()) {
    out << ", every row read and written directly\n";
  } else {
    out << "; through HDF5 (one thread at a time, slower):";
    for (const std::string& d : header_.io_through_hdf5) out << " " << d;
    out << "\n";
  }
  for (size_t r = 0; r < header_.hosts.size(); ++r) {
    out << "#   rank " << r << " -> " << header_.hosts[r];
    if (r < header_.devices.size()) out << " -> " << header_.devices[r];
    out << "\n";
  }
  out << "# workload " << header_.workload_path << ": " << header_.rows << " rows in " << header_.batches
      << " batches, " << header_.num_pages << " KV pages, block tables " << header_.max_num_pages
      << " pages wide\n";
  out << "# stage " << header_.stage << " -> " << header_.results_path << "\n";

  for (const NonFiniteInput& n : header_.nonfinite)
    out << "# warning: " << n.text << " (computed as the math says)\n";
  out.flush();
}

void JobReport::print_setup(std::ostream& out) const {
  out << "# gather to rank 0: " << header_.gather << "\n";
  out << "# rank choice: " << header_.cost_model << "\n";
  out.flush();
}

void JobReport::batch_done(const BatchRecord& record, double total_work, std::ostream& out) {
  records_.push_back(record);
  work_done_ += record.work;
  const double compute_elapsed = elapsed() - setup_seconds_;
  const double eta = work_done_ > 0 ? compute_elapsed * (total_work - work_done_) / work_done_ : 0;
  char line[320];
  std::snprintf(line, sizeof line,
                "batch %lld/%lld: %lld rows on %d rank(s) in %.3f s (%.1f rows/s; compute+gather %.3f ms, "
                "predicted %.3f ms), ETA %s\n",
                static_cast<long long>(record.batch + 1), static_cast<long long>(header_.batches),
                static_cast<long long>(record.rows), record.ranks, record.seconds,
                record.seconds > 0 ? double(record.rows) / record.seconds : 0.0, record.compute_seconds * 1e3,
                record.predicted_seconds * 1e3, duration_text(eta).c_str());
  out << line;
  out.flush();
}

void JobReport::print_summary(std::ostream& out) const {
  int64_t rows = 0;
  double batch_seconds = 0;
  for (const BatchRecord& r : records_) {
    rows += r.rows;
    batch_seconds += r.seconds;
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "done: %lld rows in %zu batches, %.3f s in batches (%.1f rows/s), %.3f s start-up, %.3f s total\n",
                static_cast<long long>(rows), records_.size(), batch_seconds,
                batch_seconds > 0 ? double(rows) / batch_seconds : 0.0, setup_seconds_, elapsed());
  out << line;
  if (!setup_phases_.empty()) {
    out << "start-up:";
    for (size_t i = 0; i < setup_phases_.size(); ++i)
      out << (i ? "," : "") << " " << setup_phases_[i].first << " "
          << (setup_phases_[i].second < 60 ? format("%.2f s", setup_phases_[i].second) : duration_text(setup_phases_[i].second));
    out << "\n";
  }
  TimeSplit t;
  for (const BatchRecord& r : records_) t += r.split;
  const double total = t.total();
  if (total > 0) {
    const std::pair<const char*, double> parts[] = {{"read", t.read},     {"upload", t.upload}, {"index", t.index},
                                                    {"attend", t.attend}, {"download", t.download},
                                                    {"other", t.other},   {"gather", t.gather}, {"write", t.write},
                                                    {"idle", t.idle}};
    out << "time on rank 0:";
    for (const auto& [name, seconds] : parts) {
      if (seconds < 5e-4) continue;  // below the printed precision
      std::snprintf(line, sizeof line, " %s %.3f s (%.0f%%),", name, seconds, 100.0 * seconds / total);
      out << line;
    }
    std::snprintf(line, sizeof line, " together %.3f s\n", total);
    out << line;
    std::snprintf(line, sizeof line,
                  "in the background, overlapped with the above: reading %.3f s, writing %.3f s\n",
                  background_read_, background_write_);
    out << line;
  }
  out.flush();
}

void JobReport::write_json(const std::string& path) const {
  nlohmann::json batches = nlohmann::json::array();
  int64_t rows = 0;
  double batch_seconds = 0;
  TimeSplit split;
  for (const BatchRecord& r : records_) {
    split += r.split;
    batches.push_back({{"batch", r.batch},
                       {"rows", r.rows},
                       {"ranks", r.ranks},
                       {"work", r.work},
                       {"predicted_seconds", r.predicted_seconds},
                       {"compute_seconds", r.compute_seconds},
                       {"seconds", r.seconds},
                       {"split", split_json(r.split)}});
    rows += r.rows;
    batch_seconds += r.seconds;
  }
  nlohmann::json nonfinite = nlohmann::json::array();
  for (const NonFiniteInput& n : header_.nonfinite)
    nonfinite.push_back({{"dataset", n.dataset}, {"values", n.values}, {"nan", n.nan}, {"inf", n.inf},
                         {"first_row", n.first_row}});
  const nlohmann::json doc = {
      {"program", "dsa-run"},
      {"version", header_.program_version},
      {"mpi", header_.mpi_version},
      {"hdf5", header_.hdf5_version},
      {"backend", header_.backend},
      {"stage", header_.stage},
      {"workload", header_.workload_path},
      {"results", header_.results_path},
      {"ranks", header_.ranks},
      {"threads_per_rank", header_.threads_per_rank},
      {"io_threads", header_.io_threads},
      {"io_through_hdf5", header_.io_through_hdf5},
      {"hosts", header_.hosts},
      {"devices", header_.devices},
      {"rank_policy", header_.rank_policy},
      {"gather", header_.gather},
      {"cost_model", header_.cost_model},
      {"input_nonfinite", nonfinite},
      {"workload_shape",
       {{"rows", header_.rows}, {"batches", header_.batches}, {"num_pages", header_.num_pages},
        {"max_num_pages", header_.max_num_pages}}},
      {"batches", batches},
      {"summary",
       {{"rows", rows},
        {"batches_done", records_.size()},
        {"batch_seconds", batch_seconds},
        {"rows_per_second", batch_seconds > 0 ? double(rows) / batch_seconds : 0.0},
        {"setup_seconds", setup_seconds_},
        {"setup_phases", setup_phases_json(setup_phases_)},
        {"background_read_seconds", background_read_},
        {"background_write_seconds", background_write_},
        {"split", split_json(split)},
        {"total_seconds", elapsed()}}}};
  std::ofstream f(path);
  DSA_REQUIRE(f.good(), path, ": cannot write the report");
  f << doc.dump(2) << "\n";
  DSA_REQUIRE(f.good(), path, ": write failed");
}

}  // namespace dsa::report
