// ONNX models in and out: read_onnx / parse_onnx (onnx_reader.hpp) and write_onnx /
// serialize_onnx (onnx_writer.hpp), speaking the protobuf wire format with no libprotobuf.
#ifndef AMCTQ_IO_ONNX_HPP
#define AMCTQ_IO_ONNX_HPP

#include "amctq/io/onnx_reader.hpp"
#include "amctq/io/onnx_writer.hpp"

#endif  // AMCTQ_IO_ONNX_HPP
