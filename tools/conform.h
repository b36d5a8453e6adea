/*
 * conform.h - the plugin conformance kit behind `lamina conform` (tools/conform*.c).
 *
 * Its files call downwards only (no two call each other; tests/tools/conform_structure checks
 * the objects): conform.c (the command: options, report) -> conform_runner.c (discovery, a
 * child process per check) -> the check files (conform_plugin.c; conform_layer.c ->
 * conform_layer_grad.c, conform_layer_contract.c -> conform_layer_util.c;
 * conform_backend.c -> conform_backend_cases.c; conform_kernel.c; conform_failalloc.c) ->
 * conform_diag.c (the check list, verdicts, cf_start, random numbers).
 *
 * The parent process never runs plugin code: it discovers what a plugin registered in a child
 * process, then runs every check in a child of its own (fork; waitpid; alarm), so a crash or a
 * hang is reported with its signal instead of taking the tool down. A child writes its verdict
 * into a page of shared memory (cf_result) that the parent reads after the child ends.
 */
#ifndef LAMINA_CONFORM_H
#define LAMINA_CONFORM_H

#include "failalloc/failalloc.h"
#include "lamina/lamina.h"
#include "lamina/plugin.h"

#include <stddef.h>
#include <stdint.h>

#define CF_MAX_INPUTS 4

typedef enum cf_outcome { CF_NONE = 0, CF_PASS = 1, CF_FAIL = 2, CF_SKIP = 3 } cf_outcome;

/* What a check child reports, in shared memory. */
typedef struct cf_result {
    int outcome;
    char note[256];     /* where the child is now ("in forward"): names the step of a crash */
    char message[1024]; /* pass remark, skip reason or failure summary */
    char expected[1024];
    char found[1024];
    /* Set by the per-layer setup check for the checks after it. */
    int have_input;
    uint32_t n_inputs;               /* how many inputs the layer takes */
    lam_shape inputs[CF_MAX_INPUTS]; /* input shapes the layer accepts */
    char attr_text[1024];            /* attributes that create a working instance */
} cf_result;

/* One attribute of a layer's schema, copied from its descriptor. */
typedef struct cf_attr {
    char name[64];
    int type; /* lam_attr_type */
    int required;
    char def[128];
    char choices[256];
    char doc[256];
} cf_attr;

#define CF_MAX_ATTRS    32
#define CF_MAX_LAYERS   16
#define CF_MAX_BACKENDS 8
#define CF_MAX_KERNELS  16

/* One example input of a layer's descriptor (lam_example_input), copied. */
typedef struct cf_example {
    int dtype; /* lam_dtype */
    uint32_t ndim;
    int64_t dims[LAM_MAX_DIMS];
    int domain; /* lam_domain_kind */
    double low, high;
    char bound_attr[64]; /* LAM_DOMAIN_INDEX: the attribute bounding the indices, or "" */
} cf_example;

typedef struct cf_layer {
    char name[64];
    int has_backward;
    uint32_t flags;      /* LAM_LAYER_* (LAM_LAYER_STOCHASTIC) */
    uint32_t min_inputs; /* the descriptor's arity (0 and 0: exactly one) */
    uint32_t max_inputs;
    uint32_t n_outputs; /* 1 when the descriptor says 0 */
    uint32_t n_examples;
    cf_example examples[CF_MAX_INPUTS]; /* the descriptor's example inputs, if it gives them */
    char example_attrs[1024];
    uint32_t n_attrs;
    cf_attr attrs[CF_MAX_ATTRS];
    /* Filled by the setup check: attributes that create a working instance, an input shape. */
    char attr_text[1024];
    int have_input;
    uint32_t n_inputs;
    lam_shape inputs[CF_MAX_INPUTS]; /* inputs[0] is the one the checks vary */
} cf_layer;

/* What discovery learned about the plugin file. */
typedef struct cf_plugin {
    char path[4096]; /* as given */
    char real[4096]; /* realpath */
    char capture_error[1024];
    /* A descriptor string or attribute array that changed or was freed after the entry
     * returned (see dying_strings in conform_runner.c); empty when all stayed intact. */
    char strings_error[1024];
    uint32_t n_layers;
    cf_layer layers[CF_MAX_LAYERS];
    uint32_t n_backends;
    char backends[CF_MAX_BACKENDS][64];
    uint32_t n_kernels;
    char kernels[CF_MAX_KERNELS][64];
    /* The registry's record of the file. */
    int have_record;
    int decision; /* lam_plugin_decision */
    int reason;   /* lam_plugin_reason */
    uint32_t plugin_abi;
    char kind[32];
    char names[512];
    char version[64];
    char message[1024];
    char load_path[8192]; /* the plugin_path given to lam_init */
} cf_plugin;

typedef struct cf_options {
    const char *path;
    const char *backend; /* "all", "cpu", "vulkan", ... or a comma list */
    uint64_t seed;
    const char *filter;
    int json;
    const char *attrs; /* user overrides, "units=3, in_units=5" */
    unsigned timeout_s;
    const char *failalloc; /* --failalloc: the injector library to preload */
    uint32_t n_inputs;     /* --inputs N; 0: tried from 1 up */
    uint32_t n_shapes;     /* --shape, one per input */
    lam_shape shapes[CF_MAX_INPUTS];
    const char *shape_text[CF_MAX_INPUTS];
    int argc; /* the command line, for re-executing one check */
    char **argv;
} cf_options;

/* The environment of one check, in the child. */
typedef struct cf_ctx {
    const char *name; /* the check's full name */
    const cf_options *opt;
    const cf_plugin *plugin;
    const cf_layer *layer; /* layer checks */
    const char *backend;   /* backend checks: the backend under test */
    int param;             /* check-specific (e.g. the op of a backend check) */
    cf_result *res;
    int started;  /* lam_init was called */
    size_t live0; /* live tensors after start */
} cf_ctx;

typedef void (*cf_fn)(cf_ctx *c);

/* A declared check. */
typedef struct cf_check {
    char name[160];
    cf_fn fn;
    const cf_layer *layer;
    const char *backend;
    int param;
} cf_check;

/* ---- conform_diag.c: the bottom layer, which every other file may call ---- */

/* Declares a check; the runner calls fn in a child. Returns 0 or -1 when out of memory. */
int cf_add(const char *name, cf_fn fn, const cf_layer *layer, const char *backend, int param);
size_t cf_check_count(void);
cf_check *cf_check_get(size_t i);
/* Forgets every declared check. */
void cf_checks_clear(void);

/* Verdicts (in the child). The first verdict wins; a check that sets none passes. */
void cf_pass(cf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cf_skip(cf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cf_fail(cf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Expected / found lines of a failure. */
void cf_expect(cf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cf_found(cf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Where the child is, reported if it crashes or hangs there. */
void cf_note(cf_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cf_failed(const cf_ctx *c);

/* Starts the runtime with the plugin and the built-in backends; records live tensors.
 * Returns 0, or -1 after a verdict. */
int cf_start(cf_ctx *c);

/* Deterministic pseudo-random numbers for inputs (splitmix64), independent of the core RNG. */
typedef struct cf_rng {
    uint64_t s;
} cf_rng;
void cf_rng_init(cf_rng *r, uint64_t seed, uint64_t stream);
float cf_rng_uniform(cf_rng *r, float lo, float hi);
uint64_t cf_rng_next(cf_rng *r);

/* Layer checks (conform_layer.c): declares every check for one layer type. */
void cf_layer_checks(const cf_layer *layer);
/* Helpers of the layer checks (conform_layer.c), shared with conform_layer_grad.c. */
lam_ctx *cf_cpu_ctx(void);
/* "<status>: <last error>", in a static buffer. */
const char *cf_errtext(lam_status st);
/* A tensor of `shape` on ctx with values from U(lo, hi) of stream `stream` of the seed. */
lam_status cf_rand_tensor(const cf_ctx *c, lam_ctx *ctx, const lam_shape *shape, uint64_t stream,
                          float lo, float hi, lam_tensor **out);
/* Input k of a layer as the descriptor's example says (LAM_DOMAIN_INDEX: I32 integers in
 * [0, bound)), else F32 from U(lo, hi); cf_rand_tensor is input 0. */
lam_status cf_input_tensor(const cf_ctx *c, lam_ctx *ctx, uint32_t k, const lam_shape *shape,
                           uint64_t stream, float lo, float hi, lam_tensor **out);
/* The descriptor's example for input k, or NULL; nonzero when input k holds indices. */
const cf_example *cf_example_of(const cf_layer *l, uint32_t k);
int cf_input_is_index(const cf_layer *l, uint32_t k);
/* A malloc'ed host copy of t's elements as floats (NULL on failure). */
float *cf_host_copy(const lam_tensor *t, size_t *count);
/* An instance with the setup's attributes (or `attrs`), initialized on ctx. */
lam_status cf_make_layer(const cf_ctx *c, const char *attrs, lam_ctx *ctx,
                         const lam_initializer *init, lam_block **out);
/* Skips when the setup found no working instance; else starts the runtime. 0 to go on. */
int cf_need_setup(cf_ctx *c);
/* Forward with x as input 0, noting where the child is. A layer of more inputs gets the others
 * made here (seeded values; the setup's shapes, or x's shape when x has another shape). */
lam_status cf_forward1(cf_ctx *c, lam_block *b, lam_tensor *x, lam_tensor **y);
/* Fails the check when `st` is an error without a message of the plugin's own (cleared
 * before the call; the host's "(the plugin set no message)" stand-in does not count).
 * Returns 1 when it failed. */
int cf_require_message(cf_ctx *c, lam_status st, const char *what);
/* "name=value" replacing name's value in attrs, or appended (into out). */
void cf_attrs_with(const char *attrs, const char *name, const char *value, char *out, size_t cap);
/* The checks in conform_layer_grad.c. */
void cf_check_grad_fd(cf_ctx *c);
void cf_check_grad_fused(cf_ctx *c);
void cf_check_backends(cf_ctx *c);
void cf_check_leaks(cf_ctx *c);
void cf_check_alloc_sweep(cf_ctx *c);
void cf_check_bounds(cf_ctx *c);
/* The checks in conform_layer_contract.c. */
void cf_check_errors(cf_ctx *c);
void cf_check_inputs_unchanged(cf_ctx *c);
void cf_check_attr_effect(cf_ctx *c);

/* ---- conform_backend_cases.c: the op cases of the backend checks ---- */

typedef enum cf_op_kind {
    CF_K_FILL,
    CF_K_UNARY,
    CF_K_BINARY,
    CF_K_SCALAR,
    CF_K_COMPARE, /* binary, inputs drawn as whole numbers so that ties occur */
    CF_K_GEMM,
    CF_K_LINEAR,
    CF_K_REDUCE,
    CF_K_SOFTMAX,
    CF_K_GEMM_BATCHED,
    CF_K_IM2COL,
    CF_K_COL2IM,
    CF_K_MAX_POOL,
    CF_K_MAX_POOL_BACKWARD,
    CF_K_AVG_POOL,
    CF_K_AVG_POOL_BACKWARD,
    CF_K_GATHER,
    CF_K_SCATTER,
    CF_K_RANDOM,
    CF_K_WHERE,
    CF_K_PAD,
    CF_K_CAST,
    CF_K_MOMENTS,
    CF_K_LAYER_NORM /* LAYER_NORM and LAYER_NORM_BACKWARD (2.2) */
} cf_op_kind;

/* One op of the reviewed tolerance table (see conform_backend_cases.c). */
typedef struct cf_oprow {
    lam_op op;
    const char *name;
    cf_op_kind kind;
    float xlo, xhi; /* input 0 domain */
    float ylo, yhi; /* input 1 domain */
    double scalar;
    double nmse;
    double max_err;
} cf_oprow;

#define CF_AXPBY_S1   (-1.5) /* AXPBY's b */
#define CF_CLAMP_HIGH 0.75   /* CLAMP's b (a is the row's scalar) */
#define CF_OP_MAX_IN  5      /* LAYER_NORM_BACKWARD */
#define CF_OP_MAX_OUT 3      /* LAYER_NORM with its statistics */

/* One op call on host data: views (buffers set when run; inputs at offset 0), the inputs'
 * bytes, initial output contents (NULL: poisoned with the guard pattern), parameters. */
typedef struct cf_opcase {
    lam_op op;
    uint32_t n_in, n_out;
    lam_tensor_view in[CF_OP_MAX_IN];
    unsigned char *in_data[CF_OP_MAX_IN];
    size_t in_bytes[CF_OP_MAX_IN];
    lam_tensor_view out[CF_OP_MAX_OUT];
    size_t out_count[CF_OP_MAX_OUT];
    unsigned char *out_init[CF_OP_MAX_OUT];
    union {
        lam_scalar_params s;
        lam_gemm_params g;
        lam_window_params w;
        lam_pad_params pad;
        lam_random_params r;
    } p;
    const void *params; /* &p.<x> or NULL */
    uint32_t flags;     /* LAM_CALL_* */
    int alias;          /* outputs[0] is the very view of inputs[0] (in place) */
    char label[160];
} cf_opcase;

size_t cf_op_count(void);
const cf_oprow *cf_op_row(size_t i);
/* Builds variant `variant` of the row's calls (special: NaN/inf in the float inputs). Returns
 * 1, 0 when that variant does not exist, -1 when out of memory. */
int cf_op_case(const cf_oprow *row, int variant, int special, uint64_t seed, cf_opcase *t);
void cf_op_case_free(cf_opcase *t);
/* Element k of input i as a double. */
double cf_op_in_value(const cf_opcase *t, uint32_t i, size_t k);
/* The kit's double-precision reference: outs[o] gets out_count[o] values. 0, or -1 for a call
 * every backend must refuse (argmax of an empty axis, a bad index, an unrepresentable cast). */
int cf_op_reference(const cf_opcase *t, double **outs);

/* Kernel checks (conform_kernel.c): declares every check for one kernel (name in `backend`). */
void cf_kernel_checks(const char *kernel);

/* Backend checks (conform_backend.c): declares every check for one backend. */
void cf_backend_checks(const char *backend);

/* Plugin-wide checks (conform_plugin.c): declares plugin.exports, .abi, .abi_negotiation. */
void cf_plugin_checks(void);

/* ---- conform_runner.c: above every check file, below the command (conform.c) ---- */

/* Called with each check's verdict, in the order the checks run. */
typedef void (*cf_report_fn)(void *user, const char *name, const cf_result *r);
/* Discovery in a child process: what opt->path registers and what the registry decided, into
 * *plugin; its own outcome (a crash in the plugin's constructors, ...) into *disc. Returns 0,
 * or -1 when out of memory. */
int cf_discover(const cf_options *opt, cf_plugin *plugin, cf_result *disc);
/* Declares the checks for what discovery found and runs those opt selects, each in a child,
 * calling report for each verdict. The checks keep pointers into *plugin. 0, or -1 when out of
 * memory. */
int cf_run_checks(const cf_options *opt, cf_plugin *plugin, cf_report_fn report, void *user);

/* Allocation-failure injection (conform_failalloc.c, with tools/failalloc). 1 when the
 * injector is preloaded and counts this thread's allocations; fills *fa. */
int cf_failalloc_active(lam_failalloc *fa);
/* Runs check c->name in a fresh `lamina conform` with the injector preloaded and adopts its
 * verdict, or skips saying why the injector cannot be active. */
void cf_failalloc_reexec(cf_ctx *c);
/* Switches the injector's guard mode on (a PROT_NONE page right after every heap block, for
 * every thread) with a SIGSEGV/SIGBUS handler that records a guard page hit as c's failure
 * ("read or wrote out of bounds of a buffer (guard page hit) <note>") and ends the child.
 * Returns 0, or -1 when the mode does not take effect (nothing switched on). */
int cf_guard_begin(cf_ctx *c, const lam_failalloc *fa);
/* Switches guard mode off and restores the signal handlers. */
void cf_guard_end(const lam_failalloc *fa);

#endif
