// Model: load a GGUF through llama.cpp, read its metadata, tokenize and detokenize.
#include <vector>

#include "common.h"

namespace tw {

class Model : public Napi::ObjectWrap<Model> {
 public:
  static Napi::FunctionReference ctor;
  llama_model* model = nullptr;

  explicit Model(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Model>(info) {}
  ~Model() override { release(); }

  void release() {
    if (model != nullptr) llama_model_free(model);
    model = nullptr;
  }

  llama_model* get(Napi::Env env) {
    if (model == nullptr) throw Napi::Error::New(env, "model has been freed");
    return model;
  }

  Napi::Value Meta(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    llama_model* m = get(env);
    const llama_vocab* vocab = llama_model_get_vocab(m);
    Napi::Object out = Napi::Object::New(env);
    out.Set("nLayer", llama_model_n_layer(m));
    out.Set("nEmbd", llama_model_n_embd(m));
    // Per-layer queries abort inside llama.cpp when there are no layers (vocab-only files).
    const bool hasLayers = llama_model_n_layer(m) > 0;
    out.Set("nHead", hasLayers ? llama_model_n_head(m) : 0);
    out.Set("nHeadKv", hasLayers ? llama_model_n_head_kv(m) : 0);
    out.Set("nCtxTrain", llama_model_n_ctx_train(m));
    out.Set("nVocab", llama_vocab_n_tokens(vocab));
    out.Set("nParams", Napi::Number::New(env, (double)llama_model_n_params(m)));
    out.Set("sizeBytes", Napi::Number::New(env, (double)llama_model_size(m)));
    out.Set("bos", llama_vocab_bos(vocab));
    out.Set("eos", llama_vocab_eos(vocab));
    out.Set("eot", llama_vocab_eot(vocab));
    out.Set("addBos", llama_vocab_get_add_bos(vocab));
    out.Set("addEos", llama_vocab_get_add_eos(vocab));
    out.Set("sep", llama_vocab_sep(vocab));
    out.Set("vocabType", (int)llama_vocab_type(vocab));
    char buf[512];
    llama_model_desc(m, buf, sizeof(buf));
    out.Set("description", buf);
    const char* tmpl = llama_model_chat_template(m, nullptr);
    out.Set("chatTemplate", tmpl ? Napi::Value(Napi::String::New(env, tmpl)) : env.Null());
    Napi::Object kv = Napi::Object::New(env);
    std::vector<char> val(1 << 16);
    for (int i = 0; i < llama_model_meta_count(m); i++) {
      llama_model_meta_key_by_index(m, i, buf, sizeof(buf));
      int n = llama_model_meta_val_str_by_index(m, i, val.data(), val.size());
      if (n >= 0) kv.Set(buf, std::string(val.data(), std::min<size_t>(n, val.size() - 1)));
    }
    out.Set("metadata", kv);
    return out;
  }

  // tokenize(text, addSpecial, parseSpecial) -> Int32Array
  Napi::Value Tokenize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const llama_vocab* vocab = llama_model_get_vocab(get(env));
    std::string text = info[0].As<Napi::String>().Utf8Value();
    bool addSpecial = info[1].ToBoolean();
    bool parseSpecial = info[2].ToBoolean();
    std::vector<llama_token> toks(text.size() + 8);
    int n = llama_tokenize(vocab, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), addSpecial, parseSpecial);
    if (n < 0) {
      toks.resize(-n);
      n = llama_tokenize(vocab, text.data(), (int32_t)text.size(), toks.data(), (int32_t)toks.size(), addSpecial, parseSpecial);
    }
    if (n < 0) throw Napi::Error::New(env, "tokenization failed: " + logTake());
    Napi::Int32Array out = Napi::Int32Array::New(env, n);
    std::copy(toks.begin(), toks.begin() + n, out.Data());
    return out;
  }

  // tokenPiece(token, renderSpecial) -> Buffer of the token's UTF-8 bytes (may be a partial character)
  Napi::Value TokenPiece(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const llama_vocab* vocab = llama_model_get_vocab(get(env));
    llama_token tok = info[0].As<Napi::Number>().Int32Value();
    bool special = info[1].ToBoolean();
    if (tok < 0 || tok >= llama_vocab_n_tokens(vocab)) throw Napi::RangeError::New(env, "token id out of range");
    char buf[256];
    int n = llama_token_to_piece(vocab, tok, buf, sizeof(buf), 0, special);
    std::vector<char> big;
    const char* data = buf;
    if (n < 0) {
      big.resize(-n);
      n = llama_token_to_piece(vocab, tok, big.data(), (int32_t)big.size(), 0, special);
      data = big.data();
    }
    return Napi::Buffer<char>::Copy(env, data, std::max(n, 0));
  }

  Napi::Value IsEog(const Napi::CallbackInfo& info) {
    const llama_vocab* vocab = llama_model_get_vocab(get(info.Env()));
    return Napi::Boolean::New(info.Env(), llama_vocab_is_eog(vocab, info[0].As<Napi::Number>().Int32Value()));
  }

  Napi::Value IsControl(const Napi::CallbackInfo& info) {
    const llama_vocab* vocab = llama_model_get_vocab(get(info.Env()));
    return Napi::Boolean::New(info.Env(), llama_vocab_is_control(vocab, info[0].As<Napi::Number>().Int32Value()));
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }
};

Napi::FunctionReference Model::ctor;

llama_model* UnwrapModel(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(Model::ctor.Value())) {
    throw Napi::TypeError::New(v.Env(), "a native Model was expected");
  }
  return Model::Unwrap(v.As<Napi::Object>())->get(v.Env());
}

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, int nGpuLayers, bool vocabOnly)
      : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), path(std::move(path)),
        nGpuLayers(nGpuLayers), vocabOnly(vocabOnly) {}
  Napi::Promise::Deferred deferred;

  void Execute() override {
    logTake();
    llama_model_params p = llama_model_default_params();
    p.n_gpu_layers = nGpuLayers;
    p.vocab_only = vocabOnly;
    model = llama_model_load_from_file(path.c_str(), p);
    if (model == nullptr) SetError("llama.cpp could not load the model: " + logTake());
  }
  void OnOK() override {
    Napi::Object obj = Model::ctor.New({});
    Model::Unwrap(obj)->model = model;
    deferred.Resolve(obj);
  }
  void OnError(const Napi::Error& e) override { deferred.Reject(e.Value()); }

 private:
  std::string path;
  int nGpuLayers;
  bool vocabOnly;
  llama_model* model = nullptr;
};

// loadModel(path, nGpuLayers, vocabOnly) -> Promise<Model>
static Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString()) throw Napi::TypeError::New(env, "loadModel(path, nGpuLayers, vocabOnly)");
  auto* w = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                           info[2].ToBoolean());
  Napi::Promise p = w->deferred.Promise();
  w->Queue();
  return p;
}

Napi::Object ModelInit(Napi::Env env, Napi::Object exports) {
  Napi::Function fn = Model::DefineClass(env, "Model",
                                         {
                                             Model::InstanceMethod("meta", &Model::Meta),
                                             Model::InstanceMethod("tokenize", &Model::Tokenize),
                                             Model::InstanceMethod("tokenPiece", &Model::TokenPiece),
                                             Model::InstanceMethod("isEog", &Model::IsEog),
                                             Model::InstanceMethod("isControl", &Model::IsControl),
                                             Model::InstanceMethod("free", &Model::Free),
                                         });
  Model::ctor = Napi::Persistent(fn);
  Model::ctor.SuppressDestruct();
  exports.Set("Model", fn);
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  return exports;
}

}  // namespace tw
