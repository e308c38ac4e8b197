// Module entry: backend initialisation, device listing, logging.
#include <cstdlib>
#include <vector>

#include "common.h"
#include "ggml-backend.h"

namespace tw {

static std::mutex g_log_mutex;
static std::string g_log;
static bool g_log_echo = false;

static void logCallback(ggml_log_level level, const char* text, void*) {
  if (g_log_echo) fputs(text, stderr);
  if (level != GGML_LOG_LEVEL_ERROR && level != GGML_LOG_LEVEL_WARN && level != GGML_LOG_LEVEL_CONT) return;
  std::lock_guard<std::mutex> lock(g_log_mutex);
  if (g_log.size() > 8192) g_log.erase(0, g_log.size() - 4096);
  g_log += text;
}

void logInstall() {
  const char* echo = getenv("THINKWHEN_LLAMA_LOG");
  g_log_echo = echo != nullptr && echo[0] == '1';
  llama_log_set(logCallback, nullptr);
}

std::string logTake() {
  std::lock_guard<std::mutex> lock(g_log_mutex);
  std::string out;
  out.swap(g_log);
  return out;
}

static bool g_initialised = false;

// init(binsDir, extraBackends?): loads backend libraries given by path (e.g. a ggml-cuda built
// from source), then those found in the prebuilt library folder. Idempotent.
static Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!g_initialised) {
    if (info.Length() < 1 || !info[0].IsString()) {
      throw Napi::TypeError::New(env, "init(binsDir: string, extraBackends?: string[]) expected");
    }
    logInstall();
    if (info.Length() > 1 && info[1].IsArray()) {
      Napi::Array extra = info[1].As<Napi::Array>();
      for (uint32_t i = 0; i < extra.Length(); i++) {
        std::string path = extra.Get(i).As<Napi::String>().Utf8Value();
        if (ggml_backend_load(path.c_str()) == nullptr) {
          throw Napi::Error::New(env, "could not load backend " + path + ": " + logTake());
        }
      }
    }
    ggml_backend_load_all_from_path(info[0].As<Napi::String>().Utf8Value().c_str());
    llama_backend_init();
    g_initialised = true;
  }
  Napi::Array devices = Napi::Array::New(env);
  for (size_t i = 0; i < ggml_backend_dev_count(); i++) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    Napi::Object d = Napi::Object::New(env);
    d.Set("name", ggml_backend_dev_name(dev));
    d.Set("description", ggml_backend_dev_description(dev));
    d.Set("backend", ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)));
    const char* type = "other";
    switch (ggml_backend_dev_type(dev)) {
      case GGML_BACKEND_DEVICE_TYPE_CPU: type = "cpu"; break;
      case GGML_BACKEND_DEVICE_TYPE_GPU: type = "gpu"; break;
      case GGML_BACKEND_DEVICE_TYPE_IGPU: type = "igpu"; break;
      default: break;
    }
    d.Set("type", type);
    size_t free_mem = 0, total_mem = 0;
    ggml_backend_dev_memory(dev, &free_mem, &total_mem);
    d.Set("memoryTotal", Napi::Number::New(env, (double)total_mem));
    devices.Set(i, d);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("devices", devices);
  out.Set("systemInfo", llama_print_system_info());
  return out;
}

static Napi::Value TakeLog(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), logTake()); }

static Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init));
  exports.Set("takeLog", Napi::Function::New(env, TakeLog));
  ModelInit(env, exports);
  ContextInit(env, exports);
  TrainInit(env, exports);
  return exports;
}

}  // namespace tw

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return tw::InitAll(env, exports); }
NODE_API_MODULE(thinkwhen, Init)
