/*
 * libFuzzer target for the safetensors loader: arbitrary bytes go through lam__st_parse (the
 * header validation lam_load and lam_block_load_parameters run on a file), then the data is
 * read as a load reads it (every tensor converted to float32, the checksum verified) and the
 * alias table is read. Built only with clang and -DLAMINA_FUZZ=ON; run it with
 * tests/fuzz/run.sh SECONDS.
 */
#include "safetensors.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lam_status begin(void *user, size_t i) {
    (void)user;
    (void)i;
    return LAM_OK;
}

/* Touches every value, so a conversion reading past its tensor shows under ASan. */
static lam_status sum_values(void *user, size_t i, size_t first, const float *values,
                             size_t count) {
    (void)i;
    (void)first;
    float *sum = user;
    for (size_t k = 0; k < count; k++) {
        *sum += values[k];
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
    float sum = 0;
    lam__st_sink sink = {begin, sum_values, &sum};
    if (want != NULL) {
        (void)lam__st_read_tensors(&f, want, &sink);
    }
    free(want);
    lam__st_alias *aliases = NULL;
    size_t n_aliases = 0;
    if (lam__st_aliases(&f, &aliases, &n_aliases) == LAM_OK) {
        lam__st_aliases_free(aliases, n_aliases);
    }
    lam__st_file_fini(&f);
    return 0;
}
