/*
 * add_one: a complete native servable, written to be copied.
 *
 *   y = x + addend      x: FP32 of any shape, y: FP32 of the same shape
 *
 * Build it as a shared library against include/orrery/servable.h:
 *
 *   cc -std=c99 -O2 -fPIC -shared -fvisibility=hidden \
 *      -I /path/to/orrery/include -o add_one.so add_one.c
 *
 * and publish it with a manifest like:
 *
 *   name: add-one
 *   title: Adds a constant
 *   creators: [{name: "Lovelace, Ada"}]
 *   year: 2026
 *   backend: native
 *   files: [add_one.so]
 *   config: {library: add_one.so, addend: 1.0}
 *   signature:
 *     inputs:  [{name: x, datatype: FP32, shape: [-1, 16]}]
 *     outputs: [{name: y, datatype: FP32, shape: [-1, 16]}]
 *
 * Rules worth remembering (all of them are in servable.h):
 * - one state is used by one thread at a time, but the host makes several
 *   states and uses them in parallel: keep everything in the state, or lock
 *   what you share;
 * - never keep pointers to inputs or outputs after infer returns;
 * - output memory comes from outputs->alloc; never free it;
 * - report errors with a message and a return code; never exit or abort.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orrery/servable.h"

/* Everything one instance needs. Real plugins keep weights, buffers,
   runtime handles, ... here; read files from the package directory. */
struct OrreryServableState {
  float addend;
};

/* Copies `message` into the host's buffer (cut to fit, NUL-terminated). */
static int fail(int code, char* error, size_t error_size, const char* message) {
  snprintf(error, error_size, "%s", message);
  return code;
}

/* A deliberately tiny reader for one number in the config JSON text:
   "addend": <number>. Real plugins would use a JSON library. */
static float read_addend(const char* config_json) {
  const char* key = strstr(config_json, "\"addend\"");
  if (key == NULL) return 1.0f;
  key = strchr(key, ':');
  return key == NULL ? 1.0f : strtof(key + 1, NULL);
}

ORRERY_SERVABLE_EXPORT uint32_t orrery_servable_abi_version(void) {
  return ORRERY_SERVABLE_ABI_VERSION;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_create(const char* package_dir, const char* config_json,
                                                  OrreryServableState** state, char* error,
                                                  size_t error_size) {
  OrreryServableState* self = (OrreryServableState*)malloc(sizeof *self);
  (void)package_dir; /* where the package's other files are, read-only */
  if (self == NULL) return fail(ORRERY_ERROR_INTERNAL, error, error_size, "out of memory");
  self->addend = read_addend(config_json);
  *state = self;
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT int orrery_servable_infer(OrreryServableState* state,
                                                 const OrreryTensor* inputs, uint32_t input_count,
                                                 const OrreryOutputAllocator* outputs, char* error,
                                                 size_t error_size) {
  const OrreryTensor* x = &inputs[0];
  uint64_t i;
  unsigned char* y;
  /* The host already checked the inputs against the signature; checking
     again is cheap and gives a clear message if the manifest is wrong. */
  if (input_count != 1 || x->datatype != ORRERY_TYPE_FP32) {
    return fail(ORRERY_ERROR_INVALID_ARGUMENT, error, error_size, "add_one expects one FP32 input");
  }
  y = (unsigned char*)outputs->alloc(outputs->host_context, "y", ORRERY_TYPE_FP32, x->shape,
                                     x->rank, x->byte_size);
  if (y == NULL) return fail(ORRERY_ERROR_INTERNAL, error, error_size, "no output buffer");
  for (i = 0; i < x->byte_size / sizeof(float); ++i) {
    float value; /* memcpy: the data is not guaranteed to be aligned */
    memcpy(&value, (const unsigned char*)x->data + i * sizeof value, sizeof value);
    value += state->addend;
    memcpy(y + i * sizeof value, &value, sizeof value);
  }
  return ORRERY_OK;
}

ORRERY_SERVABLE_EXPORT void orrery_servable_destroy(OrreryServableState* state) {
  free(state);
}
