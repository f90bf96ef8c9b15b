// onnx_roundtrip_tool IN.onnx OUT.onnx [--all-external FILE | --threshold BYTES | --inline]
// Reads IN, writes OUT with the given external-data choice, reads OUT back and checks the IR
// is the same (external offsets may differ: the layout is amctq's). Exit 0 and "ok" on
// success; non-zero with the first difference otherwise. Driven by run_io_peers.py.
#include <cstdlib>
#include <iostream>
#include <string>

#include "amctq/io/onnx.hpp"
#include "io/onnx_test_util.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: onnx_roundtrip_tool IN.onnx OUT.onnx [--all-external FILE | --threshold BYTES | --inline]\n";
    return 2;
  }
  try {
    amctq::io::onnx_write_options opt;
    bool refs_change = false;
    for (int i = 3; i < argc; ++i) {
      const std::string a = argv[i];
      if (a == "--all-external" && i + 1 < argc) {
        opt.all_external = true;
        opt.keep_external = false;
        opt.external_file = argv[++i];
        refs_change = true;
      } else if (a == "--threshold" && i + 1 < argc) {
        opt.external_threshold = std::strtoull(argv[++i], nullptr, 10);
        opt.keep_external = false;
        refs_change = true;
      } else if (a == "--inline") {
        opt.keep_external = false;
        refs_change = true;
      } else {
        std::cerr << "unknown option " << a << "\n";
        return 2;
      }
    }
    const amctq::graph::model in = amctq::io::read_onnx(argv[1]);
    amctq::io::write_onnx(in, argv[2], opt);
    amctq::graph::model out = amctq::io::read_onnx(argv[2]);
    if (refs_change) {  // compare values only: where the bytes live was asked to change
      amctq::graph::model a = in;
      for (auto* m : {&a, &out})
        for (auto& init : m->main.initializers) init.external.reset();
      const std::string diff = amctq_test::ir_compare{}.models(a, out);
      if (!diff.empty()) throw std::runtime_error("IR differs at " + diff);
    } else {
      const std::string diff = amctq_test::ir_compare{true}.models(in, out);
      if (!diff.empty()) throw std::runtime_error("IR differs at " + diff);
    }
    std::cout << "ok " << in.main.initializers.size() << " initializers\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
}
