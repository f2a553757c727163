// dsa-import: FlashInfer-Bench DSA workloads -> a workload file (SPEC §2), one batch per
// FlashInfer-Bench workload (src/import/importer.hpp says how).
//
// Exit codes: 0 done; 2 bad input (options, the dataset's files, an existing output without
// --force, no room); 1 failure while writing. Everything is read and checked before anything
// is written, and the file appears under its name only once complete.
#include <unistd.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>

#include "common/error.hpp"
#include "src/gen/generate.hpp"
#include "src/import/importer.hpp"

namespace po = boost::program_options;

namespace {

// The temporary file to remove if a signal ends the run (async-signal-safe: unlink, _exit).
std::string usage(const po::options_description& options) {
  std::ostringstream out;
  out << "Usage: dsa-import --dataset DIR --definition NAME --out W.h5 [--seed S] [--pipeline]\n"
         "                  [--workloads FILE.jsonl] [--definition-file FILE.json] [--limit N]\n"
         "                  [--sm-scale X] [--threads T] [--force]\n\n"
         "Reads FlashInfer-Bench DSA workloads (the flashinfer-trace dataset: DIR/definitions/**/NAME.json,\n"
         "DIR/workloads/**/NAME.jsonl and the safetensors files they name, relative to DIR) and writes\n"
         "one workload file with one batch per workload, for dsa-run.\n\n"
         "Definitions: dsa_topk_indexer_fp8_h64_d128_topk2048_ps64 (file serves --stage indexer; with\n"
         "--pipeline also --stage pipeline) and dsa_sparse_attention_h16_ckv512_kpe64_topk2048_ps64\n"
         "(--stage attention).\n"
         "Recorded inputs (seq_lens, block_table, sparse_indices; queries if recorded) are kept as\n"
         "they are. Random inputs are made as FlashInfer-Bench's evaluator makes them (N(0,1) floats;\n"
         "e4m3 queries clamped to [-2, 2]; the K index cache from bf16 normals packed per token with\n"
         "scale amax/448) from --seed: rows keyed by (seed, uuid, row), KV pages by (seed, page), one\n"
         "page pool (the largest num_pages) shared by all batches, so token ids stay as recorded.\n"
         "Scalar inputs (sm_scale) become batch attributes and the file's sm_scale. Each batch keeps\n"
         "its definition, uuid, axes and inputs as attributes of /batches/attributes (\"uuid[3]\").\n\n"
      << options
      << "\nExit status: 0 done, 2 bad input, 1 failure while writing. The file is written as\n"
         "W.h5.tmp-<pid> and renamed when complete.\n";
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::string out_path, seed_text = "1", sm_scale_text;
  dsa::import::ImportOptions options;
  po::options_description desc("Options");
  desc.add_options()
      ("help,h", "print this help and exit")
      ("dataset,d", po::value(&options.dataset_root), "the dataset folder (FlashInfer-Bench TraceSet root; required)")
      ("definition", po::value(&options.definition_name), "the definition's name (required)")
      ("out,o", po::value(&out_path), "workload file to write (required)")
      ("seed", po::value(&seed_text)->default_value("1"), "seed of the random inputs (unsigned 64-bit)")
      ("pipeline", "indexer definition: also random q_nope, q_pe, ckv and kpe, so the file serves "
                   "the pipeline stage too")
      ("workloads", po::value(&options.workloads_path), "the workloads JSONL (default: found under DIR/workloads)")
      ("definition-file", po::value(&options.definition_path), "the definition JSON (default: found under DIR/definitions)")
      ("limit", po::value(&options.limit), "import only the first N workloads")
      ("sm-scale", po::value(&sm_scale_text), "the file's sm_scale when the workloads carry none (default 1/sqrt(576))")
      ("threads", po::value(&options.threads), "KV generation threads (default: all cores; output unchanged)")
      ("force,f", "overwrite an existing output file")
      ("quiet,q", "no summary line");

  dsa::import::ImportPlan plan;
  bool force = false, quiet = false;
  try {
    po::variables_map vm;
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    if (vm.count("help") != 0) {
      std::cout << usage(desc);
      return 0;
    }
    po::notify(vm);
    DSA_REQUIRE(!options.dataset_root.empty(), "--dataset is required (see --help)");
    DSA_REQUIRE(!options.definition_name.empty(), "--definition is required (see --help)");
    DSA_REQUIRE(!out_path.empty(), "--out is required (see --help)");
    {
      const char* end = seed_text.data() + seed_text.size();
      const auto [ptr, ec] = std::from_chars(seed_text.data(), end, options.seed);
      DSA_REQUIRE(ec == std::errc() && ptr == end, "--seed: '", seed_text, "' is not an unsigned 64-bit number");
    }
    if (!sm_scale_text.empty()) {
      std::size_t used = 0;
      double value = 0;
      try {
        value = std::stod(sm_scale_text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      DSA_REQUIRE(used == sm_scale_text.size() && used > 0, "--sm-scale: '", sm_scale_text, "' is not a number");
      options.sm_scale = value;
    }
    options.pipeline = vm.count("pipeline") != 0;
    force = vm.count("force") != 0;
    quiet = vm.count("quiet") != 0;
    plan = dsa::import::plan_import(options);
    dsa::import::check_import_output(out_path, plan, force);
  } catch (const std::exception& e) {
    std::cerr << "dsa-import: " << e.what() << "\n";
    return 2;
  }

  const std::string temp = dsa::gen::temp_path_for(out_path);
  dsa::gen::remove_on_signal(temp);

  try {
    const dsa::import::ImportSummary s = dsa::import::write_import(out_path, plan, force);
    if (!quiet) {
      const bool attention = plan.kind == dsa::import::Kind::attention;
      const std::string width =
          attention ? std::string() : " (block table width " + std::to_string(s.max_num_pages) + ")";
      std::printf("dsa-import: wrote %s: %s, %lld workloads -> %lld batches, %lld rows, %lld KV pages%s, "
                  "dsa-run stages %s, seed %llu, %.1f MB, %.1f s\n",
                  s.path.c_str(), plan.definition.name.c_str(), static_cast<long long>(s.batches),
                  static_cast<long long>(s.batches), static_cast<long long>(s.rows),
                  static_cast<long long>(s.num_pages), width.c_str(),
                  attention ? "attention" : plan.attention_data ? "indexer, pipeline" : "indexer",
                  static_cast<unsigned long long>(options.seed), static_cast<double>(s.file_bytes) / 1e6,
                  s.seconds);
    }
  } catch (const std::exception& e) {
    std::cerr << "dsa-import: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
