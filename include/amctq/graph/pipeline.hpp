// The AMCT flow over an ONNX graph: create_quant_config -> quantizer (BatchNorm folded; Vitis
// ReLU6 -> ReLU and CLE if configured) -> quantize_preprocess(batches) (DMQ balance, where
// configured) -> quantize_model (ARQ weights, NUQ on top where configured) -> calibrate(batches:
// Vitis bias correction if configured, then one activation_observer per watched tensor) ->
// save_model (fake-quant QDQ model, deploy QOperator model, record.json).
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
#include "amctq/algorithms/nuq.hpp"
#include "amctq/error.hpp"
#include "amctq/graph/activation_observers.hpp"
#include "amctq/graph/calibration_run.hpp"
#include "amctq/graph/calibration_source.hpp"
#include "amctq/graph/executor.hpp"
#include "amctq/graph/ir.hpp"
#include "amctq/graph/passes/fold_batchnorm.hpp"
#include "amctq/graph/passes/fold_constants.hpp"
#include "amctq/graph/passes/graph_edit.hpp"
#include "amctq/graph/passes/insert_balance.hpp"
#include "amctq/graph/passes/learn_rounding.hpp"
#include "amctq/graph/passes/lower_qdq.hpp"
#include "amctq/graph/passes/vitis_globals.hpp"
#include "amctq/graph/quant_config.hpp"
#include "amctq/graph/quant_layers.hpp"
#include "amctq/graph/quant_record.hpp"
#include "amctq/graph/tensor_points.hpp"
#include "amctq/graph/weight_params.hpp"

namespace amctq::graph {

namespace detail {


inline layer_settings settings_for(const quant_config& c, const std::string& op_type) {
  auto it = c.layer_type.find(op_type);
  if (it != c.layer_type.end()) return it->second;
  layer_settings s;
  s.activation = c.activation;
  s.weights = c.weights;
  s.bias = c.bias;
  return s;
}

}  // namespace detail

/// The float model as the quantizer works on it: initializers frozen as constants (a quantized
/// model bakes its weights), constant subgraphs folded (a weight reaching its layer through
/// Identity / Transpose / Cast / Reshape of a constant becomes that layer's own initializer, and
/// so does a Constant node's value) and BatchNorm after Conv folded. `amctq config`, `amctq
/// inspect` and the quantizer all find their layers on this form, so they list the same ones.
inline void prepare_float_model(model& m) {
  passes::detail::freeze_initializer_inputs(m.main);
  passes::fold_constants(m);
  passes::fold_batchnorm(m);
}

/// The default config of a model prepare_float_model has run on, found on it as it is: no copy
/// is made (preparing it again changes nothing, so a quantizer given it finds the same layers).
inline quant_config create_quant_config_prepared(const model& prepared, const std::vector<std::string>& skip_layers = {},
                                                 int batch_num = 1, bool activation_offset = true,
                                                 const quant_config* definition = nullptr) {
  quant_config c = definition ? *definition : quant_config{};
  c.layers.clear();
  c.batch_num = batch_num;
  c.activation_offset = activation_offset;
  if (!definition) c.activation.asymmetric = activation_offset;
  c.skip_layers = skip_layers;
  for (const auto& l : find_quant_layers(prepared.main)) {
    layer_config lc;
    lc.name = l.name;
    lc.op_type = l.op_type;
    lc.settings = detail::settings_for(c, l.op_type);
    c.layers.push_back(std::move(lc));
  }
  validate(c);
  return c;
}

/// The default config of `m`: every quantizable layer, with skip_layers disabled. When
/// `definition` is given, its global settings, defaults and layer_type overrides are the base
/// (AMCT's config_definition); its own layer list is ignored. Works on a prepared copy of `m`
/// (create_quant_config_prepared does without one).
inline quant_config create_quant_config(const model& m, const std::vector<std::string>& skip_layers = {},
                                        int batch_num = 1, bool activation_offset = true,
                                        const quant_config* definition = nullptr) {
  model folded = m;
  prepare_float_model(folded);
  return create_quant_config_prepared(folded, skip_layers, batch_num, activation_offset, definition);
}

/// A layer's parameters learned outside the pipeline (quantizer::set_given_params).
struct given_params {
  quant_params act;                ///< layer input, per tensor; empty scale: calibrate() decides
  std::vector<float> wts_scale;   ///< one per weight scale; empty: quantize_model() decides
};

/// One model being quantized. Keeps the float model (BatchNorm folded, balanced) and, after
/// calibrate(), the record the exporters read.
class quantizer {
 public:
  quantizer(model m, quant_config c) : model_(std::move(m)), config_(std::move(c)) {
    validate(config_);
    // Checked here, not only when saving, so that an old model fails before calibration.
    AMCTQ_CHECK(model_.opset() >= 13, errc::unsupported, "quantizer", "the model's opset ", model_.opset(),
                " is below 13, the first with per-axis QuantizeLinear / DequantizeLinear; convert it first "
                "(onnx.version_converter.convert_version(model, 13))");
    prepare_float_model(model_);
    // Vitis globals on the float model: convert_relu6_to_relu, then include_cle (passes/vitis_globals.hpp).
    float_globals_ = passes::apply_float_globals(model_, config_.global);
    layers_ = find_quant_layers(model_.main, &float_layers_);
    for (const auto& l : config_.layers) {
      bool found = false;
      for (const auto& q : layers_) found = found || (q.name == l.name && q.op_type == l.op_type);
      AMCTQ_CHECK(found, errc::invalid_argument, "quantizer",
                  "config.layers.", l.name, ": no ", l.op_type, " layer of that name in the model");
    }
    for (const auto& name : config_.skip_layers) {
      bool found = false;
      for (const auto& q : layers_) found = found || q.name == name;
      AMCTQ_CHECK(found, errc::invalid_argument, "quantizer", "config.skip_layers: names '", name,
                  "', which is not a quantizable layer of the model (amctq inspect lists them)");
    }
    std::vector<quant_layer> enabled;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const quant_layer& q = layers_[i];
      const layer_config* lc = config_.find(q.name);
      layer_settings s = lc ? lc->settings : detail::settings_for(config_, q.op_type);
      const char* why = nullptr;
      for (const auto& n : config_.skip_layers)
        if (n == q.name) why = "skip_layers names it";
      if (!why && !s.quant_enable) why = "quant_enable is false in the config";
      if (!why && config_.global.keep_first_last_layer_accuracy && (i == 0 || i + 1 == layers_.size()))
        why = "keep_first_last_layer_accuracy keeps the first and last layer in float";
      if (why) {
        float_layers_.push_back({q.name, q.op_type, why, true});
        continue;
      }
      // AMCT accepts 16-bit activations; amctq's exported models store them as int8, so refuse
      // them now rather than after calibration.
      AMCTQ_CHECK(s.activation.num_bits <= 8, errc::unsupported, "quantizer", "layer '", q.name, "': ",
                  s.activation.num_bits, "-bit activations cannot be exported (int8 storage); use 4 or 8");
      enabled.push_back(q);
      settings_.push_back(s);
    }
    check_distinct_weights(model_.main, enabled);
    layers_ = std::move(enabled);
    points_ = find_tensor_points(model_.main, model_.opset(), layers_, settings_, config_);
    for (const auto& p : points_)
      AMCTQ_CHECK(p.settings.num_bits <= 8, errc::unsupported, "quantizer", "tensor '", p.tensor, "' (", p.reason,
                  "): ", p.settings.num_bits, "-bit activations cannot be exported (int8 storage); use 4 or 8");
  }

  const model& float_model() const noexcept { return model_; }
  const quant_config& config() const noexcept { return config_; }
  const std::vector<quant_layer>& layers() const noexcept { return layers_; }
  const std::vector<layer_settings>& settings() const noexcept { return settings_; }
  /// The nodes of a quantizable kind that stay float, and why: the config asked for it
  /// (asked = true), or the node has a form its kind cannot quantize exactly.
  const std::vector<float_layer>& float_layers() const noexcept { return float_layers_; }
  /// The tensors quantized where they are made (layer outputs, Add / Concat inputs and outputs:
  /// graph/tensor_points.hpp), as the config asks; the record holds those that calibrate() found float.
  const std::vector<tensor_point>& tensor_points() const noexcept { return points_; }
  /// One line per tensor point calibrate() passed over (not float: a Concat of shape values).
  const std::vector<std::string>& tensor_notes() const noexcept { return tensor_notes_; }
  const quant_record& record() const {
    AMCTQ_CHECK(calibrated_, errc::invalid_argument, "quantizer::record", "calibrate() has not run");
    return record_;
  }
  bool calibrated() const noexcept { return calibrated_; }
  /// What convert_relu6_to_relu / include_cle did to the float model.
  const passes::float_globals_report& float_globals() const noexcept { return float_globals_; }
  /// One entry per bias include_bias_corr corrected (in the first calibrate()).
  const std::vector<passes::bias_correction_entry>& bias_corrections() const noexcept { return bias_corrections_; }
  /// One entry per layer whose rounding was learned (wts_algo adaround, in the first calibrate()).
  const std::vector<passes::rounding_report>& rounding_reports() const noexcept { return rounding_reports_; }
  /// The column cache bound and a per-layer callback of learned rounding.
  void set_rounding_options(passes::rounding_options o) { rounding_options_ = std::move(o); }
  /// Parameters learned elsewhere (QAT, amctq.qat), by layer name: a non-empty wts_scale
  /// replaces the scales quantize_model() computes (same count and axis), a non-empty act the
  /// input params calibrate() computes (per tensor, the layer's activation bits). Before quantize_model().
  void set_given_params(std::map<std::string, given_params> g) {
    for (const auto& entry : g) {  // a name that reaches no layer would be dropped unseen
      const std::string& name = entry.first;
      bool found = false;
      for (const auto& l : layers_) found = found || l.name == name;
      AMCTQ_CHECK(found, errc::invalid_argument, "quantizer", "given parameters for '", name,
                  "', which is not a quantized layer of the model");
    }
    given_ = std::move(g);
  }

  /// AMCT's quantize_preprocess: DMQ balancing for every layer with a dmq_balancer_param. Runs
  /// the first batch_num batches once, computes the factors s, folds W · s into the weights and
  /// inserts Mul(x, 1/s) before the layer in the float model (and so in both exported models).
  /// Once per quantizer, before quantize_model(); nothing to do when no layer asks for it.
  /// Threads and the memory bound apply; every process runs every batch (a max needs no exchange).
  void quantize_preprocess(const calibration_source& src, const calibration_options& opt = {}) {
    AMCTQ_CHECK(!model_quantized_, errc::invalid_argument, "quantize_preprocess",
                "must run before quantize_model(): balancing changes the weights quantize_model() quantized");
    if (balanced_ || !needs_balance()) return;
    AMCTQ_CHECK(opt.threads >= 1, errc::invalid_argument, "quantize_preprocess", "calibration_options: threads ",
                opt.threads, "; need at least 1");
    check_batch_count(src.batches(), "quantize_preprocess");
    balance(src, opt);
  }
  void quantize_preprocess(const std::vector<batch>& batches, const progress_fn& progress = {}) {
    calibration_options opt;
    opt.progress = progress;
    quantize_preprocess(batches_in_memory(batches), opt);
  }

  /// Quantizes the weights of every enabled layer (ARQ, then NUQ where wts_algo is nuq; AdaRound
  /// layers start from ARQ, and calibrate() learns their rounding from its batches).
  /// calibrate() calls it when it has not run.
  void quantize_model() {
    if (model_quantized_) return;
    weights_.clear();
    std::set<std::string> quantized;  // the calibration model makes these from their codes
    for (const auto& l : layers_)
      if (!l.weight.empty()) quantized.insert(l.weight);
    calib_model_ = copy_leaving_out(model_, quantized);
    weights_deferred_ = true;
    const std::set<std::string> free_now = releasable_weights();
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layer_record r;
      r.name = layers_[i].name;
      r.op_type = layers_[i].op_type;
      r.act_bits = settings_[i].activation.num_bits;
      r.act_rounding = settings_[i].activation.rounding;
      auto f = balance_.find(r.name);
      if (f != balance_.end()) r.tensor_balance_factor = f->second;
      if (!layers_[i].weight.empty()) quantize_weights(layers_[i], settings_[i].weights, r);
      if (free_now.count(layers_[i].weight)) let_go(layers_[i].weight);  // before the next layer's codes are made
      weights_.push_back(std::move(r));
    }
    model_quantized_ = true;
  }

  /// Frees the float values of the weights the saved models replace by int8 codes (most of a
  /// large model's memory) as soon as nothing is to read them: each once quantize_model() has
  /// made its codes or, where learned rounding or bias correction is configured, once the first
  /// calibrate() has run them. Saving needs only those weights' shapes, which their codes have;
  /// float_model() holds them as empty initializers afterwards, and build_layer_report, which
  /// runs the float model, refuses the quantizer.
  void release_float_weights() {
    release_float_weights_ = true;
    if (model_quantized_) let_go_releasable();  // else quantize_model() lets each go as it goes
  }
  /// Whether release_float_weights() has emptied any of float_model()'s weights yet.
  bool float_weights_released() const noexcept { return float_weights_released_; }

  /// Frees the calibration model (the float model's copy with fake-quantized weights; as large as
  /// the model once calibrate() has made them float) once no calibrate() is to follow: saving
  /// needs only the float model, the layers and the record. calibrate() refuses afterwards.
  void release_calibration_model() {
    calib_model_ = model{};
    calib_released_ = true;
  }

  /// Runs the calibration batches (at least config.batch_num of them; the first batch_num are
  /// used) and computes every layer's parameters. With opt.max_memory, each batch is run in
  /// slices that fit it; with opt.threads, on that many executors at once; with opt.ranks, each
  /// process runs its share and opt.exchange merges the observers. Every split gives the same
  /// result. Bias correction and learned rounding hold their batches whole, on every process.
  void calibrate(const calibration_source& src, const calibration_options& opt = {}) {
    calibrate_impl(src, nullptr, opt);
  }
  void calibrate(const std::vector<batch>& batches, const progress_fn& progress = {}) {
    calibration_options opt;
    opt.progress = progress;
    calibrate_impl(batches_in_memory(batches), &batches, opt);
  }

 private:
  void calibrate_impl(const calibration_source& src, const std::vector<batch>* held, const calibration_options& opt) {
    check_batch_count(src.batches(), "calibrate");
    AMCTQ_CHECK(!calib_released_, errc::invalid_argument, "calibrate",
                "the calibration model was released (release_calibration_model); make a new quantizer to calibrate again");
    AMCTQ_CHECK(opt.threads >= 1 && opt.ranks >= 1 && opt.rank >= 0 && opt.rank < opt.ranks &&
                    (opt.ranks == 1 || opt.exchange),
                errc::invalid_argument, "calibrate", "calibration_options: threads ", opt.threads, ", rank ", opt.rank,
                " of ", opt.ranks, opt.ranks > 1 && !opt.exchange ? ", and no exchange for the ranks" : "");
    const int need = config_.batch_num;
    quantize_model();
    if (calibrated_) {  // the codes went to the record last time: the weights are made from them
      for (std::size_t i = 0; i < weights_.size(); ++i) weights_[i].weight_q = std::move(record_.layers[i].weight_q);
      calibrated_ = false;
    }
    // The calibration model's quantized weights are int8 codes until a float copy is needed: by
    // learned rounding and bias correction, which edit it, or for executors that keep their
    // weights packed (the model fits the memory bound). Else each is made when its node runs.
    deferred_constants deferred = deferred_weights();
    if (!deferred.empty() && (float_weight_passes_pending() || keep_packed_weights(calib_model_, opt, &deferred))) {
      make_weights_float(deferred);
      deferred = deferred_constants{};
    }
    const deferred_constants* per_node = deferred.empty() ? nullptr : &deferred;
    std::vector<batch> whole;  // the batches, for the passes that need them at once
    auto batches = [&]() -> const std::vector<batch>& {
      if (held) return *held;
      if (whole.empty()) whole = read_whole_batches(src, need);
      return whole;
    };
    if (!rounded_) {
      if (needs_rounding()) learn_rounding(batches());
      rounded_ = true;
    }
    record_ = quant_record{};
    for (auto& w : weights_) record_.layers.push_back(without_codes(w));
    // Vitis include_bias_corr: each bias absorbs its layer's mean output shift under the
    // quantized weights (passes/vitis_globals.hpp), in both the float model (whose biases are
    // quantized below) and the calibration model, before the activations are observed, so the
    // observed ranges are those of the corrected model. Once only: the float model keeps the
    // correction, and measuring again against it would count the shift twice.
    if (config_.global.include_bias_corr && !bias_corrected_) {
      const std::vector<batch>& all = batches();
      // The batches are copied only when there are more than batch_num of them to drop.
      std::vector<batch> first;
      if (all.size() > static_cast<std::size_t>(need)) first.assign(all.begin(), all.begin() + need);
      bias_corrections_ = passes::correct_layer_biases(model_, calib_model_, first.empty() ? all : first, layers_);
      bias_corrected_ = true;
    }
    let_go_releasable();
    whole.clear();
    whole.shrink_to_fit();
    constexpr std::size_t no_observer = static_cast<std::size_t>(-1);
    std::vector<std::size_t> observer_of, observer_b_of, point_of;
    auto watch_all = [&](activation_observers& obs) {
      observer_of.clear();
      observer_b_of.clear();
      point_of.clear();
      for (std::size_t i = 0; i < layers_.size(); ++i) {
        const quant_layer& l = layers_[i];  // weight-only kinds have no input to observe
        observer_of.push_back(l.input.empty() ? no_observer
                                              : obs.watch(l.input, settings_[i].activation,
                                                          find_layer_kind(l.op_type)->activation_channel_axis));
        // A second activation is quantized per tensor: MatMulInteger takes one zero point for it,
        // and its channels are the product's reduction axis or its output columns, not the layer input's.
        activation_quant b = settings_[i].activation;
        b.channel_wise = false;
        observer_b_of.push_back(l.input_b.empty() ? no_observer : obs.watch(l.input_b, b, 0));
      }
      for (const auto& p : points_) point_of.push_back(obs.watch(p.tensor, p.settings, 1, /*float_only=*/true));
    };
    // Declared before the observers, which detach from them on destruction.
    const std::vector<std::unique_ptr<executor>> executors = make_workers(calib_model_, opt, per_node);
    std::vector<std::unique_ptr<activation_observers>> observers;
    for (const auto& ex : executors) {
      observers.push_back(std::make_unique<activation_observers>(*ex));
      watch_all(*observers.back());
    }
    activation_observers& obs = *observers.front();
    const auto slices =
        plan_slices(src, need, slice_rows(calib_model_, src, need, opt, obs.per_batch(), per_node, executors.front().get()));
    run_slices(src, slices, raw(executors), opt, obs.ordered());
    for (std::size_t w = 1; w < observers.size(); ++w) obs.merge(*observers[w]);
    if (opt.ranks > 1) obs.assign(opt.exchange(obs.shard()));
    tensor_notes_.clear();
    for (std::size_t i = 0; i < points_.size(); ++i) {
      const tensor_point& p = points_[i];
      if (obs.not_float(point_of[i]) > 0) {
        tensor_notes_.push_back("tensor '" + p.tensor + "' (" + p.reason + ") is not float: left as it is");
        continue;
      }
      record_.tensors.push_back({p.tensor, p.reason, obs.result(point_of[i]), p.settings.num_bits, p.settings.rounding});
    }
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      layer_record& r = record_.layers[i];
      if (observer_of[i] == no_observer) continue;
      r.input_shape = obs.shape(observer_of[i]);
      r.act = obs.result(observer_of[i]);
      if (auto g = given_.find(r.name); g != given_.end() && !g->second.act.scale.empty()) r.act = g->second.act;
      if (observer_b_of[i] != no_observer) r.act_b = obs.result(observer_b_of[i]);
      // An int32 bias code needs one accumulator scale s_d * s_w[c]; with per-channel activations
      // there is none, so the bias stays float.
      if (!layers_[i].bias.empty() && !r.act.is_per_channel()) {
        // One value per output channel, Gemm's beta applied and a one-element bias broadcast.
        const node& n = model_.main.nodes[layers_[i].node_index];
        const auto channels = static_cast<std::size_t>(layout_of(n, weights_[i].weight_q).out_channels());
        const std::vector<float> bias = passes::detail::effective_bias(model_.main, n, channels);
        quantize_layer_bias(bias, settings_[i].bias, r);
      }
    }
    // Moved, not copied: the codes are a quarter of the float weights' bytes.
    for (std::size_t i = 0; i < weights_.size(); ++i) record_.layers[i].weight_q = std::move(weights_[i].weight_q);
    calibrated_ = true;
  }

  // A copy of r without its codes.
  static layer_record without_codes(layer_record& r) {
    tensor codes = std::move(r.weight_q);
    layer_record out = r;
    r.weight_q = std::move(codes);
    return out;
  }

  // The calibration model's weight of layer i, made from its codes: arq_dequantize's
  // (code - zp) * s is fake quantization's last step on the code arq_quantize wrote, so the floats
  // are those arq_fake_quantize gives in place (and NUQ's, which are made from its codes too).
  tensor calibration_weight(std::size_t i, const weight_layout& L) const {
    tensor out(dtype::float32, weights_[i].weight_q.shape());
    arq_dequantize(weights_[i].weight_q.data<std::int8_t>(),
                   tensor_view<float, 1>(out.data<float>(), {static_cast<std::ptrdiff_t>(out.size())}), L, weights_[i].wts);
    return out;
  }

  // Makers of the calibration model's weights still held as codes (none once they are float).
  deferred_constants deferred_weights() {
    deferred_constants d;
    if (!weights_deferred_) return d;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const quant_layer& l = layers_[i];
      if (l.weight.empty()) continue;
      const weight_layout L = layout_of(model_.main.nodes[l.node_index], weights_[i].weight_q);
      d.add(l.weight, weights_[i].weight_q.size() * sizeof(float), [this, i, L] { return calibration_weight(i, L); });
    }
    return d;
  }

  void make_weights_float(const deferred_constants& d) {
    for (auto& init : calib_model_.main.initializers)
      if (const deferred_constants::maker* make = d.find(init.name)) init.value = (*make)();
    weights_deferred_ = false;
  }

  static std::vector<executor*> raw(const std::vector<std::unique_ptr<executor>>& v) {
    std::vector<executor*> out;
    for (const auto& e : v) out.push_back(e.get());
    return out;
  }

  static std::vector<batch> read_whole_batches(const calibration_source& src, int need) {
    std::vector<batch> out;
    for (int b = 0; b < need; ++b) {
      batch storage;
      const batch& x = src.read(b, 0, src.rows(b), storage);
      if (&x == &storage) out.push_back(std::move(storage));  // read into storage: no second copy
      else out.push_back(x);
    }
    return out;
  }

  // Learned rounding and bias correction are still to run: both read the float weights, and the
  // calibration model's copy of them, which they edit.
  bool float_weight_passes_pending() const {
    return (!rounded_ && needs_rounding()) || (config_.global.include_bias_corr && !bias_corrected_);
  }

  // The float weights release_float_weights() may empty now: none while a step is to read them.
  std::set<std::string> releasable_weights() const {
    if (!release_float_weights_ || float_weight_passes_pending()) return {};
    return detail::replaced_weights(model_.main, layers_);
  }

  void let_go_releasable() {
    for (const auto& name : releasable_weights()) let_go(name);
  }

  void let_go(const std::string& weight) {
    tensor& value = model_.main.find_initializer(weight)->value;
    value = tensor{};  // assigned, not cleared: the storage goes back now
    float_weights_released_ = true;
  }

  bool needs_rounding() const {
    for (std::size_t i = 0; i < layers_.size(); ++i)
      if (settings_[i].weights.algo == wts_algo::adaround && !layers_[i].weight.empty() &&
          find_layer_kind(layers_[i].op_type)->weight_columns)
        return true;
    return false;
  }

  bool needs_balance() const {
    for (const auto& s : settings_)
      if (s.dmq_balancer_param) return true;
    return false;
  }

  // DMQ (docs/pipeline.md, "DMQ balance"): per input channel, s from max|x| over all the batches (not AMCT's
  // last-batch-wins, so the result does not depend on batch order) and max|W|; then W · s and
  // a Mul(x, 1/s) the layer reads instead of x.
  void check_batch_count(int batches, const char* where) const {
    const int need = config_.batch_num;
    AMCTQ_CHECK(batches >= need, errc::invalid_argument, where, "calibration needs ", need,
                " batches (config batch_num = ", need, "), got ", batches);
  }

  void balance(const calibration_source& src, const calibration_options& opt) {
    using absmax_map = std::map<std::size_t, std::vector<float>>;  // layer index -> max |x| per input channel
    const std::vector<std::unique_ptr<executor>> executors = make_workers(model_, opt);
    std::vector<absmax_map> found(static_cast<std::size_t>(opt.threads));
    for (std::size_t w = 0; w < executors.size(); ++w) {
      absmax_map& absmax = found[w];
      for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (!settings_[i].dmq_balancer_param || layers_[i].weight.empty()) continue;
        const node& n = model_.main.nodes[layers_[i].node_index];
        executors[w]->hooks().on_tensor(layers_[i].input, [&absmax, &n, i](const std::string&, const tensor& t) {
          fold_absmax(absmax[i], passes::balance_input_absmax(n, t), n);
        });
      }
    }
    calibration_options local = opt;  // a max needs no exchange: every process runs every batch
    local.rank = 0;
    local.ranks = 1;
    const int need = config_.batch_num;
    run_slices(src, plan_slices(src, need, slice_rows(model_, src, need, local, false, nullptr, executors.front().get())),
               raw(executors), local, false);
    absmax_map& absmax = found.front();
    for (std::size_t w = 1; w < found.size(); ++w)
      for (const auto& [i, a] : found[w]) fold_absmax(absmax[i], a, model_.main.nodes[layers_[i].node_index]);
    for (const auto& [i, act] : absmax) {
      quant_layer& l = layers_[i];
      tensor& w = model_.main.find_initializer(l.weight)->value;
      const weight_layout L = layout_of(model_.main.nodes[l.node_index], w);
      const tensor_view<float, 1> flat(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())});
      const auto f = dmq_balance_factors(act, channel_absmax(tensor_view<const float, 1>(flat), L, channel_side::input,
                                                             l.name.c_str()),
                                         *settings_[i].dmq_balancer_param);
      apply_balance(flat, L, f);
      const auto ins = passes::insert_balance(model_.main, l.node_index, f);
      for (auto& other : layers_)
        if (other.node_index >= ins.node_index) ++other.node_index;
      l.input = ins.input;  // observers, the record's input shape and the exporters follow the Mul
      balance_[l.name] = f;
    }
    balanced_ = true;
  }

  static void fold_absmax(std::vector<float>& m, const std::vector<float>& a, const node& n) {
    if (m.empty()) m.assign(a.size(), 0.0f);
    AMCTQ_CHECK(m.size() == a.size(), errc::shape_mismatch, "calibrate", passes::detail::layer_where(n),
                ": the input has ", a.size(), " channels in this batch, ", m.size(), " in an earlier one");
    for (std::size_t c = 0; c < a.size(); ++c) m[c] = std::fmax(m[c], a[c]);
  }

  // AdaRound (docs/algorithms/weights.md, "AdaRound"): once, on the float model, before bias
  // correction and activation calibration see the calibration model's weights.
  void learn_rounding(const std::vector<batch>& batches) {
    std::vector<passes::rounding_layer> todo;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      const layer_settings& s = settings_[i];
      // A kind without weight columns keeps ARQ's codes: Gather's table is read row by row, so
      // round-to-nearest already is its least-error rounding.
      if (s.weights.algo != wts_algo::adaround || layers_[i].weight.empty() ||
          !find_layer_kind(layers_[i].op_type)->weight_columns)
        continue;
      todo.push_back({&layers_[i], &weights_[i], s.weights.adaround, s.activation});
    }
    rounding_reports_ = passes::learn_rounding(model_, calib_model_, todo, batches, config_.batch_num, rounding_options_);
  }

  // The int32 accumulator code of the bias; a bias narrower than 32 bits goes onto its own grid
  // first, and its values there make the int32 code.
  static void quantize_layer_bias(const std::vector<float>& bias, const bias_quant& bq, layer_record& r) {
    const auto n = static_cast<std::ptrdiff_t>(bias.size());
    const tensor_view<const float, 1> b(bias.data(), {n});
    if (bq.num_bits == 32) {
      r.bias_q = quantize_bias(bias.data(), bias.size(), r.act.scale[0], r.wts, r.name, bq.rounding);
      return;
    }
    r.bias_grid = bias_grid_params(b, bq, r.name);
    r.bias_grid_q.assign(bias.size(), 0);
    quantize(b, tensor_view<std::int8_t, 1>(r.bias_grid_q.data(), {n}), r.bias_grid, bq.rounding);
    std::vector<float> values(bias.size());
    dequantize(tensor_view<const std::int8_t, 1>(r.bias_grid_q.data(), {n}), tensor_view<float, 1>(values.data(), {n}),
               r.bias_grid);
    r.bias_q = quantize_bias(values.data(), values.size(), r.act.scale[0], r.wts, r.name);
  }

  void quantize_weights(const quant_layer& l, const weight_quant& wq, layer_record& r) {
    tensor& w = model_.main.find_initializer(l.weight)->value;
    const node& n = model_.main.nodes[l.node_index];
    const weight_layout L = layout_of(n, w);
    const tensor_view<const float, 1> flat(w.data<float>(), {static_cast<std::ptrdiff_t>(w.size())});
    r.wts = weight_params(flat, L, wq, l.name);
    if (auto g = given_.find(l.name); g != given_.end() && !g->second.wts_scale.empty()) {
      AMCTQ_CHECK(g->second.wts_scale.size() == r.wts.scale.size(), errc::shape_mismatch, "quantize_model", "layer '",
                  l.name, "': ", g->second.wts_scale.size(), " given weight scales, the layer has ", r.wts.scale.size());
      r.wts.scale = g->second.wts_scale;
      validate(r.wts, "quantize_model");
    }
    r.weight_q = tensor(dtype::int8, w.shape());
    std::int8_t* codes = r.weight_q.data<std::int8_t>();
    arq_quantize(flat, L, r.wts, codes, wq.rounding);
    if (wq.algo != wts_algo::nuq) return;
    // NUQ (docs/pipeline.md, "NUQ weights"): keep num_steps of the layer's 256 int8 levels. nuq_optimal is the exact
    // minimum of the count-weighted squared code error, so num_of_iteration (AMCT's refinement
    // passes of its k-means) has nothing left to refine.
    AMCTQ_CHECK(wq.num_bits == 8, errc::unsupported, "quantize_model", "layer '", l.name,
                "': NUQ selects levels of the 8-bit grid; weights num_bits must be 8, got ", wq.num_bits);
    const nuq_result nuq = nuq_optimal(int8_level_histogram(codes, r.weight_q.size()), wq.num_steps);
    nuq_remap(codes, r.weight_q.size(), nuq);
    r.clusters.assign(nuq.centers.begin(), nuq.centers.end());
  }

  model model_;
  quant_config config_;
  passes::float_globals_report float_globals_;
  std::vector<passes::bias_correction_entry> bias_corrections_;
  bool bias_corrected_ = false;
  std::vector<passes::rounding_report> rounding_reports_;
  passes::rounding_options rounding_options_;
  std::map<std::string, given_params> given_;
  bool rounded_ = false;
  std::vector<quant_layer> layers_;
  std::vector<float_layer> float_layers_;
  std::vector<tensor_point> points_;
  std::vector<std::string> tensor_notes_;
  std::vector<layer_settings> settings_;
  std::map<std::string, std::vector<float>> balance_;
  std::vector<layer_record> weights_;  ///< quantize_model(): each layer's weight part of the record
  /// The float model with fake-quantized weights; while weights_deferred_, those are empty
  /// placeholders, made from weights_' codes per node (deferred_weights()).
  model calib_model_;
  bool weights_deferred_ = false;
  quant_record record_;
  bool balanced_ = false;
  bool model_quantized_ = false;
  bool calib_released_ = false;
  bool release_float_weights_ = false;
  bool float_weights_released_ = false;
  bool calibrated_ = false;
};

}  // namespace amctq::graph

#endif  // AMCTQ_GRAPH_PIPELINE_HPP
