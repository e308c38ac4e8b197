// The one rule for naming residual-stream tensors, shared by the engine's hooks (context.cpp), the
// llama.cpp reference forward (train-reference.cpp) and the training graph (train-graph.cpp), and
// mirrored by src/engine/hooks.ts:
//   blocks.L.hook_resid_post = "l_out-L"          (llama.cpp's name for the output of block L)
//   blocks.0.hook_resid_pre  = "token_embd_rows"  (the GET_ROWS of token_embd.weight, unnamed in llama.cpp)
#pragma once
#include <cstring>
#include <string>

#include "ggml.h"

namespace tw {

constexpr const char* kTokenEmbdRows = "token_embd_rows";

inline std::string layerOutName(int layer) { return "l_out-" + std::to_string(layer); }

// The name hooks address a graph tensor by.
inline const char* hookTensorName(const ggml_tensor* t) {
  if (t->op == GGML_OP_GET_ROWS && t->src[0] != nullptr && std::strcmp(t->src[0]->name, "token_embd.weight") == 0) {
    return kTokenEmbdRows;
  }
  return t->name;
}

}  // namespace tw
