/*
 * native_linear16: the benchmark's tiny model as a native servable (the C ABI
 * of include/orrery/servable.h), so bench/serving.py can measure the server
 * with the leanest backend there is, run in the server process
 * (`orrery serve --trusted-native bench/linear16-native`).
 *
 *   y = W x + b      x: FP32 [n, 16] (n >= 1), y: FP32 [n, 16]
 *
 * the same function as the TorchScript torch.nn.Linear(16, 16) "linear16".
 * At create it reads, from the package file named by config key `weights`
 * (default weights.bin), 272 little-endian float32: W (16 x 16, row-major,
 * out x in, as torch.nn.Linear.weight) then b (16). Each output is computed
 * in float as a plain loop: acc = 0; acc += W[o][i] * x[i] for i = 0..15;
 * y[o] = acc + b[o].
 *
 * Written in the C subset of C++ (the project enables only CXX; the header
 * is C++-compatible and gives the exports C linkage). No exception can be
 * thrown: nothing here allocates with new or calls the C++ library. No
 * globals: everything lives in the state. Build (bench/CMakeLists.txt,
 * target orrery-bench-linear16), or by hand:
 *
 *   g++ -O2 -shared -fPIC -fvisibility=hidden -I include \
 *       bench/native_linear16.cc -o liborrery-bench-linear16.so
 *
 * Manifest (bench/serving.py writes it):
 *
 *   backend: native
 *   files: [liborrery-bench-linear16.so, weights.bin]
 *   config: {library: liborrery-bench-linear16.so, weights: weights.bin}
 *   signature:
 *     inputs:  [{name: x, datatype: FP32, shape: [-1, 16]}]
 *     outputs: [{name: y, datatype: FP32, shape: [-1, 16]}]
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orrery/servable.h"

#define DIM 16
#define WEIGHT_FLOATS (DIM * DIM + DIM)
#define WEIGHT_BYTES (WEIGHT_FLOATS * 4)
#define MAX_NAME 256

struct OrreryServableState {
  float w[DIM][DIM]; /* [out][in], as torch.nn.Linear.weight */
  float b[DIM];
};

namespace {

/* Writes the printf-style message (cut to fit, NUL-terminated) into the
   host's buffer and returns code. */
__attribute__((format(printf, 4, 5))) int Fail(int code, char* error, size_t error_size,
                                               const char* format, ...) {
  va_list args;
  va_start(args, format);
  if (error != NULL && error_size > 0) vsnprintf(error, error_size, format, args);
  va_end(args);
  return code;
}

/* ---- a minimal reader of the config's top-level JSON object ------------- */

const char* SkipSpace(const char* p) {
  while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') ++p;
  return p;
}

/* Reads a JSON string at p (which must point at '"') into out (when out is
   not NULL; at most out_size - 1 bytes, *too_long set when cut). Escapes
   other than \uXXXX are decoded; \uXXXX is kept only for ASCII. Returns the
   position after the closing quote, or NULL on malformed input. */
const char* ReadString(const char* p, char* out, size_t out_size, int* too_long) {
  size_t n = 0;
  if (*p != '"') return NULL;
  ++p;
  for (;;) {
    char c = *p++;
    if (c == '\0') return NULL;
    if (c == '"') break;
    if (c == '\\') {
      char e = *p++;
      switch (e) {
        case '"': case '\\': case '/': c = e; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
          unsigned value = 0;
          for (int k = 0; k < 4; ++k) {
            char h = *p++;
            value <<= 4;
            if (h >= '0' && h <= '9') value |= (unsigned)(h - '0');
            else if (h >= 'a' && h <= 'f') value |= (unsigned)(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') value |= (unsigned)(h - 'A' + 10);
            else return NULL;
          }
          c = value >= 1 && value < 0x80 ? (char)value : '\x01'; /* fails the name check */
          break;
        }
        default: return NULL;
      }
    }
    if (out != NULL) {
      if (n + 1 < out_size) out[n++] = c;
      else *too_long = 1;
    }
  }
  if (out != NULL) out[n] = '\0';
  return p;
}

/* Skips one JSON value of any kind (strings, nested containers, scalars).
   Returns the position after it, or NULL on malformed input. */
const char* SkipValue(const char* p) {
  int depth = 0;
  p = SkipSpace(p);
  do {
    if (*p == '\0') return NULL;
    if (*p == '"') {
      p = ReadString(p, NULL, 0, NULL);
      if (p == NULL) return NULL;
    } else if (*p == '{' || *p == '[') {
      ++depth;
      ++p;
    } else if (*p == '}' || *p == ']') {
      if (depth == 0) return NULL;
      --depth;
      ++p;
    } else if (depth == 0) { /* a scalar at the top: up to the next delimiter */
      while (*p != '\0' && *p != ',' && *p != '}' && *p != ']') ++p;
      return p;
    } else {
      ++p;
    }
  } while (depth > 0);
  return p;
}

/* Sets `name` to the string value of top-level key `key` in config_json,
   or to `fallback` when the key is absent. 0 on success, else -1 with a
   message in `error`. */
int ConfigString(const char* config_json, const char* key, const char* fallback, char* name,
                 size_t name_size, char* error, size_t error_size) {
  char current[MAX_NAME];
  int too_long = 0;
  const char* p = SkipSpace(config_json != NULL ? config_json : "{}");
  snprintf(name, name_size, "%s", fallback);
  if (*p != '{') return Fail(-1, error, error_size, "linear16: config is not a JSON object");
  p = SkipSpace(p + 1);
  if (*p == '}') return 0;
  for (;;) {
    too_long = 0;
    p = ReadString(p, current, sizeof current, &too_long);
    if (p == NULL) return Fail(-1, error, error_size, "linear16: malformed config JSON");
    p = SkipSpace(p);
    if (*p != ':') return Fail(-1, error, error_size, "linear16: malformed config JSON");
    p = SkipSpace(p + 1);
    if (!too_long && strcmp(current, key) == 0) {
      if (*p != '"') {
        return Fail(-1, error, error_size, "linear16: config.%s must be a string (a file name)",
                    key);
      }
      too_long = 0;
      p = ReadString(p, name, name_size, &too_long);
      if (p == NULL) return Fail(-1, error, error_size, "linear16: malformed config JSON");
      if (too_long) return Fail(-1, error, error_size, "linear16: config.%s is too long", key);
      return 0;
    }
    p = SkipValue(p);
    if (p == NULL) return Fail(-1, error, error_size, "linear16: malformed config JSON");
    p = SkipSpace(p);
    if (*p == '}') return 0;
    if (*p != ',') return Fail(-1, error, error_size, "linear16: malformed config JSON");
    p = SkipSpace(p + 1);
  }
}

/* Printable ASCII, no backslash. */
int PlainName(const char* name) {
  for (const char* c = name; *c != '\0'; ++c) {
    if (*c < 0x20 || *c > 0x7e || *c == '\\') return 0;
  }
  return 1;
}

/* A relative path inside the package: not empty, not absolute, no '..'
   component. */
int SafeRelativePath(const char* name) {
  const char* part = name;
  if (name[0] == '\0' || name[0] == '/') return 0;
  while (part != NULL) {
    const char* slash = strchr(part, '/');
    size_t len = slash != NULL ? (size_t)(slash - part) : strlen(part);
    if (len == 2 && part[0] == '.' && part[1] == '.') return 0;
    part = slash != NULL ? slash + 1 : NULL;
  }
  return 1;
}

/* Little-endian float32 from 4 bytes, on any host byte order. */
float LoadLe32(const unsigned char* bytes) {
  uint32_t bits = (uint32_t)bytes[0] | ((uint32_t)bytes[1] << 8) | ((uint32_t)bytes[2] << 16) |
                  ((uint32_t)bytes[3] << 24);
  float value;
  memcpy(&value, &bits, sizeof value);
  return value;
}

/* Reads W then b from package_dir/name into self. 0, or -1 with a message
   (naming the file relative to the package: the directory stays private). */
int ReadWeights(const char* package_dir, const char* name, OrreryServableState* self,
                char* error, size_t error_size) {
  unsigned char bytes[WEIGHT_BYTES + 1]; /* one more: a longer file is an error too */
  size_t dir_len = strlen(package_dir);
  size_t path_size = dir_len + 1 + strlen(name) + 1;
  char* path = (char*)malloc(path_size);
  FILE* file;
  size_t got;
  int read_error, open_errno;
  if (path == NULL) return Fail(-1, error, error_size, "linear16: out of memory");
  snprintf(path, path_size, "%s/%s", package_dir, name);
  file = fopen(path, "rb");
  open_errno = errno;
  free(path);
  if (file == NULL) {
    if (open_errno == ENOENT) {
      return Fail(-1, error, error_size,
                  "linear16: weights file '%s' is missing from the package (list it in the "
                  "manifest's files)", name);
    }
    return Fail(-1, error, error_size, "linear16: cannot open weights file '%s'", name);
  }
  got = fread(bytes, 1, sizeof bytes, file);
  read_error = ferror(file);
  fclose(file);
  if (read_error) return Fail(-1, error, error_size, "linear16: cannot read weights file '%s'", name);
  if (got != WEIGHT_BYTES) {
    return Fail(-1, error, error_size,
                "linear16: weights file '%s' is %s%zu bytes, expected exactly %d "
                "(W 16x16 then b 16, float32 little-endian)",
                name, got > WEIGHT_BYTES ? "over " : "",
                got > WEIGHT_BYTES ? (size_t)WEIGHT_BYTES : got, WEIGHT_BYTES);
  }
  for (int o = 0; o < DIM; ++o) {
    for (int i = 0; i < DIM; ++i) self->w[o][i] = LoadLe32(bytes + 4 * (o * DIM + i));
  }
  for (int o = 0; o < DIM; ++o) self->b[o] = LoadLe32(bytes + 4 * (DIM * DIM + o));
  return 0;
}

}  // namespace

extern "C" {

ORRERY_SERVABLE_EXPORT uint32_t orrery_servable_abi_version(void) {
  return ORRERY_SERVABLE_ABI_VERSION;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_create(const char* package_dir, const char* config_json,
                                                  OrreryServableState** state, char* error,
                                                  size_t error_size) {
  char name[MAX_NAME];
  OrreryServableState* self;
  if (package_dir == NULL || state == NULL) {
    return Fail(ORRERY_ERROR_INTERNAL, error, error_size, "linear16: no package directory");
  }
  if (ConfigString(config_json, "weights", "weights.bin", name, sizeof name, error, error_size)) {
    return ORRERY_ERROR_INTERNAL;
  }
  if (!PlainName(name)) {
    return Fail(ORRERY_ERROR_INTERNAL, error, error_size,
                "linear16: config.weights must be a file name in printable ASCII");
  }
  if (!SafeRelativePath(name)) {
    return Fail(ORRERY_ERROR_INTERNAL, error, error_size,
                "linear16: config.weights '%s' must be a relative path inside the package "
                "(not absolute, no '..')", name);
  }
  self = (OrreryServableState*)malloc(sizeof *self);
  if (self == NULL) return Fail(ORRERY_ERROR_INTERNAL, error, error_size, "linear16: out of memory");
  if (ReadWeights(package_dir, name, self, error, error_size)) {
    free(self); /* a failed create leaves nothing allocated */
    return ORRERY_ERROR_INTERNAL;
  }
  *state = self;
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_infer(OrreryServableState* state,
                                                 const OrreryTensor* inputs, uint32_t input_count,
                                                 const OrreryOutputAllocator* outputs, char* error,
                                                 size_t error_size) {
  const OrreryTensor* x;
  const unsigned char* in;
  unsigned char* out;
  uint64_t rows;
  int64_t shape[2];
  /* The host checked the inputs against the signature; checking again is
     cheap and gives a clear message if the manifest is wrong. */
  if (input_count != 1 || inputs == NULL || inputs[0].datatype != ORRERY_TYPE_FP32) {
    return Fail(ORRERY_ERROR_INVALID_ARGUMENT, error, error_size,
                "linear16 expects one FP32 input 'x'");
  }
  x = &inputs[0];
  if (x->rank != 2 || x->shape == NULL || x->shape[1] != DIM || x->shape[0] < 1) {
    return Fail(ORRERY_ERROR_INVALID_ARGUMENT, error, error_size,
                "linear16: input 'x' must have shape [n, 16] with n >= 1");
  }
  rows = (uint64_t)x->shape[0];
  if (rows > UINT64_MAX / (DIM * sizeof(float)) || x->byte_size != rows * DIM * sizeof(float) ||
      x->data == NULL) {
    return Fail(ORRERY_ERROR_INVALID_ARGUMENT, error, error_size,
                "linear16: input 'x' has a byte size inconsistent with its shape");
  }
  shape[0] = x->shape[0];
  shape[1] = DIM;
  out = (unsigned char*)outputs->alloc(outputs->host_context, "y", ORRERY_TYPE_FP32, shape, 2,
                                       x->byte_size);
  if (out == NULL) {
    return Fail(ORRERY_ERROR_INTERNAL, error, error_size, "linear16: no output buffer for 'y'");
  }
  in = (const unsigned char*)x->data;
  for (uint64_t r = 0; r < rows; ++r) {
    float xr[DIM], yr[DIM];
    /* memcpy: neither buffer is guaranteed to be aligned for float. */
    memcpy(xr, in + r * sizeof xr, sizeof xr);
    for (int o = 0; o < DIM; ++o) {
      float acc = 0.0f;
      for (int i = 0; i < DIM; ++i) acc += state->w[o][i] * xr[i];
      yr[o] = acc + state->b[o];
    }
    memcpy(out + r * sizeof yr, yr, sizeof yr);
  }
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT void orrery_servable_destroy(OrreryServableState* state) { free(state); }

}  // extern "C"
