// `amctq <subcommand> ...`: dispatch to the subcommands compiled in (see CMakeLists.txt).
// Each subcommand prints its own --help, returns 0 on success and prints a one-line error on
// stderr with a non-zero exit on bad input.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cli_report.hpp"

#ifdef AMCTQ_HAS_CMD_CALIB
int cmd_calib(int argc, char** argv);
#endif
#ifdef AMCTQ_HAS_CMD_QUANTIZE
int cmd_quantize(int argc, char** argv);
#endif
#ifdef AMCTQ_HAS_CMD_CONFIG
int cmd_config(int argc, char** argv);
#endif
#ifdef AMCTQ_HAS_CMD_RUN
int cmd_run(int argc, char** argv);
#endif
#ifdef AMCTQ_HAS_CMD_INSPECT
int cmd_inspect(int argc, char** argv);
#endif
#ifdef AMCTQ_HAS_CMD_REPORT
int cmd_report(int argc, char** argv);
#endif
#ifdef AMCTQ_HAS_CMD_AUTO
int cmd_auto(int argc, char** argv);
#endif
void print_calib_help(std::ostream& out);

namespace {

struct subcommand {
  const char* name;
  int (*run)(int, char**);
  const char* summary;
};

const subcommand commands[] = {
#ifdef AMCTQ_HAS_CMD_QUANTIZE
    {"quantize", cmd_quantize, "quantize an ONNX model with calibration data"},
#endif
#ifdef AMCTQ_HAS_CMD_CONFIG
    {"config", cmd_config, "write the default quantization config of a model"},
#endif
#ifdef AMCTQ_HAS_CMD_CALIB
    {"calib", cmd_calib, "calibrate one tensor from .npy batches and print its quantization params as JSON"},
#endif
#ifdef AMCTQ_HAS_CMD_RUN
    {"run", cmd_run, "run a model (float, fake-quant or deploy) with amctq's executor on .npy inputs"},
#endif
#ifdef AMCTQ_HAS_CMD_INSPECT
    {"inspect", cmd_inspect, "summarise an ONNX model"},
#endif
#ifdef AMCTQ_HAS_CMD_REPORT
    {"report", cmd_report, "calibrate a model and write an HTML page of every layer's ranges"},
#endif
#ifdef AMCTQ_HAS_CMD_AUTO
    {"auto", cmd_auto, "search per-layer precision under your own accuracy metric (fallback, NUQ, INT4/INT8)"},
#endif
};

void usage(std::ostream& out) {
  out << "usage: amctq <subcommand> [options]   (amctq <subcommand> --help for its options)\n\nsubcommands:\n";
  for (const auto& c : commands) out << "  " << c.name << std::string(10 - std::strlen(c.name), ' ') << c.summary << "\n";
#ifdef AMCTQ_HAS_CMD_CALIB
  out << "\n";
  print_calib_help(out);
#endif
}

// Calibration frees and takes again blocks of a few MiB on every slice (its rows, its
// activations). glibc hands a freed block over 128 KiB back to the kernel until its own
// heuristic catches up, and the next slice's block is then fresh pages that the kernel zeroes
// one fault at a time (figures: docs/scale.md). Blocks up to 32 MiB stay in the heap instead,
// and its top is trimmed past 32 MiB free; glibc's own variables, when the user sets them, win.
void keep_freed_blocks() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") || std::getenv("MALLOC_TRIM_THRESHOLD_")) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif
}

}  // namespace

int main(int argc, char** argv) {
  keep_freed_blocks();
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  const std::string sub = argv[1];
  if (sub == "-h" || sub == "--help" || sub == "help") {
    usage(std::cout);
    return amctq::cli::check_stdout(0, "amctq");
  }
  for (const auto& c : commands)
    if (sub == c.name) return amctq::cli::check_stdout(c.run(argc - 1, argv + 1), (std::string("amctq ") + c.name).c_str());
  std::cerr << "amctq: unknown subcommand '" << sub << "' (see amctq --help)\n";
  return 2;
}
