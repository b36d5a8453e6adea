/*
 * libFuzzer target for the safetensors loader: arbitrary bytes go through lam__st_parse (the
 * header validation lam_load and lam_block_load_parameters run on a file), then the data is
 * read as a load reads it (every tensor converted to float32, the checksum verified; every
 * other tensor read in place, as into a CPU tensor) and the alias table is read. Built only with
 * clang and -DLAMINA_FUZZ=ON; run it with tests/fuzz/run.sh SECONDS.
 */
#include "safetensors.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct sink_state {
    const lam__st_file *f;
    float **placed; /* per entry: the memory place() gave (odd entries), else NULL */
    float sum;
} sink_state;

static lam_status begin(void *user, size_t i) {
    (void)user;
    (void)i;
    return LAM_OK;
}

/* Exactly numel floats (ASan sees a write past them). */
static float *place(void *user, size_t i) {
    sink_state *s = user;
    if (i % 2 == 0 || s->placed == NULL) {
        return NULL;
    }
    s->placed[i] = malloc(s->f->entries[i].numel ? s->f->entries[i].numel * sizeof(float) : 1);
    return s->placed[i];
}

/* Touches every value, so a conversion reading past its tensor shows under ASan. */
static lam_status sum_values(void *user, size_t i, size_t first, const float *values,
                             size_t count) {
    (void)i;
    (void)first;
    sink_state *s = user;
    for (size_t k = 0; k < count; k++) {
        s->sum += values[k];
    }
    return LAM_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lam__st_file f;
    if (lam__st_parse(data, size, &f) != LAM_OK) {
        return 0;
    }
    /* Tensors that do not convert are still read for the checksum, as a load skipping them
     * (ignore_extra) does. */
    bool *want = calloc(f.n ? f.n : 1, sizeof *want);
    for (size_t i = 0; want != NULL && i < f.n; i++) {
        want[i] = lam__st_dtype_convertible(f.entries[i].dtype);
    }
    sink_state state = {&f, calloc(f.n ? f.n : 1, sizeof(float *)), 0};
    lam__st_sink sink = {begin, sum_values, &state, place};
    if (want != NULL) {
        (void)lam__st_read_tensors(&f, want, &sink);
    }
    for (size_t i = 0; state.placed != NULL && i < f.n; i++) {
        free(state.placed[i]);
    }
    free(state.placed);
    free(want);
    lam__st_alias *aliases = NULL;
    size_t n_aliases = 0;
    if (lam__st_aliases(&f, &aliases, &n_aliases) == LAM_OK) {
        lam__st_aliases_free(aliases, n_aliases);
    }
    lam__st_file_fini(&f);
    return 0;
}
