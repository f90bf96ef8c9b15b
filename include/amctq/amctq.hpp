// Umbrella header: the vocabulary and every kernel. Algorithms, graph and io have their own.
#ifndef AMCTQ_AMCTQ_HPP
#define AMCTQ_AMCTQ_HPP

#include "amctq/config.hpp"
#include "amctq/error.hpp"
#include "amctq/kernels/dequantize.hpp"
#include "amctq/kernels/fake_quantize.hpp"
#include "amctq/kernels/quantize.hpp"
#include "amctq/kernels/reduce.hpp"
#include "amctq/quant_params.hpp"
#include "amctq/quant_spec.hpp"
#include "amctq/rounding.hpp"
#include "amctq/tensor_view.hpp"

#endif  // AMCTQ_AMCTQ_HPP
