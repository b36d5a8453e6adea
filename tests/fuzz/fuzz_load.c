/*
 * libFuzzer target for the safetensors loader: arbitrary bytes go through lam__st_parse (the
 * from-memory validation lam_load and lam_block_load_parameters use on the mapped file), then
 * every tensor that passed is converted to float32 and the alias table is read, as a load does.
 * Built only with clang and -DLAMINA_FUZZ=ON; run it with tests/fuzz/run.sh SECONDS.
 */
#include "safetensors.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lam__st_file f;
    if (lam__st_parse(data, size, &f) != LAM_OK) {
        return 0;
    }
    for (size_t i = 0; i < f.n; i++) {
        const lam__st_entry *e = &f.entries[i];
        /* numel <= the entry's bytes <= size: validation bounds the allocation. */
        float *buf = malloc((size_t)(e->numel ? e->numel : 1) * sizeof *buf);
        if (buf != NULL) {
            (void)lam__st_to_f32(&f, e, buf, (size_t)e->numel);
            free(buf);
        }
    }
    lam__st_alias *aliases = NULL;
    size_t n_aliases = 0;
    if (lam__st_aliases(&f, &aliases, &n_aliases) == LAM_OK) {
        lam__st_aliases_free(aliases, n_aliases);
    }
    lam__st_file_fini(&f);
    return 0;
}
