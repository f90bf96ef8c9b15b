// Accuracy-driven automatic quantization (issue 22; docs/auto_search.md): AMCT's accuracy-based
// auto calibration (strategy fallback), auto NUQ (nuq) and INT4 / INT8 mixed precision (mixed),
// each judged by the caller's evaluator on the saved fake-quant model.
//
//   1. the evaluator scores the float model (its own file): the original metric;
//   2. the sensitivity of every searched layer: the quantizer calibrates once with every searched
//      layer at the strategy's most compressed level; for each layer, a fake-quant model with only
//      that layer quantized (from that one record) runs on the calibration batches in amctq's
//      executor, and its outputs are compared with the float model's (cosine similarity);
//   3. graph::auto_search over the levels, each candidate's config quantized, saved to a temporary
//      folder and scored (metrics cached by config text);
//   4. the best candidate's models, record.json, final_config.json, ranking_info.json and
//      auto_search.json in DIR. When no candidate satisfies, an error and no model in DIR.
#ifndef AMCTQ_IO_AUTO_QUANTIZE_HPP
#define AMCTQ_IO_AUTO_QUANTIZE_HPP

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "amctq/error.hpp"
#include "amctq/graph/auto_search.hpp"
#include "amctq/graph/integer_sim.hpp"
#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/pipeline.hpp"
#include "amctq/io/atomic_file.hpp"
#include "amctq/io/config_json.hpp"
#include "amctq/io/save_model.hpp"

namespace amctq::io {

/// The user's evaluator (AMCT's AutoNuqEvaluatorBase): a metric of a saved model, higher is
/// better, and whether a new metric is close enough to the original.
class auto_evaluator {
 public:
  virtual ~auto_evaluator() = default;
  virtual double eval_model(const std::string& model_path, int batch_num) = 0;
  virtual bool is_satisfied(double original_metric, double new_metric) = 0;
};

enum class auto_strategy { fallback, nuq, mixed };

inline const char* to_string(auto_strategy s) noexcept {
  switch (s) {
    case auto_strategy::fallback: return "fallback";
    case auto_strategy::nuq: return "nuq";
    case auto_strategy::mixed: return "mixed";
  }
  return "?";
}

inline auto_strategy parse_auto_strategy(const std::string& s) {
  if (s == "fallback") return auto_strategy::fallback;
  if (s == "nuq") return auto_strategy::nuq;
  if (s == "mixed") return auto_strategy::mixed;
  AMCTQ_THROW(errc::invalid_argument, "auto_quantize", "unknown strategy '", s, "' (fallback, nuq or mixed)");
}

struct auto_options {
  auto_strategy strategy = auto_strategy::fallback;
  int max_evals = 0;             ///< evaluations of quantized candidates allowed; 0: no limit
  std::function<void(const std::string&)> note;  ///< progress lines
};

/// One searched layer as ranking_info.json lists it.
struct auto_layer {
  std::string name;
  std::string op_type;
  double similarity = 1;  ///< cosine similarity of the model outputs with only this layer quantized
  int rank = 0;           ///< 0: the most sensitive
  std::string chosen;     ///< the level name the search gave it
  std::size_t weights = 0;  ///< weight elements (0 for a kind without weight)
};

struct auto_result {
  double original_metric = 0;
  double final_metric = 0;
  double compressed_metric = 0;  ///< every searched layer at the most compressed level
  int evaluations = 0;           ///< evaluator calls, the float model's included
  bool budget_exhausted = false;
  std::vector<auto_layer> layers;  ///< in model order
  std::vector<std::string> level_names;
  double weight_bytes = 0;             ///< of the searched layers, as chosen
  double compressed_weight_bytes = 0;  ///< every searched layer at level 0
  double float_weight_bytes = 0;
  graph::quant_config config;          ///< final_config.json
  saved_paths paths;
  std::string final_config, ranking_info, search_log;
};

namespace detail {

struct auto_level {
  const char* name;
  double weight_bits;  ///< per weight element; 0: the base config's weight num_bits
  void (*apply)(graph::layer_settings&);
};

// The levels of each strategy, most compressed first. NUQ's bits are the index into its
// num_steps levels (log2 num_steps), what a compressing loader can store.
inline std::vector<auto_level> auto_levels(auto_strategy s) {
  switch (s) {
    case auto_strategy::fallback:
      return {{"quantized", 0, [](graph::layer_settings&) {}},
              {"float", 32, [](graph::layer_settings& l) { l.quant_enable = false; }}};
    case auto_strategy::nuq:
      return {{"nuq16", 4, [](graph::layer_settings& l) {
                 l.weights.algo = graph::wts_algo::nuq;
                 l.weights.num_bits = 8;
                 l.weights.num_steps = 16;
               }},
              {"nuq32", 5, [](graph::layer_settings& l) {
                 l.weights.algo = graph::wts_algo::nuq;
                 l.weights.num_bits = 8;
                 l.weights.num_steps = 32;
               }},
              {"uniform", 0, [](graph::layer_settings&) {}}};
    case auto_strategy::mixed:
      return {{"w4a4", 4, [](graph::layer_settings& l) {
                 if (l.weights.algo == graph::wts_algo::nuq) l.weights.algo = graph::wts_algo::arq;
                 l.weights.num_bits = 4;
                 l.activation.num_bits = 4;
               }},
              {"w4a8", 4, [](graph::layer_settings& l) {
                 if (l.weights.algo == graph::wts_algo::nuq) l.weights.algo = graph::wts_algo::arq;
                 l.weights.num_bits = 4;
                 l.activation.num_bits = 8;
               }},
              {"w8a8", 8, [](graph::layer_settings& l) {
                 l.weights.num_bits = 8;
                 l.activation.num_bits = 8;
               }}};
  }
  return {};
}

// Removes a folder tree when it goes out of scope: the candidates' models never outlive the run.
struct temp_folder {
  std::filesystem::path path;
  temp_folder() {
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::temp_directory_path(ec);
    std::string tmpl = ((ec ? std::filesystem::path("/tmp") : base) / "amctq_auto_XXXXXX").string();
    AMCTQ_CHECK(::mkdtemp(tmpl.data()) != nullptr, errc::io, "auto_quantize", "cannot create a temporary folder '",
                tmpl, "'");
    path = tmpl;
  }
  temp_folder(const temp_folder&) = delete;
  temp_folder& operator=(const temp_folder&) = delete;
  ~temp_folder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// Calibrated as `amctq quantize` calibrates, so each candidate's files are the ones it would write.
inline void run_quantizer(graph::quantizer& q, const std::vector<graph::batch>& batches) {
  const graph::batches_in_memory src(batches);
  const graph::calibration_options opt = graph::default_calibration_options();
  q.quantize_preprocess(src, opt);
  q.quantize_model();
  q.calibrate(src, opt);
}

// The graph outputs of `m` on the first batch_num batches, float ones only, concatenated in
// output-name order.
template <class Run>
std::vector<float> output_values(const std::vector<graph::batch>& batches, int batch_num, Run run) {
  std::vector<float> v;
  for (int b = 0; b < batch_num; ++b)
    for (const auto& [name, t] : run(batches[static_cast<std::size_t>(b)]))
      if (t.type() == graph::dtype::float32) v.insert(v.end(), t.template data<float>(), t.template data<float>() + t.size());
  return v;
}

}  // namespace detail

/// Searches a config for `m` (read from `model_path`, which the evaluator scores as the float
/// model) starting from `base`, and writes the result to `out_dir` with file stem `stem`.
/// Throws when no candidate satisfies (nothing is written to out_dir then).
inline auto_result auto_quantize(const graph::model& m, const std::string& model_path, const graph::quant_config& base,
                                 const std::vector<graph::batch>& batches, auto_evaluator& ev,
                                 const std::string& out_dir, const std::string& stem, const auto_options& opt = {}) {
  const auto note = [&](const std::string& s) {
    if (opt.note) opt.note(s);
  };
  auto_result res;
  const std::vector<detail::auto_level> levels = detail::auto_levels(opt.strategy);
  for (const auto& l : levels) res.level_names.push_back(l.name);
  const int batch_num = base.batch_num;

  // The searched layers: those the base config quantizes (NUQ: those with a weight).
  std::vector<graph::quant_layer> layers;
  std::vector<double> base_bits;
  {
    graph::quantizer qb(m, base);
    for (std::size_t i = 0; i < qb.layers().size(); ++i) {
      const graph::quant_layer& l = qb.layers()[i];
      if (opt.strategy == auto_strategy::nuq && l.weight.empty()) continue;
      layers.push_back(l);
      base_bits.push_back(qb.settings()[i].weights.num_bits);
      auto_layer a;
      a.name = l.name;
      a.op_type = l.op_type;
      if (!l.weight.empty()) a.weights = qb.float_model().main.find_initializer(l.weight)->value.size();
      res.layers.push_back(std::move(a));
    }
  }
  AMCTQ_CHECK(!layers.empty(), errc::invalid_argument, "auto_quantize", "the config quantizes no layer",
              opt.strategy == auto_strategy::nuq ? " with a weight" : "", ": nothing to search");
  const std::size_t n = layers.size();

  auto config_for = [&](const graph::level_assignment& a) {
    graph::quant_config c = base;
    for (std::size_t i = 0; i < n; ++i) {
      graph::layer_config* lc = c.find(layers[i].name);
      if (!lc) {
        c.layers.push_back({layers[i].name, layers[i].op_type, graph::detail::settings_for(base, layers[i].op_type)});
        lc = &c.layers.back();
      }
      levels[static_cast<std::size_t>(a[i])].apply(lc->settings);
    }
    graph::validate(c);
    return c;
  };
  auto bytes_of = [&](const graph::level_assignment& a) {
    double bytes = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double bits = levels[static_cast<std::size_t>(a[i])].weight_bits;
      bytes += static_cast<double>(res.layers[i].weights) * (bits > 0 ? bits : base_bits[i]) / 8.0;
    }
    return bytes;
  };

  // 1. The float model.
  res.original_metric = ev.eval_model(model_path, batch_num);
  ++res.evaluations;
  note("float model: metric " + std::to_string(res.original_metric));
  AMCTQ_CHECK(ev.is_satisfied(res.original_metric, res.original_metric), errc::invalid_argument, "auto_quantize",
              "the evaluator's is_satisfied(original, original) is false for the float model's metric ",
              res.original_metric, ": no quantized model can satisfy it");

  // 2. Sensitivity, from one calibration with every searched layer at level 0.
  const graph::level_assignment compressed(n, 0);
  {
    graph::quantizer q0(m, config_for(compressed));
    detail::run_quantizer(q0, batches);
    graph::executor fx(q0.float_model());
    const std::vector<float> ref =
        detail::output_values(batches, batch_num, [&](const graph::batch& b) { return fx.run(b); });
    std::vector<double> sim(n, 1.0);
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t j = 0;
      while (j < q0.layers().size() && q0.layers()[j].name != layers[i].name) ++j;
      if (j == q0.layers().size()) continue;  // not quantized at level 0: as insensitive as it gets
      graph::quant_record one;
      one.layers = {q0.record().layers[j]};
      const graph::model fq = graph::lower_qdq(q0.float_model(), {q0.layers()[j]}, one);
      const std::vector<float> out =
          detail::output_values(batches, batch_num, [&](const graph::batch& b) { return graph::simulate(fq, b); });
      AMCTQ_CHECK(out.size() == ref.size(), errc::shape_mismatch, "auto_quantize", "layer '", layers[i].name,
                  "': the fake-quant outputs hold ", out.size(), " values, the float ones ", ref.size());
      sim[i] = graph::cosine_similarity(ref.data(), out.data(), ref.size());
      res.layers[i].similarity = sim[i];
    }
    const auto order = graph::sensitivity_order(sim);
    for (std::size_t r = 0; r < n; ++r) res.layers[order[r]].rank = static_cast<int>(r);
    note("ranked " + std::to_string(n) + " layers by sensitivity; the most sensitive: '" + layers[order[0]].name +
         "' (cosine similarity " + std::to_string(sim[order[0]]) + ")");
  }
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[static_cast<std::size_t>(res.layers[i].rank)] = i;

  // 3. The search.
  detail::temp_folder tmp;
  graph::auto_search_problem p;
  p.order = order;
  p.levels = static_cast<int>(levels.size());
  p.max_evals = opt.max_evals;
  p.key = [&](const graph::level_assignment& a) { return write_config_json(config_for(a)); };
  p.satisfied = [&](double metric) { return ev.is_satisfied(res.original_metric, metric); };
  int candidate = 0;
  p.measure = [&](const graph::level_assignment& a) {
    graph::quantizer q(m, config_for(a));
    detail::run_quantizer(q, batches);
    const std::string dir = (tmp.path / ("candidate_" + std::to_string(++candidate))).string();
    const saved_paths sp = save_model(q, dir, stem);
    const double metric = ev.eval_model(sp.fake_quant, batch_num);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::string counts;
    for (std::size_t l = 0; l < levels.size(); ++l)
      counts += std::string(l ? ", " : "") + levels[l].name + " " +
                std::to_string(std::count(a.begin(), a.end(), static_cast<int>(l)));
    note("candidate " + std::to_string(candidate) + " (" + counts + "): metric " + std::to_string(metric));
    return metric;
  };
  const graph::auto_search_result sr = graph::auto_search(p);
  res.evaluations += sr.evaluations;
  res.budget_exhausted = sr.budget_exhausted;
  if (!sr.steps.empty()) res.compressed_metric = sr.steps.front().metric;
  if (!sr.found) {
    if (sr.budget_exhausted)
      AMCTQ_THROW(errc::invalid_argument, "auto_quantize", "no candidate satisfied the evaluator within --max-evals ",
                  opt.max_evals, " evaluations of quantized models (float model metric ", res.original_metric,
                  "); no model was written");
    AMCTQ_THROW(errc::invalid_argument, "auto_quantize", "even with every searched layer at '", levels.back().name,
                "' the metric (", sr.steps.back().metric, ") does not satisfy the evaluator against the float model's ",
                res.original_metric, opt.strategy == auto_strategy::fallback ? "" : " (try --strategy fallback)",
                "; no model was written");
  }
  res.final_metric = sr.best_metric;
  res.config = config_for(sr.best);
  for (std::size_t i = 0; i < n; ++i) res.layers[i].chosen = levels[static_cast<std::size_t>(sr.best[i])].name;
  res.weight_bytes = bytes_of(sr.best);
  res.compressed_weight_bytes = bytes_of(compressed);
  for (const auto& l : res.layers) res.float_weight_bytes += 4.0 * static_cast<double>(l.weights);

  // 4. The outputs.
  graph::quantizer q(m, res.config);
  detail::run_quantizer(q, batches);
  res.paths = save_model(q, out_dir, stem);
  using json = nlohmann::ordered_json;
  res.final_config = (std::filesystem::path(out_dir) / "final_config.json").string();
  save_config_json(res.config, res.final_config);

  json rank = json::object();
  rank["strategy"] = to_string(opt.strategy);
  rank["sensitivity"] =
      "cosine similarity of the model outputs on the calibration batches, float model vs only this layer quantized "
      "at the strategy's most compressed level (lower: more sensitive)";
  rank["levels"] = res.level_names;
  json ls = json::array();
  for (std::size_t r = 0; r < n; ++r) {
    const auto_layer& l = res.layers[order[r]];
    ls.push_back(json{{"rank", l.rank}, {"name", l.name}, {"op_type", l.op_type}, {"similarity", l.similarity},
                      {"chosen", l.chosen}, {"weights", l.weights}});
  }
  rank["layers"] = std::move(ls);
  res.ranking_info = (std::filesystem::path(out_dir) / "ranking_info.json").string();
  const std::string rank_text = rank.dump(2) + "\n";
  write_file_atomic(res.ranking_info, rank_text.data(), rank_text.size());

  json log = json::object();
  log["strategy"] = to_string(opt.strategy);
  log["original_metric"] = res.original_metric;
  log["final_metric"] = res.final_metric;
  log["evaluations"] = res.evaluations;
  log["max_evals"] = opt.max_evals;
  log["budget_exhausted"] = res.budget_exhausted;
  log["weight_bytes"] = res.weight_bytes;
  log["compressed_weight_bytes"] = res.compressed_weight_bytes;
  log["float_weight_bytes"] = res.float_weight_bytes;
  json steps = json::array();
  for (const auto& s : sr.steps) {
    json st{{"phase", s.phase}, {"metric", s.metric}, {"satisfied", s.satisfied}, {"cached", s.cached}};
    json by = json::object();
    for (std::size_t l = 1; l < levels.size(); ++l) {
      json names = json::array();
      for (std::size_t r = 0; r < n; ++r)
        if (s.levels[order[r]] == static_cast<int>(l)) names.push_back(layers[order[r]].name);
      by[levels[l].name] = std::move(names);
    }
    st["layers"] = std::move(by);
    steps.push_back(std::move(st));
  }
  log["steps"] = std::move(steps);
  res.search_log = (std::filesystem::path(out_dir) / "auto_search.json").string();
  const std::string log_text = log.dump(2) + "\n";
  write_file_atomic(res.search_log, log_text.data(), log_text.size());
  return res;
}

}  // namespace amctq::io

#endif  // AMCTQ_IO_AUTO_QUANTIZE_HPP
