// Context: llama_context with several sequences, batched decode off the JS thread, and the
// residual-stream hooks. Hooks run inside the scheduler's eval callback: when a wanted tensor
// (e.g. "l_out-5") is final and nothing downstream has read it yet, rows are added to and/or
// copied out. Which rows, which vectors: decided in TypeScript, passed in per decode.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common.h"
#include "tensor-names.h"
#include "ggml-backend.h"

namespace tw {

struct HookOp {
  std::string tensor;
  std::vector<int32_t> rows;  // batch row indices
  std::vector<float> add;     // rows.size() * n_embd, empty when the op only captures
  bool capture = false;
  std::vector<float> out;     // captured rows, after any add on the same tensor
  bool seen = false;
};

struct DecodeState {
  bool active = false;
  int32_t nEmbd = 0;
  int32_t nTokens = 0;
  int32_t nOutputs = 0;
  std::vector<int32_t> outIndex;  // batch row -> output row, -1 when the row has no output
  std::vector<float> deviceRow;   // one row copied from/to a device tensor
  std::vector<HookOp> ops;
  // Hooked tensors, each with its op indices (adds before captures). A short list searched with
  // strcmp: the eval callback runs for every graph node and must not allocate.
  struct Hooked {
    std::string tensor;
    std::vector<size_t> ops;
  };
  std::vector<Hooked> hooked;
  Hooked* find(const char* name) {
    for (auto& h : hooked) {
      if (std::strcmp(h.tensor.c_str(), name) == 0) return &h;
    }
    return nullptr;
  }
  void clearOps() {
    ops.clear();
    hooked.clear();
    error.clear();
  }
  std::string error;
};

static bool rowAccess(DecodeState* s, ggml_tensor* t, int32_t batchRow, int32_t* tensorRow) {
  const int64_t nRows = t->ne[1];
  if (nRows == s->nTokens) {
    *tensorRow = batchRow;
  } else if (nRows == s->nOutputs) {
    // The last layer keeps only the rows that produce outputs.
    *tensorRow = s->outIndex[batchRow];
    if (*tensorRow < 0) {
      s->error = std::string("row ") + std::to_string(batchRow) + " has no output, so tensor " + t->name +
                 " does not hold it (the last layer keeps only output rows)";
      return false;
    }
  } else {
    s->error = std::string("tensor ") + t->name + " has " + std::to_string(nRows) + " rows, expected " +
               std::to_string(s->nTokens) + " or " + std::to_string(s->nOutputs);
    return false;
  }
  return true;
}

static void applyOp(DecodeState* s, HookOp& op, ggml_tensor* t) {
  const size_t rowBytes = (size_t)s->nEmbd * sizeof(float);
  const bool host = t->buffer == nullptr || ggml_backend_buffer_is_host(t->buffer);
  std::vector<float>& tmp = s->deviceRow;  // sized at context creation: nothing allocates here
  for (size_t i = 0; i < op.rows.size(); i++) {
    int32_t r;
    if (!rowAccess(s, t, op.rows[i], &r)) return;
    float* row;
    if (host) {
      row = (float*)((char*)t->data + (size_t)r * t->nb[1]);
    } else {
      ggml_backend_tensor_get(t, tmp.data(), (size_t)r * t->nb[1], rowBytes);
      row = tmp.data();
    }
    if (!op.add.empty()) {
      const float* v = op.add.data() + i * s->nEmbd;
      for (int32_t j = 0; j < s->nEmbd; j++) row[j] += v[j];
      if (!host) ggml_backend_tensor_set(t, row, (size_t)r * t->nb[1], rowBytes);
    }
    if (op.capture) std::memcpy(op.out.data() + i * s->nEmbd, row, rowBytes);
  }
}

static bool g_trace = getenv("THINKWHEN_HOOK_TRACE") != nullptr;

static bool evalCallback(ggml_tensor* t, bool ask, void* userData) {
  auto* s = static_cast<DecodeState*>(userData);
  if (g_trace && ask) fprintf(stderr, "[thinkwhen hook trace] %s (%s)\n", hookTensorName(t), ggml_op_desc(t));
  if (!s->active || s->hooked.empty()) return !ask;
  DecodeState::Hooked* h = s->find(hookTensorName(t));
  if (h == nullptr) return !ask;
  if (ask) return true;
  if (t->type != GGML_TYPE_F32 || t->ne[0] != s->nEmbd || t->nb[0] != sizeof(float)) {
    s->error = std::string("tensor ") + hookTensorName(t) + " is not a contiguous F32 [n_embd, n_tokens] tensor";
    return true;
  }
  for (size_t idx : h->ops) {
    s->ops[idx].seen = true;
    if (s->error.empty()) applyOp(s, s->ops[idx], t);
  }
  return true;
}

class Context : public Napi::ObjectWrap<Context> {
 public:
  static Napi::FunctionReference ctor;
  llama_context* ctx = nullptr;
  const llama_model* model = nullptr;
  Napi::ObjectReference modelRef;  // keeps the model alive while the context lives
  DecodeState state;
  bool busy = false;

  // new Context(model, {nCtx, nBatch, nSeqMax, nThreads, nThreadsBatch})
  explicit Context(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Context>(info) {
    Napi::Env env = info.Env();
    llama_model* m = UnwrapModel(info[0]);
    Napi::Object o = info[1].As<Napi::Object>();
    llama_context_params p = llama_context_default_params();
    p.n_ctx = o.Get("nCtx").As<Napi::Number>().Uint32Value();
    p.n_batch = o.Get("nBatch").As<Napi::Number>().Uint32Value();
    p.n_ubatch = p.n_batch;  // one ubatch per decode: hook rows follow batch order
    p.n_seq_max = o.Get("nSeqMax").As<Napi::Number>().Uint32Value();
    p.n_threads = o.Get("nThreads").As<Napi::Number>().Int32Value();
    p.n_threads_batch = o.Get("nThreadsBatch").As<Napi::Number>().Int32Value();
    p.n_outputs_max_per_seq = 0;  // logits for every requested token
    p.kv_unified = true;          // simple split: tensor rows in batch order
    p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    p.no_perf = true;
    p.cb_eval = evalCallback;
    p.cb_eval_user_data = &state;
    logTake();
    ctx = llama_init_from_model(m, p);
    if (ctx == nullptr) throw Napi::Error::New(env, "llama.cpp could not create the context: " + logTake());
    model = m;
    state.nEmbd = llama_model_n_embd(m);
    state.deviceRow.resize(state.nEmbd);
    modelRef = Napi::Persistent(info[0].As<Napi::Object>());
  }
  ~Context() override { release(); }

  void release() {
    if (ctx != nullptr) llama_free(ctx);
    ctx = nullptr;
    if (!modelRef.IsEmpty()) modelRef.Reset();
  }

  llama_context* get(Napi::Env env) {
    if (ctx == nullptr) throw Napi::Error::New(env, "context has been freed");
    if (busy) throw Napi::Error::New(env, "context is busy with a decode; await it first");
    return ctx;
  }

  Napi::Value Decode(const Napi::CallbackInfo& info);

  Napi::Value Info(const Napi::CallbackInfo& info) {
    llama_context* c = get(info.Env());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("nCtx", llama_n_ctx(c));
    o.Set("nCtxSeq", llama_n_ctx_seq(c));
    o.Set("nBatch", llama_n_batch(c));
    o.Set("nSeqMax", llama_n_seq_max(c));
    return o;
  }

  Napi::Value SeqRm(const Napi::CallbackInfo& info) {
    llama_context* c = get(info.Env());
    bool ok = llama_memory_seq_rm(llama_get_memory(c), info[0].As<Napi::Number>().Int32Value(),
                                  info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Int32Value());
    return Napi::Boolean::New(info.Env(), ok);
  }
  Napi::Value SeqCp(const Napi::CallbackInfo& info) {
    llama_context* c = get(info.Env());
    llama_memory_seq_cp(llama_get_memory(c), info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(),
                        info[2].As<Napi::Number>().Int32Value(), info[3].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }
  Napi::Value SeqKeep(const Napi::CallbackInfo& info) {
    llama_memory_seq_keep(llama_get_memory(get(info.Env())), info[0].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }
  Napi::Value SeqPosMax(const Napi::CallbackInfo& info) {
    llama_context* c = get(info.Env());
    return Napi::Number::New(info.Env(), llama_memory_seq_pos_max(llama_get_memory(c), info[0].As<Napi::Number>().Int32Value()));
  }
  Napi::Value Clear(const Napi::CallbackInfo& info) {
    llama_memory_clear(llama_get_memory(get(info.Env())), true);
    return info.Env().Undefined();
  }
  Napi::Value SetThreads(const Napi::CallbackInfo& info) {
    llama_set_n_threads(get(info.Env()), info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value());
    return info.Env().Undefined();
  }

  // setControlVector(data: Float32Array | null, ilStart, ilEnd); data covers layers 1..n_layer-1.
  Napi::Value SetControlVector(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    llama_context* c = get(env);
    logTake();
    int32_t rc;
    if (info[0].IsNull() || info[0].IsUndefined()) {
      rc = llama_set_adapter_cvec(c, nullptr, 0, state.nEmbd, -1, -1);
    } else {
      Napi::Float32Array a = info[0].As<Napi::Float32Array>();
      rc = llama_set_adapter_cvec(c, a.Data(), a.ElementLength(), state.nEmbd, info[1].As<Napi::Number>().Int32Value(),
                                  info[2].As<Napi::Number>().Int32Value());
    }
    if (rc != 0) throw Napi::Error::New(env, "llama_set_adapter_cvec failed: " + logTake());
    return env.Undefined();
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    if (busy) throw Napi::Error::New(info.Env(), "context is busy with a decode; await it before free()");
    release();
    return info.Env().Undefined();
  }
};

Napi::FunctionReference Context::ctor;

class DecodeWorker : public Napi::AsyncWorker {
 public:
  DecodeWorker(Napi::Env env, Context* owner, Napi::Object self)
      : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), owner(owner) {
    selfRef = Napi::Persistent(self);
  }
  Napi::Promise::Deferred deferred;
  std::vector<llama_token> tokens;
  std::vector<llama_pos> pos;
  std::vector<llama_seq_id> seq;
  std::vector<int8_t> outputs;

  void Execute() override {
    DecodeState& s = owner->state;
    const int32_t n = (int32_t)tokens.size();
    llama_batch b = llama_batch_init(n, 0, 1);
    for (int32_t i = 0; i < n; i++) {
      b.token[i] = tokens[i];
      b.pos[i] = pos[i];
      b.n_seq_id[i] = 1;
      b.seq_id[i][0] = seq[i];
      b.logits[i] = outputs[i];
    }
    b.n_tokens = n;
    logTake();
    s.active = true;
    int32_t rc = llama_decode(owner->ctx, b);
    s.active = false;
    llama_batch_free(b);
    if (rc != 0) {
      std::string why = rc == 1 ? "no space left in the KV cache (context overflow): raise nCtx or remove sequences"
                        : rc == 2 ? "decode aborted"
                                  : "llama_decode failed with code " + std::to_string(rc);
      fail(rc == 1 ? "KV_FULL" : "DECODE_FAILED", why + ". " + logTake());
      return;
    }
    if (!s.error.empty()) {
      fail("HOOK_FAILED", "hook failed: " + s.error);
      return;
    }
    for (auto& op : s.ops) {
      if (!op.seen) {
        fail("HOOK_NOT_COMPUTED", "hook tensor '" + op.tensor + "' was never computed by this model's graph");
        return;
      }
    }
    const int32_t nVocab = llama_vocab_n_tokens(llama_model_get_vocab(owner->model));
    logits.resize((size_t)s.nOutputs * nVocab);
    int32_t o = 0;
    for (int32_t i = 0; i < n; i++) {
      if (!outputs[i]) continue;
      const float* l = llama_get_logits_ith(owner->ctx, i);
      if (l == nullptr) {
        fail("DECODE_FAILED", "no logits for row " + std::to_string(i));
        return;
      }
      std::memcpy(logits.data() + (size_t)o * nVocab, l, nVocab * sizeof(float));
      o++;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    finish();
    Napi::Object out = Napi::Object::New(env);
    Napi::Float32Array lg = Napi::Float32Array::New(env, logits.size());
    std::memcpy(lg.Data(), logits.data(), logits.size() * sizeof(float));
    out.Set("logits", lg);
    Napi::Array caps = Napi::Array::New(env);
    auto& ops = owner->state.ops;
    for (size_t i = 0; i < ops.size(); i++) {
      if (ops[i].capture) {
        Napi::Float32Array a = Napi::Float32Array::New(env, ops[i].out.size());
        std::memcpy(a.Data(), ops[i].out.data(), ops[i].out.size() * sizeof(float));
        caps.Set(i, a);
      } else {
        caps.Set(i, env.Null());
      }
    }
    out.Set("hooks", caps);
    clearState();
    deferred.Resolve(out);
  }
  // The rejection carries a `code` (KV_FULL, HOOK_FAILED, HOOK_NOT_COMPUTED, DECODE_FAILED) for
  // TypeScript to map; the message is for people.
  void OnError(const Napi::Error& e) override {
    finish();
    clearState();
    Napi::Object err = e.Value();
    err.Set("code", code.empty() ? "DECODE_FAILED" : code);
    deferred.Reject(err);
  }

 private:
  Context* owner;
  Napi::ObjectReference selfRef;
  std::string code;
  void fail(const char* c, const std::string& message) {
    code = c;
    SetError(message);
  }
  std::vector<float> logits;
  void finish() {
    owner->busy = false;
    selfRef.Reset();
  }
  void clearState() {
    owner->state.clearOps();
  }
};

// decode(tokens, pos, seq, outputs, hooks) -> Promise<{logits, hooks}>
// hooks: [{tensor: string, rows: Int32Array, add?: Float32Array, capture: boolean}]
// All validation of meaning (ranges, widths, NaNs) happens in TypeScript; here only sizes are checked.
Napi::Value Context::Decode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  get(env);
  auto* w = new DecodeWorker(env, this, info.This().As<Napi::Object>());
  try {
    Napi::Int32Array tok = info[0].As<Napi::Int32Array>();
    Napi::Int32Array pos = info[1].As<Napi::Int32Array>();
    Napi::Int32Array seq = info[2].As<Napi::Int32Array>();
    Napi::Uint8Array outs = info[3].As<Napi::Uint8Array>();
    const size_t n = tok.ElementLength();
    if (n == 0 || pos.ElementLength() != n || seq.ElementLength() != n || outs.ElementLength() != n) {
      throw Napi::RangeError::New(env, "decode: tokens, pos, seq and outputs must be non-empty and of equal length");
    }
    if (n > llama_n_batch(ctx)) throw Napi::RangeError::New(env, "decode: batch larger than nBatch");
    w->tokens.assign(tok.Data(), tok.Data() + n);
    w->pos.assign(pos.Data(), pos.Data() + n);
    w->seq.assign(seq.Data(), seq.Data() + n);
    w->outputs.resize(n);
    state.outIndex.assign(n, -1);
    state.nOutputs = 0;
    for (size_t i = 0; i < n; i++) {
      w->outputs[i] = outs[i] ? 1 : 0;
      if (outs[i]) state.outIndex[i] = state.nOutputs++;
    }
    state.nTokens = (int32_t)n;
    state.clearOps();
    Napi::Array hooks = info[4].As<Napi::Array>();
    for (uint32_t i = 0; i < hooks.Length(); i++) {
      Napi::Object h = hooks.Get(i).As<Napi::Object>();
      HookOp op;
      op.tensor = h.Get("tensor").As<Napi::String>().Utf8Value();
      Napi::Int32Array rows = h.Get("rows").As<Napi::Int32Array>();
      op.rows.assign(rows.Data(), rows.Data() + rows.ElementLength());
      for (int32_t r : op.rows) {
        if (r < 0 || (size_t)r >= n) throw Napi::RangeError::New(env, "decode: hook row out of range");
      }
      Napi::Value add = h.Get("add");
      if (add.IsTypedArray()) {
        Napi::Float32Array a = add.As<Napi::Float32Array>();
        if (a.ElementLength() != op.rows.size() * (size_t)state.nEmbd) {
          throw Napi::RangeError::New(env, "decode: hook add must hold rows.length * n_embd floats");
        }
        op.add.assign(a.Data(), a.Data() + a.ElementLength());
      }
      op.capture = h.Get("capture").ToBoolean();
      if (op.capture) op.out.resize(op.rows.size() * state.nEmbd);
      state.ops.push_back(std::move(op));
    }
    // Adds first, then captures: a capture sees the steered state.
    for (int pass = 0; pass < 2; pass++) {
      for (size_t i = 0; i < state.ops.size(); i++) {
        if ((pass == 0) != !state.ops[i].add.empty()) continue;
        DecodeState::Hooked* h = state.find(state.ops[i].tensor.c_str());
        if (h == nullptr) {
          state.hooked.push_back({state.ops[i].tensor, {}});
          h = &state.hooked.back();
        }
        h->ops.push_back(i);
      }
    }
  } catch (...) {
    state.clearOps();
    delete w;
    throw;
  }
  busy = true;
  Napi::Promise p = w->deferred.Promise();
  w->Queue();
  return p;
}

Napi::Object ContextInit(Napi::Env env, Napi::Object exports) {
  Napi::Function fn = Context::DefineClass(env, "Context",
                                           {
                                               Context::InstanceMethod("decode", &Context::Decode),
                                               Context::InstanceMethod("info", &Context::Info),
                                               Context::InstanceMethod("seqRm", &Context::SeqRm),
                                               Context::InstanceMethod("seqCp", &Context::SeqCp),
                                               Context::InstanceMethod("seqKeep", &Context::SeqKeep),
                                               Context::InstanceMethod("seqPosMax", &Context::SeqPosMax),
                                               Context::InstanceMethod("clear", &Context::Clear),
                                               Context::InstanceMethod("setThreads", &Context::SetThreads),
                                               Context::InstanceMethod("setControlVector", &Context::SetControlVector),
                                               Context::InstanceMethod("free", &Context::Free),
                                           });
  Context::ctor = Napi::Persistent(fn);
  Context::ctor.SuppressDestruct();
  exports.Set("Context", fn);
  return exports;
}

}  // namespace tw
