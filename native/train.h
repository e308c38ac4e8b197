// Training graph: the Llama/Qwen2 forward pass rebuilt with the public ggml API (no KV cache), so that
// ggml can differentiate it exactly, plus AdamW steps, saving as GGUF and a llama.cpp reference forward.
//
// Trainable parameters are either F32 vectors added to the residual stream at chosen positions
// (model weights frozen, any type) or all model weights in F32. Gradients accumulate in persistent
// tensors across run() calls until step() applies AdamW and clears them. Policy (schedules, early
// stopping, batching, which positions to steer) lives in TypeScript; this code only builds, measures,
// computes and copies. It is split by job, and this header is what the parts share:
//   train-graph.cpp      loading a GGUF into ggml tensors; the forward/backward graph
//   train-optimizer.cpp  parameters with gradients and Adam moments, vectors, AdamW, saving as GGUF
//   train-reference.cpp  llama.cpp's own forward with a hook: the parity reference
//   train-napi.cpp       the N-API class Trainer and referenceForward()
//
// Speed note: ggml differentiates y = W x into dx = out_prod(W, dy^T). On the CPU that op
// dequantises every weight row once per token, which is far slower than a matrix multiply. For
// frozen weights train-graph.cpp keeps a transposed copy W^T (F32/F16/Q8_0, chosen by the caller) and,
// after ggml has built the backward graph, rewrites those nodes into mul_mat(W^T, dy), which is the
// same product computed by the fast kernels.
#pragma once

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
#include "tensor-names.h"

namespace tw {

// A failure inside the trainer; `code` (when set) reaches TypeScript as the JS error's code.
struct Fail : CodedError {
  explicit Fail(const std::string& message, const char* code = nullptr) : CodedError(message, code) {}
};

// The codes native failures carry into TypeScript (src/train/trainer.ts turns them into ThinkwhenErrors).
constexpr const char* kOutOfMemory = "OUT_OF_MEMORY";
constexpr const char* kUnsupportedModel = "UNSUPPORTED_MODEL";

std::string gib(double bytes);

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
  std::vector<float> rowWeights;  // per scored row (empty: every row weighs 1, ggml's cross-entropy)
  std::vector<float> mask;   // [B][T][T]
  std::vector<float> steer;  // nMasks * B * T
  int nMasks = 0;
  float logitScale = 1.f, lossScale = 1.f;
  bool backward = false, logits = false;
};

struct Built {
  ggml_context* ctx = nullptr;
  ggml_cgraph* gf = nullptr;
  ggml_tensor *tok = nullptr, *pos = nullptr, *mask = nullptr, *rows = nullptr, *labels = nullptr, *rowWeights = nullptr,
              *ce = nullptr, *loss = nullptr, *logits = nullptr;
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

ggml_type parseType(const std::string& s);
// Converts n floats to `type` (rows of rowLen elements).
std::vector<uint8_t> fromF32(const float* src, int64_t nRows, int64_t rowLen, ggml_type type);
void toF32(ggml_type type, const void* src, float* dst, int64_t n);

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
      if (required) throw Fail("tensor " + name + " is missing from " + path, kUnsupportedModel);
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

// N-API helpers shared by the Trainer's methods and referenceForward.
template <typename T>
T getOr(Napi::Object o, const char* key, T dflt);
template <>
double getOr(Napi::Object o, const char* key, double dflt);
template <>
bool getOr(Napi::Object o, const char* key, bool dflt);
template <>
std::string getOr(Napi::Object o, const char* key, std::string dflt);
Napi::Float32Array toJs(Napi::Env env, const float* p, size_t n);

// referenceForward(model, options): see train-reference.cpp.
Napi::Value ReferenceForward(const Napi::CallbackInfo& info);

}  // namespace tw
