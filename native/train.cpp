// Training graph: the Llama/Qwen2 forward pass rebuilt with the public ggml API (no KV cache), so that
// ggml can differentiate it exactly, plus AdamW steps, saving as GGUF and a llama.cpp reference forward.
//
// Trainable parameters are either F32 vectors added to the residual stream at chosen positions
// (model weights frozen, any type) or all model weights in F32. Gradients accumulate in persistent
// tensors across run() calls until step() applies AdamW and clears them. Policy (schedules, early
// stopping, batching, which positions to steer) lives in TypeScript; this file only builds, measures,
// computes and copies.
//
// Speed note: ggml differentiates y = W x into dx = out_prod(W, dy^T). On the CPU that op
// dequantises every weight row once per token, which is far slower than a matrix multiply. For
// frozen weights this file keeps a transposed copy W^T (F32/F16/Q8_0, chosen by the caller) and,
// after ggml has built the backward graph, rewrites those nodes into mul_mat(W^T, dy), which is the
// same product computed by the fast kernels.
#include <array>
#include <cmath>
#include <functional>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "gguf.h"

namespace tw {

namespace {

struct Fail : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string gib(double bytes) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.2f GiB", bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

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
      throw Fail("metadata key " + key + " is an array (per-layer values are not supported by the training graph)");
    default: return false;
  }
}

double needNum(const gguf_context* g, const std::string& key) {
  double v;
  if (!getNum(g, key, &v)) throw Fail("GGUF metadata key " + key + " is missing");
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

// ---------------------------------------------------------------- model description

struct Hparams {
  std::string arch;
  int nLayer = 0, nEmbd = 0, nHead = 0, nHeadKv = 0, headDim = 0, nFf = 0, nVocab = 0, nRot = 0;
  int ropeMode = 0, nCtxOrig = 0;
  float eps = 1e-6f, freqBase = 10000.f, freqScale = 1.f, kqScale = 1.f;
};

struct Layer {
  ggml_tensor *attnNorm = nullptr, *wq = nullptr, *wk = nullptr, *wv = nullptr, *bq = nullptr, *bk = nullptr,
              *bv = nullptr, *wo = nullptr, *bo = nullptr, *ffnNorm = nullptr, *gate = nullptr, *up = nullptr,
              *down = nullptr, *bGate = nullptr, *bUp = nullptr, *bDown = nullptr, *ropeFreqs = nullptr;
};

struct Param {
  ggml_tensor* t = nullptr;  // the parameter (F32)
  ggml_tensor* g = nullptr;  // gradient accumulator
  ggml_tensor* m = nullptr;  // Adam first moment
  ggml_tensor* v = nullptr;  // Adam second moment
};

struct Vec {
  int pos = 0;  // residual position: p = input of block p (p == nLayer: after the last block)
  bool trainable = false;
  ggml_tensor* t = nullptr;
  int param = -1;  // index into params when trainable
};

struct RunSpec {
  int B = 0, T = 0;
  std::vector<int32_t> tokens, pos, rows, labels;
  std::vector<float> mask;   // [B][T][T]
  std::vector<float> steer;  // nMasks * B * T
  int nMasks = 0;
  float logitScale = 1.f, lossScale = 1.f;
  bool backward = false, logits = false;
};

struct Built {
  ggml_context* ctx = nullptr;
  ggml_cgraph* gf = nullptr;
  ggml_tensor *tok = nullptr, *pos = nullptr, *mask = nullptr, *rows = nullptr, *labels = nullptr, *ce = nullptr,
              *loss = nullptr, *logits = nullptr;
  std::vector<ggml_tensor*> steer;
  ~Built() {
    if (ctx) ggml_free(ctx);
  }
};

struct Ctx {
  ggml_context* ctx = nullptr;
  ggml_backend_buffer_t buf = nullptr;
  void reset() {
    if (buf) ggml_backend_buffer_free(buf);
    if (ctx) ggml_free(ctx);
    buf = nullptr;
    ctx = nullptr;
  }
  ~Ctx() { reset(); }
};

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

// ================================================================== Trainer

class Trainer : public Napi::ObjectWrap<Trainer> {
 public:
  static Napi::FunctionReference ctor;

  // Configuration
  bool weightsMode = false;
  double memoryLimit = 0;  // bytes; 0 = no limit
  ggml_type gradWeightType = GGML_TYPE_COUNT;  // type of W^T copies; COUNT = none (use ggml's out_prod)
  std::string backendName;

  // State
  ggml_backend_t backend = nullptr;
  gguf_context* meta = nullptr;  // the source file's metadata (kept for save)
  std::string path;
  Hparams hp;
  Ctx w, wt, opt, vecCtx;  // weights, transposed weights, optimizer state, vectors
  std::vector<std::pair<std::string, ggml_tensor*>> weightList;  // in file order
  std::unordered_map<std::string, ggml_tensor*> byName;
  std::unordered_map<const ggml_tensor*, ggml_tensor*> transposed;
  ggml_tensor *tokEmbd = nullptr, *outNorm = nullptr, *output = nullptr, *outputB = nullptr;
  std::vector<Layer> layers;
  std::vector<Param> params;
  std::vector<Vec> vecs;
  ggml_tensor* adamParams = nullptr;  // [7] in the opt context
  ggml_gallocr_t galloc = nullptr, gallocOpt = nullptr;
  int64_t stepCount = 0;
  bool busy = false;
  double persistentBytes = 0;

  explicit Trainer(const Napi::CallbackInfo& info);
  ~Trainer() override { release(); }

  void release() {
    if (galloc) ggml_gallocr_free(galloc);
    if (gallocOpt) ggml_gallocr_free(gallocOpt);
    galloc = gallocOpt = nullptr;
    vecCtx.reset();
    opt.reset();
    wt.reset();
    w.reset();
    if (meta) gguf_free(meta);
    meta = nullptr;
    if (backend) ggml_backend_free(backend);
    backend = nullptr;
  }

  void check(Napi::Env env) {
    if (backend == nullptr) throw Napi::Error::New(env, "trainer has been freed");
    if (busy) throw Napi::Error::New(env, "trainer is busy; await the previous call first");
  }

  void load(const std::string& device, int nThreads);
  void readHparams();
  void bindTensors();
  void makeTransposed();
  void allocOptimizer();
  void setVectors(const std::vector<Vec>& spec, const std::vector<std::vector<float>>& data);

  ggml_tensor* W(const std::string& name, bool required) {
    auto it = byName.find(name);
    if (it == byName.end()) {
      if (required) throw Fail("tensor " + name + " is missing from " + path);
      return nullptr;
    }
    return it->second;
  }

  std::unique_ptr<Built> build(const RunSpec& s);
  double measure(Built& b);
  void execute(const RunSpec& s, float* lossOut, std::vector<float>* logitsOut);
  void adamStep(const float hp7[7]);
  void zeroGrad() {
    for (auto& p : params) ggml_backend_tensor_memset(p.g, 0, 0, ggml_nbytes(p.g));
  }
  void save(const std::string& out);

  // JS methods
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value SetVectors(const Napi::CallbackInfo& info);
  Napi::Value GetVector(const Napi::CallbackInfo& info);
  Napi::Value GetGrad(const Napi::CallbackInfo& info);
  Napi::Value GetParam(const Napi::CallbackInfo& info);
  Napi::Value SetParam(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Estimate(const Napi::CallbackInfo& info);
  Napi::Value Step(const Napi::CallbackInfo& info);
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info);
  Napi::Value Save(const Napi::CallbackInfo& info);
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value SetThreads(const Napi::CallbackInfo& info);
  Napi::Value GetMoments(const Napi::CallbackInfo& info);
  Napi::Value SetMoments(const Napi::CallbackInfo& info);
  Napi::Value GetSteps(const Napi::CallbackInfo& info);
  Napi::Value SetSteps(const Napi::CallbackInfo& info);
  RunSpec parseRun(Napi::Env env, Napi::Object o);
  Param* trainable(Napi::Env env, const Napi::Value& which);
};

Napi::FunctionReference Trainer::ctor;

void Trainer::readHparams() {
  hp.arch = optStr(meta, "general.architecture");
  if (hp.arch != "qwen2" && hp.arch != "llama") {
    throw Fail("architecture '" + hp.arch + "' is not supported by the training graph (qwen2, llama)");
  }
  const std::string a = hp.arch + ".";
  hp.nLayer = (int)needNum(meta, a + "block_count");
  hp.nEmbd = (int)needNum(meta, a + "embedding_length");
  hp.nFf = (int)needNum(meta, a + "feed_forward_length");
  hp.nHead = (int)needNum(meta, a + "attention.head_count");
  hp.nHeadKv = (int)optNum(meta, a + "attention.head_count_kv", hp.nHead);
  if (hp.nHead <= 0 || hp.nHeadKv <= 0 || hp.nHead % hp.nHeadKv != 0) throw Fail("bad head counts in metadata");
  hp.headDim = (int)optNum(meta, a + "attention.key_length", hp.nEmbd / hp.nHead);
  if ((int)optNum(meta, a + "attention.value_length", hp.headDim) != hp.headDim) {
    throw Fail("key and value head sizes differ: not supported");
  }
  hp.nRot = (int)optNum(meta, a + "rope.dimension_count", hp.headDim);
  if (hp.nRot != hp.headDim || hp.headDim % 2 != 0) throw Fail("partial or odd RoPE dimensions are not supported");
  hp.eps = (float)needNum(meta, a + "attention.layer_norm_rms_epsilon");
  hp.freqBase = (float)optNum(meta, a + "rope.freq_base", 10000.0);
  std::string scaling = optStr(meta, a + "rope.scaling.type");
  double factor = optNum(meta, a + "rope.scaling.factor", 0.0);
  if (scaling == "yarn" || scaling == "longrope") throw Fail("RoPE scaling '" + scaling + "' is not supported by the training graph");
  if (scaling == "none") factor = 0.0;
  hp.freqScale = factor > 0 ? (float)(1.0 / factor) : 1.0f;
  hp.nCtxOrig = (int)optNum(meta, a + "rope.scaling.original_context_length", optNum(meta, a + "context_length", 4096));
  hp.ropeMode = hp.arch == "qwen2" ? GGML_ROPE_TYPE_NEOX : 0;  // llama.cpp: qwen2 NEOX, llama NORM
  double attnScale = optNum(meta, a + "attention.scale", 0.0);
  hp.kqScale = attnScale != 0.0 ? (float)attnScale : 1.0f / sqrtf((float)hp.headDim);
  if (optNum(meta, a + "expert_count", 0) > 0) throw Fail("mixture-of-experts models are not supported");
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
               gib(memoryLimit) + ": use a smaller model" + (weightsMode ? "" : " or a quantised file"));
  }
  w.buf = ggml_backend_alloc_ctx_tensors(w.ctx, backend);
  if (w.buf == nullptr) throw Fail("could not allocate " + gib(persistentBytes) + " for the weights on " + backendName);
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
  if (tokEmbd->ne[0] != hp.nEmbd) throw Fail("token_embd.weight width differs from embedding_length");
  hp.nVocab = (int)tokEmbd->ne[1];
  if (W("blk.0.attn_qkv.weight", false)) throw Fail("fused QKV weights are not supported");
  layers.resize(hp.nLayer);
  const int64_t nQ = (int64_t)hp.headDim * hp.nHead, nKv = (int64_t)hp.headDim * hp.nHeadKv;
  auto shape = [&](ggml_tensor* t, int64_t a, int64_t b, const std::string& n) {
    if (t && (t->ne[0] != a || t->ne[1] != b)) {
      throw Fail("tensor " + n + " has shape [" + std::to_string(t->ne[0]) + ", " + std::to_string(t->ne[1]) +
                 "], expected [" + std::to_string(a) + ", " + std::to_string(b) + "]");
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
      throw Fail("rope_freqs.weight has the wrong size");
    }
  }
  shape(output, hp.nEmbd, hp.nVocab, "output.weight");
}

// Transposed copies of the frozen matrices, used for dx = W^T dy (see the note at the top).
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
               ") exceed the memory limit of " + gib(memoryLimit) + ": use gradWeightType 'q8_0' or 'none'");
  }
  wt.buf = ggml_backend_alloc_ctx_tensors(wt.ctx, backend);
  if (wt.buf == nullptr) throw Fail("could not allocate " + gib(need) + " for the transposed weights");
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
               gib(memoryLimit));
  }
  opt.buf = ggml_backend_alloc_ctx_tensors(opt.ctx, backend);
  if (opt.buf == nullptr) throw Fail("could not allocate the optimizer state");
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
  if (vecCtx.buf == nullptr) throw Fail("could not allocate the vectors");
  for (size_t i = 0; i < vecs.size(); i++) ggml_backend_tensor_set(vecs[i].t, data[i].data(), 0, hp.nEmbd * sizeof(float));
  if (!params.empty()) allocOptimizer();
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
    ggml_format_name(x, "l_out-%d", il);
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
    b->ce = ggml_cross_entropy_loss(c, sel, b->labels);  // mean over the nR rows
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
               (s.logits ? ", or do not ask for logits" : ""));
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
    throw Fail("could not allocate " + gib(need) + " for the compute graph");
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

void Trainer::adamStep(const float hp7[7]) {
  if (params.empty()) throw Fail("nothing to train");
  // Nodes: one step per parameter; leafs: its gradient, moments and the shared hyper-parameters.
  const size_t size = params.size() * 4 + 16;
  ggml_init_params ip = {ggml_tensor_overhead() * size + ggml_graph_overhead_custom(size, false), nullptr, true};
  ggml_context* c = ggml_init(ip);
  std::unique_ptr<ggml_context, void (*)(ggml_context*)> guard(c, ggml_free);
  ggml_cgraph* g = ggml_new_graph_custom(c, size, false);
  for (auto& p : params) ggml_build_forward_expand(g, ggml_opt_step_adamw(c, p.t, p.g, p.m, p.v, adamParams));
  if (!ggml_gallocr_alloc_graph(gallocOpt, g)) throw Fail("could not allocate the optimizer graph");
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

// ---------------------------------------------------------------- JS glue

namespace {

template <typename T>
T getOr(Napi::Object o, const char* key, T dflt);
template <>
double getOr(Napi::Object o, const char* key, double dflt) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : dflt;
}
template <>
bool getOr(Napi::Object o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}
template <>
std::string getOr(Napi::Object o, const char* key, std::string dflt) {
  Napi::Value v = o.Get(key);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : dflt;
}

Napi::Float32Array toJs(Napi::Env env, const float* p, size_t n) {
  Napi::Float32Array a = Napi::Float32Array::New(env, n);
  if (n) memcpy(a.Data(), p, n * sizeof(float));
  return a;
}

// Runs fn off the JS thread and resolves with make(env) or rejects with the failure.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, Trainer* owner, Napi::Object self, std::function<void()> fn, std::function<Napi::Value(Napi::Env)> make)
      : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), owner(owner), fn(std::move(fn)), make(std::move(make)) {
    selfRef = Napi::Persistent(self);
    owner->busy = true;
  }
  Napi::Promise::Deferred deferred;
  void Execute() override {
    try {
      fn();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override {
    owner->busy = false;
    selfRef.Reset();
    deferred.Resolve(make(Env()));
  }
  void OnError(const Napi::Error& e) override {
    owner->busy = false;
    selfRef.Reset();
    deferred.Reject(e.Value());
  }

 private:
  Trainer* owner;
  Napi::ObjectReference selfRef;
  std::function<void()> fn;
  std::function<Napi::Value(Napi::Env)> make;
};

}  // namespace

// new Trainer(path, {mode: 'vectors'|'weights', device: 'cpu'|'gpu'|name, nThreads, gradWeightType: 'f32'|'f16'|'q8_0'|'none'|'auto', memoryLimit})
Trainer::Trainer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Trainer>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) throw Napi::TypeError::New(env, "Trainer(path, options) expected");
  path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object o = info[1].As<Napi::Object>();
  std::string mode = getOr<std::string>(o, "mode", "vectors");
  if (mode != "vectors" && mode != "weights") throw Napi::TypeError::New(env, "mode must be 'vectors' or 'weights'");
  weightsMode = mode == "weights";
  memoryLimit = getOr<double>(o, "memoryLimit", 0);
  std::string gwt = getOr<std::string>(o, "gradWeightType", "auto");
  try {
    if (gwt == "none") {
      gradWeightType = GGML_TYPE_COUNT;
    } else if (gwt != "auto") {
      gradWeightType = parseType(gwt);
    }
    if (gwt == "auto") {
      // F32 models keep exact F32 copies; every other type gets F16 copies.
      ggml_context* mc = nullptr;
      gguf_init_params gp = {true, &mc};
      gguf_context* g = gguf_init_from_file(path.c_str(), gp);
      if (g == nullptr) throw Fail("cannot read GGUF file " + path);
      ggml_tensor* t = ggml_get_tensor(mc, "blk.0.ffn_down.weight");
      gradWeightType = t && t->type == GGML_TYPE_F32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
      gguf_free(g);
      ggml_free(mc);
    }
    load(getOr<std::string>(o, "device", "cpu"), (int)getOr<double>(o, "nThreads", 0));
  } catch (const std::exception& e) {
    release();
    throw Napi::Error::New(env, e.what());
  }
}

Napi::Value Trainer::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (backend == nullptr) throw Napi::Error::New(env, "trainer has been freed");
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", hp.arch);
  o.Set("nLayer", hp.nLayer);
  o.Set("nEmbd", hp.nEmbd);
  o.Set("nHead", hp.nHead);
  o.Set("nHeadKv", hp.nHeadKv);
  o.Set("headDim", hp.headDim);
  o.Set("nFf", hp.nFf);
  o.Set("nVocab", hp.nVocab);
  o.Set("ropeMode", hp.ropeMode == GGML_ROPE_TYPE_NEOX ? "neox" : "norm");
  o.Set("freqBase", hp.freqBase);
  o.Set("eps", hp.eps);
  o.Set("tiedOutput", output == tokEmbd);
  o.Set("backend", backendName);
  o.Set("mode", weightsMode ? "weights" : "vectors");
  o.Set("gradWeightType", gradWeightType == GGML_TYPE_COUNT ? "none" : ggml_type_name(gradWeightType));
  o.Set("persistentBytes", persistentBytes);
  double nParams = 0;
  for (auto& p : params) nParams += (double)ggml_nelements(p.t);
  o.Set("nTrainable", nParams);
  o.Set("steps", (double)stepCount);
  Napi::Array names = Napi::Array::New(env);
  for (size_t i = 0; i < weightList.size(); i++) names.Set((uint32_t)i, weightList[i].first);
  o.Set("tensors", names);
  return o;
}

// setVectors([{pos, trainable, data: Float32Array}])
Napi::Value Trainer::SetVectors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "setVectors(array) expected");
  Napi::Array a = info[0].As<Napi::Array>();
  std::vector<Vec> spec;
  std::vector<std::vector<float>> data;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Object e = a.Get(i).As<Napi::Object>();
    Vec v;
    v.pos = (int)getOr<double>(e, "pos", -1);
    if (v.pos < 0 || v.pos > hp.nLayer) throw Napi::RangeError::New(env, "vector pos must be in 0..nLayer");
    v.trainable = getOr<bool>(e, "trainable", true);
    Napi::Value d = e.Get("data");
    if (!d.IsTypedArray() || d.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
      throw Napi::TypeError::New(env, "vector data must be a Float32Array");
    }
    Napi::Float32Array f = d.As<Napi::Float32Array>();
    if (f.ElementLength() != (size_t)hp.nEmbd) throw Napi::RangeError::New(env, "vector data must hold nEmbd floats");
    data.emplace_back(f.Data(), f.Data() + f.ElementLength());
    spec.push_back(v);
  }
  try {
    setVectors(spec, data);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return env.Undefined();
}

Napi::Value Trainer::GetVector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  int i = info[0].As<Napi::Number>().Int32Value();
  if (i < 0 || (size_t)i >= vecs.size()) throw Napi::RangeError::New(env, "no such vector");
  std::vector<float> d(hp.nEmbd);
  ggml_backend_tensor_get(vecs[i].t, d.data(), 0, d.size() * sizeof(float));
  return toJs(env, d.data(), d.size());
}

// getGrad(vectorIndex | tensorName) -> the accumulated gradient
Napi::Value Trainer::GetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  ggml_tensor* g = trainable(env, info[0])->g;
  std::vector<float> d(ggml_nelements(g));
  ggml_backend_tensor_get(g, d.data(), 0, ggml_nbytes(g));
  return toJs(env, d.data(), d.size());
}

// The trainable parameter named by a vector index or a tensor name (a JS exception otherwise).
Param* Trainer::trainable(Napi::Env env, const Napi::Value& which) {
  if (which.IsNumber()) {
    int i = which.As<Napi::Number>().Int32Value();
    if (i < 0 || (size_t)i >= vecs.size() || vecs[i].param < 0) throw Napi::RangeError::New(env, "no such trainable vector");
    return &params[vecs[i].param];
  }
  std::string n = which.ToString().Utf8Value();
  for (auto& p : params) {
    if (p.t->name == n) return &p;
  }
  throw Napi::RangeError::New(env, "no trainable tensor named " + n);
}

// getMoments(vectorIndex | tensorName) -> {m, v}: Adam's first and second moments of a parameter;
// setMoments(which, m, v) restores them, getSteps()/setSteps(n) the step count of the bias
// correction: together a resumed run continues the optimizer exactly where it stopped.
Napi::Value Trainer::GetMoments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  Param* p = trainable(env, info[0]);
  Napi::Object out = Napi::Object::New(env);
  for (auto [key, t] : {std::pair<const char*, ggml_tensor*>{"m", p->m}, {"v", p->v}}) {
    Napi::Float32Array a = Napi::Float32Array::New(env, ggml_nelements(t));
    ggml_backend_tensor_get(t, a.Data(), 0, ggml_nbytes(t));
    out.Set(key, a);
  }
  return out;
}

Napi::Value Trainer::SetMoments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  Param* p = trainable(env, info[0]);
  for (int k = 1; k <= 2; k++) {
    ggml_tensor* t = k == 1 ? p->m : p->v;
    if (!info[k].IsTypedArray() || info[k].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        info[k].As<Napi::Float32Array>().ElementLength() != (size_t)ggml_nelements(t)) {
      throw Napi::RangeError::New(env, "setMoments: two Float32Arrays of the parameter's size expected");
    }
  }
  ggml_backend_tensor_set(p->m, info[1].As<Napi::Float32Array>().Data(), 0, ggml_nbytes(p->m));
  ggml_backend_tensor_set(p->v, info[2].As<Napi::Float32Array>().Data(), 0, ggml_nbytes(p->v));
  return env.Undefined();
}

Napi::Value Trainer::GetSteps(const Napi::CallbackInfo& info) {
  check(info.Env());
  return Napi::Number::New(info.Env(), (double)stepCount);
}

Napi::Value Trainer::SetSteps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  const double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(n >= 0) || n != std::floor(n)) throw Napi::RangeError::New(env, "setSteps: a non-negative integer expected");
  stepCount = (int64_t)n;
  return env.Undefined();
}

// getParam(name) -> Float32Array (dequantised), setParam(name, Float32Array) (F32 tensors only)
Napi::Value Trainer::GetParam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  std::string n = info[0].ToString().Utf8Value();
  auto it = byName.find(n);
  if (it == byName.end()) throw Napi::RangeError::New(env, "no tensor named " + n);
  ggml_tensor* t = it->second;
  std::vector<uint8_t> raw(ggml_nbytes(t));
  ggml_backend_tensor_get(t, raw.data(), 0, raw.size());
  Napi::Float32Array out = Napi::Float32Array::New(env, ggml_nelements(t));
  try {
    toF32(t->type, raw.data(), out.Data(), ggml_nelements(t));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  return out;
}

Napi::Value Trainer::SetParam(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  std::string n = info[0].ToString().Utf8Value();
  auto it = byName.find(n);
  if (it == byName.end()) throw Napi::RangeError::New(env, "no tensor named " + n);
  ggml_tensor* t = it->second;
  if (t->type != GGML_TYPE_F32) throw Napi::Error::New(env, "setParam needs an F32 tensor (mode 'weights')");
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
      info[1].As<Napi::Float32Array>().ElementLength() != (size_t)ggml_nelements(t)) {
    throw Napi::RangeError::New(env, "setParam: Float32Array of the tensor's size expected");
  }
  ggml_backend_tensor_set(t, info[1].As<Napi::Float32Array>().Data(), 0, ggml_nbytes(t));
  return env.Undefined();
}

// Batch: {nSeq, seqLen, tokens: Int32Array(nSeq*seqLen), lengths: Int32Array(nSeq), targets: Int32Array(nSeq*seqLen)
// (-1 = not scored; the token predicted at that position), steer?: Float32Array (seqLen*nSeq per vector, or one shared),
// logitScale, lossScale, backward, logits}
RunSpec Trainer::parseRun(Napi::Env env, Napi::Object o) {
  RunSpec s;
  s.B = (int)getOr<double>(o, "nSeq", 0);
  s.T = (int)getOr<double>(o, "seqLen", 0);
  if (s.B <= 0 || s.T <= 0) throw Napi::RangeError::New(env, "nSeq and seqLen must be positive");
  if ((double)s.B * s.T > 1 << 20) throw Napi::RangeError::New(env, "batch too large");
  const size_t N = (size_t)s.B * s.T;
  auto i32 = [&](const char* key, size_t n) {
    Napi::Value v = o.Get(key);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
        v.As<Napi::Int32Array>().ElementLength() != n) {
      throw Napi::TypeError::New(env, std::string(key) + " must be an Int32Array of " + std::to_string(n) + " elements");
    }
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    return std::vector<int32_t>(a.Data(), a.Data() + n);
  };
  s.tokens = i32("tokens", N);
  std::vector<int32_t> lengths = i32("lengths", s.B);
  std::vector<int32_t> targets = i32("targets", N);
  for (int b = 0; b < s.B; b++) {
    if (lengths[b] < 1 || lengths[b] > s.T) throw Napi::RangeError::New(env, "each length must be in 1..seqLen");
  }
  s.pos.resize(N);
  s.mask.assign((size_t)s.B * s.T * s.T, -INFINITY);
  for (int b = 0; b < s.B; b++) {
    for (int t = 0; t < s.T; t++) {
      const size_t i = (size_t)b * s.T + t;
      s.pos[i] = t;
      if (s.tokens[i] < 0 || s.tokens[i] >= hp.nVocab) throw Napi::RangeError::New(env, "token id out of range at row " + std::to_string(i));
      const int32_t y = targets[i];
      if (y >= 0) {
        if (y >= hp.nVocab) throw Napi::RangeError::New(env, "target id out of range at row " + std::to_string(i));
        if (t >= lengths[b]) throw Napi::RangeError::New(env, "target at a padding position (row " + std::to_string(i) + ")");
        s.rows.push_back((int32_t)i);
        s.labels.push_back(y);
      }
      // Causal within the real tokens; a padding query sees the real tokens only (never read by real rows).
      float* m = s.mask.data() + ((size_t)b * s.T + t) * s.T;
      for (int k = 0; k <= t && k < lengths[b]; k++) m[k] = 0.0f;
    }
  }
  Napi::Value st = o.Get("steer");
  size_t nVec = vecs.size();
  if (st.IsTypedArray()) {
    if (st.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(env, "steer must be a Float32Array");
    Napi::Float32Array f = st.As<Napi::Float32Array>();
    if (f.ElementLength() == N) {
      s.nMasks = nVec > 0 ? 1 : 0;
    } else if (nVec > 0 && f.ElementLength() == N * nVec) {
      s.nMasks = (int)nVec;
    } else {
      throw Napi::RangeError::New(env, "steer must hold nSeq*seqLen floats (shared) or that many per vector");
    }
    s.steer.assign(f.Data(), f.Data() + f.ElementLength());
  } else if (nVec > 0) {
    throw Napi::TypeError::New(env, "steer (Float32Array) is required when vectors are set");
  }
  s.logitScale = (float)getOr<double>(o, "logitScale", 1.0);
  s.lossScale = (float)getOr<double>(o, "lossScale", 1.0);
  s.backward = getOr<bool>(o, "backward", false);
  s.logits = getOr<bool>(o, "logits", false);
  if (s.backward && s.rows.empty()) throw Napi::RangeError::New(env, "backward needs at least one target");
  if (!s.logits && s.rows.empty()) throw Napi::RangeError::New(env, "nothing to compute: no targets and no logits requested");
  if (s.logits && (double)N * hp.nVocab > 4e9 / sizeof(float)) throw Napi::RangeError::New(env, "logits for this batch would exceed 4 GB");
  return s;
}

// run(batch) -> Promise<{loss (mean CE of the scored rows, natural log, before lossScale), nTargets, logits?}>
Napi::Value Trainer::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  if (!info[0].IsObject()) throw Napi::TypeError::New(env, "run(batch) expected");
  auto spec = std::make_shared<RunSpec>(parseRun(env, info[0].As<Napi::Object>()));
  auto loss = std::make_shared<float>(NAN);
  auto logits = std::make_shared<std::vector<float>>();
  const int nVocab = hp.nVocab;
  auto* job = new Job(
      env, this, info.This().As<Napi::Object>(), [this, spec, loss, logits]() { execute(*spec, loss.get(), logits.get()); },
      [spec, loss, logits, nVocab](Napi::Env e) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("loss", Napi::Number::New(e, *loss));
        out.Set("nTargets", Napi::Number::New(e, (double)spec->rows.size()));
        if (!logits->empty()) {
          out.Set("logits", toJs(e, logits->data(), logits->size()));
          out.Set("nVocab", nVocab);
        }
        return out;
      });
  Napi::Promise p = job->deferred.Promise();
  job->Queue();
  return p;
}

// estimate(batch) -> {computeBytes, persistentBytes}: builds the graph without allocating it.
Napi::Value Trainer::Estimate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  RunSpec s = parseRun(env, info[0].As<Napi::Object>());
  if (s.backward && params.empty()) throw Napi::Error::New(env, "nothing to train: no trainable vector is set");
  double need;
  try {
    auto b = build(s);
    need = measure(*b);
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("computeBytes", need);
  o.Set("persistentBytes", persistentBytes);
  return o;
}

// step({lr, beta1, beta2, eps, weightDecay}) -> Promise<void>: AdamW on the accumulated gradients, then clears them.
Napi::Value Trainer::Step(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  if (params.empty()) throw Napi::Error::New(env, "nothing to train");
  Napi::Object o = info[0].As<Napi::Object>();
  const double lr = getOr<double>(o, "lr", NAN), b1 = getOr<double>(o, "beta1", 0.9), b2 = getOr<double>(o, "beta2", 0.999);
  const double eps = getOr<double>(o, "eps", 1e-8), wd = getOr<double>(o, "weightDecay", 0.0);
  if (!(lr >= 0) || !(b1 >= 0 && b1 < 1) || !(b2 >= 0 && b2 < 1) || !(eps > 0) || !(wd >= 0)) {
    throw Napi::RangeError::New(env, "step: lr >= 0, 0 <= beta < 1, eps > 0, weightDecay >= 0 expected");
  }
  stepCount++;
  auto hp7 = std::make_shared<std::array<float, 7>>();
  *hp7 = {(float)lr, (float)b1, (float)b2, (float)eps, (float)wd, (float)(1.0 / (1.0 - pow(b1, (double)stepCount))),
          (float)(1.0 / (1.0 - pow(b2, (double)stepCount)))};
  auto* job = new Job(
      env, this, info.This().As<Napi::Object>(), [this, hp7]() { adamStep(hp7->data()); },
      [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
  Napi::Promise p = job->deferred.Promise();
  job->Queue();
  return p;
}

Napi::Value Trainer::ZeroGrad(const Napi::CallbackInfo& info) {
  check(info.Env());
  zeroGrad();
  return info.Env().Undefined();
}

// resetOptimizer semantics live in setVectors (new moments); save(path) writes a GGUF llama.cpp loads.
Napi::Value Trainer::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "save(path) expected");
  std::string out = info[0].As<Napi::String>().Utf8Value();
  auto* job = new Job(
      env, this, info.This().As<Napi::Object>(), [this, out]() { save(out); }, [](Napi::Env e) -> Napi::Value { return e.Undefined(); });
  Napi::Promise p = job->deferred.Promise();
  job->Queue();
  return p;
}

Napi::Value Trainer::SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  check(env);
  ggml_backend_dev_t dev = ggml_backend_get_device(backend);
  auto setThreads = (void (*)(ggml_backend_t, int))ggml_backend_reg_get_proc_address(ggml_backend_dev_backend_reg(dev),
                                                                                      "ggml_backend_set_n_threads");
  if (setThreads) setThreads(backend, info[0].As<Napi::Number>().Int32Value());
  return env.Undefined();
}

Napi::Value Trainer::Free(const Napi::CallbackInfo& info) {
  if (busy) throw Napi::Error::New(info.Env(), "trainer is busy; await it before free()");
  release();
  return info.Env().Undefined();
}

// ================================================================== llama.cpp reference forward

namespace {

struct RefState {
  std::string tensor;
  std::vector<int32_t> rows;  // batch rows to add to
  std::vector<float> add;     // n_embd
  int nEmbd = 0;
  bool seen = false;
  std::string error;
};

bool refCallback(ggml_tensor* t, bool ask, void* ud) {
  auto* s = static_cast<RefState*>(ud);
  if (s->tensor.empty()) return !ask;
  // The token-embedding lookup has no name of its own: it is the GET_ROWS of token_embd.weight
  // (blocks.0.hook_resid_pre), addressed as "token_embd_rows" like the engine's hooks do.
  const bool embRows = t->op == GGML_OP_GET_ROWS && t->src[0] != nullptr && strcmp(t->src[0]->name, "token_embd.weight") == 0;
  if (s->tensor != (embRows ? "token_embd_rows" : t->name)) return !ask;
  if (ask) return true;
  s->seen = true;
  if (t->type != GGML_TYPE_F32 || t->ne[0] != s->nEmbd) {
    s->error = "tensor " + s->tensor + " is not [n_embd, n] F32";
    return true;
  }
  std::vector<float> row(s->nEmbd);
  for (int32_t r : s->rows) {
    if (r >= t->ne[1]) {
      s->error = "row out of range in " + s->tensor;
      return true;
    }
    ggml_backend_tensor_get(t, row.data(), (size_t)r * t->nb[1], row.size() * sizeof(float));
    for (int j = 0; j < s->nEmbd; j++) row[j] += s->add[j];
    ggml_backend_tensor_set(t, row.data(), (size_t)r * t->nb[1], row.size() * sizeof(float));
  }
  return true;
}

}  // namespace

// referenceForward(model, {tokens: Int32Array, seq: Int32Array, pos: Int32Array, nThreads, kvType: 'f32'|'f16',
//   hook?: {tensor, rows: Int32Array, add: Float32Array}}) -> Promise<Float32Array> (logits of every row)
// One llama_decode through llama.cpp's own graph with its own KV cache: the parity reference.
static Napi::Value ReferenceForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  llama_model* model = UnwrapModel(info[0]);
  Napi::Object o = info[1].As<Napi::Object>();
  auto getI32 = [&](const char* key) {
    Napi::Value v = o.Get(key);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw Napi::TypeError::New(env, std::string(key) + " must be an Int32Array");
    }
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    return std::vector<int32_t>(a.Data(), a.Data() + a.ElementLength());
  };
  auto tokens = std::make_shared<std::vector<int32_t>>(getI32("tokens"));
  std::vector<int32_t> seq = getI32("seq"), pos = getI32("pos");
  const size_t n = tokens->size();
  if (n == 0 || seq.size() != n || pos.size() != n) throw Napi::RangeError::New(env, "tokens, seq, pos: equal non-zero lengths");
  const int nVocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  int nSeq = 0;
  for (size_t i = 0; i < n; i++) {
    if ((*tokens)[i] < 0 || (*tokens)[i] >= nVocab) throw Napi::RangeError::New(env, "token out of range");
    if (seq[i] < 0 || seq[i] >= 256) throw Napi::RangeError::New(env, "seq id out of range");
    nSeq = std::max(nSeq, seq[i] + 1);
  }
  auto state = std::make_shared<RefState>();
  state->nEmbd = llama_model_n_embd(model);
  Napi::Value hook = o.Get("hook");
  if (hook.IsObject()) {
    Napi::Object h = hook.As<Napi::Object>();
    state->tensor = h.Get("tensor").ToString().Utf8Value();
    Napi::Int32Array rows = h.Get("rows").As<Napi::Int32Array>();
    state->rows.assign(rows.Data(), rows.Data() + rows.ElementLength());
    Napi::Float32Array add = h.Get("add").As<Napi::Float32Array>();
    if (add.ElementLength() != (size_t)state->nEmbd) throw Napi::RangeError::New(env, "hook.add must hold n_embd floats");
    state->add.assign(add.Data(), add.Data() + add.ElementLength());
    for (int32_t r : state->rows) {
      if (r < 0 || (size_t)r >= n) throw Napi::RangeError::New(env, "hook row out of range");
    }
  }
  const int nThreads = (int)getOr<double>(o, "nThreads", 2);
  const std::string kvType = getOr<std::string>(o, "kvType", "f32");
  auto logits = std::make_shared<std::vector<float>>();
  auto err = std::make_shared<std::string>();
  auto deferred = std::make_shared<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  auto modelRef = std::make_shared<Napi::ObjectReference>(Napi::Persistent(info[0].As<Napi::Object>()));
  struct RefJob : Napi::AsyncWorker {
    std::function<void()> fn;
    std::function<void(Napi::Env)> ok;
    std::function<void(Napi::Env, const Napi::Error&)> bad;
    RefJob(Napi::Env e) : Napi::AsyncWorker(e) {}
    void Execute() override {
      try {
        fn();
      } catch (const std::exception& ex) {
        SetError(ex.what());
      }
    }
    void OnOK() override { ok(Env()); }
    void OnError(const Napi::Error& e) override { bad(Env(), e); }
  };
  auto* job = new RefJob(env);
  auto seqP = std::make_shared<std::vector<int32_t>>(std::move(seq));
  auto posP = std::make_shared<std::vector<int32_t>>(std::move(pos));
  job->fn = [model, tokens, seqP, posP, state, logits, nThreads, kvType, nSeq, nVocab]() {
    const size_t n = tokens->size();
    llama_context_params p = llama_context_default_params();
    p.n_ctx = (uint32_t)((n + 255) / 256 * 256);
    p.n_batch = p.n_ubatch = (uint32_t)n;
    p.n_seq_max = (uint32_t)nSeq;
    p.n_threads = p.n_threads_batch = nThreads;
    p.n_outputs_max_per_seq = 0;
    p.kv_unified = true;
    p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    p.type_k = p.type_v = kvType == "f16" ? GGML_TYPE_F16 : GGML_TYPE_F32;
    p.no_perf = true;
    p.cb_eval = refCallback;
    p.cb_eval_user_data = state.get();
    logTake();
    llama_context* ctx = llama_init_from_model(model, p);
    if (ctx == nullptr) throw Fail("llama.cpp could not create the reference context: " + logTake());
    std::unique_ptr<llama_context, void (*)(llama_context*)> cg(ctx, llama_free);
    llama_batch b = llama_batch_init((int32_t)n, 0, 1);
    for (size_t i = 0; i < n; i++) {
      b.token[i] = (*tokens)[i];
      b.pos[i] = (*posP)[i];
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = (*seqP)[i];
      b.logits[i] = 1;
    }
    b.n_tokens = (int32_t)n;
    int32_t rc = llama_decode(ctx, b);
    llama_batch_free(b);
    if (rc != 0) throw Fail("llama_decode failed with code " + std::to_string(rc) + ": " + logTake());
    if (!state->error.empty()) throw Fail(state->error);
    if (!state->tensor.empty() && !state->seen) throw Fail("tensor " + state->tensor + " was never computed");
    logits->resize(n * (size_t)nVocab);
    for (size_t i = 0; i < n; i++) {
      const float* l = llama_get_logits_ith(ctx, (int32_t)i);
      if (l == nullptr) throw Fail("no logits for row " + std::to_string(i));
      memcpy(logits->data() + i * nVocab, l, nVocab * sizeof(float));
    }
  };
  job->ok = [deferred, logits, modelRef](Napi::Env e) {
    modelRef->Reset();
    deferred->Resolve(toJs(e, logits->data(), logits->size()));
  };
  job->bad = [deferred, modelRef](Napi::Env, const Napi::Error& er) {
    modelRef->Reset();
    deferred->Reject(er.Value());
  };
  job->Queue();
  return deferred->Promise();
}

Napi::Object TrainInit(Napi::Env env, Napi::Object exports) {
  Napi::Function fn = Trainer::DefineClass(env, "Trainer",
                                           {
                                               Trainer::InstanceMethod("info", &Trainer::Info),
                                               Trainer::InstanceMethod("setVectors", &Trainer::SetVectors),
                                               Trainer::InstanceMethod("getVector", &Trainer::GetVector),
                                               Trainer::InstanceMethod("getGrad", &Trainer::GetGrad),
                                               Trainer::InstanceMethod("getParam", &Trainer::GetParam),
                                               Trainer::InstanceMethod("setParam", &Trainer::SetParam),
                                               Trainer::InstanceMethod("run", &Trainer::Run),
                                               Trainer::InstanceMethod("estimate", &Trainer::Estimate),
                                               Trainer::InstanceMethod("step", &Trainer::Step),
                                               Trainer::InstanceMethod("zeroGrad", &Trainer::ZeroGrad),
                                               Trainer::InstanceMethod("save", &Trainer::Save),
                                               Trainer::InstanceMethod("setThreads", &Trainer::SetThreads),
                                               Trainer::InstanceMethod("getMoments", &Trainer::GetMoments),
                                               Trainer::InstanceMethod("setMoments", &Trainer::SetMoments),
                                               Trainer::InstanceMethod("getSteps", &Trainer::GetSteps),
                                               Trainer::InstanceMethod("setSteps", &Trainer::SetSteps),
                                               Trainer::InstanceMethod("free", &Trainer::Free),
                                           });
  Trainer::ctor = Napi::Persistent(fn);
  Trainer::ctor.SuppressDestruct();
  exports.Set("Trainer", fn);
  exports.Set("referenceForward", Napi::Function::New(env, ReferenceForward));
  return exports;
}

}  // namespace tw
