// The N-API glue of the trainer: argument checks, the async jobs that run graph and optimizer
// work off the JS thread, and the class Trainer exported to TypeScript (src/train/native.ts).
#include "train.h"

namespace tw {

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

namespace {

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
    } catch (const CodedError& e) {
      code = e.code;
      SetError(e.what());
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
    if (code != nullptr) e.Value().Set("code", code);
    deferred.Reject(e.Value());
  }

 private:
  Trainer* owner;
  const char* code = nullptr;  // of the CodedError fn threw, for the JS error
  Napi::ObjectReference selfRef;
  std::function<void()> fn;
  std::function<Napi::Value(Napi::Env)> make;
};

}  // namespace

Napi::FunctionReference Trainer::ctor;

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
  } catch (const std::exception&) {
    release();
    throw currentJsError(env);
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
  } catch (const std::exception&) {
    throw currentJsError(env);
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
  } catch (const std::exception&) {
    throw currentJsError(env);
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
// (-1 = not scored; the token predicted at that position), weights?: Float32Array(nSeq*seqLen) (loss weight of each
// scored row; default 1), steer?: Float32Array (seqLen*nSeq per vector, or one shared),
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
  // weights?: Float32Array(nSeq*seqLen), the weight of each scored row's loss (finite, any sign)
  std::vector<float> weights;
  Napi::Value wv = o.Get("weights");
  if (!wv.IsUndefined() && !wv.IsNull()) {
    if (!wv.IsTypedArray() || wv.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array ||
        wv.As<Napi::Float32Array>().ElementLength() != N) {
      throw Napi::TypeError::New(env, "weights must be a Float32Array of " + std::to_string(N) + " elements");
    }
    Napi::Float32Array a = wv.As<Napi::Float32Array>();
    weights.assign(a.Data(), a.Data() + N);
  }
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
        if (!weights.empty()) {
          if (!std::isfinite(weights[i])) throw Napi::RangeError::New(env, "weight at row " + std::to_string(i) + " is not finite");
          s.rowWeights.push_back(weights[i]);
        }
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
  } catch (const std::exception&) {
    throw currentJsError(env);
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
