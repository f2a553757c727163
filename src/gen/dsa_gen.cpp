// dsa-gen: writes a synthetic workload file (SPEC §2, §4).
//
// Exit codes: 0 done; 2 bad input (options, sizes, an existing file without --force, no room
// for the file); 1 failure while writing. The file appears under its name only once complete.
#include <unistd.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "common/error.hpp"
#include "kernels/shapes.hpp"
#include "src/gen/generate.hpp"

namespace po = boost::program_options;

namespace {

// The temporary file to remove if a signal ends the run (async-signal-safe: unlink, _exit).
template <typename T>
T parse_number(const std::string& text, const char* option) {
  T value{};
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  DSA_REQUIRE(ec == std::errc() && ptr == end, option, ": '", text, "' is not a valid number");
  return value;
}

// "A" or "A:B".
void parse_seq_len(const std::string& text, dsa::gen::GenConfig& config) {
  const size_t colon = text.find(':');
  const std::string a = text.substr(0, colon);
  const std::string b = colon == std::string::npos ? a : text.substr(colon + 1);
  config.seq_len_min = parse_number<int32_t>(a, "--seq-len");
  config.seq_len_max = parse_number<int32_t>(b, "--seq-len");
  DSA_REQUIRE(config.seq_len_min >= 0 && config.seq_len_min <= config.seq_len_max,
              "--seq-len: expected A or A:B with 0 <= A <= B (got '", text, "')");
}

std::string format_bytes(uint64_t bytes) {
  char buf[32];
  if (bytes >= 1000000000ull)
    std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(bytes) / 1e9);
  else
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

std::string usage(const po::options_description& options) {
  std::ostringstream out;
  out << "Usage: dsa-gen --out W.h5 --preset NAME [--rows R] [--batches N] [--seq-len A[:B]]\n"
         "               [--seed S] [--stages indexer|attention|all] [--shared-prefix T]\n"
         "               [--sm-scale X] [--threads T] [--force]\n\n"
         "Writes a synthetic DeepSeek-V3.2 sparse-attention workload (HDF5, SPEC section 2).\n"
         "The same --seed gives the same bytes on every machine and for any thread count.\n"
         "Data: index K as DeepGEMM packs it (bf16 normals, per-token scale amax/448, e4m3),\n"
         "ckv/kpe/q_nope/q_pe bf16 normals, q_index e4m3 normals, weights normal/8; block\n"
         "tables in random page order with valid-looking page ids past seq_len; sparse ids\n"
         "distinct reachable tokens.\n\n"
      << options << "\nPresets (explicit --rows, --batches, --seq-len override their defaults):\n";
  for (const dsa::gen::PresetInfo& p : dsa::gen::presets()) {
    out << "  " << p.name << "\n";
    // Wrap the summary at about 90 columns, indented.
    std::string line = "      ";
    std::istringstream words(p.summary);
    std::string word;
    while (words >> word) {
      if (line.size() + word.size() > 92) {
        out << line << "\n";
        line = "      ";
      }
      line += (line.size() > 6 ? " " : "") + word;
    }
    out << line << "\n";
  }
  out << "\nExit status: 0 done, 2 bad input, 1 failure while writing. The file is written as\n"
         "W.h5.tmp-<pid> and renamed when complete.\n";
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path, preset, seq_len, seed, stages = "all";
  int64_t rows = 0, batches = 0;
  int32_t shared_prefix = 0;
  double sm_scale = 1.0 / 24.0;
  unsigned threads = 0;
  po::options_description options("Options");
  options.add_options()
      ("help,h", "print this help and exit")
      ("out,o", po::value(&out_path), "workload file to write (required)")
      ("preset,p", po::value(&preset), "what to generate (see Presets; required)")
      ("rows", po::value(&rows), "rows per batch (decode: requests); default: the preset's")
      ("batches", po::value(&batches), "number of batches (decode: steps); default: the preset's")
      ("seq-len", po::value(&seq_len),
       "A or A:B: seq_len uniform in [A, B] (decode: each request's first seq_len)")
      ("seed", po::value(&seed)->default_value("1"), "random seed (unsigned 64-bit)")
      ("stages", po::value(&stages)->default_value("all"),
       "datasets to write: indexer (index_k, seq_lens, block_table, q_index, weights), "
       "attention (ckv, kpe, q_nope, q_pe, sparse_indices) or all")
      ("shared-prefix", po::value(&shared_prefix),
       "rows of a batch (decode: all requests) share the pages of their first T tokens")
      ("sm-scale", po::value(&sm_scale), "softmax scale stored in the file (default 1/sqrt(576))")
      ("threads", po::value(&threads), "generator threads (default: all cores; output unchanged)")
      ("force,f", "overwrite an existing output file")
      ("quiet,q", "no progress lines");

  dsa::gen::GenConfig config;
  dsa::gen::WorkloadPlan plan;
  bool force = false, quiet = false;
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(options).run(), vm);
    if (vm.count("help") != 0) {
      std::cout << usage(options);
      return 0;
    }
    po::notify(vm);
    DSA_REQUIRE(!out_path.empty(), "--out is required (see --help)");
    DSA_REQUIRE(!preset.empty(), "--preset is required (see --help)");
    config = dsa::gen::preset_config(preset);
    if (vm.count("rows") != 0) {
      DSA_REQUIRE(rows >= 1, "--rows must be >= 1 (got ", rows, ")");
      config.rows = rows;
    }
    if (vm.count("batches") != 0) {
      DSA_REQUIRE(batches >= 1, "--batches must be >= 1 (got ", batches, ")");
      config.batches = batches;
    }
    if (!seq_len.empty()) parse_seq_len(seq_len, config);
    config.seed = parse_number<uint64_t>(seed, "--seed");
    config.stages = dsa::gen::parse_stages(stages);
    config.shared_prefix = shared_prefix;
    config.sm_scale = sm_scale;
    config.threads = threads;
    force = vm.count("force") != 0;
    quiet = vm.count("quiet") != 0;
    plan = dsa::gen::make_plan(config);
    dsa::gen::check_output(out_path, plan, force);
  } catch (const std::exception& e) {
    std::cerr << "dsa-gen: " << e.what() << "\n";
    return 2;
  }

  const std::string temp = dsa::gen::temp_path_for(out_path);
  dsa::gen::remove_on_signal(temp);

  // A progress line every few seconds for files of 256 MB or more.
  double last_report = 0.0;
  auto progress = [&](const dsa::gen::Progress& p) {
    if (quiet || p.bytes_total < (256ull << 20)) return;
    if (p.seconds - last_report < 2.0 && p.bytes_done < p.bytes_total) return;
    last_report = p.seconds;
    std::fprintf(stderr, "dsa-gen: %s / %s (%.0f%%) in %.1f s, %.0f MB/s\n",
                 format_bytes(p.bytes_done).c_str(), format_bytes(p.bytes_total).c_str(),
                 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total),
                 p.seconds, static_cast<double>(p.bytes_done) / 1e6 / std::max(p.seconds, 1e-9));
  };

  try {
    const dsa::gen::GenSummary s = dsa::gen::write_workload(out_path, plan, force, progress);
    std::printf("dsa-gen: wrote %s: preset %s, %lld rows in %lld batches, %lld pages "
                "(block table width %lld), %s, seed %llu, stages %s, %.1f s\n",
                s.path.c_str(), config.preset.c_str(), static_cast<long long>(s.rows),
                static_cast<long long>(s.batches), static_cast<long long>(s.num_pages),
                static_cast<long long>(s.max_num_pages), format_bytes(s.file_bytes).c_str(),
                static_cast<unsigned long long>(config.seed), dsa::gen::stages_name(config.stages),
                s.seconds);
  } catch (const std::exception& e) {
    std::cerr << "dsa-gen: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
