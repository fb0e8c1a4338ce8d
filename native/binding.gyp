{
  "targets": [
    {
      "target_name": "ebpf_native",
      "sources": ["<!@(ls -1 src/*.cc)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-fexceptions", "-Wall", "-Wextra"],
      "libraries": ["-lbpf", "-ldw", "-lelf", "-lz"]
    }
  ]
}
