/* lam_sampler_indices: each rank's share of an epoch (expected values worked by hand). */
#include "lamina/lamina.h"

#include <criterion/criterion.h>
#include <string.h>

Test(sampler, shares_in_order_drop_the_rest) {
    /* 10 samples, 3 ranks: positions r, r+3, r+6; sample 9 is dropped. */
    int64_t want[3][3] = {{0, 3, 6}, {1, 4, 7}, {2, 5, 8}};
    cr_assert_eq(lam_sampler_count(10, 3, 0), 3);
    for (int r = 0; r < 3; r++) {
        int64_t got[3];
        cr_assert_eq(lam_sampler_indices(10, r, 3, 5, 0, 0, got, 3), LAM_OK);
        cr_assert_arr_eq(got, want[r], sizeof got);
    }
}

Test(sampler, pad_repeats_the_first_positions) {
    int64_t want[3][4] = {{0, 3, 6, 9}, {1, 4, 7, 0}, {2, 5, 8, 1}};
    cr_assert_eq(lam_sampler_count(10, 3, LAM_SAMPLER_PAD), 4);
    for (int r = 0; r < 3; r++) {
        int64_t got[4];
        cr_assert_eq(lam_sampler_indices(10, r, 3, 5, 0, LAM_SAMPLER_PAD, got, 4), LAM_OK);
        cr_assert_arr_eq(got, want[r], sizeof got);
    }
}

/* The ranks' shares of a shuffled epoch are disjoint, cover n - n % size samples, repeat for
 * the same (seed, epoch) and change with the epoch and the seed. */
Test(sampler, shuffle_is_a_shared_permutation_per_epoch) {
    enum { N = 1000, S = 3, C = N / S };
    int64_t a[S][C], again[C], other[C], seed2[C];
    int seen[N] = {0};
    for (int r = 0; r < S; r++) {
        cr_assert_eq(lam_sampler_indices(N, r, S, 11, 4, LAM_SAMPLER_SHUFFLE, a[r], C), LAM_OK);
        for (int k = 0; k < C; k++) {
            cr_assert(a[r][k] >= 0 && a[r][k] < N);
            seen[a[r][k]]++;
        }
    }
    int covered = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_leq(seen[i], 1, "sample %d taken twice", i);
        covered += seen[i];
    }
    cr_assert_eq(covered, S * C);
    cr_assert_eq(lam_sampler_indices(N, 1, S, 11, 4, LAM_SAMPLER_SHUFFLE, again, C), LAM_OK);
    cr_assert_arr_eq(again, a[1], sizeof again);
    cr_assert_eq(lam_sampler_indices(N, 1, S, 11, 5, LAM_SAMPLER_SHUFFLE, other, C), LAM_OK);
    cr_assert_eq(lam_sampler_indices(N, 1, S, 12, 4, LAM_SAMPLER_SHUFFLE, seed2, C), LAM_OK);
    cr_assert(memcmp(other, a[1], sizeof other) != 0);
    cr_assert(memcmp(seed2, a[1], sizeof seed2) != 0);
    /* Shuffled: not the identity order r, r+3, ... */
    int in_order = 0;
    for (int k = 0; k < C; k++) {
        in_order += a[1][k] == 1 + 3 * k;
    }
    cr_assert_lt(in_order, 10);
}

Test(sampler, rejects_bad_arguments) {
    int64_t out[4];
    cr_assert_eq(lam_sampler_indices(10, 3, 3, 0, 0, 0, out, 4), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(lam_last_error(),
                     "lam_sampler_indices: Invalid argument, n 10, rank 3 of 3, flags 0x0");
    cr_assert_eq(lam_sampler_indices(10, 0, 3, 0, 0, 0, out, 2), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_str_eq(lam_last_error(),
                     "lam_sampler_indices: Too small, room for 2 indices, 3 needed");
    cr_assert_eq(lam_sampler_indices(10, 0, 3, 0, 0, 8, out, 4), LAM_ERR_INVALID_ARGUMENT);
    cr_assert_eq(lam_sampler_count(10, 0, 0), 0);
}
