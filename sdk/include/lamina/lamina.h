/*
 * lamina.h - the Lamina user API.
 *
 * Lamina is a small deep-learning runtime: tensors on contexts (a backend plus a device),
 * front-end ops that check shapes and contexts and dispatch to the tensor's backend, and a
 * registry of layer and backend plugins loaded from shared objects.
 *
 * Conventions (see STYLE.md):
 *  - Every fallible call returns lam_status; on failure lam_last_error() says what went wrong,
 *    in the form "<subject>: <Problem>, <details>". The library never prints or exits.
 *  - `lam_x_create(..., lam_x **out)`: the caller owns *out; *out is NULL on failure.
 *    Tensors are reference counted: every tensor returned through `**out` is a new reference
 *    the caller releases with lam_tensor_release().
 *  - The runtime starts on first use (or with lam_init) and ends with lam_shutdown().
 *
 * Misuse (what is detected, what is undefined):
 *  - NULL where an object is expected: getters return a neutral value (NULL, 0, an INVALID
 *    enum) as each one says; calls that return lam_status fail with LAM_ERR_INVALID_ARGUMENT;
 *    release/destroy functions do nothing.
 *  - Releasing a tensor or block more often than it was retained, or using it after its last
 *    release, is undefined behaviour. Normal builds detect it while the memory has not been
 *    reused: an extra release or retain does nothing and logs a LAM_LOG_ERROR message; tensor
 *    calls that return lam_status fail with LAM_ERR_INVALID_ARGUMENT ("the tensor was
 *    released"). The AddressSanitizer build (LAMINA_SANITIZE) reports every such use, pooled
 *    tensors included.
 *  - Objects may outlive lam_shutdown(): see there.
 *
 * Thread safety (the contract; a declaration says so where it differs):
 *  - Any number of threads may use the library at once on *different* objects: each its own
 *    models, tensors, parameter lists and trainers. Threads may share a context (cpu(0),
 *    vulkan(0)), each with its own tensors; the backends serialize what they must.
 *  - One model may run forward passes from several threads at once (inference, recording off
 *    on those threads), its first forward included: the first forward of a plugin layer
 *    infers shapes and completes deferred initialization once, the other threads wait for
 *    it. A custom block's forward function must itself be safe to call from several threads.
 *    A tensor used as an input by several threads at once is only read (several threads may
 *    also retain and release one tensor).
 *  - Training one model (recording, backward, lam_trainer_step, lam_param_set_data,
 *    lam_block_initialize, loading) from several threads at once is the caller's to serialize;
 *    so is changing a model while another thread runs it.
 *  - The runtime starts lazily and safely: the first calls of many threads at once all succeed.
 *    Plugins are loaded only when the runtime starts (lam_init or the lazy start) and unloaded
 *    only by lam_shutdown: lam_init must not run while other threads use objects of an earlier
 *    start, and lam_shutdown must not run while other threads use the library; lam_shutdown
 *    detects other threads inside an op, forward, backward or tensor call and refuses (see
 *    there).
 *  - Autograd recording is per thread (each thread starts with it off); lam_last_error() is
 *    per thread. lam_seed, lam_log_set_callback and lam_autograd_set_fused_backward are
 *    process-wide settings that may be called from any thread (they are atomic).
 */
#ifndef LAMINA_H
#define LAMINA_H

#include "lamina/common.h"
#include "lamina/plugin.h"
#include "lamina/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Opaque objects of the model API (defined further down). */
typedef struct lam_param lam_param;
typedef struct lam_param_list lam_param_list;
typedef struct lam_block lam_block;

/* ------------------------------------------------------------------------------------------ */
/* Errors and logging                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* Static name of a status, e.g. "shape error". Never NULL. */
LAM_EXPORT const char *lam_status_string(lam_status status);

/*
 * The message of the last failure on this thread ("" if none). Successful calls leave it as it
 * is, so it still describes the last failure after later calls succeed; only the next failing
 * call (or lam_clear_error) replaces it.
 * Ownership: borrowed; valid until the next failing call on this thread.
 */
LAM_EXPORT const char *lam_last_error(void);

/* Clears this thread's error message. */
LAM_EXPORT void lam_clear_error(void);

/*
 * Sets this thread's error message (printf format) and returns `status`, for callbacks the
 * library calls (custom forwards, custom initializers) to report why they fail:
 *   return lam_set_error(LAM_ERR_SHAPE, "mlp0: Bad input, expected 2 dims, got %u", nd);
 */
LAM_EXPORT lam_status lam_set_error(lam_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Receives every log message of the library; `message` is borrowed for the call. */
typedef void (*lam_log_fn)(lam_log_level level, const char *message, void *user);

/*
 * Sets the log callback (NULL: messages are dropped) and the most verbose level passed to it.
 * The library itself never prints; the `lamina` CLI installs a callback that prints to stderr
 * when LAMINA_LOG=info or debug.
 * Thread safety: process-wide; may be called from any thread. The callback is called on the
 * thread that logs, possibly from several threads at once, and possibly once more with the
 * previous callback just after it is replaced.
 */
LAM_EXPORT void lam_log_set_callback(lam_log_fn fn, void *user, lam_log_level max_level);

/* ------------------------------------------------------------------------------------------ */
/* Runtime                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/*
 * The release version of the liblamina that is running, as "MAJOR.MINOR.PATCH"; also stores
 * its three parts in *major, *minor and *patch (each pointer may be NULL). Compare it with
 * LAMINA_VERSION_STRING / LAMINA_VERSION_MAJOR... (lamina/version.h) to tell the library a
 * program runs against from the headers it was compiled with. Never fails; needs no lam_init.
 * Ownership: the string is static.
 * Thread safety: safe from any thread.
 */
LAM_EXPORT const char *lam_version(int *major, int *minor, int *patch);

/* Options for lam_init; start from LAM_INIT_OPTIONS_INIT. */
typedef struct lam_init_options {
    uint32_t struct_size;
    uint32_t abi_version;
    /* Colon-separated directories or plugin files searched before the built-in directory;
     * NULL: $LAMINA_PLUGIN_PATH, read with secure_getenv (ignored in set-user-ID and
     * set-group-ID programs, since it chooses code to load). An entry naming an existing file
     * is that file, even without a '/' (it is never looked up in the library search path).
     * Only readable regular files are dlopen()ed; every other candidate (directory, FIFO,
     * device, dangling link, missing path entry) gets a LAM_REASON_NOT_A_FILE row in the
     * load report. */
    const char *plugin_path;
    /* Nonzero: do not search the built-in plugin directory. */
    int32_t skip_builtin_dir;
    int32_t reserved;
} lam_init_options;

#define LAM_INIT_OPTIONS_INIT                                                                      \
    { (uint32_t)sizeof(lam_init_options), LAM_ABI_VERSION, NULL, 0, 0 }

/*
 * Starts the runtime: discovers and loads plugins. Optional: the first call that needs the
 * runtime starts it with default options. `options` may be NULL.
 * Errors: LAM_ERR_STATE when already started, or when called from a plugin's entry point
 * while the runtime starts. A plugin that fails to load is not an error here: it is refused
 * and recorded in the load report.
 * Thread safety: starts are serialized (one thread loads the plugins, the others wait), but
 * lam_init must not race with calls that use objects of an earlier start.
 */
LAM_EXPORT lam_status lam_init(const lam_init_options *options);

/*
 * Ends the runtime: closes devices, unloads plugins. A later call starts the runtime afresh.
 * Safe to call when not started.
 * Objects still alive are not freed: blocks, parameters, lists, trainers, tensor dicts and
 * tensors can still be released (and must be, or their host memory stays allocated). Tensors
 * lose their data (device memory is freed; a LAM_LOG_WARN message counts them): their shape
 * getters still answer, lam_tensor_ctx returns NULL, and every other call on them, ops
 * included, fails with LAM_ERR_STATE ("Runtime shut down"). Layer blocks lose their plugin
 * state (destroyed before the plugin is unloaded): a forward fails with LAM_ERR_STATE.
 * Contexts, plugin records and other strings borrowed "until lam_shutdown()" are gone.
 * Refused (nothing is shut down; a LAM_LOG_ERROR message and this thread's lam_last_error()
 * say "lam_shutdown: Threads still running, N other thread(s) ...") when another thread is
 * inside the library at that moment: running an op, a plugin layer's forward or backward, or
 * making, reading, writing or copying a tensor (those calls stay safe; shut down again once
 * they are done). Use lam_shutdown_checked to get that as a status.
 * Thread safety: call it when no other thread uses the library (it frees what they would be
 * using: contexts, plugins, device memory). What is detected: the calls listed under Errors,
 * running on another thread, make it refuse; such a call that starts on another thread while
 * it runs, or afterwards until the runtime starts again, fails with LAM_ERR_STATE ("Runtime
 * shut down") instead of touching freed state. Not detected (undefined): another thread
 * retaining, releasing or querying objects, or using a context pointer from before, while it
 * runs. Pooled memory and cached buffers of the calling thread are freed here; other threads'
 * pooled memory is freed when those threads exit, their cached buffers here.
 */
LAM_EXPORT void lam_shutdown(void);

/*
 * lam_shutdown, returning whether it shut down.
 * Errors: LAM_ERR_STATE ("Threads still running", with how many) when another thread is inside
 * the library (see lam_shutdown), and nothing was shut down; LAM_ERR_STATE too when called from
 * a plugin's entry point while the runtime starts (see lam_shutdown).
 * Thread safety: as lam_shutdown.
 */
LAM_EXPORT lam_status lam_shutdown_checked(void);

/* The ABI layout fingerprint this library was compiled with (equals LAM_ABI_FINGERPRINT of the
 * headers it was built against). */
LAM_EXPORT uint64_t lam_abi_fingerprint(void);

/* Path of the built-in plugin directory (next to liblamina: <libdir>/lamina/plugins).
 * Ownership: borrowed, static. */
LAM_EXPORT const char *lam_builtin_plugin_dir(void);

/* ------------------------------------------------------------------------------------------ */
/* Plugin load report                                                                         */
/* ------------------------------------------------------------------------------------------ */

typedef enum lam_plugin_decision {
    LAM_PLUGIN_DECISION_INVALID = 0,
    LAM_PLUGIN_LOADED = 1,
    LAM_PLUGIN_SKIPPED = 2, /* e.g. shadowed by a file of the same name earlier in the path */
    LAM_PLUGIN_REFUSED = 3,
    LAM_PLUGIN_DECISION_MAX_ENUM = 0x7FFFFFFF
} lam_plugin_decision;

typedef enum lam_plugin_reason {
    LAM_REASON_INVALID = 0,
    LAM_REASON_OK = 1,
    LAM_REASON_DLOPEN_FAILED = 2,   /* text: dlerror() */
    LAM_REASON_NO_ENTRY = 3,        /* lamina_plugin_entry not exported */
    LAM_REASON_ABI_MAJOR = 4,       /* different ABI major version */
    LAM_REASON_ABI_MINOR_NEWER = 5, /* built for a newer minor than the host */
    LAM_REASON_ABI_FINGERPRINT = 6, /* same version, different layout */
    LAM_REASON_STRUCT_SIZE = 7,     /* zero or unknown descriptor size */
    LAM_REASON_NULL_CALLBACK = 8,   /* a required callback is NULL */
    LAM_REASON_BAD_DESCRIPTOR = 9,  /* missing or malformed name or attribute schema */
    LAM_REASON_DUPLICATE_NAME = 10, /* a layer or backend of that name is already loaded */
    LAM_REASON_ENTRY_FAILED = 11,   /* the entry returned an error; text: its message */
    LAM_REASON_NOTHING_REGISTERED = 12,
    LAM_REASON_NO_DEVICE = 13, /* loaded, but its backend has no device; text: why */
    LAM_REASON_SHADOWED = 14,  /* skipped: same file name found earlier in the path */
    /* Skipped: a candidate (a plugin-named entry of a searched directory, or an entry of the
     * plugin path) that is no readable regular file: a directory, FIFO, socket, device, dangling
     * link, unreadable or missing file; never handed to dlopen. Text: what it is. */
    LAM_REASON_NOT_A_FILE = 15,
    LAM_REASON_MAX_ENUM = 0x7FFFFFFF
} lam_plugin_reason;

/* Static name of a reason, e.g. "abi-major". */
LAM_EXPORT const char *lam_plugin_reason_string(lam_plugin_reason reason);

/* One candidate plugin file and what the registry decided. Strings are borrowed until
 * lam_shutdown(). */
typedef struct lam_plugin_record {
    uint32_t struct_size;
    uint32_t abi_version;
    const char *path;    /* as found */
    const char *kind;    /* "backend", "layer", "backend+layer", "comm" or "-" when unknown */
    const char *names;   /* registered names, comma-separated ("" when refused) */
    const char *version; /* the plugin's own version ("" when unknown) */
    uint32_t plugin_abi; /* ABI version the plugin was built for, 0 when unknown */
    lam_plugin_decision decision;
    lam_plugin_reason reason;
    uint32_t reserved;
    const char *message; /* why, in words ("" when loaded without remark) */
} lam_plugin_record;

#define LAM_PLUGIN_RECORD_INIT                                                                     \
    {                                                                                              \
        (uint32_t)sizeof(lam_plugin_record), LAM_ABI_VERSION, NULL, NULL, NULL, NULL, 0,           \
            LAM_PLUGIN_DECISION_INVALID, LAM_REASON_INVALID, 0, NULL                               \
    }

/* Number of records in the load report (starts the runtime if needed). The report says which
 * backends have no device, so this probes every backend not probed yet (as `lamina plugins`
 * does; with the Vulkan plugin, that loads the Vulkan loader and every installed driver). */
LAM_EXPORT size_t lam_plugin_report_count(void);

/* Copies record `index` into *record (whose struct_size the caller set); probes every backend
 * like lam_plugin_report_count.
 * Errors: LAM_ERR_NOT_FOUND when index is out of range. */
LAM_EXPORT lam_status lam_plugin_report_get(size_t index, lam_plugin_record *record);

/* The same report without probing any backend: a backend nothing has used yet reads as loaded
 * without remark (its record says "no device" only once it was probed and has none). What
 * `lamina plugins` lists by default, so that listing plugins never loads, e.g., the Vulkan
 * loader and every installed Vulkan driver. Errors (peek): LAM_ERR_NOT_FOUND. */
LAM_EXPORT size_t lam_plugin_report_peek_count(void);
LAM_EXPORT lam_status lam_plugin_report_peek(size_t index, lam_plugin_record *record);

/* ------------------------------------------------------------------------------------------ */
/* Backends and contexts                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Number of loaded backends (with or without devices). Probes none. */
LAM_EXPORT size_t lam_backend_count(void);

/* Name of backend `index`, its device count and, when it has none, why; probes that backend
 * (once per start: the first call pays, e.g., for loading the Vulkan loader and its drivers).
 * Strings are borrowed until lam_shutdown(). Errors: LAM_ERR_NOT_FOUND. */
LAM_EXPORT lam_status lam_backend_get(size_t index, const char **name, uint32_t *n_devices,
                                      const char **why);

/* Like lam_backend_get but never probes: *probed is 1 when the backend was probed (then
 * *n_devices and *why are what lam_backend_get gives), else 0 (*n_devices 0, *why ""). Any
 * output may be NULL. Strings are borrowed until lam_shutdown(). Errors: LAM_ERR_NOT_FOUND. */
LAM_EXPORT lam_status lam_backend_peek(size_t index, const char **name, int *probed,
                                       uint32_t *n_devices, const char **why);

/* Describes device `device` of backend `index` (probing that backend if needed).
 * Errors: LAM_ERR_NOT_FOUND. */
LAM_EXPORT lam_status lam_backend_device_info(size_t index, uint32_t device, lam_device_info *info);

/*
 * The context named by `spec`: "cpu", "cpu:0", "vulkan:1", "auto" (best device available),
 * or NULL for $LAMINA_BACKEND (default "cpu"). The device is opened on first use. Backends
 * are probed on first use too: a named spec probes only that backend, so a program that asks
 * only for "cpu" never loads the Vulkan loader or its drivers; "auto", and the list of
 * available backends in an error message, probe them all.
 * Errors: LAM_ERR_INVALID_ARGUMENT for a malformed spec; LAM_ERR_NOT_FOUND when no backend of
 * that name is loaded; LAM_ERR_DEVICE_UNAVAILABLE when it has no such device. The message
 * says why and lists the backends that are available. Only "auto" falls back.
 * Validation: $LAMINA_VALIDATION=1 when the device is opened (its first use) makes the CPU
 * backend check every op call in full, as a validation layer does: every view's dims,
 * strides and byte offset, and that each element lies inside its buffer. By default it skips
 * those per-axis checks on execute (the library builds every view from a tensor it owns) and
 * keeps the cheap ones (a live buffer of that backend, a writable output, rank, dtype, each
 * op's shape and parameter checks); a plugin that hands the backend views of its own (a
 * plugin kernel's operands) is always checked in full. `lamina conform` and the sanitizer
 * suite run with it set.
 * Ownership: borrowed; contexts live until lam_shutdown().
 */
LAM_EXPORT lam_status lam_ctx_get(const char *spec, lam_ctx **out);

/* The context for $LAMINA_BACKEND (same as lam_ctx_get(NULL, out)). */
LAM_EXPORT lam_status lam_ctx_default(lam_ctx **out);

/* Display name such as "cpu(0)". Borrowed until lam_shutdown(). */
LAM_EXPORT const char *lam_ctx_name(const lam_ctx *ctx);

/* Backend name ("cpu") and device index of a context. */
LAM_EXPORT const char *lam_ctx_backend(const lam_ctx *ctx);
LAM_EXPORT uint32_t lam_ctx_device(const lam_ctx *ctx);

/* Waits for all work queued on this context; reports an asynchronous error. */
LAM_EXPORT lam_status lam_ctx_synchronize(lam_ctx *ctx);

/* Waits for all work on every open context (Gluon's nd.waitall). */
LAM_EXPORT lam_status lam_waitall(void);

/* ------------------------------------------------------------------------------------------ */
/* Communicators: collectives among the processes of a job (data-parallel training)          */
/* ------------------------------------------------------------------------------------------ */

/*
 * A communicator joins the processes of one job (ranks 0 .. size-1) for collective operations
 * on tensors: the transport a data-parallel trainer reduces gradients over. Communicators are
 * plugins (lamina_comm_<name>.so; lamina_comm_mpi.so on Open MPI, built when MPI is found);
 * liblamina itself never links MPI. One is built in: "self", a communicator of size 1 whose
 * operations leave tensors as they are (allgather copies), so a program written for N
 * processes runs unchanged in one.
 *
 * Which one lam_comm_open(NULL, ...) opens: $LAMINA_COMM when set ("mpi", "self", or "auto");
 * otherwise (or for "auto") the first loaded communicator whose plugin detects its launcher
 * (mpirun or srun: OMPI_COMM_WORLD_SIZE, PMI_SIZE/PMIX_RANK, or SLURM_NTASKS within an srun
 * step); otherwise "self". A process started by a launcher while no communicator plugin can
 * serve it is an error, never a silent "self" (N copies training alone); so is a named
 * communicator that is not loaded: the message says what to install (Debian: openmpi-bin
 * libopenmpi-dev, then rebuild Lamina). `lamina plugins` prints the decision and its reason.
 *
 * Every collective is called by every rank, in the same order, with tensors of the same dtype
 * and element count (shapes may differ as long as the counts agree); a mismatch is undefined
 * (as in MPI). Tensors are changed in place and outside autograd (nothing is recorded). A
 * tensor on a backend whose buffers are host memory (the CPU) is passed to the communicator
 * without a copy; others (Vulkan) are staged through host memory, unless the communicator
 * reduces that backend's buffers itself (a future NCCL one).
 * dtypes: broadcast and allgather move any dtype; allreduce takes F32, F64, I32, I64 and U8 on MPI
 * (every dtype on "self").
 * Faults: a rank that exits with an error or is killed ends the whole job (mpirun or srun
 * kill the other ranks and exit non-zero naming the rank); a collective never waits for ever
 * on a dead rank under those launchers.
 * Thread safety: the communicators of one process are used by one thread at a time (the
 * caller serializes, as with MPI_THREAD_SERIALIZED); the tensors they work on must not be
 * used by another thread meanwhile.
 */
typedef struct lam_comm lam_comm;
/* An outstanding non-blocking operation (lam_comm_allreduce_start), ended by lam_comm_wait. */
typedef struct lam_comm_request lam_comm_request;

/*
 * Opens a communicator: `name` ("mpi", "self"), or NULL for the automatic choice above. The
 * first open of an MPI communicator starts MPI (MPI_Init_thread) unless the application did;
 * MPI is finalized at lam_shutdown() or at exit, whichever comes first.
 * Errors: LAM_ERR_NOT_FOUND for a communicator that is not loaded (the message lists those
 * that are, the reason a plugin of that name was refused, and what to install);
 * LAM_ERR_DEVICE_UNAVAILABLE when the process was started by a launcher that no loaded
 * communicator serves; the plugin's error when joining the job fails.
 * Ownership: the caller closes *out with lam_comm_close; *out is NULL on failure.
 */
LAM_EXPORT lam_status lam_comm_open(const char *name, lam_comm **out);

/*
 * Which communicator lam_comm_open(name, ...) would open, and why, without opening it: the
 * name into chosen[0..chosen_cap) and the reason into why[0..why_cap) (either may be NULL).
 * Errors: as lam_comm_open, with the same message (why gets it too).
 */
LAM_EXPORT lam_status lam_comm_choose(const char *name, char *chosen, size_t chosen_cap, char *why,
                                      size_t why_cap);

/* This process's rank (0 .. size-1), and the number of ranks; -1 for NULL. */
LAM_EXPORT int lam_comm_rank(const lam_comm *c);
LAM_EXPORT int lam_comm_size(const lam_comm *c);

/* The communicator's name ("mpi", "self"); borrowed while c is open. NULL for NULL. */
LAM_EXPORT const char *lam_comm_name(const lam_comm *c);

/* Returns once every rank has called it. */
LAM_EXPORT lam_status lam_comm_barrier(lam_comm *c);

/*
 * Root's values of t to every rank's t (in place).
 * Errors: LAM_ERR_INVALID_ARGUMENT for a NULL argument or a root outside 0 .. size-1; the
 * communicator's error (prefixed "lam_comm_broadcast on mpi: ").
 */
LAM_EXPORT lam_status lam_comm_broadcast(lam_comm *c, lam_tensor *t, int root);

/*
 * Every rank's t becomes the elementwise sum of t over all ranks (in place).
 * Errors: LAM_ERR_INVALID_ARGUMENT for NULL; LAM_ERR_DTYPE for a dtype the communicator does
 * not reduce; LAM_ERR_STATE when t is in an outstanding non-blocking allreduce.
 */
LAM_EXPORT lam_status lam_comm_allreduce(lam_comm *c, lam_tensor *t);

/* The same with another reduction (LAM_COMM_SUM, LAM_COMM_MAX, LAM_COMM_MIN). */
LAM_EXPORT lam_status lam_comm_allreduce_op(lam_comm *c, lam_tensor *t, lam_comm_reduce op);

/*
 * Starts the sum allreduce of t and returns at once with a request: the reduction proceeds
 * while the caller computes (a trainer starts one per gradient bucket during backward). t must
 * not be read or written until lam_comm_wait returns; several requests may be outstanding, and
 * every rank starts them in the same order. A staged tensor (Vulkan) is read now and written
 * back by lam_comm_wait.
 * Errors: as lam_comm_allreduce; on failure *out is NULL and nothing is outstanding.
 * Ownership: t is retained until the request ends; the request is freed by lam_comm_wait.
 */
LAM_EXPORT lam_status lam_comm_allreduce_start(lam_comm *c, lam_tensor *t, lam_comm_request **out);

/*
 * Drives an outstanding request without blocking: *done becomes nonzero once it has completed
 * (it still has to be waited for). Optional: lam_comm_wait alone completes it; calling this
 * now and then between computations lets MPI progress the reduction meanwhile.
 */
LAM_EXPORT lam_status lam_comm_test(lam_comm_request *r, int *done);

/*
 * Waits for the request to complete (the tensor then holds the result) and frees it, on
 * failure too. lam_comm_wait(NULL) returns LAM_OK. Requests may be waited for in any order.
 */
LAM_EXPORT lam_status lam_comm_wait(lam_comm_request *r);

/*
 * out gets every rank's `in`, in rank order: rank 0's elements, then rank 1's, and so on.
 * out has in's dtype and size times in's element count (any shape: (size, n) or (size*n,)).
 * Errors: LAM_ERR_INVALID_ARGUMENT (NULL, out is in); LAM_ERR_DTYPE / LAM_ERR_SHAPE when out's
 * dtype or element count do not fit.
 */
LAM_EXPORT lam_status lam_comm_allgather(lam_comm *c, const lam_tensor *in, lam_tensor *out);

/*
 * Closes a communicator; NULL is a no-op. lam_shutdown() closes those still open (their
 * handles then only accept lam_comm_close).
 * Errors: LAM_ERR_STATE while a request of c is outstanding (c stays open: wait, then close).
 */
LAM_EXPORT lam_status lam_comm_close(lam_comm *c);

/* ------------------------------------------------------------------------------------------ */
/* Shapes                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Builds a shape from `ndim` dims. Errors: LAM_ERR_INVALID_ARGUMENT when ndim > LAM_MAX_DIMS. */
LAM_EXPORT lam_status lam_shape_init(lam_shape *shape, uint32_t ndim, const int64_t *dims);

/* Number of elements (1 for a scalar shape), or -1 when a dim is unknown (negative), ndim
 * exceeds LAM_MAX_DIMS or the shape is too large: no tensor may have more than 2^60 elements
 * (the product of the dims, zero dims left out, so that strides and byte counts fit in
 * int64_t). 0 for NULL. */
LAM_EXPORT int64_t lam_shape_numel(const lam_shape *shape);

/* Formats as "(2, 20)", "(256,)", "()" or "(None, 20)"; returns buf. */
LAM_EXPORT char *lam_shape_format(const lam_shape *shape, char *buf, size_t cap);

/* Nonzero when both shapes have the same ndim and dims; 0 when either is NULL. */
LAM_EXPORT int lam_shape_equal(const lam_shape *a, const lam_shape *b);

/* ------------------------------------------------------------------------------------------ */
/* Tensors                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/*
 * A new float32 tensor of `shape` on `ctx` (NULL: the default context), filled with zeros.
 * Errors: LAM_ERR_SHAPE for unknown or negative dims, more than LAM_MAX_DIMS dims or more than
 * 2^60 elements (see lam_shape_numel; every op result is checked the same way);
 * LAM_ERR_OUT_OF_MEMORY; backend errors.
 */
LAM_EXPORT lam_status lam_tensor_create(lam_ctx *ctx, const lam_shape *shape, lam_tensor **out);

/*
 * A new tensor of `dtype` (F32, F16, BF16, I32, I64 or U8), filled with zeros. Ops take F32
 * operands unless they say otherwise (index tensors of lam_op_gather_rows, ...); move other
 * dtypes' values with lam_tensor_read_bytes / lam_tensor_write_bytes.
 * Errors: LAM_ERR_DTYPE for another dtype; as lam_tensor_create.
 */
LAM_EXPORT lam_status lam_tensor_create_dtype(lam_ctx *ctx, lam_dtype dtype, const lam_shape *shape,
                                              lam_tensor **out);

/* A new tensor holding a copy of `count` floats from `data` (count must equal the numel). */
LAM_EXPORT lam_status lam_tensor_from_data(lam_ctx *ctx, const lam_shape *shape, const float *data,
                                           size_t count, lam_tensor **out);

/* A new tensor filled with `value`. */
LAM_EXPORT lam_status lam_tensor_full(lam_ctx *ctx, const lam_shape *shape, float value,
                                      lam_tensor **out);

/* Adds a reference; returns t. NULL is allowed (returns NULL). A released tensor is misuse
 * (see the top of this file): when detected, NULL is returned and an error logged. */
LAM_EXPORT lam_tensor *lam_tensor_retain(lam_tensor *t);

/* Drops a reference; the tensor is freed with the last one. NULL is a no-op. Releasing more
 * often than retained is misuse: when detected, the call does nothing and logs an error. */
LAM_EXPORT void lam_tensor_release(lam_tensor *t);

/* Shape, borrowed for the tensor's lifetime; NULL for NULL. */
LAM_EXPORT const lam_shape *lam_tensor_shape(const lam_tensor *t);
/* Element type; LAM_DTYPE_INVALID for NULL. */
LAM_EXPORT lam_dtype lam_tensor_dtype(const lam_tensor *t);
/* Number of elements; 0 for NULL. */
LAM_EXPORT int64_t lam_tensor_numel(const lam_tensor *t);
/* Context the tensor lives on (borrowed); NULL for NULL and after lam_shutdown(). */
LAM_EXPORT lam_ctx *lam_tensor_ctx(const lam_tensor *t);

/* Copies the tensor's `count` elements (must equal its numel) into `dst`; synchronizes.
 * Errors: LAM_ERR_DTYPE when the tensor is not float32 (use lam_tensor_read_bytes). */
LAM_EXPORT lam_status lam_tensor_read(const lam_tensor *t, float *dst, size_t count);

/* Overwrites the tensor's elements with `count` floats (must equal its numel).
 * Errors: LAM_ERR_DTYPE when the tensor is not float32 (use lam_tensor_write_bytes). */
LAM_EXPORT lam_status lam_tensor_write(lam_tensor *t, const float *src, size_t count);

/* Copies the tensor's elements in its own dtype into `dst`; `bytes` must equal numel times the
 * dtype's size (lam_dtype_size in plugin.h). Synchronizes. */
LAM_EXPORT lam_status lam_tensor_read_bytes(const lam_tensor *t, void *dst, size_t bytes);

/* Overwrites the tensor's elements from `src` in its own dtype; `bytes` as lam_tensor_read_bytes.
 */
LAM_EXPORT lam_status lam_tensor_write_bytes(lam_tensor *t, const void *src, size_t bytes);

/* The value of a one-element tensor (Gluon's asscalar); synchronizes.
 * Errors: LAM_ERR_SHAPE when the tensor has more or fewer than one element. */
LAM_EXPORT lam_status lam_tensor_scalar(const lam_tensor *t, float *value);

/* A new tensor on `ctx` with a copy of t's data: always copies, even on the same context. */
LAM_EXPORT lam_status lam_tensor_copyto(const lam_tensor *t, lam_ctx *ctx, lam_tensor **out);

/* t itself (a new reference) when it already lives on ctx, else a copy there. */
LAM_EXPORT lam_status lam_tensor_as_in_context(lam_tensor *t, lam_ctx *ctx, lam_tensor **out);

/* A tensor of another shape sharing t's data. One dim may be -1 (inferred).
 * Errors: LAM_ERR_SHAPE when the element counts differ or the shape is too large. */
LAM_EXPORT lam_status lam_tensor_reshape(lam_tensor *t, const lam_shape *shape, lam_tensor **out);

/*
 * Elements begin, begin + step, ... below stop along `axis` (0 <= begin <= stop <= dim,
 * step >= 1) as a new contiguous tensor; differentiated (the gradient flows back into the
 * sliced positions). Errors: LAM_ERR_INVALID_ARGUMENT naming the slice and the shape.
 */
LAM_EXPORT lam_status lam_tensor_slice(lam_tensor *t, uint32_t axis, int64_t begin, int64_t stop,
                                       int64_t step, lam_tensor **out);

/* The tensor with its axes reordered (out's axis i is t's axis perm[i]; n == ndim) as a new
 * contiguous tensor; differentiated. Errors: LAM_ERR_INVALID_ARGUMENT for a bad permutation. */
LAM_EXPORT lam_status lam_tensor_permute(lam_tensor *t, const uint32_t *perm, uint32_t n,
                                         lam_tensor **out);

/*
 * Runs the kernel a plugin registered as `name` (lamina/plugin.h, lam_kernel_desc) on the
 * inputs (all on one context): on the context's backend when the kernel has an implementation
 * for it that accepts these operands, else its reference on host memory (the operands are
 * staged). `params` is the kernel's parameter block (params_size bytes, NULL for none).
 * outputs[i] become new references. While recording, one node is recorded whose gradient is the
 * kernel's backward. Errors: LAM_ERR_NOT_FOUND for an unknown name; LAM_ERR_INVALID_ARGUMENT for
 * a wrong operand count or mixed contexts; LAM_ERR_UNSUPPORTED when an input needs a gradient
 * and the kernel has no backward; what the kernel's callbacks return.
 */
LAM_EXPORT lam_status lam_kernel_call(const char *name, const void *params, uint32_t n_inputs,
                                      lam_tensor *const *inputs, uint32_t n_outputs,
                                      lam_tensor **outputs);

/* ---- index, random, selection and conversion ops (ABI 2.0's ops; any backend: a backend
 * without one runs it on the CPU with the operands staged) ---- */

/*
 * Rows of `table` (V, D), float32, picked by `indices` (int32 or int64, any shape S): *out has
 * shape S + (D,) with out[s] = table[indices[s]] (Gluon's Embedding, torch.index_select).
 * Differentiable with respect to the table (a repeated index adds its gradient rows).
 * Errors: LAM_ERR_INVALID_ARGUMENT for an index outside [0, V), naming its position and value
 * (an asynchronous backend may report it when the result is read); LAM_ERR_DTYPE for a table
 * that is not float32 or indices that are not int32/int64; LAM_ERR_SHAPE for a table that is not
 * 2-D.
 */
LAM_EXPORT lam_status lam_op_gather_rows(const lam_tensor *table, const lam_tensor *indices,
                                         lam_tensor **out);
/*
 * A copy of `target` (V, D) with each row of `values` (M, D) added at the row `indices` (M,)
 * names, in increasing m (deterministic). Not differentiable (it is gather's gradient):
 * LAM_ERR_UNSUPPORTED while recording with operands that need a gradient. Errors as
 * lam_op_gather_rows.
 */
LAM_EXPORT lam_status lam_op_scatter_add_rows(const lam_tensor *target, const lam_tensor *values,
                                              const lam_tensor *indices, lam_tensor **out);

/*
 * Random float32 tensors from the seeded stream (Gluon's nd.random.uniform / normal): uniform in
 * [low, high), normal with mean and standard deviation, Bernoulli 1 with probability p else 0.
 * The numbers are Philox-4x32-10 keyed by lam_seed: each call takes the next elements of one
 * process-wide stream that restarts at lam_seed, so consecutive calls differ and re-seeding
 * repeats them (calls from several threads take their elements in the order they reach the
 * stream). Bernoulli, and uniform whose high - low is a power of two (e.g. [0, 1)), give the
 * same bits on every backend; other uniform intervals round their last step as each backend's
 * float multiply-add, and normal agrees to a few ulp.
 * ctx NULL: the default context. Not differentiable.
 */
LAM_EXPORT lam_status lam_op_random_uniform(lam_ctx *ctx, const lam_shape *shape, float low,
                                            float high, lam_tensor **out);
LAM_EXPORT lam_status lam_op_random_normal(lam_ctx *ctx, const lam_shape *shape, float mean,
                                           float std, lam_tensor **out);
LAM_EXPORT lam_status lam_op_random_bernoulli(lam_ctx *ctx, const lam_shape *shape, float p,
                                              lam_tensor **out);

/*
 * out = cond != 0 ? x : y elementwise; cond float32 or uint8, x and y float32, all of one shape
 * (no broadcasting). A NaN in the branch not taken does not reach out. Differentiable in x and
 * y (each gets the gradient where it was chosen).
 */
LAM_EXPORT lam_status lam_op_where(const lam_tensor *cond, const lam_tensor *x, const lam_tensor *y,
                                   lam_tensor **out);
/* 1 where a > b (a < b, a == b) else 0, float32, equal shapes; NaN compares false. Not
 * differentiable. */
LAM_EXPORT lam_status lam_op_greater(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
LAM_EXPORT lam_status lam_op_less(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
LAM_EXPORT lam_status lam_op_equal(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
/* min(max(x, low), high) (NaN stays NaN); the gradient is 1 inside [low, high], 0 outside.
 * Errors: LAM_ERR_INVALID_ARGUMENT when low > high. */
LAM_EXPORT lam_status lam_op_clamp(const lam_tensor *x, float low, float high, lam_tensor **out);
/*
 * x converted to `dtype` (float32, int32, int64, uint8): float to integer truncates toward zero;
 * a NaN or out-of-range value is LAM_ERR_INVALID_ARGUMENT. Not differentiable.
 */
LAM_EXPORT lam_status lam_op_cast(const lam_tensor *x, lam_dtype dtype, lam_tensor **out);

/* ---- everyday ops made of the ones above (so every backend runs them, and the
 * differentiable ones get their gradients from their parts) ---- */

/*
 * The L2 norm over `axes` (n_axes 0: every element, the Frobenius norm of a matrix; negative
 * axes count from the end), sqrt(sum(x^2)) (Gluon's x.norm(), torch.linalg.norm). keepdims
 * keeps the reduced axes as 1. Differentiable: the gradient is x / norm, and 0 where the norm
 * is 0 (as PyTorch's, on every backend). Errors as lam_op_sum.
 */
LAM_EXPORT lam_status lam_op_norm(const lam_tensor *x, const int32_t *axes, uint32_t n_axes,
                                  int32_t keepdims, lam_tensor **out);
/*
 * Integer indexing along the first axis (NumPy's take(x, indices, axis=0), Gluon's nd.take,
 * x[indices] in PyTorch): x of shape (V, d1, ...), float32; indices int32 or int64 of any shape
 * S; *out has shape S + (d1, ...) with out[s] = x[indices[s]]. Differentiable in x (a repeated
 * index adds its gradients). Errors: LAM_ERR_INVALID_ARGUMENT for an index outside [0, V)
 * naming its position and value; LAM_ERR_SHAPE for a 0-d x or more than LAM_MAX_DIMS result
 * dims; as lam_op_gather_rows.
 */
LAM_EXPORT lam_status lam_op_take(const lam_tensor *x, const lam_tensor *indices, lam_tensor **out);
/*
 * One-hot rows (Gluon's nd.one_hot, torch.nn.functional.one_hot): indices of shape S (int32,
 * int64 or float32) give float32 *out of shape S + (depth,), 1 at out[s, indices[s]] and 0
 * elsewhere, computed on the indices' context without reading them back (a gather and a
 * comparison). Float indices are truncated toward zero first, as Gluon's (1.5 is 1, -0.5 is 0).
 * An index outside [0, depth) is an error, as in PyTorch (Gluon leaves its row all zero
 * instead): the error names its position and value, and an asynchronous backend (Vulkan)
 * reports it when a result is read, as lam_op_gather_rows does. Not differentiable.
 * Errors: LAM_ERR_INVALID_ARGUMENT for depth <= 0 or above 2^24 (the largest count float32
 * holds exactly), an index outside [0, depth), or a float index that is NaN or outside int32;
 * LAM_ERR_DTYPE for another dtype; LAM_ERR_SHAPE when S has LAM_MAX_DIMS dims.
 */
LAM_EXPORT lam_status lam_op_one_hot(const lam_tensor *indices, int64_t depth, lam_tensor **out);
/*
 * start, start + step, ... up to but not including stop, as a 1-D float32 tensor on ctx (NULL:
 * the default context) (NumPy's arange; each value computed in double, then rounded). The
 * values are computed on the host and written to ctx (a transfer to the device, nothing read
 * back). Empty when the range holds no value. Not differentiable.
 * Errors: LAM_ERR_INVALID_ARGUMENT for step 0, a value that is not finite, or more than 1e9
 * elements.
 */
LAM_EXPORT lam_status lam_op_arange(lam_ctx *ctx, double start, double stop, double step,
                                    lam_tensor **out);

/* Number of tensors alive in the runtime, on every thread (for leak checks). */
LAM_EXPORT size_t lam_tensor_live_count(void);

/* ------------------------------------------------------------------------------------------ */
/* Tensor scopes                                                                              */
/* ------------------------------------------------------------------------------------------ */

/*
 * Opens a tensor scope on the calling thread: until the matching lam_scope_end(), every tensor
 * that a lam_* call returns to this code (an `lam_tensor **` result: ops, lam_tensor_create,
 * lam_param_data, lam_block_call, ...) belongs to the scope, and lam_scope_end() releases it.
 * A forward written inside a scope needs no lam_tensor_release for its temporaries:
 *
 *   lam_scope_begin();
 *   lam_tensor *h = NULL, *y = NULL;
 *   lam_status st = lam_op_matmul(x, w, 0, 1, &h);
 *   if (st == LAM_OK) st = lam_op_relu(h, &y);
 *   if (st == LAM_OK) *out = lam_scope_keep(y);   (y outlives the scope; h does not)
 *   lam_scope_end();
 *   return st;
 *
 * - Keeping: lam_scope_keep(t) takes t out of the scope (see there); lam_tensor_retain(t)
 *   gives the caller a reference of its own, which the scope never releases.
 * - Releasing by hand is allowed: lam_tensor_release(t) on a tensor the scope holds releases
 *   the scope's reference then (code written without scopes runs unchanged inside one); a
 *   reference taken with lam_tensor_retain inside the scope is released first, so retain and
 *   release pairs balance.
 * - Nesting: scopes nest; tensors go to the innermost one. A scope opened inside a callback the
 *   library runs (a custom block's forward, ...) holds only what that callback's own calls
 *   return, never the library's own tensors, and must be ended before the callback returns.
 * - Error paths: a failing call returns no tensor and adds nothing; what the scope already
 *   holds is released by lam_scope_end(), so `if (st != LAM_OK) goto end;` with one
 *   lam_scope_end() at `end:` frees every temporary on every path.
 * - Autograd: the tape keeps its own references to the tensors it recorded, so a scope may end
 *   between the forward and lam_autograd_backward(): keep the loss (lam_scope_keep), end the
 *   scope, call backward, release the loss. Gradients live in the parameters.
 * - The library's own tensors (parameters, gradients, optimizer state, what layers keep) are
 *   never held by a scope: a reference to one returned by lam_param_data or lam_tensor_grad is
 *   a new reference, and only that reference is released at the end.
 * Errors: LAM_ERR_OUT_OF_MEMORY.
 * Thread safety: scopes are per thread: a tensor a scope holds must not be released on another
 * thread before it is kept (lam_scope_keep). A thread that exits with scopes open has them
 * ended then.
 */
LAM_EXPORT lam_status lam_scope_begin(void);

/*
 * Ends the innermost scope of this call level: releases every reference it holds (newest
 * first).
 * Errors: LAM_ERR_STATE when no scope is open here (none at all, or the innermost one was
 * opened outside the callback that ends it); nothing is released then.
 */
LAM_EXPORT lam_status lam_scope_end(void);

/*
 * Takes t out of the scope holding it and returns t: the scope's references to t move to the
 * enclosing scope when one is open at the same call level, else to the caller, who then
 * releases them (once per reference; once unless the same tensor was returned several times).
 * A tensor no scope of this thread holds is returned unchanged. NULL gives NULL.
 */
LAM_EXPORT lam_tensor *lam_scope_keep(lam_tensor *t);

/* ------------------------------------------------------------------------------------------ */
/* Ops                                                                                        */
/* ------------------------------------------------------------------------------------------ */
/*
 * Every op checks its operands and returns a new tensor on the operands' context. Operands on
 * different contexts are an error naming both (LAM_ERR_INVALID_ARGUMENT); there is no hidden
 * copy. Binary ops broadcast like NumPy: shapes are aligned at the right, and each pair of
 * dims must be equal or one of them 1 (LAM_ERR_SHAPE otherwise, naming both shapes).
 * The ops below compute in float32: an operand of another dtype is LAM_ERR_DTYPE, e.g.
 * "add: Dtype mismatch, the second operand is int32, expected float32" (convert it with
 * lam_op_cast). lam_op_copy and lam_op_assign move any dtype.
 */

/* Matrix product of 2-D a and b: op(a) x op(b), where op transposes when trans_* != 0.
 * Errors: LAM_ERR_SHAPE when not 2-D or the inner dims differ. */
LAM_EXPORT lam_status lam_op_matmul(const lam_tensor *a, const lam_tensor *b, int32_t trans_a,
                                    int32_t trans_b, lam_tensor **out);

/*
 * A dense layer's forward, act(x . w^T + bias): x (rows, in), w (units, in), bias (units,) or
 * NULL, act LAM_OP_INVALID (none), LAM_OP_RELU, LAM_OP_SIGMOID, LAM_OP_TANH or
 * LAM_OP_SOFTRELU. One backend op (LAM_OP_LINEAR) when the backend has it and nothing is being
 * recorded; otherwise the same result from matmul, add and the activation, recorded as such.
 * Errors: LAM_ERR_SHAPE naming the shapes; LAM_ERR_INVALID_ARGUMENT for another act.
 */
LAM_EXPORT lam_status lam_op_linear(const lam_tensor *x, const lam_tensor *w,
                                    const lam_tensor *bias, lam_op act, lam_tensor **out);

/* Gluon's dot: 1-D x 1-D is the inner product (shape ()), 2-D x 1-D a matrix-vector product,
 * 1-D x 2-D a vector-matrix product, 2-D x 2-D a matrix product. */
LAM_EXPORT lam_status lam_op_dot(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);

/* Element-wise with broadcasting. */
LAM_EXPORT lam_status lam_op_add(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
LAM_EXPORT lam_status lam_op_sub(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
LAM_EXPORT lam_status lam_op_mul(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
LAM_EXPORT lam_status lam_op_div(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
LAM_EXPORT lam_status lam_op_maximum(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
LAM_EXPORT lam_status lam_op_minimum(const lam_tensor *a, const lam_tensor *b, lam_tensor **out);
/* 1 where a >= b, else 0 (NaN gives 0); not differentiable. */
LAM_EXPORT lam_status lam_op_greater_equal(const lam_tensor *a, const lam_tensor *b,
                                           lam_tensor **out);

/* Scalar ops: a + s, a - s, s - a, a * s, a / s, s / a, a ** s. */
LAM_EXPORT lam_status lam_op_add_scalar(const lam_tensor *a, float s, lam_tensor **out);
LAM_EXPORT lam_status lam_op_sub_scalar(const lam_tensor *a, float s, lam_tensor **out);
LAM_EXPORT lam_status lam_op_rsub_scalar(const lam_tensor *a, float s, lam_tensor **out);
LAM_EXPORT lam_status lam_op_mul_scalar(const lam_tensor *a, float s, lam_tensor **out);
LAM_EXPORT lam_status lam_op_div_scalar(const lam_tensor *a, float s, lam_tensor **out);
LAM_EXPORT lam_status lam_op_rdiv_scalar(const lam_tensor *a, float s, lam_tensor **out);
LAM_EXPORT lam_status lam_op_pow_scalar(const lam_tensor *a, float s, lam_tensor **out);

/* Element-wise functions. */
LAM_EXPORT lam_status lam_op_neg(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_abs(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_square(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_sqrt(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_exp(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_log(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_relu(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_sigmoid(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_tanh(const lam_tensor *a, lam_tensor **out);
LAM_EXPORT lam_status lam_op_softrelu(const lam_tensor *a, lam_tensor **out);
/* 1 where a > 0, else 0 (NaN gives 0); not differentiable. */
LAM_EXPORT lam_status lam_op_step(const lam_tensor *a, lam_tensor **out);

/*
 * Reductions over `axes` (n_axes == 0 or axes == NULL: all axes). Negative axes count from the
 * end. keepdims != 0 keeps reduced axes with size 1. Errors: LAM_ERR_INVALID_ARGUMENT for an
 * axis out of range or repeated.
 */
LAM_EXPORT lam_status lam_op_sum(const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                                 int32_t keepdims, lam_tensor **out);
LAM_EXPORT lam_status lam_op_mean(const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                                  int32_t keepdims, lam_tensor **out);
LAM_EXPORT lam_status lam_op_max(const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                                 int32_t keepdims, lam_tensor **out);
LAM_EXPORT lam_status lam_op_min(const lam_tensor *a, const int32_t *axes, uint32_t n_axes,
                                 int32_t keepdims, lam_tensor **out);

/* Index of the first maximum along `axis` (as float), the axis removed. */
LAM_EXPORT lam_status lam_op_argmax(const lam_tensor *a, int32_t axis, lam_tensor **out);

/* Softmax / log-softmax along `axis` (negative counts from the end); numerically stable. */
LAM_EXPORT lam_status lam_op_softmax(const lam_tensor *a, int32_t axis, lam_tensor **out);
LAM_EXPORT lam_status lam_op_log_softmax(const lam_tensor *a, int32_t axis, lam_tensor **out);

/* Transpose of a 2-D tensor, as a new contiguous tensor. */
LAM_EXPORT lam_status lam_op_transpose(const lam_tensor *a, lam_tensor **out);

/* A new contiguous copy of a on its context, in a's dtype (any dtype; only float32 copies are
 * differentiated). */
LAM_EXPORT lam_status lam_op_copy(const lam_tensor *a, lam_tensor **out);

/* Sets every element of t to value, in place. Errors: LAM_ERR_DTYPE when t is not float32. */
LAM_EXPORT lam_status lam_op_fill(lam_tensor *t, float value);

/* Copies src's elements into dst in place; src broadcasts to dst's shape. Any dtype, the same
 * for both (LAM_ERR_DTYPE otherwise). */
LAM_EXPORT lam_status lam_op_assign(lam_tensor *dst, const lam_tensor *src);

/* ------------------------------------------------------------------------------------------ */
/* Neural-network ops (batched products, convolution, pooling, padding, moments)              */
/* ------------------------------------------------------------------------------------------ */
/*
 * Like the ops above, each checks its operands, returns new tensors on the operands' context
 * (LAM_ERR_INVALID_ARGUMENT naming both contexts when they differ) and is differentiated while
 * recording. They run on the context's backend, or on the CPU backend with the operands copied
 * there and back when that backend lacks the op. Tensors are float32.
 */

/*
 * Batched matrix product of 3-D a and b: out[i] = op(a[i]) x op(b[i]), where op transposes the
 * last two axes when trans_* != 0, out (batch, M, N). A batch of 1 is shared by every batch of
 * the other operand (a weight used by every sample); batches never mix (a NaN in one batch
 * element reaches no other). The gradient of a shared operand is summed over the batch.
 * Errors: LAM_ERR_SHAPE naming both shapes when a or b is not 3-D, the inner dims differ or
 * the batches differ and neither is 1.
 * Ownership: *out is a new reference (NULL on failure).
 */
LAM_EXPORT lam_status lam_op_matmul_batched(const lam_tensor *a, const lam_tensor *b,
                                            int32_t trans_a, int32_t trans_b, lam_tensor **out);

/* Parameters of lam_op_conv2d; index 0 is the height axis, 1 the width axis. Padding is
 * symmetric (pad[i] zeros before and after). Start from LAM_CONV2D_PARAMS_INIT. */
typedef struct lam_conv2d_params {
    uint32_t struct_size; /* sizeof(lam_conv2d_params) */
    uint32_t groups;      /* >= 1, divides the input's channels and the filters */
    int64_t stride[2];    /* >= 1 */
    int64_t pad[2];       /* >= 0 */
    int64_t dilation[2];  /* >= 1 */
} lam_conv2d_params;
/* Stride 1, no padding, dilation 1, one group. */
#define LAM_CONV2D_PARAMS_INIT                                                                     \
    {                                                                                              \
        (uint32_t)sizeof(lam_conv2d_params), 1u, {1, 1}, {0, 0}, {                                 \
            1, 1                                                                                   \
        }                                                                                          \
    }

/*
 * 2-D convolution (cross-correlation, as PyTorch's conv2d): x (N, C, H, W), w (O, C/groups,
 * KH, KW), bias (O) or NULL; out (N, O, OH, OW) with OH = (H + 2*pad - dilation*(KH-1) - 1) /
 * stride + 1 (floor), OW likewise. Output channel o of group g = o / (O/groups) reads input
 * channels g*C/groups .. (g+1)*C/groups - 1. Computed by IM2COL and one batched product per
 * call (groups through the batch), so samples never mix: a NaN in sample n reaches only
 * sample n's output. Gradients: x's by a batched product and COL2IM, w's by the product of
 * the output gradient and the columns, bias's by a sum.
 * Errors: LAM_ERR_SHAPE naming the shapes when x is not 4-D, w not 4-D, C != (C/groups) *
 * groups, O not a multiple of groups, bias not (O), or the output would be empty (the dilated
 * kernel larger than the padded input); LAM_ERR_INVALID_ARGUMENT for a NULL p, a struct_size
 * below sizeof(lam_conv2d_params), groups 0, a stride or dilation below 1 or a negative pad.
 * Ownership: p is read during the call only; *out is a new reference (NULL on failure).
 */
LAM_EXPORT lam_status lam_op_conv2d(const lam_tensor *x, const lam_tensor *w,
                                    const lam_tensor *bias, const lam_conv2d_params *p,
                                    lam_tensor **out);

/* lam_pool2d_params.flags */
#define LAM_POOL_CEIL_MODE         1u /* output sizes round up (PyTorch's ceil_mode) */
#define LAM_POOL_COUNT_INCLUDE_PAD 2u /* average pooling divides by the padded window size */

/* Parameters of lam_op_max_pool2d / lam_op_avg_pool2d; index 0 is the height axis, 1 the
 * width axis; padding is symmetric. Start from LAM_POOL2D_PARAMS_INIT(kh, kw). */
typedef struct lam_pool2d_params {
    uint32_t struct_size; /* sizeof(lam_pool2d_params) */
    uint32_t flags;       /* LAM_POOL_* */
    int64_t kernel[2];    /* >= 1 */
    int64_t stride[2];    /* >= 1 */
    int64_t pad[2];       /* >= 0, at most half the kernel (PyTorch's rule) */
    int64_t dilation[2];  /* >= 1 (max pooling only; 1 for average pooling) */
} lam_pool2d_params;
/* A kh x kw window moving by its own size (PyTorch's default stride), no padding. */
#define LAM_POOL2D_PARAMS_INIT(kh, kw)                                                             \
    {                                                                                              \
        (uint32_t)sizeof(lam_pool2d_params), 0u, {(kh), (kw)}, {(kh), (kw)}, {0, 0}, {             \
            1, 1                                                                                   \
        }                                                                                          \
    }

/*
 * Max pooling of x (N, C, H, W) into out (N, C, OH, OW), OH = (H + 2*pad - dilation*(KH-1) -
 * 1) / stride + 1, rounded down, or up with LAM_POOL_CEIL_MODE (then a last window that would
 * start in the trailing padding is dropped, as PyTorch). Padding never wins; among equal
 * values the first in row-major window order wins, and so receives the whole gradient
 * (PyTorch's rule); a NaN wins. indices, when not NULL, receives a new I32 tensor (N, C, OH,
 * OW) of the winners' positions h*W + w within their plane.
 * Errors: LAM_ERR_SHAPE when x is not 4-D or the output would be empty;
 * LAM_ERR_INVALID_ARGUMENT for a NULL p, a struct_size below sizeof(lam_pool2d_params), a
 * kernel, stride or dilation below 1, a negative pad or one above half the kernel (a window
 * could then lie wholly in the padding), or unknown flags (COUNT_INCLUDE_PAD is refused here).
 * Ownership: *out and *indices are new references (NULL on failure).
 */
LAM_EXPORT lam_status lam_op_max_pool2d(const lam_tensor *x, const lam_pool2d_params *p,
                                        lam_tensor **out, lam_tensor **indices);

/*
 * Average pooling of x (N, C, H, W) into out (N, C, OH, OW), sizes as lam_op_max_pool2d. The
 * divisor is the number of window taps inside the input, or with LAM_POOL_COUNT_INCLUDE_PAD
 * inside the padded input (PyTorch's count_include_pad, the window clipped to the padded
 * input in ceil mode).
 * Errors: as lam_op_max_pool2d, and LAM_ERR_INVALID_ARGUMENT for a dilation other than 1.
 * Ownership: *out is a new reference (NULL on failure).
 */
LAM_EXPORT lam_status lam_op_avg_pool2d(const lam_tensor *x, const lam_pool2d_params *p,
                                        lam_tensor **out);

/*
 * Constant padding: out has x's axes with before[i] + dims[i] + after[i] elements, value
 * outside x and x inside. before and after hold one entry per axis of x. The gradient is the
 * inner slice of the output's gradient.
 * Errors: LAM_ERR_INVALID_ARGUMENT for NULL arrays or a negative entry; LAM_ERR_SHAPE when an
 * axis would overflow.
 * Ownership: the arrays are read during the call only; *out is a new reference.
 */
LAM_EXPORT lam_status lam_op_pad(const lam_tensor *x, const int64_t *before, const int64_t *after,
                                 float value, lam_tensor **out);

/*
 * Mean and biased variance of x over `axes` (n_axes == 0 or axes == NULL: all axes; negative
 * axes count from the end), as LayerNorm (the last axes) and BatchNorm (axes 0, 2, 3 of NCHW)
 * need; keepdims != 0 keeps the reduced axes with size 1. Either output may be NULL when not
 * wanted (not both). Reducing zero elements gives NaN. Both are differentiated: d mean / dx =
 * 1/n, d var / dx = 2 (x - mean) / n.
 * Errors: LAM_ERR_INVALID_ARGUMENT for an axis out of range or repeated, or both outputs NULL.
 * Ownership: *mean_out and *var_out are new references (NULL on failure).
 */
LAM_EXPORT lam_status lam_op_moments(const lam_tensor *x, const int32_t *axes, uint32_t n_axes,
                                     int32_t keepdims, lam_tensor **mean_out, lam_tensor **var_out);

/*
 * Layer normalization over the last axis of x (PyTorch's layer_norm(x, (n,), gamma, beta, eps)):
 * each row of n elements becomes (x - mean) * rstd * gamma + beta, with mean and the biased
 * variance of the row and rstd = 1 / sqrtf(var + eps). gamma and beta are float32 (n) on x's
 * context; NULL means none (ones, zeros). One node for autograd (x, gamma and beta all get
 * gradients); rows never mix, so a NaN stays in its row. Runs as one backend op each way where
 * the backend has it (LAM_OP_LAYER_NORM, ABI 2.2), else composed of the basic ops.
 * Errors: LAM_ERR_INVALID_ARGUMENT for NULL x or out, or eps negative or not finite;
 * LAM_ERR_DTYPE unless every tensor is float32; LAM_ERR_SHAPE for a 0-D x or gamma/beta not
 * (n); LAM_ERR_INVALID_ARGUMENT for tensors on different contexts.
 * Ownership: *out is a new reference (NULL on failure).
 */
LAM_EXPORT lam_status lam_op_layer_norm(const lam_tensor *x, const lam_tensor *gamma,
                                        const lam_tensor *beta, float eps, lam_tensor **out);

/* ------------------------------------------------------------------------------------------ */
/* Autograd                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/*
 * Turns recording on or off for the calling thread and returns the previous state (Gluon's
 * autograd.record()). While recording, every op whose operands need a gradient (parameters
 * with grad_req write/add, tensors with lam_tensor_attach_grad, and results of recorded ops)
 * remembers how to differentiate itself. Only ops that actually run are recorded, so control
 * flow in a custom forward needs nothing special.
 * Thread safety: the state is per thread; every thread starts with recording off, and one
 * thread recording never makes another record.
 */
LAM_EXPORT int lam_autograd_set_recording(int on);
/* Nonzero when the calling thread records. */
LAM_EXPORT int lam_autograd_is_recording(void);

/*
 * Train mode of the calling thread (Gluon's autograd.train_mode / predict_mode): layers such as
 * Dropout and BatchNorm behave as in training when lam_autograd_is_training() is nonzero. By
 * default it follows recording (on while recording, as Gluon's record()); begin(1) or begin(0)
 * forces it, begin(-1) follows recording again. begin returns the previous mode for end.
 *   int was = lam_autograd_train_mode_begin(0);   ... inference while recording ...
 *   lam_autograd_train_mode_end(was);
 * Thread safety: per thread, like recording.
 */
LAM_EXPORT int lam_autograd_train_mode_begin(int mode);
LAM_EXPORT void lam_autograd_train_mode_end(int previous);
LAM_EXPORT int lam_autograd_is_training(void);

/*
 * Scoped recording: lam_autograd_record_begin(on) sets the calling thread's recording state
 * and returns the previous one, which lam_autograd_record_end restores. Pairs nest; call end
 * on every path, error paths included:
 *   int was = lam_autograd_record_begin(1);
 *   lam_status st = lam_block_call(net, x, &out);
 *   lam_autograd_record_end(was);
 * Thread safety: per thread, like lam_autograd_set_recording.
 */
LAM_EXPORT int lam_autograd_record_begin(int on);
LAM_EXPORT void lam_autograd_record_end(int previous);

/*
 * Computes the gradient of `head` with respect to every parameter and attached tensor it was
 * computed from. head_grad (same shape as head) weights the outputs; NULL means ones (for a
 * non-scalar head this differentiates the sum, as Gluon does). Parameters receive it by their
 * grad_req: write overwrites, add accumulates, null and constants get nothing; a parameter
 * used several times receives the sum. Recording is off while backward runs.
 * Errors: LAM_ERR_STATE when head was not recorded; LAM_ERR_SHAPE for a head_grad of another
 * shape.
 */
LAM_EXPORT lam_status lam_autograd_backward(lam_tensor *head, const lam_tensor *head_grad);

/* Nonzero (default) lets layers with a fused backward use it; zero differentiates their
 * forward op by op instead (for checking that both agree). Returns the previous value.
 * Thread safety: a process-wide setting; it may be changed from any thread (atomically), but
 * forwards recording at that moment on other threads may see either value. */
LAM_EXPORT int lam_autograd_set_fused_backward(int on);

/* Makes t a leaf that receives a gradient (Gluon's attach_grad); the gradient starts at zero. */
LAM_EXPORT lam_status lam_tensor_attach_grad(lam_tensor *t);
/* The gradient of an attached leaf (a new reference). Errors: LAM_ERR_STATE when none. */
LAM_EXPORT lam_status lam_tensor_grad(const lam_tensor *t, lam_tensor **out);
/* A tensor sharing t's data that is cut off from the graph: no gradient flows through it. */
LAM_EXPORT lam_status lam_tensor_detach(lam_tensor *t, lam_tensor **out);

/* ------------------------------------------------------------------------------------------ */
/* Losses and optimizers                                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * Softmax cross-entropy per sample, -log(softmax(logits)[label]), computed stably through
 * log-softmax. logits (batch, classes), float32; labels (batch,) holding class indices, int32,
 * int64 or float32 (integral values), or float32 targets of the logits' shape (one-hot rows or
 * class probabilities, as PyTorch's cross_entropy with probabilities: -sum(t log_softmax)).
 * *out is (batch,). Differentiable w.r.t. logits (not the targets).
 * int32/int64 labels are used on the logits' device (nothing is read back to the host: the
 * one-hot rows are built with ops, the range checked by a gather); float32 labels are read on
 * the host and their one-hot uploaded; targets stay on the device. An out-of-range integer
 * label is reported by the call on synchronous backends; an asynchronous one may report it (as
 * its gather's index error, naming position and value) when the result is read.
 * Errors: LAM_ERR_DTYPE for logits not float32 or labels of another dtype; LAM_ERR_SHAPE for
 * mismatched shapes; LAM_ERR_INVALID_ARGUMENT for a label that is not an integer in
 * [0, classes), naming it, or for labels on another context than the logits (naming both, as
 * every op does).
 */
LAM_EXPORT lam_status lam_loss_softmax_cross_entropy(const lam_tensor *logits,
                                                     const lam_tensor *labels, lam_tensor **out);

/* L2 loss per sample (Gluon's L2Loss): 0.5 * mean over all but the first axis of
 * (pred - label)^2. *out is (batch,). Errors: LAM_ERR_SHAPE when the shapes differ. */
LAM_EXPORT lam_status lam_loss_l2(const lam_tensor *pred, const lam_tensor *label,
                                  lam_tensor **out);

/* An optimizer over a list of parameters (Gluon's Trainer). */
typedef struct lam_trainer lam_trainer;

/*
 * Typed optimizer options. Each struct starts with its size, so that it can grow: start from
 * its _INIT macro (the defaults, PyTorch's), change the fields you need, and pass it to the
 * matching lam_trainer_create_* function (NULL there means the defaults). A struct_size below
 * the size this library was built with, or above it (a header newer than the library), is
 * refused. Learning rates and the other numbers are doubles and are kept exactly: the trainer
 * reports back the value given (lam_trainer_learning_rate) and rounds it to float only where
 * an update multiplies by it.
 * clip_global_norm > 0 clips the gradients of each step by their global norm before the update
 * (PyTorch's clip_grad_norm_ applied to the batch-averaged gradients, see
 * lam_param_list_clip_global_norm), computed on the parameters' device without a host round
 * trip; 0 (the default) does not clip.
 */
typedef struct lam_sgd_options {
    uint32_t struct_size;    /* sizeof(lam_sgd_options) */
    double learning_rate;    /* 0.01; > 0 */
    double momentum;         /* 0; in [0, 1): v = momentum v + g, w -= lr v */
    double weight_decay;     /* 0; L2: g += weight_decay w */
    double clip_global_norm; /* 0: off */
} lam_sgd_options;
#define LAM_SGD_OPTIONS_INIT                                                                       \
    { (uint32_t)sizeof(lam_sgd_options), 0.01, 0.0, 0.0, 0.0 }

/* Adam (torch.optim.Adam: weight_decay is L2, added to the gradient) and AdamW
 * (torch.optim.AdamW: decoupled, w *= 1 - lr weight_decay before the Adam update) share this
 * struct; only their defaults differ (AdamW's weight_decay is 0.01, as PyTorch's). */
typedef struct lam_adam_options {
    uint32_t struct_size;    /* sizeof(lam_adam_options) */
    double learning_rate;    /* 0.001; > 0 */
    double beta1, beta2;     /* 0.9, 0.999; in [0, 1) */
    double epsilon;          /* 1e-8; > 0, added outside the square root */
    double weight_decay;     /* Adam 0, AdamW 0.01 */
    double clip_global_norm; /* 0: off */
} lam_adam_options;
#define LAM_ADAM_OPTIONS_INIT                                                                      \
    { (uint32_t)sizeof(lam_adam_options), 0.001, 0.9, 0.999, 1e-8, 0.0, 0.0 }
#define LAM_ADAMW_OPTIONS_INIT                                                                     \
    { (uint32_t)sizeof(lam_adam_options), 0.001, 0.9, 0.999, 1e-8, 0.01, 0.0 }

/* RMSProp as torch.optim.RMSprop: s = alpha s + (1 - alpha) g^2; centered also keeps
 * m = alpha m + (1 - alpha) g and uses s - m^2; d = sqrt(.) + epsilon; with momentum
 * b = momentum b + g / d, w -= lr b, else w -= lr g / d. weight_decay is L2. */
typedef struct lam_rmsprop_options {
    uint32_t struct_size;    /* sizeof(lam_rmsprop_options) */
    double learning_rate;    /* 0.01; > 0 */
    double alpha;            /* 0.99; in [0, 1) */
    double epsilon;          /* 1e-8; > 0 */
    double weight_decay;     /* 0 */
    double momentum;         /* 0; in [0, 1) */
    double clip_global_norm; /* 0: off */
    int32_t centered;        /* 0 or 1 */
} lam_rmsprop_options;
#define LAM_RMSPROP_OPTIONS_INIT                                                                   \
    { (uint32_t)sizeof(lam_rmsprop_options), 0.01, 0.99, 1e-8, 0.0, 0.0, 0.0, 0 }

/*
 * Trainers from typed options (one constructor per optimizer, so that the compiler checks
 * the option names and types): lam_trainer_create_sgd(params, &o, &t) with
 * `lam_sgd_options o = LAM_SGD_OPTIONS_INIT; o.learning_rate = 0.1;`. options NULL: the
 * defaults. Each keeps its own references to the parameters. Each parameter's
 * lr_mult/wd_mult scale lr and weight decay; constants and grad_req null parameters are never
 * changed. The parameters' structural keys in the list name their state in lam_trainer_save.
 * Errors: LAM_ERR_INVALID_ARGUMENT for NULL params or out, a struct_size this library does not
 * know, or a value out of its range (naming the field and the value).
 * Ownership: options are read during the call only; *out belongs to the caller
 * (lam_trainer_destroy), NULL on failure.
 */
LAM_EXPORT lam_status lam_trainer_create_sgd(const lam_param_list *params,
                                             const lam_sgd_options *options, lam_trainer **out);
LAM_EXPORT lam_status lam_trainer_create_adam(const lam_param_list *params,
                                              const lam_adam_options *options, lam_trainer **out);
LAM_EXPORT lam_status lam_trainer_create_adamw(const lam_param_list *params,
                                               const lam_adam_options *options, lam_trainer **out);
LAM_EXPORT lam_status lam_trainer_create_rmsprop(const lam_param_list *params,
                                                 const lam_rmsprop_options *options,
                                                 lam_trainer **out);

/*
 * The same from a string (the CLI's form): optimizer "sgd" (options learning_rate=0.01,
 * momentum=0, wd=0, clip_global_norm=0), "adam" (learning_rate=0.001, beta1=0.9, beta2=0.999,
 * epsilon=1e-8, wd=0, clip_global_norm=0), "adamw" (as adam, wd=0.01) or "rmsprop"
 * (learning_rate=0.01, alpha=0.99, epsilon=1e-8, wd=0, momentum=0, centered=0,
 * clip_global_norm=0); options as "learning_rate=0.1, momentum=0.9", a list read like
 * lam_layer_create's attributes, each value parsed as a double (wd is the structs'
 * weight_decay). options NULL or "": the defaults.
 * Errors: LAM_ERR_INVALID_ARGUMENT for an unknown optimizer, an unknown or repeated option, a
 * malformed list or a bad value.
 */
LAM_EXPORT lam_status lam_trainer_create(const lam_param_list *params, const char *optimizer,
                                         const char *options, lam_trainer **out);

/*
 * One update with the current gradients, each scaled by 1/batch_size (the loss summed over
 * the batch, as in Gluon). The step runs in order: the gradients are read (scaled), clipped
 * when clip_global_norm is set, and the update is computed in full into new tensors; only then
 * are the parameters written (each by the backend's fused in-place AXPBY, which the CPU and
 * Vulkan backends have) and the optimizer state replaced. So a step that fails (out of memory
 * included) changes neither the parameters nor the trainer (its state and step count); only a
 * device failing during the writes themselves can leave some parameters updated.
 * The learning rate of the step is lam_trainer_learning_rate's value before it.
 * Errors: LAM_ERR_INVALID_ARGUMENT for batch_size <= 0; LAM_ERR_STATE for a parameter that is
 * not initialized; LAM_ERR_OUT_OF_MEMORY; the backend's errors (prefixed with the parameter).
 * Memory: while a step runs, new state and update tensors for every parameter are alive at
 * once (about 3 times the parameters' size for Adam, as PyTorch's foreach implementation).
 */
LAM_EXPORT lam_status lam_trainer_step(lam_trainer *t, int64_t batch_size);

/* The learning rate the next step uses: the base rate, or with a schedule attached the
 * schedule's value at the current step count. 0 for NULL. */
LAM_EXPORT double lam_trainer_learning_rate(const lam_trainer *t);
/* Sets the base learning rate (the value a schedule starts from); kept exactly. NULL is a
 * no-op. */
LAM_EXPORT void lam_trainer_set_learning_rate(lam_trainer *t, double lr);
/* Steps taken (each successful lam_trainer_step counts one); 0 for NULL. */
LAM_EXPORT int64_t lam_trainer_step_count(const lam_trainer *t);
/* NULL is a no-op. */
LAM_EXPORT void lam_trainer_destroy(lam_trainer *t);

/* Learning-rate schedules, evaluated per step (the trainer's step count) as PyTorch's
 * schedulers are per scheduler.step() call after each optimizer.step(). */
typedef enum lam_lr_schedule_kind {
    LAM_LR_CONSTANT = 0, /* the base rate (warm-up still applies) */
    LAM_LR_STEP = 1,     /* StepLR: base * gamma^floor(s / step_size) */
    LAM_LR_COSINE = 2 /* CosineAnnealingLR: eta_min + (base - eta_min)(1 + cos(pi s / t_max))/2 */
} lam_lr_schedule_kind;

/*
 * A schedule: `kind` with its fields, preceded by an optional linear warm-up of warmup_steps
 * steps. Warm-up is PyTorch's SequentialLR([LinearLR(warmup_start_factor, 1, warmup_steps),
 * main], milestones=[warmup_steps]): for s < warmup_steps the rate is base * (f + (1 - f) *
 * s / warmup_steps), then the main schedule runs from its own step 0 (s - warmup_steps).
 * Start from LAM_LR_SCHEDULE_INIT (constant, no warm-up, PyTorch's defaults for the rest).
 */
typedef struct lam_lr_schedule {
    uint32_t struct_size;       /* sizeof(lam_lr_schedule) */
    lam_lr_schedule_kind kind;  /* LAM_LR_CONSTANT */
    int64_t step_size;          /* LAM_LR_STEP: >= 1 (default 1) */
    double gamma;               /* LAM_LR_STEP: > 0 (default 0.1) */
    int64_t t_max;              /* LAM_LR_COSINE: >= 1 (default 1) */
    double eta_min;             /* LAM_LR_COSINE: >= 0 (default 0) */
    int64_t warmup_steps;       /* >= 0 (default 0: none) */
    double warmup_start_factor; /* in (0, 1] (default 1/3, LinearLR's) */
} lam_lr_schedule;
#define LAM_LR_SCHEDULE_INIT                                                                       \
    { (uint32_t)sizeof(lam_lr_schedule), LAM_LR_CONSTANT, 1, 0.1, 1, 0.0, 0, 1.0 / 3.0 }

/*
 * Attaches a schedule to t (replacing any; NULL detaches, leaving the base rate). The
 * schedule's position is the trainer's step count, so it is saved and restored with the
 * trainer's state. Errors: LAM_ERR_INVALID_ARGUMENT for a NULL t, an unknown kind or
 * struct_size, or a field out of its range (naming it); t is unchanged then.
 */
LAM_EXPORT lam_status lam_trainer_set_schedule(lam_trainer *t, const lam_lr_schedule *schedule);

/*
 * Clips the gradients of the parameters in list in place by their global norm, as PyTorch's
 * torch.nn.utils.clip_grad_norm_(params, max_norm): norm = sqrt(sum of every gradient element
 * squared), each gradient multiplied by min(1, max_norm / (norm + 1e-6)). The norm and the
 * factor are computed with ops on the gradients' device; *norm (when not NULL) receives the
 * norm before clipping (reading it is the one host transfer). Constants, grad_req null and
 * uninitialized parameters are skipped. Errors: LAM_ERR_INVALID_ARGUMENT for a NULL list or a
 * max_norm that is not > 0; the ops' errors. A failure leaves every gradient unchanged.
 */
LAM_EXPORT lam_status lam_param_list_clip_global_norm(const lam_param_list *list, double max_norm,
                                                      float *norm);

/*
 * The global norm of the (batch-averaged) gradients before clipping in the last step of a
 * trainer with clip_global_norm set: read from the device when asked. Errors:
 * LAM_ERR_STATE when no clipped step ran yet; LAM_ERR_INVALID_ARGUMENT for NULL arguments.
 */
LAM_EXPORT lam_status lam_trainer_last_grad_norm(const lam_trainer *t, float *norm);

/*
 * Saves the trainer's state to a safetensors file, atomically as lam_save_dict (a failure
 * leaves an existing file as it was): each parameter's optimizer state under
 * "<key>.<name>" with PyTorch's names (SGD: momentum_buffer; Adam, AdamW: exp_avg, exp_avg_sq;
 * RMSProp: square_avg, momentum_buffer, grad_avg), and metadata lamina.kind "trainer",
 * lamina.optimizer, lamina.step (the step count, which is the schedule's position) and
 * lamina.learning_rate (the base rate, 17 digits). Saving the parameters too
 * (lam_block_save_parameters) and loading both into a fresh model and trainer continues the
 * training bit for bit.
 * Errors: LAM_ERR_INVALID_ARGUMENT for NULL arguments; LAM_ERR_IO; LAM_ERR_OUT_OF_MEMORY.
 */
LAM_EXPORT lam_status lam_trainer_save(const lam_trainer *t, const char *path);

/*
 * Loads a state saved by lam_trainer_save into t (a trainer of the same optimizer over
 * parameters with the same keys and shapes): the optimizer state, the step count and the
 * base learning rate; the hyperparameters (betas, momentum, the schedule) stay t's own.
 * Strict: a different optimizer, a state tensor whose key t does not have or whose shape
 * differs is an error naming it. Nothing changes unless the whole load succeeds.
 * Errors: LAM_ERR_INVALID_ARGUMENT (NULL arguments, a mismatch), LAM_ERR_FORMAT (not a trainer
 * file, bad metadata), LAM_ERR_NOT_FOUND, LAM_ERR_IO, LAM_ERR_OUT_OF_MEMORY, each naming the
 * file.
 */
LAM_EXPORT lam_status lam_trainer_load(lam_trainer *t, const char *path);

/* ------------------------------------------------------------------------------------------ */
/* Data-parallel training                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* The default gradient bucket of lam_trainer_set_comm: 25 MiB, as PyTorch's DDP. */
#define LAM_TRAINER_BUCKET_BYTES ((size_t)25 << 20)

/*
 * Makes t data-parallel over comm (PyTorch's DistributedDataParallel, Gluon's dist_sync
 * kvstore): every rank of comm runs the same model on its own share of each batch, and each
 * lam_trainer_step sums the gradients over the ranks and divides by the global batch (the sum
 * of the ranks' batch_size), so every rank makes the same update as one process would on the
 * whole batch. lam_trainer_step becomes collective: every rank calls it once per step.
 *
 * First step: the ranks compare their models (parameter count, keys, shapes, which train)
 * and the checksums of their values. A different model fails the step on every rank with
 * LAM_ERR_SHAPE naming the first parameter that differs and both shapes (no gradient is
 * reduced); different values (another seed, a load on some ranks only) are replaced by rank
 * 0's, broadcast, with a LAM_LOG_WARN message; identical values say so in a LAM_LOG_INFO
 * message. After a load in the middle of training, call lam_trainer_set_comm again on every
 * rank so that the next step checks again (a load on every rank of the same file keeps the
 * values identical).
 *
 * Buckets: the parameters that train are grouped, last registered first, into buckets of
 * about bucket_bytes (0: LAM_TRAINER_BUCKET_BYTES). A gradient of 256 KiB or more is reduced
 * in its own buffer, where backward leaves it; the smaller ones' gradient buffers become
 * views into one tensor per bucket, reduced as one message. From the second step on, each
 * bucket's non-blocking reductions start during lam_autograd_backward as soon as all its
 * gradients are complete (grad_req write; grad_req add gradients are reduced at the step),
 * and lam_trainer_step waits for them before the update. After a step each gradient buffer holds
 * the sum over the ranks. A parameter used twice is one parameter (its gradient is complete once
 * both uses are); constants and grad_req null parameters are neither reduced nor changed, but are
 * checked at the first step. Take one backward pass per step (a second one before the step is
 * LAM_ERR_STATE, from lam_autograd_backward).
 *
 * Batches: every rank must take the same number of steps; lam_sampler_indices gives each rank
 * the same number of samples per epoch (dropping or padding the rest), and a smaller last
 * batch is fine as long as every rank takes it.
 *
 * Progress: MPI moves a non-blocking reduction on only inside MPI calls. Where a CPU is free
 * for it (the parameters live on a device, or the process may run on more CPUs than
 * LAMINA_NUM_THREADS), the trainer keeps a thread that drives the reductions in flight while
 * backward computes; where every CPU computes, such a thread would take turns with the
 * compute on the same cores, so the training thread tests them as each gradient completes
 * and lam_trainer_step completes them. LAMINA_COMM_PROGRESS=thread or caller overrides the
 * choice; a LAM_LOG_INFO message at the first step says which was taken and why. Between
 * lam_autograd_backward and lam_trainer_step the caller must not use comm itself (reduce its
 * metrics after the step).
 *
 * comm NULL makes t local again. Errors: LAM_ERR_INVALID_ARGUMENT for a NULL trainer;
 * LAM_ERR_OUT_OF_MEMORY. Ownership: comm is borrowed and must outlive t or the next call.
 * Thread safety: as the trainer; the backward pass of its model runs on one thread at a time.
 */
LAM_EXPORT lam_status lam_trainer_set_comm(lam_trainer *t, lam_comm *comm, size_t bucket_bytes);

/* Flags of lam_sampler_indices. */
typedef enum lam_sampler_flag {
    LAM_SAMPLER_SHUFFLE = 1, /* a new permutation of the data set every epoch */
    LAM_SAMPLER_PAD = 2,     /* pad (repeat the first indices) instead of dropping the rest */
    LAM_SAMPLER_FLAG_MAX_ENUM = 0x7FFFFFFF
} lam_sampler_flag;

/* How many indices lam_sampler_indices gives each of `size` ranks per epoch of n samples:
 * n / size rounded down (the last n % size samples of the epoch's order are dropped), or up
 * with LAM_SAMPLER_PAD. 0 for n < 0 or size <= 0. */
LAM_EXPORT int64_t lam_sampler_count(int64_t n, int size, uint32_t flags);

/*
 * The indices of the n samples that rank `rank` of `size` takes in `epoch`, in the order to
 * take them (PyTorch's DistributedSampler): the epoch's order is 0..n-1, or with
 * LAM_SAMPLER_SHUFFLE a permutation drawn from (seed, epoch) that is the same on every rank
 * and machine; rank r takes its positions r, r+size, r+2*size, ... The ranks' shares are
 * disjoint, of equal length (lam_sampler_count), and without padding cover all but n % size
 * samples; with it the first positions are used again to fill the last round.
 * Errors: LAM_ERR_INVALID_ARGUMENT for n < 0, size <= 0, rank outside [0, size), unknown
 * flags, or cap below lam_sampler_count. Thread safety: a pure function.
 */
LAM_EXPORT lam_status lam_sampler_indices(int64_t n, int rank, int size, uint64_t seed,
                                          int64_t epoch, uint32_t flags, int64_t *out, size_t cap);

/* Sets every gradient in the list to zero (needed between steps with grad_req add). */
LAM_EXPORT lam_status lam_param_list_zero_grad(const lam_param_list *list);

/* ------------------------------------------------------------------------------------------ */
/* Random numbers and initializers                                                            */
/* ------------------------------------------------------------------------------------------ */

/*
 * Sets the global seed (default 0). Initial parameter values are a pure function of the seed
 * and the parameter's structural key ("0.weight"): eager or deferred initialization, creation
 * order, threads and backend do not change them.
 * Thread safety: process-wide and atomic; an initialization running on another thread at the
 * same moment uses either the old or the new seed.
 */
LAM_EXPORT void lam_seed(uint64_t seed);
LAM_EXPORT uint64_t lam_seed_get(void);

/* A counter-based random stream (Philox-4x32-10) handed to initializer callbacks; valid only
 * during the callback. Normals are drawn in pairs (Box-Muller): the second of a pair is
 * returned by the next lam_rng_normal call. */
typedef struct lam_rng lam_rng;

/* Next number uniform in [lo, hi). */
LAM_EXPORT float lam_rng_uniform(lam_rng *rng, float lo, float hi);
/* Next number from N(mean, std^2). */
LAM_EXPORT float lam_rng_normal(lam_rng *rng, float mean, float std);

/*
 * A user-defined initializer: fills `count` floats of host memory for the parameter `name`
 * (its display name, e.g. "dense0_weight") of full shape `shape`. Draw randomness only from
 * `rng` to stay deterministic. Return LAM_OK or an error status.
 */
typedef lam_status (*lam_init_fn)(const char *name, const lam_shape *shape, float *data,
                                  size_t count, lam_rng *rng, void *user);

/* An initializer: a value describing how to fill a parameter. Immutable once made. */
typedef struct lam_initializer lam_initializer;

/* Built-in initializers (MXNet's semantics). Each returns a new initializer the caller
 * releases; blocks and parameters keep their own reference, so releasing it right after
 * lam_block_initialize is fine. */
LAM_EXPORT lam_status lam_init_zero(lam_initializer **out);
LAM_EXPORT lam_status lam_init_one(lam_initializer **out);
/* Errors: LAM_ERR_INVALID_ARGUMENT for an infinite or NaN value. */
LAM_EXPORT lam_status lam_init_constant(float value, lam_initializer **out);
/* Uniform in [-scale, scale) (MXNet's default scale is 0.07). */
LAM_EXPORT lam_status lam_init_uniform(float scale, lam_initializer **out);
/* Normal with mean 0 and standard deviation sigma (MXNet's default 0.01). */
LAM_EXPORT lam_status lam_init_normal(float sigma, lam_initializer **out);

typedef enum lam_xavier_rnd {
    LAM_XAVIER_RND_INVALID = 0,
    LAM_XAVIER_UNIFORM = 1,
    LAM_XAVIER_GAUSSIAN = 2,
    LAM_XAVIER_RND_MAX_ENUM = 0x7FFFFFFF
} lam_xavier_rnd;

typedef enum lam_xavier_factor {
    LAM_XAVIER_FACTOR_INVALID = 0,
    LAM_XAVIER_AVG = 1,
    LAM_XAVIER_IN = 2,
    LAM_XAVIER_OUT = 3,
    LAM_XAVIER_FACTOR_MAX_ENUM = 0x7FFFFFFF
} lam_xavier_factor;

/*
 * Xavier/Glorot: with fan_in = shape[1]*prod(shape[2:]), fan_out = shape[0]*prod(shape[2:]),
 * factor = (fan_in+fan_out)/2, fan_in or fan_out, scale = sqrt(magnitude / factor); uniform
 * draws from [-scale, scale), gaussian from N(0, scale^2). MXNet's default is uniform, avg, 3.
 * Errors: LAM_ERR_INVALID_ARGUMENT for a bad enum or a magnitude <= 0. A parameter with fewer
 * than 2 dims cannot be Xavier-initialized (error at initialization, naming it).
 */
LAM_EXPORT lam_status lam_init_xavier(lam_xavier_rnd rnd, lam_xavier_factor factor, float magnitude,
                                      lam_initializer **out);

/* A user-defined initializer; `label` names it in messages (e.g. "MyInit"). */
LAM_EXPORT lam_status lam_init_custom(const char *label, lam_init_fn fn, void *user,
                                      lam_initializer **out);

/* Parses "zeros", "ones", "constant(0.5)", "uniform", "uniform(0.1)", "normal",
 * "normal(0.02)", "xavier", "xavier(gaussian, in, 2)". Arguments are positional, named
 * ("xavier(magnitude=2)", after the positional ones) or both, a list read like
 * lam_layer_create's attributes. Initializer names and words ("Gaussian") are case-insensitive,
 * argument names are not.
 * Errors: LAM_ERR_INVALID_ARGUMENT, also for a number a float cannot hold (inf, nan, beyond
 * 3.4e38 in magnitude: "constant(1e99)"). */
LAM_EXPORT lam_status lam_init_parse(const char *text, lam_initializer **out);

/* Text form such as "Normal(sigma=0.01)"; borrowed for the initializer's lifetime. */
LAM_EXPORT const char *lam_initializer_describe(const lam_initializer *init);

LAM_EXPORT lam_initializer *lam_initializer_retain(lam_initializer *init);
/* Drops a reference; the last one frees it. NULL is a no-op. */
LAM_EXPORT void lam_initializer_release(lam_initializer *init);

/* ------------------------------------------------------------------------------------------ */
/* Parameters                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef enum lam_grad_req {
    LAM_GRAD_INVALID = 0,
    LAM_GRAD_WRITE = 1, /* backward overwrites the gradient */
    LAM_GRAD_ADD = 2,   /* backward adds to the gradient */
    LAM_GRAD_NULL = 3,  /* no gradient */
    LAM_GRAD_MAX_ENUM = 0x7FFFFFFF
} lam_grad_req;

/* Display name, e.g. "dense0_weight". Borrowed for the parameter's lifetime. The getters of a
 * parameter accept NULL and then return NULL, 0, LAM_GRAD_INVALID or 0.0f; the setters ignore
 * it (lam_param_set_grad_req fails with LAM_ERR_INVALID_ARGUMENT). */
LAM_EXPORT const char *lam_param_name(const lam_param *p);
/* Shape; unknown dims are LAM_DIM_UNKNOWN until inferred. Borrowed. */
LAM_EXPORT const lam_shape *lam_param_shape(const lam_param *p);
/* Nonzero once the data exists. */
LAM_EXPORT int lam_param_is_initialized(const lam_param *p);
/* Nonzero for a constant (Gluon's get_constant): never trained, no gradient. */
LAM_EXPORT int lam_param_is_constant(const lam_param *p);

/*
 * The data (a new reference; the tensor is the parameter's storage, so writes are seen by
 * every block sharing it).
 * Errors (as Gluon's Parameter.data()), each naming the parameter and what to do:
 * LAM_ERR_STATE before initialization (lam_block_initialize or lam_param_initialize not called
 * yet), whether or not the shape is known; LAM_ERR_DEFERRED_INIT after an initialization that
 * had to wait because the shape has unknown dims, until the first forward infers them (Gluon's
 * DeferredInitializationError).
 */
LAM_EXPORT lam_status lam_param_data(lam_param *p, lam_tensor **out);
/* The gradient buffer (a new reference), zeros until a backward pass writes it.
 * Errors: as lam_param_data; LAM_ERR_STATE for a constant or grad_req null. */
LAM_EXPORT lam_status lam_param_grad(lam_param *p, lam_tensor **out);
/*
 * Fills the unknown dims of p's shape from `shape` (fully known, same number of dims), for an
 * infer-shape callback (lam_block_set_infer_shape). Known dims must agree; a parameter whose
 * shape is already known is only checked.
 * Errors: LAM_ERR_SHAPE naming the parameter, its shape and the inferred one
 * ("mlp0_weight: Shape inconsistent, provided (3, 4), inferred (3, 5)");
 * LAM_ERR_INVALID_ARGUMENT for NULL arguments.
 */
LAM_EXPORT lam_status lam_param_infer_shape(lam_param *p, const lam_shape *shape);
/* Copies `data` into the parameter (same shape; a parameter with unknown dims takes the shape
 * of `data` if it is compatible, and counts as initialized afterwards).
 * Errors: LAM_ERR_SHAPE naming both shapes. */
LAM_EXPORT lam_status lam_param_set_data(lam_param *p, const lam_tensor *data);
/*
 * Initializes one parameter with `init` (NULL: its own default) on `ctx` (NULL: default
 * context). An initialized parameter is left alone unless force_reinit (a LAM_LOG_WARN message
 * says so). A parameter whose shape is still unknown records the request for its first forward.
 */
LAM_EXPORT lam_status lam_param_initialize(lam_param *p, const lam_initializer *init, lam_ctx *ctx,
                                           int force_reinit);

LAM_EXPORT lam_grad_req lam_param_grad_req(const lam_param *p);
LAM_EXPORT lam_status lam_param_set_grad_req(lam_param *p, lam_grad_req req);
LAM_EXPORT float lam_param_lr_mult(const lam_param *p);
LAM_EXPORT float lam_param_wd_mult(const lam_param *p);
LAM_EXPORT void lam_param_set_lr_mult(lam_param *p, float mult);
LAM_EXPORT void lam_param_set_wd_mult(lam_param *p, float mult);

/* "Parameter dense0_weight (shape=(256, 20), dtype=float32)"; returns buf. */
LAM_EXPORT char *lam_param_format(const lam_param *p, char *buf, size_t cap);

/* A list of parameters with their structural keys, from lam_block_collect_params. */
LAM_EXPORT size_t lam_param_list_count(const lam_param_list *list);
/* Borrowed for the list's lifetime. NULL when out of range. */
LAM_EXPORT lam_param *lam_param_list_get(const lam_param_list *list, size_t index);
/* Structural key such as "0.weight" or "hidden.bias". */
LAM_EXPORT const char *lam_param_list_key(const lam_param_list *list, size_t index);
/* Looks a parameter up by structural key or display name; NULL when absent. */
LAM_EXPORT lam_param *lam_param_list_find(const lam_param_list *list, const char *name);
/* Gluon-style listing: "<block name> (\n  Parameter ...\n  ...\n)". Returns buf. */
LAM_EXPORT char *lam_param_list_format(const lam_param_list *list, const char *title, char *buf,
                                       size_t cap);
LAM_EXPORT void lam_param_list_destroy(lam_param_list *list);

/* ------------------------------------------------------------------------------------------ */
/* Blocks                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/*
 * A custom block's forward: computes *output (a new reference) from the inputs with ops,
 * child blocks (lam_block_forward) and its own parameters (lam_param_data).
 */
typedef lam_status (*lam_forward_fn)(lam_block *self, void *state, uint32_t n_inputs,
                                     lam_tensor *const *inputs, lam_tensor **output);

/*
 * A custom block (Gluon's nn.Block subclass). `type` names it: "MLP" gives display names mlp0,
 * mlp1, ... and prints as MLP(...). `state` is passed to forward; free_state (may be NULL) is
 * called with it when the block is destroyed.
 */
LAM_EXPORT lam_status lam_block_create(const char *type, lam_forward_fn forward, void *state,
                                       void (*free_state)(void *state), lam_block **out);

/*
 * A custom block's shape inference: given the shapes of the inputs of a forward call, it fills
 * the unknown dims of the block's own parameters with lam_param_infer_shape (Gluon's
 * infer_shape for deferred initialization). Return LAM_OK, or an error status with a message
 * (lam_set_error) for inputs the block cannot take. `state` is the block's state.
 */
typedef lam_status (*lam_infer_shape_fn)(lam_block *self, void *state, uint32_t n_inputs,
                                         const lam_shape *input_shapes);

/*
 * Gives a custom block an infer-shape callback (NULL removes it), so that its parameters may
 * be declared with unknown dims (lam_block_param_new) and initialized at the first forward, as
 * a layer's are. lam_block_forward calls it, before the block's forward function, whenever one
 * of the block's own parameters still has unknown dims (in practice the first call after
 * lam_block_initialize); then the parameters waiting for their shape are initialized with the
 * initializer given to lam_block_initialize, bit-identically to an eager initialization with
 * the same seed and structural key. If the callback fails or leaves a dim unknown, the forward
 * fails, the shapes go back to what they were, and the next forward tries again.
 * Errors: LAM_ERR_INVALID_ARGUMENT for a NULL block or one not made by lam_block_create.
 * A forward of a block with unknown dims and no callback fails with LAM_ERR_DEFERRED_INIT
 * naming the parameter; a callback that leaves a dim unknown fails it with LAM_ERR_SHAPE.
 */
LAM_EXPORT lam_status lam_block_set_infer_shape(lam_block *b, lam_infer_shape_fn infer_shape);

/* An empty Sequential container (children named "0", "1", ...). */
LAM_EXPORT lam_status lam_sequential_create(lam_block **out);

/*
 * A block of layer type `type` from a plugin, with attributes "name=value, name=value"
 * (NULL or "" for defaults): lam_layer_create("Dense", "units=256, activation=relu", &b).
 * Spaces around names and values are ignored, names are case-sensitive, a comma inside (), []
 * or {} does not split ("weight_initializer=xavier(gaussian, in, 2)" is one value), one
 * trailing comma is allowed.
 * Errors: LAM_ERR_NOT_FOUND for an unknown type (listing the known ones); LAM_ERR_INVALID_ARGUMENT
 * for an unknown attribute (listing the valid ones), a repeated one, an empty item ("a=1,,b=2"),
 * a missing name or value, unbalanced brackets, a missing required attribute or a bad value.
 */
LAM_EXPORT lam_status lam_layer_create(const char *type, const char *attrs, lam_block **out);

/*
 * Like lam_layer_create, but the new layer uses `share`'s parameters (Gluon's
 * params=shared.params): same storage, so an update through one is seen by the other, and
 * backward adds up the gradients of both uses.
 * Sharing is by layer, between layers of the same type only: unlike Gluon, which shares any
 * ParameterDict between any blocks, there is no call to hand arbitrary parameters to a block
 * of another type. A custom block can still use any parameter in its forward, e.g. another
 * block's lam_block_param(other, "weight") through lam_param_data; the gradients of all uses
 * add up the same way.
 * Errors: LAM_ERR_INVALID_ARGUMENT when `share` is not a layer of the same type.
 */
LAM_EXPORT lam_status lam_layer_create_shared(const char *type, const char *attrs, lam_block *share,
                                              lam_block **out);

/* Adds a reference; returns b (NULL for NULL, or for a released block when detected, with an
 * error logged). */
LAM_EXPORT lam_block *lam_block_retain(lam_block *b);
/* Drops a reference; NULL is a no-op. Releasing more often than retained is misuse (see the
 * top of this file): when detected, the call does nothing and logs an error. A block may be
 * released after lam_shutdown(). */
LAM_EXPORT void lam_block_release(lam_block *b);

/*
 * Registers `child` under `name` (the attribute name in Gluon: "hidden", "output"); the parent
 * takes a reference. Only registered children are initialized, collected and saved.
 * Errors: LAM_ERR_INVALID_ARGUMENT for a duplicate name, or when child is b or contains b.
 */
LAM_EXPORT lam_status lam_block_register_child(lam_block *b, const char *name, lam_block *child);
/* Appends a child to a Sequential (or any block) under the next index as its name. */
LAM_EXPORT lam_status lam_sequential_add(lam_block *seq, lam_block *child);
/* Number of registered children. */
LAM_EXPORT size_t lam_block_child_count(const lam_block *b);
/* Child by position (net[0]); NULL when out of range. Borrowed. */
LAM_EXPORT lam_block *lam_block_child_at(const lam_block *b, size_t index);
/* Child by registered name; NULL when absent. Borrowed. */
LAM_EXPORT lam_block *lam_block_child(const lam_block *b, const char *name);

/* Display name, e.g. "dense0", "sequential1", "mlp0". Borrowed. */
LAM_EXPORT const char *lam_block_name(const lam_block *b);
/* Type name, e.g. "Dense", "Sequential", "MLP". Borrowed. */
LAM_EXPORT const char *lam_block_type(const lam_block *b);

/*
 * A new parameter owned by block b under local name `name` (display name "<block>_<name>"),
 * with a shape whose dims may be unknown. init may be NULL (the block's initializer applies;
 * a name ending in "bias" defaults to zeros). Borrowed result, valid while b lives.
 */
LAM_EXPORT lam_status lam_block_param_new(lam_block *b, const char *name, const lam_shape *shape,
                                          const lam_initializer *init, lam_param **out);
/* A constant parameter holding a copy of `value` (Gluon's params.get_constant). */
LAM_EXPORT lam_status lam_block_constant_new(lam_block *b, const char *name,
                                             const lam_tensor *value, lam_param **out);
/* The block's own parameter by local name ("weight"); NULL when absent. Borrowed. */
LAM_EXPORT lam_param *lam_block_param(const lam_block *b, const char *name);

/* The block's own parameters only (Gluon's block.params). */
LAM_EXPORT lam_status lam_block_params(lam_block *b, lam_param_list **out);
/*
 * Every parameter of b and its registered descendants, once each (shared ones under the first
 * key that reaches them), in registration order, keyed structurally ("0.weight"). `regex`
 * filters on the display name; NULL keeps all.
 *
 * The dialect is POSIX extended regular expressions (regcomp with REG_EXTENDED, as glibc
 * implements them), not Python's re: no \d, no lazy quantifiers (*?), no lookaround, no
 * (?...) groups; an unmatched ')' is an ordinary character. The pattern is used as given and a
 * parameter is kept when a match starts at the first character of its display name, like
 * Python's re.match in Gluon's select(): ".*weight" keeps dense0_weight, "weight" does not,
 * "dense0_w" does (the end is not anchored; add '$' for that).
 *
 * Limits, so that a hostile pattern fails quickly instead of crashing or hanging the
 * process: at most 1024 bytes, 32 levels of nested parentheses, and 1024 elements once bounded
 * repetitions are expanded (x{m,n} counts n copies of x, x+ two, so ((a{1,100}){1,100}) is too
 * complex); back references (\1 to \9) are refused.
 * Errors: LAM_ERR_INVALID_ARGUMENT for a bad regex or one beyond the limits, naming the
 * problem.
 */
LAM_EXPORT lam_status lam_block_collect_params(lam_block *b, const char *regex,
                                               lam_param_list **out);

/*
 * Initializes every parameter of b and its descendants on ctx (NULL: default context) with
 * `init` (NULL: Uniform(0.07), Gluon's default); a parameter's own initializer wins, biases
 * default to zero. Parameters with unknown dims are initialized at the first forward.
 * Already-initialized parameters are left alone unless force_reinit.
 */
LAM_EXPORT lam_status lam_block_initialize(lam_block *b, const lam_initializer *init, lam_ctx *ctx,
                                           int force_reinit);

/*
 * Runs the block on its inputs; *output is a new reference. The first forward completes
 * deferred initialization. Errors: LAM_ERR_STATE when not initialized (saying what to do);
 * LAM_ERR_SHAPE when an input disagrees with the inferred parameter shapes ("dense0: Shape
 * inconsistent, provided (256, 20), inferred (256, 10)").
 * Thread safety: several threads may run one model at once with recording off, the first
 * forward included (see the top of this file); with recording on, one thread at a time.
 */
LAM_EXPORT lam_status lam_block_forward(lam_block *b, uint32_t n_inputs, lam_tensor *const *inputs,
                                        lam_tensor **output);
/* One-input forward. */
/*
 * Like lam_block_forward for a block with several outputs (a plugin layer whose descriptor
 * declares n_outputs > 1, e.g. max pooling with its indices): n_outputs must be 1 (the first
 * output, as lam_block_forward gives) or lam_block_output_count(b); outputs[i] become new
 * references. Each output is differentiated on its own. Errors: LAM_ERR_INVALID_ARGUMENT for
 * another count; as lam_block_forward.
 */
LAM_EXPORT lam_status lam_block_forward_outputs(lam_block *b, uint32_t n_inputs,
                                                lam_tensor *const *inputs, uint32_t n_outputs,
                                                lam_tensor **outputs);
/* How many outputs the block gives (1 for every block but multi-output plugin layers); 0 for
 * NULL. */
LAM_EXPORT uint32_t lam_block_output_count(const lam_block *b);

LAM_EXPORT lam_status lam_block_call(lam_block *b, lam_tensor *input, lam_tensor **output);

/*
 * The model summary as Gluon prints it, e.g.
 *   Sequential(
 *     (0): Dense(20 -> 256, Activation(relu))
 *     (1): Dense(None -> 10, linear)
 *   )
 * Returns a malloc'ed string the caller frees, or NULL when out of memory.
 */
LAM_EXPORT char *lam_block_summary(const lam_block *b);

/*
 * A table of the blocks that one forward of b runs, as Gluon's summary(): each block's display
 * name and type (nested blocks indented), its output shape and the element count of its own
 * parameters, then the totals, for inputs of the given shapes (batch axis included), e.g.
 *   --------------------------------------------------
 *   Layer (type)            Output Shape     Param #
 *   ==================================================
 *   Input                   (1, 20)                0
 *   dense0 (Dense)          (1, 256)            5376
 *   dense1 (Dense)          (1, 10)             2570
 *   ==================================================
 *   Parameters in forward computation graph, duplicate included
 *      Total params: 7946
 *      Trainable params: 7946
 *      Non-trainable params: 0
 *   Shared params in forward computation graph: 0
 *   Unique parameters in model: 7946
 *   --------------------------------------------------
 * The rows are the forwards in the order they begin; the root's own row is left out when it
 * has children. Parameters that are constants or have grad_req null (BatchNorm's running
 * statistics) count as non-trainable; "duplicate included" counts a shared parameter at every
 * block that owns it and every call; "Shared params" is what that adds over counting each
 * parameter once. The forward runs on zeros, on the context of b's first initialized parameter
 * (else the default one), not recording and in predict mode (BatchNorm uses its running
 * statistics and keeps them, Dropout is the identity); it completes deferred initialization as
 * any first forward does.
 * Errors: LAM_ERR_INVALID_ARGUMENT for NULL arguments or n_inputs 0; LAM_ERR_SHAPE for a
 * shape with an unknown dim; whatever the forward returns (LAM_ERR_STATE for a model not
 * initialized, LAM_ERR_SHAPE for inputs it does not take); LAM_ERR_OUT_OF_MEMORY.
 * Ownership: *out is a malloc'ed string the caller frees (NULL on failure).
 * Thread safety: as lam_block_forward with recording off; only the calling thread's forwards
 * are observed.
 */
LAM_EXPORT lam_status lam_block_summary_table(lam_block *b, uint32_t n_inputs,
                                              const lam_shape *input_shapes, char **out);

/* Names of the loaded layer types; borrowed until lam_shutdown(). */
LAM_EXPORT size_t lam_layer_type_count(void);
LAM_EXPORT const char *lam_layer_type_name(size_t index);

/* ------------------------------------------------------------------------------------------ */
/* Saving and loading (safetensors files)                                                     */
/* ------------------------------------------------------------------------------------------ */
/*
 * Files are safetensors: an 8-byte little-endian header length N, N bytes of JSON mapping each
 * tensor name to {"dtype", "shape", "data_offsets"} plus an optional "__metadata__" map of
 * strings, then the raw little-endian data. NumPy, PyTorch and the safetensors library read
 * what Lamina writes and Lamina reads theirs. Every header rule is checked before any data is
 * used; a bad file is an error naming the file and the problem.
 *
 * Saving is atomic: the file is written as ".<name>.lamina-tmp.<pid>.<random>" in the same
 * directory (opened with O_CLOEXEC), fsynced and renamed over <name>, so a failure (disk full,
 * out of memory, a killed process) leaves an existing file byte for byte as it was. A killed
 * save can leave its temporary; the next save of the same file removes the temporaries whose
 * process no longer exists on this machine (never one of a live process). A path that is a
 * symbolic link is followed: the file it points to is replaced (created when the link dangles)
 * and the link kept. An existing file without write permission (mode 0444, even for root) is
 * refused with LAM_ERR_IO "Permission denied"; otherwise the new file keeps the old one's mode.
 *
 * lam_load reads the file with pread (never mmap; lam_load_mapped maps it on request, see
 * there): a file truncated or rewritten by another
 * process during a load is LAM_ERR_IO "File changed while reading" (or a checksum mismatch),
 * never a signal, and a successful load is one consistent version of the file. The float32
 * size of the tensors to load is checked against the machine's memory before any data is read
 * (LAM_ERR_OUT_OF_MEMORY "Too large"); the checksum is computed while the data is read.
 * Thread safety: saving one path from several threads or processes at once is safe (the last
 * rename wins); loading a file while it is saved reads the old or the new version.
 */

/* An ordered collection of named tensors read from a file (Gluon's nd.load result). */
typedef struct lam_tensor_dict lam_tensor_dict;

/* Saves tensors as a list (keys "0", "1", ...; the metadata records that it was a list). */
LAM_EXPORT lam_status lam_save_list(const char *path, lam_tensor *const *tensors, size_t n);
/* Saves tensors under the given names (a dict). Errors: LAM_ERR_INVALID_ARGUMENT for a
 * duplicate or empty name. */
LAM_EXPORT lam_status lam_save_dict(const char *path, const char *const *names,
                                    lam_tensor *const *tensors, size_t n);
/*
 * Loads every tensor of a file onto ctx (NULL: default context). float32 loads as is; F16,
 * BF16, F64, I32, I64 and U8 are converted to float32 (I64 values beyond 2^24 lose precision);
 * other dtypes are refused naming the tensor and dtype.
 */
LAM_EXPORT lam_status lam_load(const char *path, lam_ctx *ctx, lam_tensor_dict **out);

/*
 * Zero-copy loading: like lam_load, but each float32 tensor whose data lies at a multiple of
 * 8 bytes in the file (Lamina, NumPy and PyTorch align them so) is a view of a private,
 * copy-on-write mapping of the file instead of a copy, on a context whose backend wraps host
 * memory (the CPU backend; LAM_BACKEND_HOST_PTR). Pages are read when first used, so loading
 * costs the header and a mapping, not the data. Other tensors (other dtypes, other backends)
 * are read as lam_load reads them.
 * Writing such a tensor (lam_tensor_write, an in-place op, an optimizer step) copies the
 * touched pages: the file never changes. Replacing the file the way Lamina saves (a new file
 * renamed over the old one, as lam_save_* and lam_block_save_parameters do, and most tools)
 * leaves the mapped tensors with the values they were loaded with. Changing the file IN PLACE
 * while mapped tensors live is not detected: pages not read yet may show the new bytes, and a
 * file truncated in place makes reading the lost pages raise SIGBUS, as with every mapped
 * loader (numpy's mmap_mode, safetensors); use lam_load for files that may be rewritten in
 * place. When every tensor is mapped, the checksum in the metadata is not verified (that would
 * read every byte); when some tensor is copied instead, the whole data area is read as lam_load
 * reads it and the checksum is checked too. lam_load and lam_load_mapped_verified always verify
 * it. The mapping is released with the last tensor over it.
 * Errors: those of lam_load, and LAM_ERR_IO when the file cannot be mapped.
 */
LAM_EXPORT lam_status lam_load_mapped(const char *path, lam_ctx *ctx, lam_tensor_dict **out);

/*
 * Verified zero-copy loading: lam_load_mapped, and before anything is returned the CRC32C of
 * the file's whole data area is computed over the mapping and compared with the metadata's
 * "lamina.crc32c", the check lam_load makes. Every byte is read once, where it lies in the
 * mapping (no copy of the float32 tensors; the pages read stay the page cache's, shared), by
 * the threads lam_load uses (one per CPU this process may run on, at most 4, for 4 MiB of data
 * or more); the tensors that are copied instead of mapped (other dtypes, data not at a multiple
 * of 8 bytes, a backend that does not wrap host memory) are read from the same mapping and
 * covered by the same checksum. Cost: about one pass of CRC32C over the file (a hardware CRC
 * runs at several GB/s per core) plus the faults that bring the pages in; no copy. A file whose
 * metadata has no "lamina.crc32c" (written by another tool) loads as lam_load loads such a
 * file: without verification (lam_tensor_dict_metadata(d, "lamina.crc32c") is then NULL).
 * What is verified is the bytes as the mapping showed them during the call: the caveats of
 * lam_load_mapped still hold afterwards (a file changed IN PLACE while mapped tensors live may
 * show new bytes in pages not read since, and truncating it in place raises SIGBUS, during
 * the verification too); a file replaced by a rename, as Lamina saves, is safe. `lamina
 * inspect --verify FILE` runs the same check without keeping the tensors.
 * Errors: those of lam_load_mapped; LAM_ERR_FORMAT "loading '<path>': Checksum mismatch, the
 * data has CRC32C <x> but the metadata says <y> (the file is corrupt)" (lam_load's message);
 * LAM_ERR_IO "File changed while reading" when the file's size or modification time changed
 * during the call.
 * Ownership: on success *out is a new dict the caller destroys with lam_tensor_dict_destroy;
 * on any failure *out is NULL, no tensor is left alive and the mapping is released.
 * Thread safety: as lam_load; the verification threads are the library's own and have ended
 * when the call returns.
 */
LAM_EXPORT lam_status lam_load_mapped_verified(const char *path, lam_ctx *ctx,
                                               lam_tensor_dict **out);

/* Nonzero when the file was saved as a list. */
LAM_EXPORT int lam_tensor_dict_is_list(const lam_tensor_dict *d);
LAM_EXPORT size_t lam_tensor_dict_count(const lam_tensor_dict *d);
/* Name of entry i (borrowed), NULL when out of range. */
LAM_EXPORT const char *lam_tensor_dict_name(const lam_tensor_dict *d, size_t i);
/* Tensor of entry i (borrowed: retain it to keep it past the dict), NULL when out of range. */
LAM_EXPORT lam_tensor *lam_tensor_dict_get(const lam_tensor_dict *d, size_t i);
/* Tensor by name (borrowed), NULL when absent. */
LAM_EXPORT lam_tensor *lam_tensor_dict_find(const lam_tensor_dict *d, const char *name);
/* Value of a metadata key (borrowed), NULL when absent. */
LAM_EXPORT const char *lam_tensor_dict_metadata(const lam_tensor_dict *d, const char *key);
LAM_EXPORT void lam_tensor_dict_destroy(lam_tensor_dict *d);

/*
 * Saves every parameter of b (and its descendants) under its structural key ("0.weight").
 * A shared parameter is stored once, under its first key; the metadata's alias table maps the
 * other keys to it, so loading restores the sharing. Errors: LAM_ERR_STATE for a parameter
 * that is not initialized (naming it); LAM_ERR_IO.
 */
LAM_EXPORT lam_status lam_block_save_parameters(lam_block *b, const char *path);

/* Options for lam_block_load_parameters; start from LAM_LOAD_OPTIONS_INIT. */
typedef struct lam_load_options {
    uint32_t struct_size;
    uint32_t abi_version;
    int32_t allow_missing; /* parameters absent from the file keep their values */
    int32_t ignore_extra;  /* tensors in the file the model does not have are ignored */
    lam_ctx *ctx;          /* where to put the data; NULL: where each parameter lives (or the
                              context given to initialize, or the default one) */
    /* Appended (older callers' struct_size leaves it 0). Nonzero: zero-copy, as
     * lam_load_mapped_verified: each parameter that is the only one its file tensor fills, on a
     * context that wraps host memory (CPU), with float32 data at a multiple of 8 bytes, and not
     * a constant, gets a new data tensor that is a view of a private copy-on-write mapping of
     * the file (training writes copy the touched pages; the file never changes); the others
     * are copied from the same mapping. Every byte of the data is checksummed over the mapping
     * before anything changes (a file without a checksum loads unverified, as without this
     * option). Unlike a copy, a mapped parameter's old data tensor is replaced, not refilled:
     * other holders of it keep the old values. The caveats of lam_load_mapped hold (a file
     * changed in place while the model lives). */
    int32_t mapped;
} lam_load_options;

#define LAM_LOAD_OPTIONS_INIT                                                                      \
    { (uint32_t)sizeof(lam_load_options), LAM_ABI_VERSION, 0, 0, NULL, 0 }

/*
 * Loads parameters saved by lam_block_save_parameters (or any safetensors file keyed the same
 * way) into b. Strict by default: every problem (missing keys, unexpected keys, shape or dtype
 * mismatches) is collected into one message, each naming the option that relaxes it. Nothing
 * changes unless the whole load succeeds (an allocation failure included: everything is read,
 * checked and allocated before the first parameter changes). A deferred (not yet shaped) model
 * takes its shapes from the file and counts as initialized afterwards. A parameter whose data
 * already has the file's shape on the target context keeps its tensor (holders of it see the
 * new values); otherwise it gets a new one (and with options->mapped, a mapped one always does).
 * Errors: LAM_ERR_NOT_FOUND, LAM_ERR_SHAPE, LAM_ERR_DTYPE for the problems above;
 * LAM_ERR_FORMAT for a corrupt file or a checksum mismatch; LAM_ERR_IO (also when the file
 * cannot be mapped, with options->mapped); LAM_ERR_OUT_OF_MEMORY.
 */
LAM_EXPORT lam_status lam_block_load_parameters(lam_block *b, const char *path,
                                                const lam_load_options *options);

#ifdef __cplusplus
}
#endif

#endif /* LAMINA_H */
