{
  "targets": [
    {
      "target_name": "thinkwhen",
      "sources": ["native/addon.cpp", "native/model.cpp", "native/context.cpp", "native/train-graph.cpp", "native/train-optimizer.cpp", "native/train-reference.cpp", "native/train-napi.cpp"],
      "include_dirs": [
        "<!@(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node src/llama-paths.mjs include)"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions", "-Wall", "-Wno-unused-parameter"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
      "libraries": [
        "-L<!(node src/llama-paths.mjs bins)",
        "-l:libllama.v0.4.0.so",
        "-l:libggml.v0.4.0.so",
        "-l:libggml-base.so",
        "-Wl,-rpath,<!(node src/llama-paths.mjs bins)"
      ]
    }
  ]
}
