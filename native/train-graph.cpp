// The training graph: a GGUF's weights as ggml tensors (F32 in mode 'weights', the file's types
// otherwise, plus transposed copies for the backward pass), and the Llama/Qwen2 forward pass with
// steering vectors, cross-entropy loss and ggml's backward. See train.h.
#include "train.h"

namespace tw {

namespace {

// ---------------------------------------------------------------- GGUF metadata helpers

int64_t keyId(const gguf_context* g, const std::string& key) { return gguf_find_key(g, key.c_str()); }

bool getNum(const gguf_context* g, const std::string& key, double* out) {
  int64_t id = keyId(g, key);
  if (id < 0) return false;
  switch (gguf_get_kv_type(g, id)) {
    case GGUF_TYPE_UINT8: *out = gguf_get_val_u8(g, id); return true;
    case GGUF_TYPE_INT8: *out = gguf_get_val_i8(g, id); return true;
    case GGUF_TYPE_UINT16: *out = gguf_get_val_u16(g, id); return true;
    case GGUF_TYPE_INT16: *out = gguf_get_val_i16(g, id); return true;
    case GGUF_TYPE_UINT32: *out = gguf_get_val_u32(g, id); return true;
    case GGUF_TYPE_INT32: *out = gguf_get_val_i32(g, id); return true;
    case GGUF_TYPE_UINT64: *out = (double)gguf_get_val_u64(g, id); return true;
    case GGUF_TYPE_INT64: *out = (double)gguf_get_val_i64(g, id); return true;
    case GGUF_TYPE_FLOAT32: *out = gguf_get_val_f32(g, id); return true;
    case GGUF_TYPE_FLOAT64: *out = gguf_get_val_f64(g, id); return true;
    case GGUF_TYPE_ARRAY:
      throw Fail("metadata key " + key + " is an array (per-layer values are not supported by the training graph)", kUnsupportedModel);
    default: return false;
  }
}

double needNum(const gguf_context* g, const std::string& key) {
  double v;
  if (!getNum(g, key, &v)) throw Fail("GGUF metadata key " + key + " is missing", kUnsupportedModel);
  return v;
}

double optNum(const gguf_context* g, const std::string& key, double dflt) {
  double v;
  return getNum(g, key, &v) ? v : dflt;
}

std::string optStr(const gguf_context* g, const std::string& key) {
  int64_t id = keyId(g, key);
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) return "";
  return gguf_get_val_str(g, id);
}

ggml_backend_t initBackend(const std::string& device, int nThreads, std::string* name) {
  ggml_backend_dev_t dev = nullptr;
  if (device == "cpu") {
    dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  } else if (device == "gpu") {
    dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_GPU);
    if (dev == nullptr) throw Fail("no GPU backend is loaded (set THINKWHEN_BACKEND=cuda with a CUDA runtime, or use device 'cpu')");
  } else {
    dev = ggml_backend_dev_by_name(device.c_str());
    if (dev == nullptr) throw Fail("no backend device named '" + device + "'");
  }
  if (dev == nullptr) throw Fail("no CPU backend is loaded: call init(binsDir) first");
  ggml_backend_t be = ggml_backend_dev_init(dev, nullptr);
  if (be == nullptr) throw Fail(std::string("could not start backend ") + ggml_backend_dev_name(dev));
  ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
  auto setThreads = (void (*)(ggml_backend_t, int))ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
  if (setThreads && nThreads > 0) setThreads(be, nThreads);
  *name = std::string(ggml_backend_dev_name(dev)) + " (" + ggml_backend_dev_description(dev) + ")";
  return be;
}

}  // namespace

std::string gib(double bytes) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

ggml_type parseType(const std::string& s) {
  if (s == "f32") return GGML_TYPE_F32;
  if (s == "f16") return GGML_TYPE_F16;
  if (s == "q8_0") return GGML_TYPE_Q8_0;
  if (s == "bf16") return GGML_TYPE_BF16;
  throw Fail("unknown tensor type '" + s + "' (f32, f16, bf16, q8_0)");
}

// Converts n floats to `type` (rows of rowLen elements).
std::vector<uint8_t> fromF32(const float* src, int64_t nRows, int64_t rowLen, ggml_type type) {
  std::vector<uint8_t> out(ggml_row_size(type, rowLen) * nRows);
  if (type == GGML_TYPE_F32) {
    memcpy(out.data(), src, out.size());
  } else if (type == GGML_TYPE_F16) {
    ggml_fp32_to_fp16_row(src, (ggml_fp16_t*)out.data(), nRows * rowLen);
  } else if (type == GGML_TYPE_BF16) {
    ggml_fp32_to_bf16_row(src, (ggml_bf16_t*)out.data(), nRows * rowLen);
  } else {
    if (rowLen % ggml_blck_size(type) != 0) {
      throw Fail(std::string("rows of ") + std::to_string(rowLen) + " elements cannot be stored as " + ggml_type_name(type));
    }
    ggml_quantize_chunk(type, src, out.data(), 0, nRows, rowLen, nullptr);
  }
  return out;
}

void toF32(ggml_type type, const void* src, float* dst, int64_t n) {
  if (type == GGML_TYPE_F32) {
    memcpy(dst, src, n * sizeof(float));
    return;
  }
  const ggml_type_traits* tr = ggml_get_type_traits(type);
  if (tr == nullptr || tr->to_float == nullptr) throw Fail(std::string("cannot dequantise ") + ggml_type_name(type));
  tr->to_float(src, dst, n);
}

// ================================================================== loading

void Trainer::readHparams() {
  hp.arch = optStr(meta, "general.architecture");
  if (hp.arch != "qwen2" && hp.arch != "llama") {
    throw Fail("architecture '" + hp.arch + "' is not supported by the training graph (qwen2, llama)", kUnsupportedModel);
  }
  const std::string a = hp.arch + ".";
  hp.nLayer = (int)needNum(meta, a + "block_count");
  hp.nEmbd = (int)needNum(meta, a + "embedding_length");
  hp.nFf = (int)needNum(meta, a + "feed_forward_length");
  hp.nHead = (int)needNum(meta, a + "attention.head_count");
  hp.nHeadKv = (int)optNum(meta, a + "attention.head_count_kv", hp.nHead);
  if (hp.nHead <= 0 || hp.nHeadKv <= 0 || hp.nHead % hp.nHeadKv != 0) throw Fail("bad head counts in metadata", kUnsupportedModel);
  hp.headDim = (int)optNum(meta, a + "attention.key_length", hp.nEmbd / hp.nHead);
  if ((int)optNum(meta, a + "attention.value_length", hp.headDim) != hp.headDim) {
    throw Fail("key and value head sizes differ: not supported", kUnsupportedModel);
  }
  hp.nRot = (int)optNum(meta, a + "rope.dimension_count", hp.headDim);
  if (hp.nRot != hp.headDim || hp.headDim % 2 != 0) throw Fail("partial or odd RoPE dimensions are not supported", kUnsupportedModel);
  hp.eps = (float)needNum(meta, a + "attention.layer_norm_rms_epsilon");
  hp.freqBase = (float)optNum(meta, a + "rope.freq_base", 10000.0);
  std::string scaling = optStr(meta, a + "rope.scaling.type");
  double factor = optNum(meta, a + "rope.scaling.factor", 0.0);
  if (scaling == "yarn" || scaling == "longrope") throw Fail("RoPE scaling '" + scaling + "' is not supported by the training graph", kUnsupportedModel);
  if (scaling == "none") factor = 0.0;
  hp.freqScale = factor > 0 ? (float)(1.0 / factor) : 1.0f;
  hp.nCtxOrig = (int)optNum(meta, a + "rope.scaling.original_context_length", optNum(meta, a + "context_length", 4096));
  hp.ropeMode = hp.arch == "qwen2" ? GGML_ROPE_TYPE_NEOX : 0;  // llama.cpp: qwen2 NEOX, llama NORM
  double attnScale = optNum(meta, a + "attention.scale", 0.0);
  hp.kqScale = attnScale != 0.0 ? (float)attnScale : 1.0f / sqrtf((float)hp.headDim);
  if (optNum(meta, a + "expert_count", 0) > 0) throw Fail("mixture-of-experts models are not supported", kUnsupportedModel);
}

void Trainer::load(const std::string& device, int nThreads) {
  backend = initBackend(device, nThreads, &backendName);
  ggml_context* metaCtx = nullptr;
  gguf_init_params gp = {true, &metaCtx};
  meta = gguf_init_from_file(path.c_str(), gp);
  if (meta == nullptr) throw Fail("cannot read GGUF file " + path);
  std::unique_ptr<ggml_context, void (*)(ggml_context*)> metaGuard(metaCtx, ggml_free);
  readHparams();

  const int64_t nT = gguf_get_n_tensors(meta);
  ggml_init_params ip = {ggml_tensor_overhead() * (size_t)(nT + 8), nullptr, true};
  w.ctx = ggml_init(ip);
  for (int64_t i = 0; i < nT; i++) {
    const char* name = gguf_get_tensor_name(meta, i);
    ggml_tensor* src = ggml_get_tensor(metaCtx, name);
    ggml_type type = weightsMode ? GGML_TYPE_F32 : src->type;
    ggml_tensor* t = ggml_new_tensor(w.ctx, type, ggml_n_dims(src), src->ne);
    ggml_set_name(t, name);
    weightList.emplace_back(name, t);
    byName[name] = t;
  }
  const size_t need = ggml_backend_alloc_ctx_tensors_from_buft_size(w.ctx, ggml_backend_get_default_buffer_type(backend));
  persistentBytes = (double)need;
  if (memoryLimit > 0 && persistentBytes > memoryLimit) {
    throw Fail("the weights need " + gib(persistentBytes) + (weightsMode ? " in F32" : "") + " but the memory limit is " +
               gib(memoryLimit) + ": use a smaller model" + (weightsMode ? "" : " or a quantised file"), kOutOfMemory);
  }
  w.buf = ggml_backend_alloc_ctx_tensors(w.ctx, backend);
  if (w.buf == nullptr) throw Fail("could not allocate " + gib(persistentBytes) + " for the weights on " + backendName, kOutOfMemory);
  ggml_backend_buffer_set_usage(w.buf, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);

  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) throw Fail("cannot open " + path);
  std::unique_ptr<FILE, int (*)(FILE*)> fg(f, fclose);
  const size_t dataOff = gguf_get_data_offset(meta);
  std::vector<uint8_t> raw;
  std::vector<float> f32;
  for (int64_t i = 0; i < nT; i++) {
    ggml_tensor* dst = weightList[i].second;
    ggml_tensor* src = ggml_get_tensor(metaCtx, weightList[i].first.c_str());
    const size_t size = gguf_get_tensor_size(meta, i);
    raw.resize(size);
    if (fseeko(f, (off_t)(dataOff + gguf_get_tensor_offset(meta, i)), SEEK_SET) != 0 || fread(raw.data(), 1, size, f) != size) {
      throw Fail("short read of tensor " + weightList[i].first + " in " + path);
    }
    if (dst->type == src->type) {
      ggml_backend_tensor_set(dst, raw.data(), 0, size);
    } else {
      f32.resize(ggml_nelements(src));
      toF32(src->type, raw.data(), f32.data(), ggml_nelements(src));
      ggml_backend_tensor_set(dst, f32.data(), 0, f32.size() * sizeof(float));
    }
  }
  bindTensors();
  if (!weightsMode && gradWeightType != GGML_TYPE_COUNT) makeTransposed();
  if (weightsMode) {
    for (auto& [name, t] : weightList) {
      Param p;
      p.t = t;
      ggml_set_param(t);
      params.push_back(p);
    }
    allocOptimizer();
  }
  galloc = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend));
  gallocOpt = ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend));
}

void Trainer::bindTensors() {
  tokEmbd = W("token_embd.weight", true);
  outNorm = W("output_norm.weight", true);
  output = W("output.weight", false);
  if (output == nullptr) output = tokEmbd;  // tied
  outputB = W("output.bias", false);
  if (tokEmbd->ne[0] != hp.nEmbd) throw Fail("token_embd.weight width differs from embedding_length", kUnsupportedModel);
  hp.nVocab = (int)tokEmbd->ne[1];
  if (W("blk.0.attn_qkv.weight", false)) throw Fail("fused QKV weights are not supported", kUnsupportedModel);
  layers.resize(hp.nLayer);
  const int64_t nQ = (int64_t)hp.headDim * hp.nHead, nKv = (int64_t)hp.headDim * hp.nHeadKv;
  auto shape = [&](ggml_tensor* t, int64_t a, int64_t b, const std::string& n) {
    if (t && (t->ne[0] != a || t->ne[1] != b)) {
      throw Fail("tensor " + n + " has shape [" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                 "], expected [" + std::to_string(a) + ", " + std::to_string(b) + "]", kUnsupportedModel);
    }
  };
  for (int il = 0; il < hp.nLayer; il++) {
    const std::string p = "blk." + std::to_string(il) + ".";
    Layer& L = layers[il];
    L.attnNorm = W(p + "attn_norm.weight", true);
    L.wq = W(p + "attn_q.weight", true);
    L.wk = W(p + "attn_k.weight", true);
    L.wv = W(p + "attn_v.weight", true);
    L.bq = W(p + "attn_q.bias", false);
    L.bk = W(p + "attn_k.bias", false);
    L.bv = W(p + "attn_v.bias", false);
    L.wo = W(p + "attn_output.weight", true);
    L.bo = W(p + "attn_output.bias", false);
    L.ffnNorm = W(p + "ffn_norm.weight", true);
    L.gate = W(p + "ffn_gate.weight", true);
    L.up = W(p + "ffn_up.weight", true);
    L.down = W(p + "ffn_down.weight", true);
    L.bGate = W(p + "ffn_gate.bias", false);
    L.bUp = W(p + "ffn_up.bias", false);
    L.bDown = W(p + "ffn_down.bias", false);
    L.ropeFreqs = W("rope_freqs.weight", false);
    shape(L.wq, hp.nEmbd, nQ, p + "attn_q.weight");
    shape(L.wk, hp.nEmbd, nKv, p + "attn_k.weight");
    shape(L.wv, hp.nEmbd, nKv, p + "attn_v.weight");
    shape(L.wo, nQ, hp.nEmbd, p + "attn_output.weight");
    shape(L.gate, hp.nEmbd, hp.nFf, p + "ffn_gate.weight");
    shape(L.up, hp.nEmbd, hp.nFf, p + "ffn_up.weight");
    shape(L.down, hp.nFf, hp.nEmbd, p + "ffn_down.weight");
    if (L.ropeFreqs && (L.ropeFreqs->ne[0] < hp.nRot / 2 || L.ropeFreqs->type != (weightsMode ? GGML_TYPE_F32 : L.ropeFreqs->type))) {
      throw Fail("rope_freqs.weight has the wrong size", kUnsupportedModel);
    }
  }
  shape(output, hp.nEmbd, hp.nVocab, "output.weight");
}

// Transposed copies of the frozen matrices, used for dx = W^T dy (see the speed note in train.h).
void Trainer::makeTransposed() {
  std::vector<ggml_tensor*> mats;
  for (auto& L : layers) {
    for (ggml_tensor* t : {L.wq, L.wk, L.wv, L.wo, L.gate, L.up, L.down}) mats.push_back(t);
  }
  mats.push_back(output);
  ggml_init_params ip = {ggml_tensor_overhead() * (mats.size() + 4), nullptr, true};
  wt.ctx = ggml_init(ip);
  std::vector<std::pair<ggml_tensor*, ggml_tensor*>> pairs;
  for (ggml_tensor* m : mats) {
    if (transposed.count(m)) continue;
    ggml_type type = gradWeightType;
    if (ggml_blck_size(type) > 1 && m->ne[1] % ggml_blck_size(type) != 0) type = GGML_TYPE_F16;
    ggml_tensor* t = ggml_new_tensor_2d(wt.ctx, type, m->ne[1], m->ne[0]);
    ggml_format_name(t, "%s^T", m->name);
    transposed[m] = t;
    pairs.emplace_back(m, t);
  }
  const double need = (double)ggml_backend_alloc_ctx_tensors_from_buft_size(wt.ctx, ggml_backend_get_default_buffer_type(backend));
  if (memoryLimit > 0 && persistentBytes + need > memoryLimit) {
    throw Fail("the weights (" + gib(persistentBytes) + ") and their transposed copies for the backward pass (" + gib(need) +
               ") exceed the memory limit of " + gib(memoryLimit) + ": use gradWeightType 'q8_0' or 'none'", kOutOfMemory);
  }
  wt.buf = ggml_backend_alloc_ctx_tensors(wt.ctx, backend);
  if (wt.buf == nullptr) throw Fail("could not allocate " + gib(need) + " for the transposed weights", kOutOfMemory);
  persistentBytes += need;
  std::vector<uint8_t> raw;
  std::vector<float> a, b;
  for (auto& [m, t] : pairs) {
    const int64_t nIn = m->ne[0], nOut = m->ne[1];
    raw.resize(ggml_nbytes(m));
    ggml_backend_tensor_get(m, raw.data(), 0, raw.size());
    a.resize(nIn * nOut);
    b.resize(nIn * nOut);
    toF32(m->type, raw.data(), a.data(), nIn * nOut);
    // a is [nOut rows][nIn]; b becomes [nIn rows][nOut]. Blocked for the cache.
    const int64_t bs = 64;
    for (int64_t r0 = 0; r0 < nOut; r0 += bs) {
      for (int64_t c0 = 0; c0 < nIn; c0 += bs) {
        const int64_t r1 = std::min(nOut, r0 + bs), c1 = std::min(nIn, c0 + bs);
        for (int64_t r = r0; r < r1; r++) {
          for (int64_t c = c0; c < c1; c++) b[c * nOut + r] = a[r * nIn + c];
        }
      }
    }
    std::vector<uint8_t> conv = fromF32(b.data(), nIn, nOut, t->type);
    ggml_backend_tensor_set(t, conv.data(), 0, conv.size());
  }
}

// ---------------------------------------------------------------- the graph

std::unique_ptr<Built> Trainer::build(const RunSpec& s) {
  auto b = std::make_unique<Built>();
  // About 60 forward and 150 backward nodes per layer: the size grows with depth so ggml never asserts.
  const size_t kGraphSize = std::max<size_t>(8192, (size_t)hp.nLayer * 512 + 1024);
  ggml_init_params ip = {ggml_tensor_overhead() * kGraphSize + ggml_graph_overhead_custom(kGraphSize, true), nullptr, true};
  b->ctx = ggml_init(ip);
  ggml_context* c = b->ctx;
  const int B = s.B, T = s.T, N = B * T;
  const int hd = hp.headDim, nh = hp.nHead, nkv = hp.nHeadKv;
  const int nR = (int)s.rows.size();

  b->tok = ggml_new_tensor_1d(c, GGML_TYPE_I32, N);
  b->pos = ggml_new_tensor_1d(c, GGML_TYPE_I32, N);
  b->mask = ggml_new_tensor_4d(c, GGML_TYPE_F32, T, T, 1, B);
  for (ggml_tensor* t : {b->tok, b->pos, b->mask}) ggml_set_input(t);
  ggml_set_name(b->tok, "tokens");
  ggml_set_name(b->pos, "positions");
  ggml_set_name(b->mask, "kq_mask");
  for (int j = 0; j < s.nMasks; j++) {
    ggml_tensor* t = ggml_new_tensor_2d(c, GGML_TYPE_F32, 1, N);
    ggml_set_input(t);
    ggml_format_name(t, "steer_mask_%d", j);
    b->steer.push_back(t);
  }

  auto steerAt = [&](ggml_tensor* x, int p) {
    for (size_t j = 0; j < vecs.size(); j++) {
      if (vecs[j].pos != p) continue;
      ggml_tensor* mk = b->steer[s.nMasks == 1 ? 0 : j];
      ggml_tensor* add = ggml_mul(c, ggml_repeat(c, vecs[j].t, x), mk);
      x = ggml_add(c, x, add);
    }
    return x;
  };
  auto linear = [&](ggml_tensor* wgt, ggml_tensor* bias, ggml_tensor* x) {
    ggml_tensor* y = ggml_mul_mat(c, wgt, x);
    return bias ? ggml_add(c, y, bias) : y;
  };
  auto norm = [&](ggml_tensor* x, ggml_tensor* g) { return ggml_mul(c, ggml_rms_norm(c, x, hp.eps), g); };

  ggml_tensor* x = ggml_get_rows(c, tokEmbd, b->tok);  // [n_embd, N]
  for (int il = 0; il < hp.nLayer; il++) {
    const Layer& L = layers[il];
    x = steerAt(x, il);
    ggml_tensor* h = norm(x, L.attnNorm);
    ggml_tensor* q = ggml_reshape_3d(c, linear(L.wq, L.bq, h), hd, nh, N);
    ggml_tensor* k = ggml_reshape_3d(c, linear(L.wk, L.bk, h), hd, nkv, N);
    ggml_tensor* v = linear(L.wv, L.bv, h);
    q = ggml_rope_ext(c, q, b->pos, L.ropeFreqs, hp.nRot, hp.ropeMode, hp.nCtxOrig, hp.freqBase, hp.freqScale, 0.0f, 1.0f, 32.0f, 1.0f);
    k = ggml_rope_ext(c, k, b->pos, L.ropeFreqs, hp.nRot, hp.ropeMode, hp.nCtxOrig, hp.freqBase, hp.freqScale, 0.0f, 1.0f, 32.0f, 1.0f);
    // Heads and sequences share dim 2 (head fastest), so that mul_mat's grouped-query broadcast
    // (q head i reads kv head i / (nh/nkv)) pairs each sequence with itself.
    q = ggml_reshape_3d(c, ggml_cont(c, ggml_permute(c, ggml_reshape_4d(c, q, hd, nh, T, B), 0, 2, 1, 3)), hd, T, nh * B);
    k = ggml_reshape_3d(c, ggml_cont(c, ggml_permute(c, ggml_reshape_4d(c, k, hd, nkv, T, B), 0, 2, 1, 3)), hd, T, nkv * B);
    v = ggml_reshape_3d(c, ggml_cont(c, ggml_permute(c, ggml_reshape_4d(c, v, hd, nkv, T, B), 1, 2, 0, 3)), T, hd, nkv * B);
    ggml_tensor* kq = ggml_mul_mat(c, k, q);  // [T_k, T_q, nh*B]
    kq = ggml_reshape_4d(c, kq, T, T, nh, B);
    kq = ggml_soft_max_ext(c, kq, b->mask, hp.kqScale, 0.0f);
    kq = ggml_reshape_3d(c, kq, T, T, nh * B);
    ggml_tensor* o = ggml_mul_mat(c, v, kq);  // [hd, T, nh*B]
    o = ggml_reshape_2d(c, ggml_cont(c, ggml_permute(c, ggml_reshape_4d(c, o, hd, T, nh, B), 0, 2, 1, 3)), hd * nh, N);
    x = ggml_add(c, x, linear(L.wo, L.bo, o));
    h = norm(x, L.ffnNorm);
    ggml_tensor* a = ggml_swiglu_split(c, linear(L.gate, L.bGate, h), linear(L.up, L.bUp, h));
    x = ggml_add(c, x, linear(L.down, L.bDown, a));
    ggml_set_name(x, layerOutName(il).c_str());
  }
  x = steerAt(x, hp.nLayer);
  x = norm(x, outNorm);

  b->gf = ggml_new_graph_custom(c, kGraphSize, s.backward);
  ggml_tensor* sel = nullptr;
  if (nR > 0) {
    b->rows = ggml_new_tensor_1d(c, GGML_TYPE_I32, nR);
    b->labels = ggml_new_tensor_2d(c, GGML_TYPE_F32, hp.nVocab, nR);
    ggml_set_input(b->rows);
    ggml_set_input(b->labels);
  }
  if (s.logits) {
    b->logits = linear(output, outputB, x);  // [n_vocab, N]
    ggml_set_output(b->logits);
    ggml_set_name(b->logits, "logits");
    ggml_build_forward_expand(b->gf, b->logits);
    if (nR > 0) sel = ggml_get_rows(c, b->logits, b->rows);
  } else if (nR > 0) {
    sel = linear(output, outputB, ggml_get_rows(c, x, b->rows));  // only the rows that are scored
  }
  if (sel) {
    if (s.logitScale != 1.0f) sel = ggml_scale(c, sel, s.logitScale);
    if (s.rowWeights.empty()) {
      b->ce = ggml_cross_entropy_loss(c, sel, b->labels);  // mean over the nR rows
    } else {
      // Weighted rows (e.g. policy-gradient advantages, negative allowed): sum_r w_r * -log p_r(y_r) / nR.
      // ggml's fused cross-entropy cannot take weights (its backward assumes labels summing to 1), so
      // the loss is spelled out: softmax, the label's probability, log. Its gradient w_r (p_r - onehot_r)
      // is exact; only a label probability below ~1e-38 (float underflow) would make it infinite.
      b->rowWeights = ggml_new_tensor_2d(c, GGML_TYPE_F32, 1, nR);
      ggml_set_input(b->rowWeights);
      ggml_tensor* py = ggml_sum_rows(c, ggml_mul(c, ggml_soft_max(c, sel), b->labels));  // [1, nR]
      ggml_tensor* nll = ggml_neg(c, ggml_log(c, py));
      b->ce = ggml_scale(c, ggml_sum(c, ggml_mul(c, nll, b->rowWeights)), 1.0f / (float)nR);
    }
    ggml_set_output(b->ce);
    b->loss = ggml_scale(c, b->ce, (float)nR * s.lossScale);
    ggml_set_loss(b->loss);
    ggml_set_output(b->loss);
    ggml_build_forward_expand(b->gf, b->loss);
  }
  if (s.backward) {
    std::vector<ggml_tensor*> accs(ggml_graph_n_nodes(b->gf), nullptr);
    for (int i = 0; i < ggml_graph_n_nodes(b->gf); i++) {
      ggml_tensor* n = ggml_graph_node(b->gf, i);
      for (auto& p : params) {
        if (p.t == n) accs[i] = p.g;
      }
    }
    ggml_build_backward_expand(c, b->gf, accs.data());
    ggml_tensor* lg = ggml_graph_get_grad_acc(b->gf, b->loss);
    if (lg) ggml_set_input(lg);
    for (int i = 0; i < ggml_graph_n_nodes(b->gf); i++) {
      ggml_tensor* n = ggml_graph_node(b->gf, i);
      // ggml-alloc may compute SOFT_MAX_BACK in place over its src1 (the softmax output y) once y has
      // no other consumer left, but the CPU kernel copies dy into dst before it reads y again: the
      // gradient of every query and key then comes out wrong. Flagging y as an output keeps its memory.
      if (n->op == GGML_OP_SOFT_MAX_BACK && n->src[1] != nullptr) ggml_set_output(n->src[1]);
    }
    // dx = out_prod(W, dy^T) -> mul_mat(W^T, dy) for frozen W with a transposed copy.
    if (!transposed.empty()) {
      for (int i = 0; i < ggml_graph_n_nodes(b->gf); i++) {
        ggml_tensor* n = ggml_graph_node(b->gf, i);
        if (n->op != GGML_OP_OUT_PROD) continue;
        auto it = transposed.find(n->src[0]);
        ggml_tensor* tr = n->src[1];
        if (it == transposed.end() || tr->op != GGML_OP_TRANSPOSE) continue;
        ggml_tensor* dy = tr->src[0];
        if (dy->ne[0] != it->second->ne[0] || dy->ne[1] != n->ne[1] || dy->ne[2] != 1 || dy->ne[3] != 1) continue;
        n->op = GGML_OP_MUL_MAT;
        n->src[0] = it->second;
        n->src[1] = dy;
        memset(n->op_params, 0, sizeof(n->op_params));
      }
    }
  }
  return b;
}

double Trainer::measure(Built& b) {
  size_t size = 0;
  ggml_gallocr_reserve_n_size(galloc, b.gf, nullptr, nullptr, &size);
  return (double)size;
}

void Trainer::execute(const RunSpec& s, float* lossOut, std::vector<float>* logitsOut) {
  if (s.backward && params.empty()) throw Fail("nothing to train: no trainable vector is set");
  std::unique_ptr<Built> b = build(s);
  const double need = measure(*b);
  if (memoryLimit > 0 && persistentBytes + need > memoryLimit) {
    throw Fail(std::string("the ") + (s.backward ? "training" : "forward") + " graph for " + std::to_string(s.B) + " sequences x " +
               std::to_string(s.T) + " tokens needs " + gib(need) + " on top of " + gib(persistentBytes) +
               " of weights, over the memory limit of " + gib(memoryLimit) +
               ": lower the number of sequences per step (use gradient accumulation) or the sequence length" +
               (s.logits ? ", or do not ask for logits" : ""), kOutOfMemory);
  }
  for (int i = 0; i < ggml_graph_n_nodes(b->gf); i++) {
    ggml_tensor* n = ggml_graph_node(b->gf, i);
    if (n->op == GGML_OP_NONE || n->op == GGML_OP_VIEW || n->op == GGML_OP_RESHAPE || n->op == GGML_OP_PERMUTE ||
        n->op == GGML_OP_TRANSPOSE) {
      continue;
    }
    if (!ggml_backend_supports_op(backend, n)) {
      throw Fail(std::string("backend ") + backendName + " does not support op " + ggml_op_desc(n) + " (" + n->name + ", " +
                 ggml_type_name(n->type) + ")");
    }
  }
  // measure() left the allocator planned but without buffers: reserve for real, then place the graph.
  if (!ggml_gallocr_reserve(galloc, b->gf) || !ggml_gallocr_alloc_graph(galloc, b->gf)) {
    throw Fail("could not allocate " + gib(need) + " for the compute graph", kOutOfMemory);
  }
  // Inputs the graph does not read (e.g. a mask of a vector placed after the last block) have no buffer.
  auto setIn = [](ggml_tensor* t, const void* data) {
    if (t->buffer != nullptr) ggml_backend_tensor_set(t, data, 0, ggml_nbytes(t));
  };
  setIn(b->tok, s.tokens.data());
  setIn(b->pos, s.pos.data());
  setIn(b->mask, s.mask.data());
  for (size_t j = 0; j < b->steer.size(); j++) setIn(b->steer[j], s.steer.data() + j * (size_t)s.B * s.T);
  if (b->rows) {
    ggml_backend_tensor_set(b->rows, s.rows.data(), 0, ggml_nbytes(b->rows));
    std::vector<float> onehot((size_t)hp.nVocab * s.rows.size(), 0.0f);
    for (size_t r = 0; r < s.rows.size(); r++) onehot[r * hp.nVocab + s.labels[r]] = 1.0f;
    ggml_backend_tensor_set(b->labels, onehot.data(), 0, onehot.size() * sizeof(float));
    if (b->rowWeights) ggml_backend_tensor_set(b->rowWeights, s.rowWeights.data(), 0, ggml_nbytes(b->rowWeights));
  }
  if (s.backward) {
    ggml_tensor* lg = ggml_graph_get_grad_acc(b->gf, b->loss);
    const float one = 1.0f;
    ggml_backend_tensor_set(lg, &one, 0, sizeof(float));
  }
  ggml_status st = ggml_backend_graph_compute(backend, b->gf);
  if (st != GGML_STATUS_SUCCESS) throw Fail("graph compute failed with status " + std::to_string((int)st));
  *lossOut = NAN;
  if (b->ce) ggml_backend_tensor_get(b->ce, lossOut, 0, sizeof(float));
  if (logitsOut && b->logits) {
    logitsOut->resize(ggml_nelements(b->logits));
    ggml_backend_tensor_get(b->logits, logitsOut->data(), 0, ggml_nbytes(b->logits));
  }
}

}  // namespace tw
