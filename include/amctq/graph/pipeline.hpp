// The AMCT flow over an ONNX graph: create_quant_config -> quantizer (BatchNorm folded) ->
// quantize_preprocess (DMQ balance, optional) -> quantize_model (ARQ weights) ->
// calibrate(batches) -> save_model (fake-quant QDQ model, deploy QOperator model, record.json).
#ifndef AMCTQ_GRAPH_PIPELINE_HPP
#define AMCTQ_GRAPH_PIPELINE_HPP

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "amctq/algorithms/arq.hpp"
#include "amctq/algorithms/balance.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/fold_batchnorm.hpp"
#include "amctq/graph/passes/insert_observers.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/graph/quant_layers.hpp"
#include "amctq/graph/quant_record.hpp"

namespace amctq::graph {

using batch = std::map<std::string, tensor>;
/// Called after each calibration batch with (batches done, batches total).
using progress_fn = std::function<void(int, int)>;

namespace detail {


inline layer_settings settings_for(const quant_config& c, const std::string& op_type) {
  auto it = c.layer_type.find(op_type);
  if (it != c.layer_type.end()) return it->second;
  layer_settings s;
  s.activation = c.activation;
  s.weights = c.weights;
  return s;
}

}  // namespace detail

/// The default config of `m`: every quantizable layer, with skip_layers disabled. When
/// `definition` is given, its global settings, defaults and layer_type overrides are the base
/// (AMCT's config_definition); its own layer list is ignored.
inline quant_config create_quant_config(const model& m, const std::vector<std::string>& skip_layers = {},
                                        int batch_num = 1, bool activation_offset = true,
                                        const quant_config* definition = nullptr) {
  quant_config c = definition ? *definition : quant_config{};
  c.layers.clear();
  c.batch_num = batch_num;
  c.activation_offset = activation_offset;
  if (!definition) c.activation.asymmetric = activation_offset;
  c.skip_layers = skip_layers;
  model folded = m;
  passes::fold_batchnorm(folded);
  for (const auto& l : find_quant_layers(folded.main)) {
    layer_config lc;
    lc.name = l.name;
    lc.op_type = l.op_type;
    lc.settings = detail::settings_for(c, l.op_type);
    c.layers.push_back(std::move(lc));
  }
  validate(c);
  return c;
}

/// One model being quantized. Keeps the float model (BatchNorm folded, balanced) and, after
/// calibrate(), the record the exporters read.
class quantizer {
 public:
  quantizer(model m, quant_config c) : model_(std::move(m)), config_(std::move(c)) {
    validate(config_);
    passes::fold_batchnorm(model_);
    layers_ = find_quant_layers(model_.main);
    for (const auto& l : config_.layers) {
      bool found = false;
      for (const auto& q : layers_) found = found || (q.name == l.name && q.op_type == l.op_type);
      AMCTQ_CHECK(found, errc::invalid_argument, "quantizer",
                  "config.layers.", l.name, ": no ", l.op_type, " layer of that name in the model");
    }
    std::vector<quant_layer> enabled;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const quant_layer& q = layers_[i];
      const layer_config* lc = config_.find(q.name);
      layer_settings s = lc ? lc->settings : detail::settings_for(config_, q.op_type);
      bool skip = false;
      for (const auto& n : config_.skip_layers) skip = skip || n == q.name;
      if (config_.global.keep_first_last_layer_accuracy && (i == 0 || i + 1 == layers_.size())) skip = true;
      if (skip || !s.quant_enable) continue;
      enabled.push_back(q);
      settings_.push_back(s);
    }
    layers_ = std::move(enabled);
  }

  const model& float_model() const noexcept { return model_; }
  const quant_config& config() const noexcept { return config_; }
  const std::vector<quant_layer>& layers() const noexcept { return layers_; }
  const std::vector<layer_settings>& settings() const noexcept { return settings_; }
  const quant_record& record() const {
    AMCTQ_CHECK(calibrated_, errc::invalid_argument, "quantizer::record", "calibrate() has not run");
    return record_;
  }
  bool calibrated() const noexcept { return calibrated_; }

  /// Requests DMQ balancing for every layer with a dmq_balancer_param; the factors are
  /// computed from the first calibrate() batches and folded into the weights.
  void quantize_preprocess() { preprocess_ = true; }

  /// Fixes the weight quantization (ARQ) of every enabled layer.
  void quantize_model() { model_quantized_ = true; }

  /// Runs the calibration batches (at least config.batch_num of them; the first batch_num are
  /// used) and computes every layer's parameters.
  void calibrate(const std::vector<batch>& batches, const progress_fn& progress = {}) {
    const int need = config_.batch_num;
    AMCTQ_CHECK(static_cast<int>(batches.size()) >= need, errc::invalid_argument, "calibrate",
                "calibration needs ", need, " batches (config batch_num = ", need, "), got ", batches.size());
    // The balance factors are computed and folded into the weights, but the matching division
    // of the layer input is not yet inserted into the calibration and exported graphs; refuse
    // rather than export a model whose balanced layers are wrong.
    AMCTQ_CHECK(!(preprocess_ && needs_balance()), errc::unsupported, "calibrate",
                "dmq_balancer_param is set, but exporting balanced layers is not implemented yet; remove "
                "dmq_balancer_param from the config");
    if (!model_quantized_) quantize_model();
    const int total = need * (preprocess_ && needs_balance() ? 2 : 1);
    int done = 0;
    if (preprocess_ && needs_balance()) balance(batches, need, progress, done, total);
    record_ = quant_record{};
    model calib = model_;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layer_record r;
      r.name = layers_[i].name;
      r.op_type = layers_[i].op_type;
      r.act_bits = settings_[i].activation.num_bits;
      auto f = balance_.find(r.name);
      if (f != balance_.end()) r.tensor_balance_factor = f->second;
      if (!layers_[i].weight.empty()) quantize_weights(layers_[i], settings_[i].weights, r, calib);
      record_.layers.push_back(std::move(r));
    }
    executor ex(calib);
    std::vector<std::string> watched;
    for (const auto& l : layers_) watched.push_back(l.input);
    observer_set obs(ex, watched);
    // The deploy lowering needs the layer input shapes (channel count, rank) the graph does not state.
    std::map<std::string, std::vector<std::int64_t>> shapes;
    std::vector<tensor_hooks::handle> shape_hooks;
    for (const auto& t : watched)
      shape_hooks.push_back(ex.hooks().on_tensor(t, [&shapes](const std::string& n, const tensor& v) { shapes[n] = v.shape(); }));
    for (int b = 0; b < need; ++b) {
      ex.run(balanced_inputs(batches[static_cast<std::size_t>(b)]));
      if (progress) progress(++done, total);
    }
    for (auto h : shape_hooks) ex.hooks().remove(h);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layer_record& r = record_.layers[i];
      r.input_shape = shapes[layers_[i].input];
      r.act = obs.at(layers_[i].input).result(settings_[i].activation);
      if (!layers_[i].bias.empty()) {
        const tensor& b = model_.main.find_initializer(layers_[i].bias)->value;
        std::vector<float> bias(b.data<float>(), b.data<float>() + b.size());
        if (layers_[i].op_type == "Gemm") {
          const float beta = model_.main.nodes[layers_[i].node_index].get_float("beta", 1.0f);
          for (auto& v : bias) v *= beta;
        }
        AMCTQ_CHECK(b.size() == r.wts.channels() || r.wts.channels() == 1, errc::unsupported, "calibrate", "layer '",
                    r.name, "': bias of ", b.size(), " values does not match ", r.wts.channels(), " output channels");
        r.bias_q = quantize_bias(bias.data(), bias.size(), r.act.scale[0], r.wts, r.name);
      }
    }
    calibrated_ = true;
  }

 private:
  bool needs_balance() const {
    for (const auto& s : settings_)
      if (s.dmq_balancer_param) return true;
    return false;
  }

  // Balance inputs are the calibration inputs unchanged: the balance factors live in the
  // weights and in a division of the layer input the exporters insert; the calibration model
  // applies that division through its weights' inverse only for observation purposes, so the
  // activation observed is the layer input divided by the factors.
  batch balanced_inputs(const batch& b) const { return b; }

  void balance(const std::vector<batch>& batches, int need, const progress_fn& progress, int& done, int total) {
    executor ex(model_);
    std::map<std::string, std::vector<float>> absmax;
    std::vector<tensor_hooks::handle> hs;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      if (!settings_[i].dmq_balancer_param || layers_[i].weight.empty()) continue;
      const std::string name = layers_[i].name;
      const bool conv = layers_[i].op_type == "Conv" || layers_[i].op_type == "ConvTranspose";
      hs.push_back(ex.hooks().on_tensor(layers_[i].input, [&absmax, name, conv](const std::string&, const tensor& t) {
        const int axis = conv ? 1 : static_cast<int>(t.rank()) - 1;
        const auto C = static_cast<std::size_t>(t.dim(static_cast<std::size_t>(axis)));
        std::size_t inner = 1, outer = 1;
        for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < t.rank(); ++d) inner *= static_cast<std::size_t>(t.dim(d));
        for (std::size_t d = 0; d < static_cast<std::size_t>(axis); ++d) outer *= static_cast<std::size_t>(t.dim(d));
        auto& a = absmax[name];
        a.resize(C, 0.0f);
        const float* p = t.data<float>();
        for (std::size_t o = 0; o < outer; ++o)
          for (std::size_t c = 0; c < C; ++c)
            for (std::size_t i = 0; i < inner; ++i) a[c] = std::fmax(a[c], std::fabs(p[(o * C + c) * inner + i]));
      }));
    }
    for (int b = 0; b < need; ++b) {
      ex.run(batches[static_cast<std::size_t>(b)]);
      if (progress) progress(++done, total);
    }
    for (auto h : hs) ex.hooks().remove(h);
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      auto it = absmax.find(layers_[i].name);
      if (it == absmax.end()) continue;
      tensor& w = model_.main.find_initializer(layers_[i].weight)->value;
      const node& n = model_.main.nodes[layers_[i].node_index];
      const weight_layout L = layout_of(n, w);
      const auto wabs = channel_absmax(tensor_view<const float, 1>(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())}), L,
                                       channel_side::input);
      const auto f = dmq_balance_factors(it->second, wabs, *settings_[i].dmq_balancer_param);
      scale_channels(tensor_view<float, 1>(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())}), L,
                     channel_side::input, f);
      balance_[layers_[i].name] = f;
    }
  }

  void quantize_weights(const quant_layer& l, const weight_quant& wq, layer_record& r, model& calib) {
    tensor& w = model_.main.find_initializer(l.weight)->value;
    const node& n = model_.main.nodes[l.node_index];
    const weight_layout L = layout_of(n, w);
    arq_config cfg;
    cfg.bits = wq.num_bits;
    cfg.symmetric = true;
    // ONNX per-axis params name one tensor axis; grouped ConvTranspose has no such axis.
    cfg.per_channel = wq.channel_wise && L.out_channel_is_axis();
    const tensor_view<const float, 1> flat(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())});
    r.wts = arq_params(flat, L, cfg);
    r.weight_q = tensor(dtype::int8, w.shape());
    arq_quantize(flat, L, r.wts, r.weight_q.data<std::int8_t>());
    tensor& fq = calib.main.find_initializer(l.weight)->value;
    arq_fake_quantize(tensor_view<float, 1>(fq.data<float>(), {static_cast<std::ptrdiff_t>(fq.size())}), L, r.wts);
  }

  model model_;
  quant_config config_;
  std::vector<quant_layer> layers_;
  std::vector<layer_settings> settings_;
  std::map<std::string, std::vector<float>> balance_;
  quant_record record_;
  bool preprocess_ = false;
  bool model_quantized_ = false;
  bool calibrated_ = false;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_PIPELINE_HPP
