// The parity reference: one llama_decode through llama.cpp's own graph and KV cache, with one hook
// that adds a vector to rows of a residual tensor named by the rule in tensor-names.h.
#include "train.h"

namespace tw {

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
  if (s->tensor != hookTensorName(t)) return !ask;
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
Napi::Value ReferenceForward(const Napi::CallbackInfo& info) {
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

}  // namespace tw
