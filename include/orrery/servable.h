/*
 * orrery/servable.h -- the C ABI of Orrery "native" servables, version 1.0.
 *
 * A native servable is a shared library (a .so built by a lab or a tenant,
 * outside the Orrery tree, in C, C++, Rust, Fortran, ...) that exports the
 * four functions declared below. Orrery's `native` backend loads it:
 *   - in the server process (dlopen RTLD_NOW | RTLD_LOCAL) when an admin
 *     marked the servable trusted;
 *   - otherwise in a sandboxed worker process, one per instance
 *     (orrery-native-worker), where a crash fails only the request in flight.
 * The plugin cannot tell which, and must not depend on it.
 *
 * The manifest names the library in its config:
 *     backend: native
 *     files: [lib/model.so, weights.bin]
 *     config: {library: lib/model.so, any_key: any value}
 * The whole `config` map is passed to orrery_servable_create as JSON text.
 *
 * This header is C89/C99 and C++ compatible, uses only fixed-width types,
 * and never changes within a major version. A plugin includes it, defines
 * `struct OrreryServableState` however it likes, and exports:
 *
 *   uint32_t orrery_servable_abi_version(void);
 *   int  orrery_servable_create(const char* package_dir, const char* config_json,
 *                               OrreryServableState** state,
 *                               char* error, size_t error_size);
 *   int  orrery_servable_infer(OrreryServableState* state,
 *                              const OrreryTensor* inputs, uint32_t input_count,
 *                              const OrreryOutputAllocator* outputs,
 *                              char* error, size_t error_size);
 *   void orrery_servable_destroy(OrreryServableState* state);
 *
 * VERSIONING
 *   orrery_servable_abi_version() returns ORRERY_SERVABLE_ABI_VERSION as the
 *   plugin saw it at build time. The host refuses the plugin (the load fails
 *   with a message naming both versions) when the major versions differ, or
 *   when the plugin's minor version is newer than the host's. Minor versions
 *   only add: new optional exports, new enum values the host never sends to
 *   an older plugin. A missing required export also refuses the load, naming
 *   the symbol.
 *
 * CONCURRENCY RULES (the host guarantees the first four; the plugin must
 * follow the rest)
 *   1. A state is used by one thread at a time: create, then any number of
 *      infer calls, then destroy; never two calls on one state at once. The
 *      calls on one state may come from different threads (one after the
 *      other, with a happens-before edge between them).
 *   2. For parallelism the host creates several states (one per instance),
 *      in the same process or in different processes. infer on different
 *      states may run at the same time, so any data the plugin shares
 *      between states (globals, caches, library handles) must be
 *      thread-safe.
 *   3. create and destroy calls are serialised per process: no two of them
 *      run at once, though infer on other states may run meanwhile.
 *   4. orrery_servable_abi_version may be called at any time from any
 *      thread; it must only return the constant.
 *   5. infer must not keep, after it returns, any pointer into its inputs,
 *      into the output buffers, or to the allocator; nor write to inputs.
 *   6. The plugin must not call exit/_exit/abort on purpose, install signal
 *      handlers, fork, change process-wide state (working directory, umask,
 *      environment, locale, rlimits), close or write to file descriptors it
 *      did not open, or write to the package directory (it is read-only).
 *   7. Threads the plugin starts must be joined before destroy returns, and
 *      no plugin code may run after destroy returns (the library may be
 *      dlclose()d right after the last destroy).
 *   8. No C++ exception, Rust panic or longjmp may cross these functions.
 *   9. infer should return within the request's deadline. A worker that
 *      hangs is killed; an in-process plugin cannot be interrupted.
 *
 * ERRORS
 *   create and infer return ORRERY_OK (0) on success. On failure they return
 *   an ORRERY_ERROR_* code and write a NUL-terminated UTF-8 message, cut to
 *   error_size - 1 bytes, into `error` (error_size is at least 256). The
 *   message reaches the caller, so it must hold no secrets.
 *   ORRERY_ERROR_INVALID_ARGUMENT means "these inputs are wrong" (HTTP 400);
 *   any other non-zero code is an internal error (HTTP 500). A failed create
 *   fails the load (HTTP 422) and must leave nothing allocated.
 *
 * TENSORS
 *   Row-major, flattened, little-endian, no padding (the Open Inference
 *   Protocol's binary layout). `datatype` is an OrreryDataType value.
 *   Every dimension is >= 0; rank 0 is a scalar (one element).
 *   byte_size == element count * element size for every type but BYTES.
 *   BYTES: per element, a uint32 little-endian length L, then L bytes, the
 *   elements concatenated with no padding; byte_size is the total. Elements
 *   are arbitrary bytes (not NUL-terminated, not necessarily UTF-8).
 *   The host passes the inputs the manifest's signature declares, in
 *   signature order, already checked (datatype equal, shape compatible,
 *   byte size consistent). The plugin must produce each signature output
 *   exactly once, with the declared datatype and a compatible shape; extra
 *   or missing outputs fail the request.
 *
 * OUTPUTS
 *   infer obtains each output buffer from the host:
 *       void* buffer = outputs->alloc(outputs->host_context, "y",
 *                                     ORRERY_TYPE_FP32, shape, rank, bytes);
 *   then fills all `bytes` of it (the buffer has no particular alignment:
 *   write with memcpy). The host owns the buffer; it stays valid
 *   until infer returns, and the host reads it only after infer returned
 *   ORRERY_OK. alloc returns NULL when the request is refused (empty or
 *   duplicate name, bad datatype or shape, byte_size inconsistent with the
 *   shape, too large, out of memory); the plugin must then return an error
 *   (the host reports its own reason for the refusal). alloc copies `name`
 *   and `shape` before it returns.
 */
#ifndef ORRERY_SERVABLE_H_
#define ORRERY_SERVABLE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ORRERY_SERVABLE_ABI_VERSION_MAJOR 1
#define ORRERY_SERVABLE_ABI_VERSION_MINOR 0
/* (major << 16) | minor, what orrery_servable_abi_version() returns. */
#define ORRERY_SERVABLE_ABI_VERSION                                 \
  ((uint32_t)(((uint32_t)ORRERY_SERVABLE_ABI_VERSION_MAJOR << 16) | \
              (uint32_t)ORRERY_SERVABLE_ABI_VERSION_MINOR))

/* Marks the four exports visible even under -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define ORRERY_SERVABLE_EXPORT __attribute__((visibility("default")))
#else
#define ORRERY_SERVABLE_EXPORT
#endif

/* Open Inference Protocol datatypes. The values are fixed by the ABI. */
typedef enum OrreryDataType {
  ORRERY_TYPE_BOOL = 0,   /* 1 byte, 0 or 1 */
  ORRERY_TYPE_UINT8 = 1,  /* 1 byte */
  ORRERY_TYPE_UINT16 = 2, /* 2 bytes */
  ORRERY_TYPE_UINT32 = 3, /* 4 bytes */
  ORRERY_TYPE_UINT64 = 4, /* 8 bytes */
  ORRERY_TYPE_INT8 = 5,   /* 1 byte */
  ORRERY_TYPE_INT16 = 6,  /* 2 bytes */
  ORRERY_TYPE_INT32 = 7,  /* 4 bytes */
  ORRERY_TYPE_INT64 = 8,  /* 8 bytes */
  ORRERY_TYPE_FP16 = 9,   /* 2 bytes, IEEE 754 binary16 */
  ORRERY_TYPE_FP32 = 10,  /* 4 bytes, IEEE 754 binary32 */
  ORRERY_TYPE_FP64 = 11,  /* 8 bytes, IEEE 754 binary64 */
  ORRERY_TYPE_BF16 = 12,  /* 2 bytes, bfloat16 */
  ORRERY_TYPE_BYTES = 13  /* variable: uint32 LE length + bytes, per element */
} OrreryDataType;

/* Return codes of create and infer. */
#define ORRERY_OK 0
#define ORRERY_ERROR_INVALID_ARGUMENT 1 /* the inputs are wrong (HTTP 400) */
#define ORRERY_ERROR_INTERNAL 2         /* anything else (HTTP 500) */

/* One input tensor, valid only during the infer call that received it. */
typedef struct OrreryTensor {
  const char* name;     /* NUL-terminated, as in the signature */
  int32_t datatype;     /* an OrreryDataType */
  uint32_t rank;        /* number of dimensions; 0 for a scalar */
  const int64_t* shape; /* rank dimensions, each >= 0; may be NULL if rank 0 */
  const void* data;     /* byte_size bytes, see TENSORS; not necessarily
                           aligned for the datatype: read with memcpy */
  uint64_t byte_size;
} OrreryTensor;

/* Returns a host-owned buffer of byte_size bytes for output `name`, or NULL
   when refused (see OUTPUTS). Call it with the host_context given. */
typedef void* (*OrreryAllocOutputFn)(void* host_context, const char* name, int32_t datatype,
                                     const int64_t* shape, uint32_t rank, uint64_t byte_size);

typedef struct OrreryOutputAllocator {
  void* host_context;
  OrreryAllocOutputFn alloc;
} OrreryOutputAllocator;

/* Opaque to the host; the plugin defines struct OrreryServableState. */
typedef struct OrreryServableState OrreryServableState;

/* Returns ORRERY_SERVABLE_ABI_VERSION. */
typedef uint32_t (*OrreryServableAbiVersionFn)(void);

/* Builds one state. package_dir: absolute path of the unpacked package
   (read-only; the library's own files are under it). config_json: the
   manifest's `config` map as JSON text (UTF-8, NUL-terminated). On success
   sets *state (non-NULL) and returns ORRERY_OK. */
typedef int (*OrreryServableCreateFn)(const char* package_dir, const char* config_json,
                                      OrreryServableState** state, char* error, size_t error_size);

/* Runs one request on `state`. inputs: input_count tensors (see TENSORS).
   outputs: where to get output buffers (see OUTPUTS). */
typedef int (*OrreryServableInferFn)(OrreryServableState* state, const OrreryTensor* inputs,
                                     uint32_t input_count, const OrreryOutputAllocator* outputs,
                                     char* error, size_t error_size);

/* Frees `state` and everything it holds. Never fails. */
typedef void (*OrreryServableDestroyFn)(OrreryServableState* state);

/* The exported names the host resolves with dlsym. */
#define ORRERY_SERVABLE_SYMBOL_ABI_VERSION "orrery_servable_abi_version"
#define ORRERY_SERVABLE_SYMBOL_CREATE "orrery_servable_create"
#define ORRERY_SERVABLE_SYMBOL_INFER "orrery_servable_infer"
#define ORRERY_SERVABLE_SYMBOL_DESTROY "orrery_servable_destroy"

/* Declarations for the plugin's own definitions (the host never links them). */
ORRERY_SERVABLE_EXPORT uint32_t orrery_servable_abi_version(void);
ORRERY_SERVABLE_EXPORT int orrery_servable_create(const char* package_dir, const char* config_json,
                                                  OrreryServableState** state, char* error,
                                                  size_t error_size);
ORRERY_SERVABLE_EXPORT int orrery_servable_infer(OrreryServableState* state,
                                                 const OrreryTensor* inputs, uint32_t input_count,
                                                 const OrreryOutputAllocator* outputs, char* error,
                                                 size_t error_size);
ORRERY_SERVABLE_EXPORT void orrery_servable_destroy(OrreryServableState* state);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ORRERY_SERVABLE_H_ */
