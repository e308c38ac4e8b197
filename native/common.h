// Shared pieces of the addon: the llama.cpp log buffer and small N-API helpers.
// The addon is a thin layer over the llama.cpp C API: every decision lives in TypeScript.
#pragma once
#include <napi.h>
#include <mutex>
#include <stdexcept>
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

// An error with a code that TypeScript reads from the JS error (err.code), so that no caller has
// to match the message's prose. Codes are names of src/errors.ts's ErrorCode (e.g. OUT_OF_MEMORY).
struct CodedError : std::runtime_error {
  const char* code;  // nullptr: no code, a plain Error
  CodedError(const std::string& message, const char* code) : std::runtime_error(message), code(code) {}
};

// The JS error for the exception being handled (call it inside a catch block): its message, and
// its code when it is a CodedError. (The addon is built without RTTI: rethrow, not dynamic_cast.)
inline Napi::Error currentJsError(Napi::Env env) {
  try {
    throw;
  } catch (const CodedError& e) {
    Napi::Error err = Napi::Error::New(env, e.what());
    if (e.code != nullptr) err.Set("code", e.code);
    return err;
  } catch (const std::exception& e) {
    return Napi::Error::New(env, e.what());
  }
}

// Unwraps a Model object passed from JS (throws a JS error if it is not one).
llama_model* UnwrapModel(const Napi::Value& v);

}  // namespace tw
