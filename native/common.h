// Shared pieces of the addon: the llama.cpp log buffer and small N-API helpers.
// The addon is a thin layer over the llama.cpp C API: every decision lives in TypeScript.
#pragma once
#include <napi.h>
#include <mutex>
#include <string>

#include "llama.h"

namespace tw {

// Recent llama.cpp log lines, so a failed call can explain itself in its JS error.
void logInstall();
std::string logTake();  // returns and clears the errors/warnings logged since the last call

Napi::Object ModelInit(Napi::Env env, Napi::Object exports);
Napi::Object ContextInit(Napi::Env env, Napi::Object exports);
Napi::Object TrainInit(Napi::Env env, Napi::Object exports);

struct ModelHandle {
  llama_model* model = nullptr;
};

// Unwraps a Model object passed from JS (throws a JS error if it is not one).
llama_model* UnwrapModel(const Napi::Value& v);

}  // namespace tw
