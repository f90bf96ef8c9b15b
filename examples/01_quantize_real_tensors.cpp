// Quantizes real tensors — Fashion-MNIST test images, normalised as a network input — with
// every preset, bit width and granularity, and prints the error each choice costs.
// Usage: example_01_quantize_real_tensors <t10k-images-idx3-ubyte> [max_images]
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "amctq/amctq.hpp"

namespace {

// IDX: big-endian magic 0x00000803, count, rows, cols, then count*rows*cols bytes.
std::vector<float> read_idx_images(const std::string& path, std::size_t max_images, std::ptrdiff_t& n,
                                   std::ptrdiff_t& rows, std::ptrdiff_t& cols) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  unsigned char h[16];
  if (!in.read(reinterpret_cast<char*>(h), 16)) throw std::runtime_error(path + ": truncated header");
  auto be32 = [&](int o) { return (std::uint32_t{h[o]} << 24) | (std::uint32_t{h[o + 1]} << 16) | (std::uint32_t{h[o + 2]} << 8) | h[o + 3]; };
  if (be32(0) != 0x00000803u) throw std::runtime_error(path + ": not an IDX image file");
  n = static_cast<std::ptrdiff_t>(std::min<std::size_t>(be32(4), max_images));
  rows = be32(8);
  cols = be32(12);
  std::vector<unsigned char> bytes(static_cast<std::size_t>(n * rows * cols));
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size())))
    throw std::runtime_error(path + ": truncated pixel data");
  std::vector<float> x(bytes.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = (bytes[i] / 255.0f - 0.2860f) / 0.3530f;  // dataset mean/std
  return x;
}

struct error_stats {
  double mse, sqnr_db, max_abs;
};

error_stats compare(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, sig = 0, mx = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(y[i]) - x[i];
    err += d * d;
    sig += static_cast<double>(x[i]) * x[i];
    mx = std::fmax(mx, std::fabs(d));
  }
  return {err / static_cast<double>(x.size()), 10.0 * std::log10(sig / std::fmax(err, 1e-30)), mx};
}

std::size_t popcount(const std::vector<std::uint8_t>& mask, std::size_t n) {
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) k += (mask[i / 8] >> (i % 8)) & 1u;
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <t10k-images-idx3-ubyte> [max_images]\n", argv[0]);
    return 2;
  }
  try {
    std::ptrdiff_t n = 0, rows = 0, cols = 0;
    const auto x = read_idx_images(argv[1], argc > 2 ? std::stoul(argv[2]) : 10000, n, rows, cols);
    const auto view = amctq::make_view(x.data(), {n, rows, cols});
    const auto range = amctq::minmax(view);
    std::printf("Fashion-MNIST test images: %td x %td x %td = %zu values, range [%.4f, %.4f]\n\n", n, rows, cols,
                x.size(), range.min, range.max);
    std::printf("%-11s %-5s %-11s %-10s %12s %9s %10s %9s %9s\n", "preset", "bits", "signedness", "granularity",
                "MSE", "SQNR dB", "max|err|", "clipped", "GB/s");
    std::vector<float> y(x.size());
    std::vector<std::uint8_t> mask((x.size() + 7) / 8);
    for (auto how : {amctq::preset::amct, amctq::preset::onnxruntime, amctq::preset::pytorch}) {
      for (int bits : {8, 4}) {
        for (bool is_signed : {true, false}) {
          for (int axis : {amctq::per_tensor, 0}) {  // per-channel: one scale per image
            amctq::quant_spec spec{bits, is_signed, /*symmetric=*/is_signed};
            spec.axis = axis;
            spec.narrow_range = how == amctq::preset::onnxruntime && is_signed;  // ORT's symmetric int8 is [-127, 127]
            amctq::quant_params p;
            if (axis == amctq::per_tensor) {
              p = amctq::params_from_range(range.min, range.max, spec, how);
            } else {
              const auto r = amctq::minmax_per_channel(view, axis);
              p = amctq::params_from_range(r.min, r.max, spec, how);
            }
            const auto t0 = std::chrono::steady_clock::now();
            amctq::fake_quantize(view, amctq::make_view(y.data(), {n, rows, cols}), p, amctq::round_mode::half_even,
                                 mask.data());
            const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const auto e = compare(x, y);
            const double clipped = 1.0 - static_cast<double>(popcount(mask, x.size())) / static_cast<double>(x.size());
            std::printf("%-11s %-5d %-11s %-10s %12.4e %9.2f %10.4f %8.4f%% %9.2f\n", amctq::to_string(how), bits,
                        is_signed ? "int sym" : "uint asym", axis == amctq::per_tensor ? "tensor" : "channel", e.mse,
                        e.sqnr_db, e.max_abs, 100.0 * clipped, 8.0 * static_cast<double>(x.size()) / sec / 1e9);
          }
        }
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
