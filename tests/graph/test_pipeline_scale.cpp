// Calibration in slices, on threads and on several (simulated) processes: the record is the
// same for every split, a memory bound that no row fits says what would, and calibration data
// read from a mapped .npy gives the rows the file holds.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "amctq/graph/calibration_run.hpp"
#include "amctq/graph/layer_report.hpp"
#include "amctq/graph/passes/lower_qoperator.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/calibration_data.hpp"
#include "amctq/io/npy.hpp"
#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/onnx_writer.hpp"
#include "amctq/io/record_json.hpp"
#include "graph/builder.hpp"

namespace test_pipeline_scale {

using namespace amctq;

TEST_CASE("calibration_run: slices cover each batch in order and never span two") {
  graph::tensor a(graph::dtype::float32, {10, 2}), b(graph::dtype::float32, {3, 2}), e(graph::dtype::float32, {0, 2});
  const std::vector<graph::batch> batches = {{{"x", a}}, {{"x", b}}, {{"x", e}}};
  const graph::batches_in_memory src(batches);
  const auto s = graph::plan_slices(src, 3, 4);
  REQUIRE(s.size() == 5);
  CHECK((s[0].batch == 0 && s[0].begin == 0 && s[0].end == 4));
  CHECK((s[2].batch == 0 && s[2].begin == 8 && s[2].end == 10));
  CHECK((s[3].batch == 1 && s[3].begin == 0 && s[3].end == 3));
  CHECK((s[4].batch == 2 && s[4].begin == 0 && s[4].end == 0));  // an empty batch still runs
  CHECK(graph::plan_slices(src, 2, 0).size() == 2);               // whole batches
  // Processes' shares are contiguous and cover everything, whatever the count.
  for (int n = 1; n <= 7; ++n) {
    std::size_t next = 0;
    for (int w = 0; w < n; ++w) {
      const auto [lo, hi] = graph::share_of(5, w, n);
      CHECK(lo == next);
      next = hi;
    }
    CHECK(next == 5);
  }
  graph::batch storage;
  const graph::batch& whole = src.read(0, 0, 10, storage);
  CHECK(&whole == &batches[0]);  // a whole batch is read in place
  CHECK(src.read(0, 2, 5, storage).at("x").dim(0) == 3);
}

TEST_CASE("run_slices: a worker the machine slows takes fewer slices, every slice runs once; ordered: one worker, in order") {
  test::single_node relu("Relu", {"x"});
  relu.m.main.inputs.push_back(test::info("x", graph::dtype::float32));
  const std::vector<graph::batch> batches = {{{"x", graph::tensor(graph::dtype::float32, {16, 3})}}};
  const graph::batches_in_memory src(batches);
  const auto slices = graph::plan_slices(src, 1, 2);
  REQUIRE(slices.size() == 8);
  for (const bool ordered : {false, true}) {
    CAPTURE(ordered);
    std::vector<std::unique_ptr<graph::executor>> workers;
    std::vector<std::vector<std::int64_t>> seen(2);  // rows each worker ran, by the slice's size
    for (std::size_t w = 0; w < 2; ++w) {
      workers.push_back(std::make_unique<graph::executor>(relu.m));
      workers[w]->hooks().on_tensor("y", [&seen, w](const std::string&, const graph::tensor& y) {
        seen[w].push_back(y.dim(0));
        if (w == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a slow core
      });
    }
    graph::calibration_options opt;
    opt.threads = 2;
    graph::run_slices(src, slices, {workers[0].get(), workers[1].get()}, opt, ordered);
    CHECK(seen[0].size() + seen[1].size() == 8);
    if (ordered) CHECK(seen[1].empty());
    else CHECK(seen[0].size() < seen[1].size());
  }
}

#ifdef AMCTQ_SOURCE_DIR
namespace {

std::string model_path() { return std::string(AMCTQ_SOURCE_DIR) + "/models/fmnist_cnn.onnx"; }

graph::batch images(std::int64_t n) {
  const graph::tensor all = io::read_npy(std::string(AMCTQ_SOURCE_DIR) + "/models/fmnist_calib.npy");
  return {{"image", graph::rows_of(all, 0, n)}};
}

// The record a quantizer of the bundled CNN writes after calibrating under `opt`.
std::string record_after(const graph::calibration_source& src, const graph::calibration_options& opt,
                         int batch_num = 2, calib_method algo = calib_method::ifmr) {
  const auto m = io::read_onnx(model_path());
  auto c = graph::create_quant_config(m, {}, batch_num);
  for (auto& l : c.layers) l.settings.activation.algo = algo;
  graph::quantizer q(m, c);
  q.calibrate(src, opt);
  return io::write_record_json(q.record());
}

// In-process stand-in for MPI: `ranks` threads, each depositing its shard and taking all.
struct rendezvous {
  explicit rendezvous(int n) : shards(static_cast<std::size_t>(n)) {}
  graph::shard_exchange for_rank(int r) {
    return [this, r](const graph::calibration_shard& mine) {
      std::unique_lock<std::mutex> lock(m);
      shards[static_cast<std::size_t>(r)] = mine;
      if (++arrived == static_cast<int>(shards.size())) cv.notify_all();
      cv.wait(lock, [this] { return arrived == static_cast<int>(shards.size()); });
      return shards;
    };
  }
  std::mutex m;
  std::condition_variable cv;
  int arrived = 0;
  std::vector<graph::calibration_shard> shards;
};

}  // namespace

TEST_CASE("pipeline: threads and processes give the record of one executor, for every method") {
  const std::vector<graph::batch> batches = {images(40), images(40)};
  const graph::batches_in_memory src(batches);
  for (calib_method algo : {calib_method::ifmr, calib_method::entropy,
                                   calib_method::moving_average, calib_method::pot_diffs}) {
    CAPTURE(to_string(algo));
    graph::calibration_options one;
    one.max_slice_rows = 6;
    const std::string ref = record_after(src, one, 2, algo);
    for (int threads : {2, 3, 5}) {
      graph::calibration_options opt = one;
      opt.threads = threads;
      CHECK(record_after(src, opt, 2, algo) == ref);
    }
    for (int ranks : {2, 3})
      for (const bool claimed : {false, true}) {  // fixed shares, or slices claimed from one count
        CAPTURE(ranks);
        CAPTURE(claimed);
        rendezvous meet(ranks);
        std::atomic<std::size_t> count{0};
        std::vector<std::string> got(static_cast<std::size_t>(ranks));
        std::vector<std::thread> procs;
        for (int r = 0; r < ranks; ++r)
          procs.emplace_back([&, r] {
            graph::calibration_options opt = one;
            opt.threads = 2;
            opt.rank = r;
            opt.ranks = ranks;
            opt.exchange = meet.for_rank(r);
            if (claimed) opt.job_slices = [&count] { return graph::slice_counter([&count] { return count++; }); };
            got[static_cast<std::size_t>(r)] = record_after(src, opt, 2, algo);
          });
        for (auto& t : procs) t.join();
        for (const auto& g : got) CHECK(g == ref);  // every process ends with the same record
      }
  }
}

TEST_CASE("pipeline: fewer slices than threads: the spare threads work inside the ops, and the record stays") {
  const std::vector<graph::batch> batches = {images(3)};
  const graph::batches_in_memory src(batches);
  graph::calibration_options one;  // one slice of 3 rows
  const std::string ref = record_after(src, one, 1);
  for (int threads : {2, 3}) {
    graph::calibration_options opt = one;
    opt.threads = threads;
    CHECK(record_after(src, opt, 1) == ref);
  }
}

TEST_CASE("pipeline: a released calibration model keeps the record and refuses another calibrate") {
  const std::vector<graph::batch> batches = {images(4)};
  const graph::batches_in_memory src(batches);
  const auto m = io::read_onnx(model_path());
  graph::quantizer q(m, graph::create_quant_config(m, {}, 1));
  q.calibrate(src, {});
  const std::string before = io::write_record_json(q.record());
  q.release_calibration_model();
  CHECK(io::write_record_json(q.record()) == before);
  CHECK_THROWS_WITH_AS(q.calibrate(src, {}), doctest::Contains("calibration model was released"), amctq::error);
}

TEST_CASE("pipeline: released float weights go when nothing is to read them, and the saved models stay") {
  // Learned rounding and bias correction read the float weights in the first calibrate(): with
  // either configured they stay until it has run them; else each goes with quantize_model().
  const std::vector<graph::batch> batches = {images(6)};
  const graph::batches_in_memory src(batches);
  const auto m = io::read_onnx(model_path());
  auto saved = [](const graph::quantizer& q) {
    const auto a = io::serialize_onnx(graph::lower_qdq(q.float_model(), q.layers(), q.record()));
    const auto b = io::serialize_onnx(graph::lower_qoperator(q.float_model(), q.layers(), q.record()));
    return std::string(reinterpret_cast<const char*>(a.data()), a.size()) + "|" +
           std::string(reinterpret_cast<const char*>(b.data()), b.size()) + "|" + io::write_record_json(q.record());
  };
  enum class extra { none, nuq, adaround, bias_correction };
  for (extra e : {extra::none, extra::nuq, extra::adaround, extra::bias_correction}) {
    CAPTURE(static_cast<int>(e));
    auto c = graph::create_quant_config(m, {}, 1);
    c.global.include_bias_corr = e == extra::bias_correction;
    for (auto& l : c.layers) {
      if (e == extra::nuq) l.settings.weights.algo = graph::wts_algo::nuq;
      if (e == extra::adaround) {
        l.settings.weights.algo = graph::wts_algo::adaround;
        l.settings.weights.adaround.iterations = 20;
        l.settings.weights.adaround.batch = 4;  // the Gemms see one column per image
      }
    }
    graph::quantizer kept(m, c);
    kept.calibrate(src, {});
    const std::string ref = saved(kept);
    CHECK_NOTHROW(graph::build_layer_report(kept, batches));

    graph::quantizer q(m, c);
    q.release_float_weights();
    q.quantize_model();
    const bool read_later = e == extra::adaround || e == extra::bias_correction;
    CHECK(q.float_weights_released() == !read_later);
    std::size_t weights = 0, empty = 0;
    auto count = [&] {
      weights = empty = 0;
      for (const auto& l : q.layers()) {
        if (l.weight.empty()) continue;
        ++weights;
        empty += q.float_model().main.find_initializer(l.weight)->value.bytes().empty();
      }
    };
    count();
    REQUIRE(weights >= 3);
    CHECK(empty == (read_later ? 0 : weights));
    q.calibrate(src, {});
    count();
    CHECK(empty == weights);
    CHECK(q.float_weights_released());
    CHECK(saved(q) == ref);
    q.calibrate(src, {});  // again, from the codes alone
    CHECK(saved(q) == ref);
    CHECK_THROWS_WITH_AS(graph::build_layer_report(q, batches), doctest::Contains("release_float_weights"),
                         amctq::error);
  }
  // Asked for once calibrated: they go at once.
  graph::quantizer q(m, graph::create_quant_config(m, {}, 1));
  q.calibrate(src, {});
  CHECK(!q.float_weights_released());
  q.release_float_weights();
  CHECK(q.float_weights_released());
}

TEST_CASE("pipeline: weights held as int8 codes and made per node give the record of float-held weights") {
  // A bound below the model's weights: the calibration model keeps them as codes and each node
  // makes its weight when it runs. No bound: they are made float up front, for executors that keep
  // them packed. One row per slice either way (the bound is below one row), so only where the
  // weights are held differs; minmax's ranges move with any bit of any weight.
  const std::vector<graph::batch> batches = {images(5), images(5)};
  const graph::batches_in_memory src(batches);
  const auto m = io::read_onnx(model_path());
  for (calib_method algo : {calib_method::minmax, calib_method::ifmr}) {
    for (graph::wts_algo w : {graph::wts_algo::arq, graph::wts_algo::nuq}) {
      CAPTURE(to_string(algo));
      CAPTURE(graph::to_string(w));
      auto c = graph::create_quant_config(m, {}, 2);
      for (auto& l : c.layers) {
        l.settings.activation.algo = algo;
        l.settings.weights.algo = w;
      }
      auto record = [&](const graph::calibration_options& opt) {
        graph::quantizer q(m, c);
        q.calibrate(src, opt);
        std::string r = io::write_record_json(q.record());
        q.calibrate(src, opt);  // again: from the codes the record took
        CHECK(io::write_record_json(q.record()) == r);
        return r;
      };
      graph::calibration_options floats;
      floats.max_slice_rows = 1;
      REQUIRE(graph::keep_packed_weights(m, floats));
      graph::calibration_options codes = floats;
      codes.max_memory = 100;
      codes.strict_memory = false;
      REQUIRE(!graph::keep_packed_weights(m, codes));
      const std::string ref = record(floats);
      CHECK(record(codes) == ref);
      codes.threads = 2;
      CHECK(record(codes) == ref);
    }
  }
}

TEST_CASE("pipeline: calibration with codes-held weights sees the weights fake-quantized in place") {
  // The reference is independent of how the pipeline makes its weights: the float model with every
  // quantized weight fake-quantized in place under the record's params, observed with minmax.
  const std::vector<graph::batch> batches = {images(5)};
  const graph::batches_in_memory src(batches);
  const auto m = io::read_onnx(model_path());
  auto c = graph::create_quant_config(m, {}, 1);
  for (auto& l : c.layers) l.settings.activation.algo = calib_method::minmax;
  graph::quantizer q(m, c);
  graph::calibration_options codes;
  codes.max_memory = 100;  // below the weights: made per node
  codes.strict_memory = false;
  q.calibrate(src, codes);
  graph::model ref = q.float_model();
  const auto& layers = q.layers();
  REQUIRE(layers.size() >= 3);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (layers[i].weight.empty()) continue;  // AveragePool
    graph::tensor& w = ref.main.find_initializer(layers[i].weight)->value;
    arq_fake_quantize(tensor_view<float, 1>(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())}),
                      graph::layout_of(ref.main.nodes[layers[i].node_index], w), q.record().layers[i].wts,
                      q.settings()[i].weights.rounding);
  }
  graph::executor ex(ref);
  graph::activation_observers obs(ex);
  std::vector<std::size_t> watched;
  for (std::size_t i = 0; i < layers.size(); ++i)
    watched.push_back(obs.watch(layers[i].input, q.settings()[i].activation,
                                graph::find_layer_kind(layers[i].op_type)->activation_channel_axis));
  // Row by row, as the pipeline's one-row slices run: a GEMM's blocking, and so its sums, follow the row count.
  for (std::int64_t r = 0; r < src.rows(0); ++r) {
    graph::batch storage;
    ex.run(src.read(0, r, r + 1, storage));
  }
  for (std::size_t i = 0; i < layers.size(); ++i) {
    CAPTURE(layers[i].name);
    const quant_params want = obs.result(watched[i]), got = q.record().layers[i].act;
    CHECK(got.scale == want.scale);
    CHECK(got.zero_point == want.zero_point);
  }
}

TEST_CASE("pipeline: a memory bound sizes the slices, and one that no row fits says what would") {
  const std::vector<graph::batch> batches = {images(24)};
  const graph::batches_in_memory src(batches);
  const auto m = io::read_onnx(model_path());
  const std::size_t per_row = graph::bytes_per_row(m, src);
  CHECK(per_row > 28 * 28 * 4);
  // A worker that has not run measures what a fresh executor does (a hook on every tensor would
  // stop the Conv + Relu folding and raise the peak); its hooks skip the probe row and are back after.
  graph::executor worker(m);
  int seen = 0;
  worker.hooks().on_any([&seen](const std::string&, const graph::tensor&) { ++seen; });
  CHECK(graph::bytes_per_row(m, src, nullptr, &worker) == per_row);
  CHECK(seen == 0);
  worker.run(batches[0]);
  CHECK(seen > 0);
  graph::calibration_options opt;
  opt.max_memory = per_row * 5;
  CHECK(graph::slice_rows(m, src, 1, opt, false) == 5);
  opt.max_slice_rows = 3;
  CHECK(graph::slice_rows(m, src, 1, opt, false) == 3);
  opt.max_memory = 100;
  CHECK_THROWS_WITH_AS(graph::slice_rows(m, src, 1, opt, false),
                       doctest::Contains("one calibration row needs about 1 MiB of activations, more than the memory "
                                         "bound of 1 MiB; raise the bound to at least"),
                       amctq::error);
  opt.strict_memory = false;
  CHECK(graph::slice_rows(m, src, 1, opt, false) == 1);
  opt.strict_memory = true;
  opt.max_memory = per_row * 5;
  CHECK_THROWS_WITH_AS(graph::slice_rows(m, src, 1, opt, true), doctest::Contains("observe each batch whole"),
                       amctq::error);
}

TEST_CASE("calibration data: rows read from a mapped file equal the file's, converted and byte-swapped") {
  const std::string path = "test_pipeline_scale_rows.npy";
  // float64, big-endian, 6 rows of 2 x 3: written by hand so the reader must swap and convert.
  std::vector<unsigned char> file = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  std::string header = "{'descr': '>f8', 'fortran_order': False, 'shape': (6, 2, 3), }";
  while ((10 + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  file.push_back(static_cast<unsigned char>(header.size() & 0xff));
  file.push_back(static_cast<unsigned char>(header.size() >> 8));
  file.insert(file.end(), header.begin(), header.end());
  for (int i = 0; i < 36; ++i) {
    const double v = 0.5 * i - 3.0;
    unsigned char b[8];
    std::memcpy(b, &v, 8);
    for (int k = 7; k >= 0; --k) file.push_back(b[k]);
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f);
  std::fwrite(file.data(), 1, file.size(), f);
  std::fclose(f);
  graph::model m;
  graph::value_info in;
  in.name = "x";
  in.elem_type = graph::dtype::float32;
  m.main.inputs.push_back(in);
  m.main.outputs.push_back(in);
  const io::calibration_data d = io::read_calibration_data({path}, m);
  REQUIRE(d.rows == 6);
  REQUIRE(d.notes.size() == 1);  // float64 -> float32
  const graph::tensor rows = d.inputs.at("x").rows(2, 5);
  REQUIRE(rows.type() == graph::dtype::float32);
  REQUIRE(rows.shape() == std::vector<std::int64_t>{3, 2, 3});
  for (int i = 0; i < 18; ++i) CHECK(rows.data<float>()[i] == static_cast<float>(0.5 * (i + 12) - 3.0));
  const io::calibration_batches batches(d, 2);
  graph::batch storage;
  CHECK(batches.read(1, 1, 2, storage).at("x").data<float>()[0] == static_cast<float>(0.5 * 24 - 3.0));
  CHECK_THROWS_AS(d.inputs.at("x").rows(4, 7), amctq::error);
  std::remove(path.c_str());
}
#endif

}  // namespace test_pipeline_scale
