/*
 * everyday_refs.h - PyTorch float64 references for tests/core/test_everyday_ops.c.
 *
 * GENERATED FILE, do not edit. Regenerate from the repository root with:
 *     /usr/bin/python3 tests/core/ref/gen_everyday_refs.py
 *
 * PyTorch 1.13.0a0, seed 20261204. Include after test_util.h (ref_array).
 */
#ifndef LAMINA_TESTS_EVERYDAY_REFS_H
#define LAMINA_TESTS_EVERYDAY_REFS_H

/* clang-format off */

static const int64_t er_take_idx[4] REF_UNUSED = {4, 0, 2, 4}; /* (2, 2) */
static const int32_t er_onehot_idx[6] REF_UNUSED = {0, 4, 2, 2, 1, 3}; /* (2, 3) */

/* input (3, 4) */
static const float er_norm_x_data[12] REF_UNUSED = {-0.569999993f, 1.45000005f, -1.20000005f, -1.14999998f, -0.639999986f, 1.33000004f, 1.47000003f, -0.0199999996f, 2.0f, -1.75999999f, -0.0500000007f, 0.75f};
static const ref_array er_norm_x REF_UNUSED = {2, {3, 4}, 12, er_norm_x_data};

/* forward */
static const float er_norm_all_y_data[1] REF_UNUSED = {4.14635992f};
static const ref_array er_norm_all_y REF_UNUSED = {0, {0}, 1, er_norm_all_y_data};

/* head weight */
static const float er_norm_all_w_data[1] REF_UNUSED = {0.810000002f};
static const ref_array er_norm_all_w REF_UNUSED = {0, {0}, 1, er_norm_all_w_data};

/* gradient of input 0 */
static const float er_norm_all_g0_data[12] REF_UNUSED = {-0.111350678f, 0.283260524f, -0.234422505f, -0.224654883f, -0.125025317f, 0.259818256f, 0.287167549f, -0.00390704116f, 0.390704155f, -0.343819648f, -0.00976760406f, 0.146514058f};
static const ref_array er_norm_all_g0 REF_UNUSED = {2, {3, 4}, 12, er_norm_all_g0_data};

/* forward */
static const float er_norm_ax1_y_data[3] REF_UNUSED = {2.2781353f, 2.08321881f, 2.76814008f};
static const ref_array er_norm_ax1_y REF_UNUSED = {1, {3}, 3, er_norm_ax1_y_data};

/* head weight */
static const float er_norm_ax1_w_data[3] REF_UNUSED = {0.99000001f, 1.41999996f, 0.779999971f};
static const ref_array er_norm_ax1_w REF_UNUSED = {1, {3}, 3, er_norm_ax1_w_data};

/* gradient of input 0 */
static const float er_norm_ax1_g0_data[12] REF_UNUSED = {-0.247702584f, 0.630120635f, -0.521479189f, -0.499750823f, -0.436247975f, 0.906577885f, 1.00200713f, -0.0136327492f, 0.563555241f, -0.495928615f, -0.0140888812f, 0.211333215f};
static const ref_array er_norm_ax1_g0 REF_UNUSED = {2, {3, 4}, 12, er_norm_ax1_g0_data};

/* forward */
static const float er_norm_ax0k_y_data[4] REF_UNUSED = {2.17589068f, 2.63988638f, 1.89826238f, 1.37309861f};
static const ref_array er_norm_ax0k_y REF_UNUSED = {2, {1, 4}, 4, er_norm_ax0k_y_data};

/* head weight */
static const float er_norm_ax0k_w_data[4] REF_UNUSED = {1.48000002f, 0.519999981f, 1.44000006f, 1.20000005f};
static const ref_array er_norm_ax0k_w REF_UNUSED = {2, {1, 4}, 4, er_norm_ax0k_w_data};

/* gradient of input 0 */
static const float er_norm_ax0k_g0_data[12] REF_UNUSED = {-0.3877033f, 0.285618335f, -0.910306275f, -1.0050261f, -0.435315996f, 0.261980981f, 1.11512518f, -0.0174787156f, 1.36036253f, -0.346681565f, -0.0379294269f, 0.655451834f};
static const ref_array er_norm_ax0k_g0 REF_UNUSED = {2, {3, 4}, 12, er_norm_ax0k_g0_data};

/* input (2, 5) */
static const float er_clamp_x_data[10] REF_UNUSED = {0.389999986f, 1.78999996f, 0.519999981f, 0.810000002f, 1.83000004f, -1.67999995f, 0.0599999987f, -1.69000006f, 1.19000006f, -0.25f};
static const ref_array er_clamp_x REF_UNUSED = {2, {2, 5}, 10, er_clamp_x_data};

/* forward */
static const float er_clamp_y_data[10] REF_UNUSED = {0.389999986f, 0.699999988f, 0.519999981f, 0.699999988f, 0.699999988f, -0.5f, 0.0599999987f, -0.5f, 0.699999988f, -0.25f};
static const ref_array er_clamp_y REF_UNUSED = {2, {2, 5}, 10, er_clamp_y_data};

/* head weight */
static const float er_clamp_w_data[10] REF_UNUSED = {0.649999976f, 1.42999995f, 1.13f, 1.12f, 0.519999981f, 0.850000024f, 0.560000002f, 1.32000005f, 1.16999996f, 0.769999981f};
static const ref_array er_clamp_w REF_UNUSED = {2, {2, 5}, 10, er_clamp_w_data};

/* gradient of input 0 */
static const float er_clamp_g0_data[10] REF_UNUSED = {0.649999976f, 0.0f, 1.13f, 0.0f, 0.0f, 0.0f, 0.560000002f, 0.0f, 0.0f, 0.769999981f};
static const ref_array er_clamp_g0 REF_UNUSED = {2, {2, 5}, 10, er_clamp_g0_data};

/* input (5, 2, 3) */
static const float er_take_x_data[30] REF_UNUSED = {0.330000013f, 1.30999994f, 1.88f, -1.77999997f, 0.879999995f, 0.449999988f, 0.720000029f, -0.899999976f, 0.810000002f, -0.379999995f, -1.94000006f, -1.47000003f, 1.30999994f, -0.129999995f, -1.58000004f, 0.550000012f, -1.91999996f, -1.82000005f, 0.550000012f, 1.40999997f, -0.949999988f, -0.439999998f, -0.270000011f, -1.78999996f, -1.72000003f, -0.970000029f, -1.89999998f, -1.66999996f, 1.27999997f, -0.289999992f};
static const ref_array er_take_x REF_UNUSED = {3, {5, 2, 3}, 30, er_take_x_data};

/* forward */
static const float er_take_y_data[24] REF_UNUSED = {-1.72000003f, -0.970000029f, -1.89999998f, -1.66999996f, 1.27999997f, -0.289999992f, 0.330000013f, 1.30999994f, 1.88f, -1.77999997f, 0.879999995f, 0.449999988f, 1.30999994f, -0.129999995f, -1.58000004f, 0.550000012f, -1.91999996f, -1.82000005f, -1.72000003f, -0.970000029f, -1.89999998f, -1.66999996f, 1.27999997f, -0.289999992f};
static const ref_array er_take_y REF_UNUSED = {4, {2, 2, 2, 3}, 24, er_take_y_data};

/* head weight */
static const float er_take_w_data[24] REF_UNUSED = {0.870000005f, 0.910000026f, 1.34000003f, 0.560000002f, 1.25f, 0.560000002f, 1.30999994f, 0.629999995f, 0.899999976f, 0.870000005f, 0.99000001f, 0.939999998f, 1.14999998f, 1.19000006f, 1.0f, 1.48000002f, 1.03999996f, 0.930000007f, 1.47000003f, 1.0f, 0.779999971f, 1.04999995f, 1.42999995f, 1.25f};
static const ref_array er_take_w REF_UNUSED = {4, {2, 2, 2, 3}, 24, er_take_w_data};

/* gradient of input 0 */
static const float er_take_g0_data[30] REF_UNUSED = {1.30999994f, 0.629999995f, 0.899999976f, 0.870000005f, 0.99000001f, 0.939999998f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.14999998f, 1.19000006f, 1.0f, 1.48000002f, 1.03999996f, 0.930000007f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 2.34000015f, 1.91000009f, 2.11999989f, 1.6099999f, 2.67999983f, 1.80999994f};
static const ref_array er_take_g0 REF_UNUSED = {3, {5, 2, 3}, 30, er_take_g0_data};

/* condition (3, 4) */
static const float er_where_c_data[12] REF_UNUSED = {0.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 1.0f, 1.0f, 1.0f, 1.0f, 0.0f};
static const ref_array er_where_c REF_UNUSED = {2, {3, 4}, 12, er_where_c_data};

/* x */
static const float er_where_a_data[12] REF_UNUSED = {-1.34000003f, -0.560000002f, -1.94000006f, 1.55999994f, -1.52999997f, 1.50999999f, -0.879999995f, 1.54999995f, -0.319999993f, -0.109999999f, 1.99000001f, 1.30999994f};
static const ref_array er_where_a REF_UNUSED = {2, {3, 4}, 12, er_where_a_data};

/* y */
static const float er_where_b_data[12] REF_UNUSED = {-0.400000006f, -1.00999999f, 1.69000006f, 1.71000004f, -1.87f, 1.32000005f, 0.610000014f, 1.13f, 0.00999999978f, -1.78999996f, -0.360000014f, 1.02999997f};
static const ref_array er_where_b REF_UNUSED = {2, {3, 4}, 12, er_where_b_data};

/* forward */
static const float er_where_y_data[12] REF_UNUSED = {-0.400000006f, -0.560000002f, -1.94000006f, 1.55999994f, -1.52999997f, 1.50999999f, 0.610000014f, 1.54999995f, -0.319999993f, -0.109999999f, 1.99000001f, 1.02999997f};
static const ref_array er_where_y REF_UNUSED = {2, {3, 4}, 12, er_where_y_data};

/* head weight */
static const float er_where_w_data[12] REF_UNUSED = {0.860000014f, 1.26999998f, 0.800000012f, 0.829999983f, 0.629999995f, 1.14999998f, 0.75999999f, 1.41999996f, 1.27999997f, 0.560000002f, 0.910000026f, 0.74000001f};
static const ref_array er_where_w REF_UNUSED = {2, {3, 4}, 12, er_where_w_data};

/* gradient of input 0 */
static const float er_where_g0_data[12] REF_UNUSED = {0.0f, 1.26999998f, 0.800000012f, 0.829999983f, 0.629999995f, 1.14999998f, 0.0f, 1.41999996f, 1.27999997f, 0.560000002f, 0.910000026f, 0.0f};
static const ref_array er_where_g0 REF_UNUSED = {2, {3, 4}, 12, er_where_g0_data};

/* gradient of input 1 */
static const float er_where_g1_data[12] REF_UNUSED = {0.860000014f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.75999999f, 0.0f, 0.0f, 0.0f, 0.0f, 0.74000001f};
static const ref_array er_where_g1 REF_UNUSED = {2, {3, 4}, 12, er_where_g1_data};

/* input (4, 6) */
static const float er_slice_x_data[24] REF_UNUSED = {1.17999995f, 1.64999998f, -1.44000006f, 0.970000029f, 0.200000003f, -1.74000001f, -1.98000002f, -0.430000007f, -1.75999999f, 0.400000006f, 1.28999996f, -1.80999994f, 0.0299999993f, 0.550000012f, 1.55999994f, 1.5f, 0.140000001f, 0.349999994f, 1.77999997f, 2.0f, 1.55999994f, 0.829999983f, -0.579999983f, -0.50999999f};
static const ref_array er_slice_x REF_UNUSED = {2, {4, 6}, 24, er_slice_x_data};

/* forward */
static const float er_slice_y_data[12] REF_UNUSED = {1.64999998f, 0.970000029f, -1.74000001f, -0.430000007f, 0.400000006f, -1.80999994f, 0.550000012f, 1.5f, 0.349999994f, 2.0f, 0.829999983f, -0.50999999f};
static const ref_array er_slice_y REF_UNUSED = {2, {4, 3}, 12, er_slice_y_data};

/* head weight */
static const float er_slice_w_data[12] REF_UNUSED = {1.24000001f, 0.569999993f, 0.850000024f, 0.829999983f, 0.870000005f, 0.540000021f, 1.46000004f, 1.32000005f, 1.23000002f, 1.28999996f, 1.05999994f, 1.10000002f};
static const ref_array er_slice_w REF_UNUSED = {2, {4, 3}, 12, er_slice_w_data};

/* gradient of input 0 */
static const float er_slice_g0_data[24] REF_UNUSED = {0.0f, 1.24000001f, 0.0f, 0.569999993f, 0.0f, 0.850000024f, 0.0f, 0.829999983f, 0.0f, 0.870000005f, 0.0f, 0.540000021f, 0.0f, 1.46000004f, 0.0f, 1.32000005f, 0.0f, 1.23000002f, 0.0f, 1.28999996f, 0.0f, 1.05999994f, 0.0f, 1.10000002f};
static const ref_array er_slice_g0 REF_UNUSED = {2, {4, 6}, 24, er_slice_g0_data};

/* one_hot(., 5) */
static const float er_onehot_y_data[30] REF_UNUSED = {1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};
static const ref_array er_onehot_y REF_UNUSED = {3, {2, 3, 5}, 30, er_onehot_y_data};

/* arange(0.5, 3, 0.75) */
static const float er_arange_a_data[4] REF_UNUSED = {0.5f, 1.25f, 2.0f, 2.75f};
static const ref_array er_arange_a REF_UNUSED = {1, {4}, 4, er_arange_a_data};

/* arange(3, 0, -1) */
static const float er_arange_b_data[3] REF_UNUSED = {3.0f, 2.0f, 1.0f};
static const ref_array er_arange_b REF_UNUSED = {1, {3}, 3, er_arange_b_data};

/* input (2, 3), all zero */
static const float er_norm0_zeros_data[6] REF_UNUSED = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
static const ref_array er_norm0_zeros REF_UNUSED = {2, {2, 3}, 6, er_norm0_zeros_data};

/* forward */
static const float er_norm0_all_y_data[1] REF_UNUSED = {0.0f};
static const ref_array er_norm0_all_y REF_UNUSED = {0, {0}, 1, er_norm0_all_y_data};

/* head weight */
static const float er_norm0_all_w_data[1] REF_UNUSED = {0.870000005f};
static const ref_array er_norm0_all_w REF_UNUSED = {0, {0}, 1, er_norm0_all_w_data};

/* gradient of input 0 */
static const float er_norm0_all_g0_data[6] REF_UNUSED = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
static const ref_array er_norm0_all_g0 REF_UNUSED = {2, {2, 3}, 6, er_norm0_all_g0_data};

/* input (3, 4), row 1 zero */
static const float er_norm0_x_data[12] REF_UNUSED = {-1.21000004f, -0.769999981f, -1.92999995f, -1.13999999f, 0.0f, 0.0f, 0.0f, 0.0f, 1.99000001f, 1.5f, 0.0900000036f, 1.12f};
static const ref_array er_norm0_x REF_UNUSED = {2, {3, 4}, 12, er_norm0_x_data};

/* forward */
static const float er_norm0_ax1_y_data[3] REF_UNUSED = {2.66110873f, 0.0f, 2.73360562f};
static const ref_array er_norm0_ax1_y REF_UNUSED = {1, {3}, 3, er_norm0_ax1_y_data};

/* head weight */
static const float er_norm0_ax1_w_data[3] REF_UNUSED = {1.40999997f, 1.08000004f, 0.660000026f};
static const ref_array er_norm0_ax1_w REF_UNUSED = {1, {3}, 3, er_norm0_ax1_w_data};

/* gradient of input 0 */
static const float er_norm0_ax1_g0_data[12] REF_UNUSED = {-0.641123772f, -0.407987803f, -1.02261877f, -0.604033887f, 0.0f, 0.0f, 0.0f, 0.0f, 0.480464339f, 0.362159044f, 0.0217295438f, 0.270412087f};
static const ref_array er_norm0_ax1_g0 REF_UNUSED = {2, {3, 4}, 12, er_norm0_ax1_g0_data};

/* clang-format on */

#endif
