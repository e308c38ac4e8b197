// Optimiser and state I/O: the trainable parameters (vectors or all weights) with their gradient
// accumulators and Adam moments, one AdamW step over all of them, and saving the weights as GGUF.
#include "train.h"

namespace tw {

void Trainer::allocOptimizer() {
  opt.reset();
  ggml_init_params ip = {ggml_tensor_overhead() * (params.size() * 3 + 4), nullptr, true};
  opt.ctx = ggml_init(ip);
  for (auto& p : params) {
    p.g = ggml_dup_tensor(opt.ctx, p.t);
    p.m = ggml_dup_tensor(opt.ctx, p.t);
    p.v = ggml_dup_tensor(opt.ctx, p.t);
    ggml_format_name(p.g, "%s.grad", p.t->name);
  }
  adamParams = ggml_new_tensor_1d(opt.ctx, GGML_TYPE_F32, 7);
  const double need = (double)ggml_backend_alloc_ctx_tensors_from_buft_size(opt.ctx, ggml_backend_get_default_buffer_type(backend));
  if (memoryLimit > 0 && persistentBytes + need > memoryLimit) {
    throw Fail("gradients and Adam moments need " + gib(need) + " on top of " + gib(persistentBytes) + ", over the memory limit of " +
               gib(memoryLimit), kOutOfMemory);
  }
  opt.buf = ggml_backend_alloc_ctx_tensors(opt.ctx, backend);
  if (opt.buf == nullptr) throw Fail("could not allocate the optimizer state", kOutOfMemory);
  ggml_backend_buffer_clear(opt.buf, 0);
  stepCount = 0;
}

void Trainer::setVectors(const std::vector<Vec>& spec, const std::vector<std::vector<float>>& data) {
  if (weightsMode) throw Fail("this trainer trains weights; vectors need mode 'vectors'");
  vecCtx.reset();
  opt.reset();
  params.clear();
  vecs.clear();
  if (spec.empty()) return;
  ggml_init_params ip = {ggml_tensor_overhead() * (spec.size() + 2), nullptr, true};
  vecCtx.ctx = ggml_init(ip);
  for (size_t i = 0; i < spec.size(); i++) {
    Vec v = spec[i];
    v.t = ggml_new_tensor_1d(vecCtx.ctx, GGML_TYPE_F32, hp.nEmbd);
    ggml_format_name(v.t, "vector_%zu", i);
    if (v.trainable) {
      ggml_set_param(v.t);
      v.param = (int)params.size();
      Param p;
      p.t = v.t;
      params.push_back(p);
    }
    vecs.push_back(v);
  }
  vecCtx.buf = ggml_backend_alloc_ctx_tensors(vecCtx.ctx, backend);
  if (vecCtx.buf == nullptr) throw Fail("could not allocate the vectors", kOutOfMemory);
  for (size_t i = 0; i < vecs.size(); i++) ggml_backend_tensor_set(vecs[i].t, data[i].data(), 0, hp.nEmbd * sizeof(float));
  if (!params.empty()) allocOptimizer();
}

void Trainer::adamStep(const float hp7[7]) {
  if (params.empty()) throw Fail("nothing to train");
  // Nodes: one step per parameter; leafs: its gradient, moments and the shared hyper-parameters.
  const size_t size = params.size() * 4 + 16;
  ggml_init_params ip = {ggml_tensor_overhead() * size + ggml_graph_overhead_custom(size, false), nullptr, true};
  ggml_context* c = ggml_init(ip);
  std::unique_ptr<ggml_context, void (*)(ggml_context*)> guard(c, ggml_free);
  ggml_cgraph* g = ggml_new_graph_custom(c, size, false);
  for (auto& p : params) ggml_build_forward_expand(g, ggml_opt_step_adamw(c, p.t, p.g, p.m, p.v, adamParams));
  if (!ggml_gallocr_alloc_graph(gallocOpt, g)) throw Fail("could not allocate the optimizer graph", kOutOfMemory);
  ggml_backend_tensor_set(adamParams, hp7, 0, 7 * sizeof(float));
  ggml_status st = ggml_backend_graph_compute(backend, g);
  if (st != GGML_STATUS_SUCCESS) throw Fail("optimizer step failed");
  zeroGrad();
}

void Trainer::save(const std::string& out) {
  gguf_context* g = gguf_init_empty();
  std::unique_ptr<gguf_context, void (*)(gguf_context*)> gg(g, gguf_free);
  gguf_set_kv(g, meta);
  if (weightsMode) gguf_set_val_u32(g, "general.file_type", 0);  // all F32
  ggml_init_params ip = {ggml_tensor_overhead() * (weightList.size() + 2), nullptr, true};
  ggml_context* c = ggml_init(ip);
  std::unique_ptr<ggml_context, void (*)(ggml_context*)> guard(c, ggml_free);
  std::vector<std::vector<uint8_t>> data(weightList.size());
  for (size_t i = 0; i < weightList.size(); i++) {
    ggml_tensor* src = weightList[i].second;
    ggml_tensor* t = ggml_new_tensor(c, src->type, ggml_n_dims(src), src->ne);
    ggml_set_name(t, weightList[i].first.c_str());
    data[i].resize(ggml_nbytes(src));
    ggml_backend_tensor_get(src, data[i].data(), 0, data[i].size());
    t->data = data[i].data();
    gguf_add_tensor(g, t);
  }
  const std::string tmp = out + ".tmp";
  if (!gguf_write_to_file(g, tmp.c_str(), false)) throw Fail("could not write " + tmp);
  if (rename(tmp.c_str(), out.c_str()) != 0) throw Fail("could not rename " + tmp + " to " + out);
}

}  // namespace tw
